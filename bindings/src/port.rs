//! Ethernet ports: look up, configure (queues, RSS, MTU), start/stop, stats — and the
//! per-queue handles the workers poll.
//!
//! Life cycle: [`Port::configure`] → take queues ([`Port::rx_queue`], [`Port::tx_queue`]),
//! hand them to workers → [`Port::start`] → … → workers return their queues (drop them) →
//! [`Port::stop`] / [`Port::close`] (or just drop the `Port`).
//!
//! # Pitfalls
//! - Queue counts are never clamped silently: asking for more queues than the device has
//!   is an error.
//! - `net_af_packet`, `net_ring` (and some other vdevs) have no RSS: several rx queues
//!   still work, but the spread is the device's own (af_packet: kernel fanout hash, not
//!   symmetric; ring/null: independent queues). Only what the device supports is
//!   requested; [`Port::rss_hf`] tells what is active (0 = none).
//! - A device without a promiscuous switch already passes every frame; `promiscuous: true`
//!   is then accepted and recorded as unsupported in [`PortInfo`].
//! - `net_null` *does* report RSS (`flow_type_rss_offloads` ≠ 0, no key size) although it
//!   computes no hash: [`Mbuf::rss_hash`](crate::Mbuf::rss_hash) stays `None` there.
//! - `net_af_packet` / `net_tap` resolve their interface with ioctls in the **calling
//!   thread's network namespace**, at probe and in control calls (promiscuous mode, MTU):
//!   configure such ports from a thread inside that namespace (a daemon started with
//!   `ip netns exec` is), or `rte_eth_promiscuous_enable` fails with `ENODEV`.
//! - Closing a port (or dropping the last [`Port`]) releases a vdev's port id: it cannot
//!   be configured again unless the device is hot-plugged anew.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::burst::Burst;
use crate::eal::{control_lock, eal_ref, EalRef};
use crate::error::{errno, DpdkError, ToResult};
use crate::lcore::SocketId;
use crate::mempool::Mempool;
use crate::raw;

/// An ethdev port id (DPDK's index into its device table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl std::fmt::Display for PortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// Number of usable ports.
pub fn count() -> u16 {
    // SAFETY: reads the ethdev table; no precondition (0 before init).
    unsafe { raw::rte_eth_dev_count_avail() }
}

/// Every valid port id, ascending.
pub fn ids() -> impl Iterator<Item = PortId> {
    (0..u16::try_from(raw::RTE_MAX_ETHPORTS).unwrap_or(u16::MAX))
        .map(PortId)
        .filter(|p| p.is_valid())
}

impl PortId {
    /// The port of the device named `name` (a vdev's name as given to `--vdev` or
    /// [`hotplug_add`](crate::eal::hotplug_add), or a PCI address).
    pub fn by_name(name: &str) -> Result<PortId, DpdkError> {
        let ctx = || format!("rte_eth_dev_get_port_by_name({name})");
        let c = CString::new(name)
            .map_err(|_| DpdkError::invalid(errno::EINVAL, ctx(), "name contains a NUL byte"))?;
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer; the lookup only reads the ethdev table.
        unsafe { raw::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) }.to_result(ctx)?;
        Ok(PortId(id))
    }

    /// True if the id names an attached port.
    pub fn is_valid(self) -> bool {
        // SAFETY: bounds-checks the id and reads the ethdev table.
        unsafe { raw::rte_eth_dev_is_valid_port(self.0) != 0 }
    }

    /// The device name.
    pub fn name(self) -> Result<String, DpdkError> {
        let mut buf = [0 as c_char; raw::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: the buffer is RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
        unsafe { raw::rte_eth_dev_get_name_by_port(self.0, buf.as_mut_ptr()) }
            .to_result(|| format!("rte_eth_dev_get_name_by_port({})", self.0))?;
        // SAFETY: DPDK wrote a NUL-terminated string into the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// What the device can do (queues, RSS, MTU range, driver).
    pub fn info(self) -> Result<PortInfo, DpdkError> {
        let mut di = raw::rte_eth_dev_info::default();
        // SAFETY: valid out pointer to a zeroed rte_eth_dev_info; the port id is checked by DPDK.
        unsafe { raw::rte_eth_dev_info_get(self.0, &mut di) }
            .to_result(|| format!("rte_eth_dev_info_get({})", self.0))?;
        let driver_name = if di.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: drivers point driver_name at a static NUL-terminated string.
            unsafe { CStr::from_ptr(di.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: reads the port's socket; the id was just validated by info_get.
        let socket = SocketId(unsafe { raw::rte_eth_dev_socket_id(self.0) });
        Ok(PortInfo {
            driver_name,
            max_rx_queues: di.max_rx_queues,
            max_tx_queues: di.max_tx_queues,
            flow_type_rss_offloads: di.flow_type_rss_offloads,
            hash_key_size: di.hash_key_size,
            reta_size: di.reta_size,
            min_mtu: di.min_mtu,
            max_mtu: di.max_mtu,
            rx_offload_capa: di.rx_offload_capa,
            tx_offload_capa: di.tx_offload_capa,
            if_index: di.if_index,
            socket,
            promiscuous_supported: true,
        })
    }

    /// The port's MAC address.
    pub fn mac_addr(self) -> Result<[u8; 6], DpdkError> {
        let mut a = raw::rte_ether_addr::default();
        // SAFETY: valid out pointer; DPDK checks the port id.
        unsafe { raw::rte_eth_macaddr_get(self.0, &mut a) }
            .to_result(|| format!("rte_eth_macaddr_get({})", self.0))?;
        Ok(a.addr_bytes)
    }
}

/// A device's capabilities (`rte_eth_dev_info`), the parts we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Driver (PMD) name, e.g. `net_null`, `net_ring`, `net_af_packet`.
    pub driver_name: String,
    /// Most rx queues the device accepts.
    pub max_rx_queues: u16,
    /// Most tx queues the device accepts.
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (`RTE_ETH_RSS_*`); 0 = no RSS.
    pub flow_type_rss_offloads: u64,
    /// RSS key length the device wants (0 if it does not say).
    pub hash_key_size: u8,
    /// RSS redirection table size.
    pub reta_size: u16,
    /// Smallest MTU.
    pub min_mtu: u16,
    /// Largest MTU.
    pub max_mtu: u16,
    /// Rx offloads (`RTE_ETH_RX_OFFLOAD_*`).
    pub rx_offload_capa: u64,
    /// Tx offloads (`RTE_ETH_TX_OFFLOAD_*`).
    pub tx_offload_capa: u64,
    /// Kernel interface index, if the device has one (0 otherwise).
    pub if_index: u32,
    /// NUMA socket (vdevs report the socket of the lcore that created them).
    pub socket: SocketId,
    /// False if enabling promiscuous mode returned `ENOTSUP` (the device has no filter).
    pub promiscuous_supported: bool,
}

/// Hash types for RSS (only those the device supports are requested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssConfig {
    /// The hash key: 40 or 52 bytes; `None` = the device default.
    pub key: Option<Vec<u8>>,
    /// Hash on IPv4/IPv6 addresses.
    pub ip: bool,
    /// Hash on TCP ports too.
    pub tcp: bool,
    /// Hash on UDP ports too.
    pub udp: bool,
}

impl RssConfig {
    /// A Toeplitz key that gives both directions of a flow the same hash (0x6d5a
    /// repeated), so one worker sees a whole connection: what a stateful firewall needs.
    pub const SYMMETRIC_KEY: [u8; 40] = {
        let mut k = [0u8; 40];
        let mut i = 0;
        while i < 40 {
            k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
            i += 1;
        }
        k
    };

    /// IP + TCP + UDP hashing with [`RssConfig::SYMMETRIC_KEY`].
    pub fn symmetric() -> Self {
        Self {
            key: Some(Self::SYMMETRIC_KEY.to_vec()),
            ip: true,
            tcp: true,
            udp: true,
        }
    }

    /// The `RTE_ETH_RSS_*` mask asked for.
    pub fn hash_functions(&self) -> u64 {
        let mut hf = 0;
        if self.ip {
            hf |= raw::TANDEM_ETH_RSS_IP;
        }
        if self.tcp {
            hf |= raw::TANDEM_ETH_RSS_TCP;
        }
        if self.udp {
            hf |= raw::TANDEM_ETH_RSS_UDP;
        }
        hf
    }
}

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Rx queues (≥ 1, ≤ the device's max: never clamped).
    pub rx_queues: u16,
    /// Tx queues (≥ 1, ≤ the device's max).
    pub tx_queues: u16,
    /// Rx descriptors per queue (adjusted to the device's limits by DPDK).
    pub rx_desc: u16,
    /// Tx descriptors per queue (adjusted likewise).
    pub tx_desc: u16,
    /// L3 MTU; `None` = device default (1500).
    pub mtu: Option<u16>,
    /// Receive frames for any MAC.
    pub promiscuous: bool,
    /// RSS across rx queues; `None` = no RSS.
    pub rss: Option<RssConfig>,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            promiscuous: false,
            rss: None,
        }
    }
}

/// Basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device because the rx queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Rx drops because the mempool was empty.
    pub rx_nombuf: u64,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Ports configured by a live [`Port`]: one owner per port, and no hot-unplug under it.
static LIVE: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<u16>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// True while a [`Port`] (or one of its queues) is alive for `id`.
pub(crate) fn is_live(id: PortId) -> bool {
    live().contains(&id.0)
}

/// A configured port. `Send + Sync`: control calls are serialised internally, so a
/// control thread can read stats while workers poll its queues.
///
/// Dropping it (once its queues are dropped too) stops and closes the device.
#[derive(Debug)]
pub struct Port {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: PortId,
    info: PortInfo,
    rss_hf: u64,
    /// Read by every burst (Acquire); written under `taken`'s lock.
    started: AtomicBool,
    /// Which queues are out: rx then tx. Also serialises start/stop.
    taken: Mutex<Taken>,
    mempool: Mempool,
    _eal: EalRef,
}

#[derive(Debug)]
struct Taken {
    rx: Vec<bool>,
    tx: Vec<bool>,
    closed: bool,
}

impl Taken {
    fn any(&self) -> bool {
        self.rx.iter().chain(&self.tx).any(|t| *t)
    }
}

impl Port {
    /// Configures port `id`: queues, RSS (what the device supports of it), MTU,
    /// promiscuous mode; rx queues take their buffers from `mempool`. Does not start it.
    ///
    /// Errors: `EINVAL` for queue counts the device cannot do, a bad RSS key length or an
    /// MTU out of range; `EBUSY` if another `Port` already owns `id`; DPDK's errors.
    pub fn configure(id: PortId, cfg: &PortConfig, mempool: &Mempool) -> Result<Port, DpdkError> {
        let ctx = |what: &str| format!("configure {id}: {what}");
        let eal = eal_ref(&ctx("EAL"))?;
        let _g = control_lock();
        {
            let mut live = live();
            if live.contains(&id.0) {
                return Err(DpdkError::invalid(
                    errno::EBUSY,
                    ctx("owner"),
                    "another Port already owns it",
                ));
            }
            live.push(id.0);
        }
        // A clone goes in: should configuring fail, the reference dropped inside is not
        // the last (ours is), so EAL cleanup can never run under the control lock.
        let r = Self::configure_locked(id, cfg, mempool, eal.clone());
        if r.is_err() {
            live().retain(|p| *p != id.0);
        }
        r
    }

    fn configure_locked(
        id: PortId,
        cfg: &PortConfig,
        mempool: &Mempool,
        eal: EalRef,
    ) -> Result<Port, DpdkError> {
        let ctx = |what: &str| format!("configure {id}: {what}");
        let mut info = id.info()?;
        let too_many = |dir: &str, asked: u16, max: u16| {
            DpdkError::invalid(
                errno::EINVAL,
                ctx("queues"),
                format!(
                    "device {} ({}) supports 1..={max} {dir} queues, asked for {asked}",
                    id.0, info.driver_name
                ),
            )
        };
        if cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues {
            return Err(too_many("rx", cfg.rx_queues, info.max_rx_queues));
        }
        if cfg.tx_queues == 0 || cfg.tx_queues > info.max_tx_queues {
            return Err(too_many("tx", cfg.tx_queues, info.max_tx_queues));
        }

        let mut conf = raw::rte_eth_conf::default();
        if let Some(mtu) = cfg.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(DpdkError::invalid(
                    errno::EINVAL,
                    ctx("mtu"),
                    format!(
                        "MTU {mtu} outside the device's {}..={}",
                        info.min_mtu, info.max_mtu
                    ),
                ));
            }
            conf.rxmode.mtu = u32::from(mtu);
        }

        let mut rss_hf = 0;
        let mut key_buf: Vec<u8> = Vec::new();
        if let Some(rss) = &cfg.rss {
            if let Some(key) = &rss.key {
                if key.len() != 40 && key.len() != 52 {
                    return Err(DpdkError::invalid(
                        errno::EINVAL,
                        ctx("rss key"),
                        format!("key is {} bytes; 40 or 52 expected", key.len()),
                    ));
                }
            }
            rss_hf = rss.hash_functions() & info.flow_type_rss_offloads;
            if rss_hf != 0 {
                conf.rxmode.mq_mode = raw::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
                if let Some(key) = &rss.key {
                    if info.hash_key_size != 0 && usize::from(info.hash_key_size) != key.len() {
                        return Err(DpdkError::invalid(
                            errno::EINVAL,
                            ctx("rss key"),
                            format!(
                                "device wants a {}-byte key, got {}",
                                info.hash_key_size,
                                key.len()
                            ),
                        ));
                    }
                    key_buf.clone_from(key);
                    conf.rx_adv_conf.rss_conf.rss_key = key_buf.as_mut_ptr();
                    conf.rx_adv_conf.rss_conf.rss_key_len =
                        u8::try_from(key_buf.len()).expect("40 or 52");
                }
                if info.rx_offload_capa & raw::TANDEM_ETH_RX_OFFLOAD_RSS_HASH != 0 {
                    conf.rxmode.offloads |= raw::TANDEM_ETH_RX_OFFLOAD_RSS_HASH;
                }
            }
        }

        // SAFETY: `conf` is a fully initialised rte_eth_conf (zeroed + our fields); its key
        // pointer (if any) points into `key_buf`, alive until the end of this function;
        // control calls are serialised (lock held by the caller).
        unsafe { raw::rte_eth_dev_configure(id.0, cfg.rx_queues, cfg.tx_queues, &conf) }
            .to_result(|| ctx("rte_eth_dev_configure"))?;

        let (mut nb_rxd, mut nb_txd) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid in/out pointers; port configured above.
        unsafe { raw::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut nb_rxd, &mut nb_txd) }
            .to_result(|| ctx("rte_eth_dev_adjust_nb_rx_tx_desc"))?;
        let socket = info.socket.as_c_uint();
        for q in 0..cfg.rx_queues {
            // SAFETY: q < configured rx queues; NULL rxconf = driver defaults; the mempool
            // is alive and outlives the port (Inner keeps a clone).
            unsafe {
                raw::rte_eth_rx_queue_setup(
                    id.0,
                    q,
                    nb_rxd,
                    socket,
                    std::ptr::null(),
                    mempool.as_ptr(),
                )
            }
            .to_result(|| ctx(&format!("rte_eth_rx_queue_setup(q {q})")))?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: q < configured tx queues; NULL txconf = driver defaults.
            unsafe { raw::rte_eth_tx_queue_setup(id.0, q, nb_txd, socket, std::ptr::null()) }
                .to_result(|| ctx(&format!("rte_eth_tx_queue_setup(q {q})")))?;
        }

        if cfg.promiscuous {
            // SAFETY: configured port; control calls serialised.
            let r = unsafe { raw::rte_eth_promiscuous_enable(id.0) };
            if r == -errno::ENOTSUP {
                info.promiscuous_supported = false;
            } else {
                r.to_result(|| ctx("rte_eth_promiscuous_enable"))?;
            }
        }

        Ok(Port {
            inner: Arc::new(Inner {
                id,
                info,
                rss_hf,
                started: AtomicBool::new(false),
                taken: Mutex::new(Taken {
                    rx: vec![false; usize::from(cfg.rx_queues)],
                    tx: vec![false; usize::from(cfg.tx_queues)],
                    closed: false,
                }),
                mempool: mempool.clone(),
                _eal: eal,
            }),
        })
    }

    fn taken(&self) -> MutexGuard<'_, Taken> {
        self.inner.taken()
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.inner.id
    }

    /// Capabilities as read at configure time.
    pub fn info(&self) -> &PortInfo {
        &self.inner.info
    }

    /// The RSS hash types in effect (`RTE_ETH_RSS_*`); 0 = no RSS on this port.
    pub fn rss_hf(&self) -> u64 {
        self.inner.rss_hf
    }

    /// The pool rx queues allocate from.
    pub fn mempool(&self) -> &Mempool {
        &self.inner.mempool
    }

    /// Number of configured rx queues.
    pub fn rx_queues(&self) -> u16 {
        u16::try_from(self.taken().rx.len()).expect("configured from a u16")
    }

    /// Number of configured tx queues.
    pub fn tx_queues(&self) -> u16 {
        u16::try_from(self.taken().tx.len()).expect("configured from a u16")
    }

    /// Takes rx queue `q`. `None` if out of range or already taken: a queue has one owner
    /// (one lcore) at a time; it comes back when the handle is dropped.
    pub fn rx_queue(&self, q: u16) -> Option<RxQueue> {
        let mut t = self.taken();
        let slot = t.rx.get_mut(usize::from(q))?;
        if std::mem::replace(slot, true) {
            return None;
        }
        Some(RxQueue {
            port: Arc::clone(&self.inner),
            queue: q,
            _not_sync: PhantomData,
        })
    }

    /// Takes tx queue `q` (same rules as [`rx_queue`](Port::rx_queue)).
    pub fn tx_queue(&self, q: u16) -> Option<TxQueue> {
        let mut t = self.taken();
        let slot = t.tx.get_mut(usize::from(q))?;
        if std::mem::replace(slot, true) {
            return None;
        }
        Some(TxQueue {
            port: Arc::clone(&self.inner),
            queue: q,
            _not_sync: PhantomData,
        })
    }

    /// Starts the device; bursts move packets from now on (before, they return 0).
    pub fn start(&self) -> Result<(), DpdkError> {
        let _t = self.taken();
        if self.inner.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let _g = control_lock();
        // SAFETY: configured port, control calls serialised.
        unsafe { raw::rte_eth_dev_start(self.inner.id.0) }
            .to_result(|| format!("rte_eth_dev_start({})", self.inner.id.0))?;
        self.inner.started.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops the device. `EBUSY` while any queue handle is out: stopping under a polling
    /// worker would race its bursts.
    pub fn stop(&self) -> Result<(), DpdkError> {
        let t = self.taken();
        if t.any() {
            return Err(DpdkError::invalid(
                errno::EBUSY,
                format!("rte_eth_dev_stop({})", self.inner.id.0),
                "queue handles are still out; drop them (stop the workers) first",
            ));
        }
        self.inner.stop_locked()
    }

    /// Stops (if needed) and closes the device, releasing it (a vdev's port id disappears).
    /// `EBUSY` while queue handles are out (the port then closes when the last is dropped).
    pub fn close(self) -> Result<(), DpdkError> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.close_now(),
            Err(_still_shared) => Err(DpdkError::invalid(
                errno::EBUSY,
                "rte_eth_dev_close",
                "queue handles are still out; the port closes when the last is dropped",
            )),
        }
    }

    /// Promiscuous mode on or off.
    pub fn set_promiscuous(&self, on: bool) -> Result<(), DpdkError> {
        let _g = control_lock();
        let id = self.inner.id.0;
        // SAFETY: configured port, control calls serialised.
        let r = unsafe {
            if on {
                raw::rte_eth_promiscuous_enable(id)
            } else {
                raw::rte_eth_promiscuous_disable(id)
            }
        };
        r.to_result(|| {
            format!(
                "rte_eth_promiscuous_{}({id})",
                if on { "enable" } else { "disable" }
            )
        })?;
        Ok(())
    }

    /// Link state, without waiting for auto-negotiation.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut l = raw::rte_eth_link::default();
        let _g = control_lock();
        // SAFETY: valid out pointer; configured port.
        unsafe { raw::rte_eth_link_get_nowait(self.inner.id.0, &mut l) }
            .to_result(|| format!("rte_eth_link_get_nowait({})", self.inner.id.0))?;
        Ok(LinkStatus {
            up: u32::from(l.link_status()) == raw::RTE_ETH_LINK_UP,
            speed_mbps: l.link_speed,
            full_duplex: u32::from(l.link_duplex()) == raw::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// True if the link is up (false also when it cannot be read).
    pub fn link_up(&self) -> bool {
        self.link().is_ok_and(|l| l.up)
    }

    /// The device's counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = raw::rte_eth_stats::default();
        let _g = control_lock();
        // SAFETY: valid out pointer; configured port; reading counters while workers burst
        // is what DPDK's stats API is for.
        unsafe { raw::rte_eth_stats_get(self.inner.id.0, &mut s) }
            .to_result(|| format!("rte_eth_stats_get({})", self.inner.id.0))?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// The device's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6], DpdkError> {
        self.inner.id.mac_addr()
    }
}

impl Inner {
    fn taken(&self) -> MutexGuard<'_, Taken> {
        self.taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the device; the caller holds `taken` and has checked no queue is out.
    fn stop_locked(&self) -> Result<(), DpdkError> {
        if !self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        self.started.store(false, Ordering::Release);
        let _g = control_lock();
        // SAFETY: started port; no queue handle is out, so no burst runs concurrently;
        // control calls serialised.
        unsafe { raw::rte_eth_dev_stop(self.id.0) }
            .to_result(|| format!("rte_eth_dev_stop({})", self.id.0))?;
        Ok(())
    }

    /// Stops and closes; only called with no queue handle alive (sole owner).
    fn close_now(&self) -> Result<(), DpdkError> {
        let (result, rings) = {
            let mut t = self.taken();
            if t.closed {
                return Ok(());
            }
            t.closed = true;
            let stopped = self.stop_locked();
            let _g = control_lock();
            // SAFETY: we are the last owner (no queue handle, no Port), the device is
            // stopped; after this the id is not used by us again (`closed`).
            let closed = unsafe { raw::rte_eth_dev_close(self.id.0) }
                .to_result(|| format!("rte_eth_dev_close({})", self.id.0));
            live().retain(|p| *p != self.id.0);
            (
                stopped.and(closed),
                crate::ring_port::release_port_rings(self.id),
            )
        };
        // Dropped with no lock held: a Ring's Drop takes the control lock.
        drop(rings);
        result.map(|_| ())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close_now() {
            log::warn!("dpdk-sys: closing {}: {e}", self.id);
        }
    }
}

/// Receive side of one queue. `Send`, not `Sync`, not `Clone`: one queue, one lcore.
/// Holds its port open; dropping it gives the queue back.
pub struct RxQueue {
    port: Arc<Inner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

/// Transmit side of one queue; same rules as [`RxQueue`].
pub struct TxQueue {
    port: Arc<Inner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Receives up to `burst.spare()` packets, appended to `burst`; returns how many.
    /// Returns 0 while the port is not started.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        if !self.port.started.load(Ordering::Acquire) {
            return 0;
        }
        let slots = burst.spare_slots();
        let want = u16::try_from(slots.len()).unwrap_or(u16::MAX);
        // SAFETY: the port is started and stays so while this handle exists (stop needs
        // every handle back); this handle is the queue's only user (not Sync/Clone, taken
        // once); `slots` has room for `want` pointers.
        let n = unsafe {
            raw::tandem_shim_eth_rx_burst(self.port.id.0, self.queue, slots.as_mut_ptr(), want)
        };
        let n = usize::from(n);
        // SAFETY: DPDK wrote `n` received mbufs, now owned by us, into the spare slots.
        unsafe { burst.commit(n) };
        n
    }

    /// The port.
    pub fn port_id(&self) -> PortId {
        self.port.id
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl TxQueue {
    /// Sends packets from the front of `burst`; returns how many the device took. The rest
    /// stay in `burst` (in order) to retry or to drop with [`Burst::clear`].
    /// Returns 0 while the port is not started.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        if !self.port.started.load(Ordering::Acquire) {
            return 0;
        }
        let pkts = burst.front_slots();
        let count = u16::try_from(pkts.len()).unwrap_or(u16::MAX);
        // SAFETY: started port, sole user of this queue (as in rx_burst); `pkts` holds
        // `count` owned mbufs. DPDK takes ownership of the first `n` it returns.
        let n = unsafe {
            raw::tandem_shim_eth_tx_burst(self.port.id.0, self.queue, pkts.as_mut_ptr(), count)
        };
        let n = usize::from(n);
        burst.consumed(n);
        n
    }

    /// The port.
    pub fn port_id(&self) -> PortId {
        self.port.id
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.taken().rx[usize::from(self.queue)] = false;
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.taken().tx[usize::from(self.queue)] = false;
    }
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RxQueue({}, q {})", self.port.id, self.queue)
    }
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxQueue({}, q {})", self.port.id, self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_key_is_6d5a() {
        let k = RssConfig::SYMMETRIC_KEY;
        assert_eq!(&k[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        assert_eq!(k.len(), 40);
    }

    #[test]
    fn hash_functions_mask() {
        let r = RssConfig {
            key: None,
            ip: true,
            tcp: false,
            udp: false,
        };
        assert_eq!(r.hash_functions(), raw::TANDEM_ETH_RSS_IP);
        assert_eq!(
            RssConfig::symmetric().hash_functions().count_ones(),
            (raw::TANDEM_ETH_RSS_IP | raw::TANDEM_ETH_RSS_TCP | raw::TANDEM_ETH_RSS_UDP)
                .count_ones()
        );
    }
}
