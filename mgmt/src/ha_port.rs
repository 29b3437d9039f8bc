//! The DPDK port dedicated to one HA link: an [`HaLink`] fed with mbufs.
//!
//! The port has one queue pair (queue 0), owned by whoever polls the link
//! (the main lcore, or the sync lcore where the profile has one); nothing
//! else touches it. Promiscuous mode stays off: the link needs only frames to
//! its MAC and broadcast ARP, which every PMD passes without it — including
//! `net_af_packet`, whose socket sees what the kernel interface receives
//! (tried over a veth pair in `tests/ha_port.rs`). Starting the port replays
//! "off" on the kernel interface, by ioctl in the calling thread's network
//! namespace: start an af_packet HA port from inside it, like the data ports.
//!
//! * [`HaPort::poll`] reads one burst, answers ARP, hands each sync payload
//!   to the caller — writable, so it is decrypted in place — and frees the
//!   mbufs; then sends the ARP requests the link owes.
//! * [`HaPort::send`] builds one datagram straight into a fresh mbuf (no
//!   copy besides the payload's) and transmits it at once.
//!
//! A device without a MAC of its own (`net_ring`) gets a stand-in
//! ([`stand_in_mac`]); such devices do not filter by MAC, so it works.
//!
//! The IP MTU used is the profile port's, lowered if a frame of that size
//! would not fit one mbuf of the pool (ports are never configured to
//! scatter): the partner, with the same profile and pool, lowers it alike.

use crate::ha_link::{Addressing, ConfigError, HaLink, Input, OutputError};
use crate::unit::BootError;
use dataplane::wire::{ethernet, EthernetAddress};
use dpdk_sys::{Burst, DpdkError, Mbuf, Mempool, Port, PortConfig, PortId, RxQueue, TxQueue};
use hw_profiles::{Port as PortSpec, Role};

/// Most frames read by one [`HaPort::poll`].
pub const RX_BURST: usize = 32;

/// An Ethernet port's MTU unless configured otherwise.
const DEFAULT_MTU: u16 = 1500;

/// Why an HA link's port did not start.
#[derive(Debug, thiserror::Error)]
pub enum HaPortError {
    /// DPDK refused a step.
    #[error("{step}: {source}")]
    Dpdk {
        /// What was being done.
        step: String,
        /// DPDK's error.
        source: DpdkError,
    },
    /// The link's addresses do not make a link.
    #[error("HA link {link}: {source}")]
    Config {
        /// The link's name.
        link: String,
        /// What is wrong with them.
        source: ConfigError,
    },
    /// The profile and the running system disagree.
    #[error("{0}")]
    Mismatch(String),
}

impl From<HaPortError> for BootError {
    fn from(e: HaPortError) -> BootError {
        match e {
            HaPortError::Dpdk { step, source } => BootError::Dpdk { step, source },
            other => BootError::Mismatch(other.to_string()),
        }
    }
}

/// Why [`HaPort::send`] sent nothing (each one is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The partner's MAC is not known yet; [`HaPort::poll`] is asking for it.
    #[error("the partner's MAC address is not resolved yet")]
    NotResolved,
    /// The packet pool is empty.
    #[error("no mbuf left in the packet pool")]
    NoMbuf,
    /// The port's transmit queue is full.
    #[error("the HA port's transmit queue is full")]
    TxFull,
    /// The payload is longer than [`HaPort::max_payload`].
    #[error("the payload does not fit the HA link's MTU")]
    TooLong,
}

impl From<OutputError> for SendError {
    fn from(e: OutputError) -> SendError {
        match e {
            OutputError::NotResolved => SendError::NotResolved,
            OutputError::TooLong => SendError::TooLong,
        }
    }
}

/// The port's own counters (the link's are in [`HaLink::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaPortStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Received frames in several segments, dropped (never with the ports
    /// configured here; counted in case a PMD does it anyway).
    pub rx_segmented: u64,
    /// Frames transmitted: datagrams and ARP.
    pub tx_frames: u64,
    /// Frames the transmit queue had no room for.
    pub tx_full: u64,
    /// Frames not built for want of an mbuf.
    pub no_mbuf: u64,
    /// Payloads longer than the link's MTU allows.
    pub too_long: u64,
}

/// The transmit side, apart from the link so that a reply can be sent while
/// the link is handling the frame that asked for it.
struct Tx {
    // Before `pool`, so that a packet left in it is freed first.
    burst: Burst,
    queue: TxQueue,
    pool: Mempool,
    stats: HaPortStats,
}

impl Tx {
    /// A fresh mbuf of `len` bytes, or `NoMbuf`/`TooLong` (counted).
    fn mbuf(&mut self, len: usize) -> Result<Mbuf, SendError> {
        let Some(mut m) = self.pool.alloc() else {
            self.stats.no_mbuf += 1;
            return Err(SendError::NoMbuf);
        };
        if m.append(len).is_none() {
            self.stats.too_long += 1;
            return Err(SendError::TooLong);
        }
        Ok(m)
    }

    /// Transmits one frame; frees it if the queue is full.
    fn transmit(&mut self, m: Mbuf) -> Result<(), SendError> {
        // The burst is empty between calls, so there is room.
        if self.burst.push(m).is_err() || self.queue.tx_burst(&mut self.burst) == 0 {
            self.burst.clear();
            self.stats.tx_full += 1;
            return Err(SendError::TxFull);
        }
        self.stats.tx_frames += 1;
        Ok(())
    }

    /// Copies a frame the link built (ARP) into an mbuf and transmits it.
    fn send_frame(&mut self, frame: &[u8]) {
        if let Ok(mut m) = self.mbuf(frame.len()) {
            m.data_mut().copy_from_slice(frame);
            // A lost ARP frame is counted, and the link asks again.
            let _ = self.transmit(m);
        }
    }
}

/// A started DPDK port carrying one HA link.
pub struct HaPort {
    // Bursts and queues before the port: they drop first.
    rx_burst: Burst,
    tx: Tx,
    rx: RxQueue,
    port: Port,
    name: String,
    mtu: u16,
    link: HaLink,
}

impl std::fmt::Debug for HaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaPort")
            .field("name", &self.name)
            .field("port", &self.port.id())
            .field("mtu", &self.mtu)
            .field("link", &self.link)
            .finish()
    }
}

/// The MAC of a device that has none of its own (`net_ring` ports report
/// 00:00:00:00:00:00, and cannot be given one): locally administered,
/// `02:74:64:00` ("td") then the port id.
pub fn stand_in_mac(id: PortId) -> EthernetAddress {
    let [hi, lo] = id.0.to_be_bytes();
    EthernetAddress([0x02, 0x74, 0x64, 0x00, hi, lo])
}

fn dpdk(step: String) -> impl FnOnce(DpdkError) -> HaPortError {
    move |source| HaPortError::Dpdk { step, source }
}

impl HaPort {
    /// Configures and starts the profile's port `spec` (role `HaLink`) for
    /// the link `name` with the addresses of `cfg`: one queue pair, rx
    /// buffers from `pool`, promiscuous mode off, the port's own MAC (or
    /// [`stand_in_mac`] for a device without one).
    ///
    /// The addresses are checked against the port's MAC before the device is
    /// touched. A port left behind by a failure closes when dropped.
    pub fn start(
        name: &str,
        spec: &PortSpec,
        cfg: &Addressing,
        pool: &Mempool,
    ) -> Result<HaPort, HaPortError> {
        let step = |what: &str| format!("HA link {name} (port {}): {what}", spec.name);
        if spec.role != Role::HaLink {
            return Err(HaPortError::Mismatch(step("not an HA link port")));
        }
        let id = PortId::by_name(spec.dpdk_name()).map_err(dpdk(step("find the device")))?;
        let mac = match EthernetAddress(id.mac_addr().map_err(dpdk(step("read the MAC")))?) {
            EthernetAddress::UNSPECIFIED => {
                let mac = stand_in_mac(id);
                tracing::info!("HA link {name}: the device has no MAC; using {mac}");
                mac
            }
            mac => mac,
        };
        let link = HaLink::from_config(mac, cfg).map_err(|source| HaPortError::Config {
            link: name.to_owned(),
            source,
        })?;
        let info = id.info().map_err(dpdk(step("device info")))?;
        let room = pool
            .alloc()
            .map(|m| m.tailroom())
            .ok_or_else(|| HaPortError::Mismatch(step("the packet pool is empty")))?;
        let fits = u16::try_from(room.saturating_sub(ethernet::HEADER_LEN)).unwrap_or(u16::MAX);
        let mtu = spec.mtu.min(fits).min(info.max_mtu);
        if mtu < spec.mtu {
            tracing::warn!(
                "HA link {name}: MTU {mtu} instead of {}: a larger frame fits neither one mbuf nor the device",
                spec.mtu
            );
        }
        let cfg = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: spec.rx_desc,
            tx_desc: spec.tx_desc,
            mtu: (mtu != DEFAULT_MTU).then_some(mtu),
            promiscuous: false,
            rss: None,
        };
        let port = Port::configure(id, &cfg, pool).map_err(dpdk(step("configure")))?;
        let missing = || HaPortError::Mismatch(step("queue 0 is taken"));
        let rx = port.rx_queue(0).ok_or_else(missing)?;
        let queue = port.tx_queue(0).ok_or_else(missing)?;
        port.start().map_err(dpdk(step("start")))?;
        Ok(HaPort {
            rx_burst: Burst::with_limit(RX_BURST),
            tx: Tx {
                burst: Burst::with_limit(1),
                queue,
                pool: pool.clone(),
                stats: HaPortStats::default(),
            },
            rx,
            port,
            name: name.to_owned(),
            mtu,
            link,
        })
    }

    /// Reads one burst: answers ARP, hands each sync payload from the
    /// partner to `on_payload` (writable: decrypt it in place; the mbuf is
    /// freed when it returns), drops the rest (counted by the link). Then
    /// sends the ARP request the link owes, if any. Returns the number of
    /// frames read.
    pub fn poll(&mut self, now_ns: u64, on_payload: &mut impl FnMut(&mut [u8])) -> usize {
        let HaPort {
            rx_burst,
            tx,
            rx,
            link,
            ..
        } = self;
        let n = rx.rx_burst(rx_burst);
        let mut reply = |frame: &[u8]| tx.send_frame(frame);
        let mut segmented = 0;
        for mut m in rx_burst.drain() {
            if !m.is_contiguous() {
                segmented += 1;
                continue;
            }
            if let Input::Payload(payload) = link.input_mut(now_ns, m.data_mut(), &mut reply) {
                on_payload(payload);
            }
        }
        link.poll(now_ns, &mut reply);
        self.tx.stats.rx_frames += n as u64;
        self.tx.stats.rx_segmented += segmented;
        n
    }

    /// Sends one datagram carrying `payload` to the partner, now.
    pub fn send(&mut self, now_ns: u64, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > self.max_payload() {
            self.tx.stats.too_long += 1;
            return Err(SendError::TooLong);
        }
        let mut m = self.tx.mbuf(HaLink::frame_len(payload.len()))?;
        // NotResolved is counted by the link; the mbuf goes back to the pool.
        self.link.output(now_ns, payload, m.data_mut())?;
        self.tx.transmit(m)
    }

    /// The largest payload [`send`](HaPort::send) takes.
    pub fn max_payload(&self) -> usize {
        HaLink::max_payload(self.mtu)
    }

    /// The IP MTU in use (see the module documentation).
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The link's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link: addresses, the partner's MAC, its counters.
    pub fn link(&self) -> &HaLink {
        &self.link
    }

    /// The port's own counters.
    pub fn stats(&self) -> HaPortStats {
        self.tx.stats
    }

    /// The carrier, as DPDK reports it without waiting (`false` when it
    /// cannot be read). Takes the bindings' control lock: call it every few
    /// milliseconds at most, not every round.
    pub fn link_up(&self) -> bool {
        self.port.link_up()
    }

    /// Every counter, the link's and the port's, as `ha.<link>.<name>`.
    pub fn counters(&self, out: &mut Vec<(String, u64)>) {
        self.link.counters(&self.name, out);
        let s = self.tx.stats;
        for (n, v) in [
            ("rx_frames", s.rx_frames),
            ("rx_segmented", s.rx_segmented),
            ("tx_frames", s.tx_frames),
            ("tx_full", s.tx_full),
            ("no_mbuf", s.no_mbuf),
            ("too_long", s.too_long),
        ] {
            out.push((format!("ha.{}.{n}", self.name), v));
        }
    }

    /// Stops and closes the port (dropping an `HaPort` does the same, but
    /// can only log a failure).
    pub fn close(self) -> Result<(), HaPortError> {
        let HaPort {
            rx_burst,
            tx,
            rx,
            port,
            name,
            ..
        } = self;
        drop((rx_burst, tx, rx));
        port.close()
            .map_err(dpdk(format!("HA link {name}: close the port")))
    }
}
