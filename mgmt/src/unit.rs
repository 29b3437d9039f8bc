//! Booting one unit: its locks, EAL, the packet pool, the data ports, one
//! worker per worker lcore; and taking it down again in the right order.
//!
//! Order matters for DPDK: workers stop polling before their ports stop,
//! ports close before the pool goes, and the EAL is cleaned up last. The EAL
//! runtime directory (`/var/run/dpdk/<prefix>`, which EAL leaves behind even
//! with `--no-shconf`) is removed after that, while the unit still holds the
//! lock on its prefix ([`crate::lock`]), so it is always its own: on a clean
//! stop and on a boot that fails half-way alike. A start refused by a lock
//! touches nothing.
//!
//! [`Unit`] is the lifecycle, owned by the main thread; [`UnitHandle`] is what
//! the rest of the control plane may use while it runs (counters, rules,
//! listings, the event queues), shared and lock-free.

use crate::config::UnitConfig;
use crate::lock::{self, LockError, UnitLocks};
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::control::{ConnFilter, Listing, LiveConfig};
use dataplane::filter::RuleSet;
use dataplane::forward::router::Interface;
use dataplane::wire::EthernetAddress;
use dpdk_sys::{
    lcore, DpdkError, Eal, LaunchHandle, LcoreId, Mempool, Port, PortConfig, PortId, RssConfig,
    SocketId,
};
use hw_profiles::{Idle, Profile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use workers::{
    Clock, FirewallSpec, HaSignals, IdlePolicy, WorkerHandles, WorkerLinks, WorkerPort, WorkerSpec,
};

/// Why a unit did not boot.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// DPDK refused a step.
    #[error("{step}: {source}")]
    Dpdk {
        /// What was being done.
        step: String,
        /// DPDK's error.
        source: DpdkError,
    },
    /// The profile and the running system disagree.
    #[error("{0}")]
    Mismatch(String),
    /// Another unit holds the prefix or a port, or a lock file cannot be opened.
    #[error("{0}")]
    Locked(#[from] LockError),
}

fn dpdk(step: impl Into<String>) -> impl FnOnce(DpdkError) -> BootError {
    let step = step.into();
    move |source| BootError::Dpdk { step, source }
}

/// A fresh, secret seed for a shard's hash (so crafted 5-tuples cannot
/// collide on purpose): the kernel's random bytes, or the standard
/// library's per-process random keys if /dev/urandom cannot be read.
fn boot_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// This boot's epoch: the wall-clock second in the high 32 bits and random
/// bits below, so it is new at every boot and a later boot's is larger (a
/// partner tells a restart, and a replay of an older boot's datagrams, by it).
pub fn boot_epoch() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs << 32) | (boot_seed() & 0xffff_ffff)
}

/// Where EAL keeps its runtime files for a prefix.
fn runtime_dir(prefix: &str) -> PathBuf {
    Path::new("/var/run/dpdk").join(prefix)
}

/// What a booting unit owns before EAL starts: its locks, and with them the
/// right to remove its EAL runtime directory, which dropping this does (then
/// the locks go).
struct Runtime {
    dir: PathBuf,
    _locks: UnitLocks,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("EAL runtime directory {}: {e}", self.dir.display());
            }
        }
    }
}

/// A running unit. Fields drop in this order, which DPDK needs.
pub struct Unit {
    workers: Vec<LaunchHandle>,
    shared: UnitHandle,
    pool: Mempool,
    eal: Eal,
    _runtime: Runtime,
}

/// What the control plane shares of a running unit.
#[derive(Clone)]
pub struct UnitHandle(Arc<Shared>);

struct Shared {
    workers: Vec<WorkerHandles>,
    /// The clock the workers use.
    clock: Clock,
    /// The workers' role, gratuitous ARP and data probe.
    ha: Arc<HaSignals>,
    ports: Vec<(String, Port)>,
    /// Data interface names in index order.
    interfaces: Vec<String>,
}

impl Unit {
    /// Boots the unit described by `profile` and `config`; workers poll until
    /// `stop` is set. With `rules`, forwarded traffic is filtered statefully;
    /// without, the unit is a plain router. First takes the locks on
    /// `file_prefix` and on every port in [`lock::LOCK_DIR`] (or `lock_dir`):
    /// `epoch` ([`boot_epoch`]) names the unit's connections to its partner;
    /// a resource another unit holds refuses the boot before EAL starts.
    pub fn boot(
        profile: &Profile,
        config: &UnitConfig,
        rules: Option<Arc<RuleSet>>,
        file_prefix: &str,
        lock_dir: &Path,
        epoch: u64,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, BootError> {
        let resources = lock::resources(profile, file_prefix, &lock::current_netns());
        let runtime = Runtime {
            _locks: UnitLocks::acquire(lock_dir, &resources)?,
            dir: runtime_dir(file_prefix),
        };
        let eal = Eal::init(&profile.eal_args(file_prefix)).map_err(dpdk("EAL init"))?;
        let pool = Mempool::new(
            "tandem_mbufs",
            profile.memory.mbufs,
            profile.memory.mbuf_cache,
            Mempool::DEFAULT_DATA_ROOM,
            SocketId::ANY,
        )
        .map_err(dpdk("packet pool"))?;

        let workers = profile.cores.workers.len();
        let mut ports = Vec::new();
        let mut ifaces = Vec::new();
        for ifc in &config.router.interfaces {
            let spec = profile.port(&ifc.port).ok_or_else(|| {
                BootError::Mismatch(format!("no port {} in the profile", ifc.port))
            })?;
            let id = PortId::by_name(spec.device.dpdk_name())
                .map_err(dpdk(format!("port {}", ifc.port)))?;
            let info = id.info().map_err(dpdk(format!("port {} info", ifc.port)))?;
            let rss =
                (spec.rx_queues > 1 && info.flow_type_rss_offloads != 0).then(RssConfig::symmetric);
            let cfg = PortConfig {
                rx_queues: spec.rx_queues,
                tx_queues: spec.tx_queues,
                rx_desc: spec.rx_desc,
                tx_desc: spec.tx_desc,
                mtu: None,
                promiscuous: true,
                rss,
            };
            let port = Port::configure(id, &cfg, &pool)
                .map_err(dpdk(format!("configure port {}", ifc.port)))?;
            port.start()
                .map_err(dpdk(format!("start port {}", ifc.port)))?;
            let mac = EthernetAddress(
                port.mac_addr()
                    .map_err(dpdk(format!("port {} MAC", ifc.port)))?,
            );
            ifaces.push(Interface::new(ifc, mac, spec.mtu));
            ports.push((ifc.port.clone(), port));
        }

        let idle = match profile.idle {
            Idle::BusyPoll => IdlePolicy::BusyPoll,
            Idle::Adaptive { max_sleep_us } => IdlePolicy::Adaptive { max_sleep_us },
        };
        let per_shard =
            usize::try_from(profile.memory.connections).unwrap_or(usize::MAX) / workers.max(1);
        let mut built = Vec::new();
        let mut worker_handles = Vec::new();
        let clock = Clock::new();
        let all_links = WorkerLinks::for_workers(workers, clock);
        let ha = all_links
            .first()
            .map(|l| Arc::clone(&l.ha))
            .ok_or_else(|| BootError::Mismatch("no worker".into()))?;
        // A unit of a pair starts passive: its workers never answer for a
        // virtual address before the election says so.
        ha.set_live(config.ha.is_none());
        let probe_targets = config
            .ha
            .as_ref()
            .map(|h| h.election.probe.clone())
            .unwrap_or_default();
        for ((w, &core), links) in profile.cores.workers.iter().enumerate().zip(all_links) {
            let queue =
                u16::try_from(w).map_err(|_| BootError::Mismatch("too many workers".into()))?;
            let mut wports = Vec::new();
            for (name, port) in &ports {
                let missing = || {
                    BootError::Mismatch(format!("port {name} has no queue {queue} for worker {w}"))
                };
                wports.push(WorkerPort {
                    rx: port.rx_queue(queue).ok_or_else(missing)?,
                    tx: port.tx_queue(queue).ok_or_else(missing)?,
                });
            }
            let spec = WorkerSpec {
                index: w,
                router: &config.router,
                interfaces: ifaces.clone(),
                firewall: rules.as_ref().map(|rules| FirewallSpec {
                    rules: Arc::clone(rules),
                    capacity: per_shard,
                    seed: boot_seed(),
                    epoch,
                    sync_min_age: config.ha.as_ref().map_or(0, |h| h.sync.min_age_s),
                    timeouts: config.timeouts,
                }),
                idle,
                probe_targets: probe_targets.clone(),
            };
            let (worker, h) = workers::build(spec, wports, pool.clone(), Arc::clone(&stop), links)
                .map_err(|e| BootError::Mismatch(e.to_string()))?;
            built.push((core, worker));
            worker_handles.push(h);
        }
        let mut handles = Vec::new();
        for (core, worker) in built {
            match lcore::launch(LcoreId(core), move || worker.run()) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Workers already polling stop before their ports and pool go.
                    stop.store(true, Ordering::Relaxed);
                    for h in handles {
                        h.wait();
                    }
                    return Err(dpdk(format!("launch worker on lcore {core}"))(e));
                }
            }
        }
        Ok(Self {
            workers: handles,
            shared: UnitHandle(Arc::new(Shared {
                workers: worker_handles,
                clock,
                ha,
                ports,
                interfaces: crate::rules::interface_names(config),
            })),
            pool,
            eal,
            _runtime: runtime,
        })
    }

    /// The packet pool (the HA ports take their buffers from it too).
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// What the control plane may share while the unit runs.
    pub fn handle(&self) -> &UnitHandle {
        &self.shared
    }

    /// Waits for the workers (after `stop` was set), stops and closes the
    /// ports, cleans up the EAL and removes its runtime directory. Every
    /// [`UnitHandle`] must be gone. Returns the final counters.
    pub fn shutdown(self) -> Result<Vec<(String, u64)>, BootError> {
        let Unit {
            workers,
            shared,
            pool,
            eal,
            _runtime: runtime,
        } = self;
        for h in workers {
            let status = h.wait();
            if status != 0 {
                return Err(BootError::Mismatch(format!(
                    "a worker exited with status {status}"
                )));
            }
        }
        for (name, port) in &shared.0.ports {
            port.stop().map_err(dpdk(format!("stop port {name}")))?;
        }
        let counters = shared.counters();
        let Ok(shared) = Arc::try_unwrap(shared.0) else {
            return Err(BootError::Mismatch(
                "a unit handle outlived the control plane".into(),
            ));
        };
        for (name, port) in shared.ports {
            port.close().map_err(dpdk(format!("close port {name}")))?;
        }
        drop(pool);
        eal.cleanup().map_err(dpdk("EAL cleanup"))?;
        drop(runtime);
        Ok(counters)
    }
}

impl UnitHandle {
    /// Puts new rules in force on every worker; connections are kept.
    pub fn set_rules(&self, rules: &Arc<RuleSet>) {
        for w in &self.0.workers {
            w.inbox.rules.force_push(Arc::clone(rules));
        }
    }

    /// Puts the shared part of a configuration in force on every worker,
    /// without a restart; connections are kept. A worker refuses one whose
    /// ports or own addresses are not the running ones (`config_refused`).
    pub fn set_config(&self, config: &Arc<LiveConfig>) {
        for w in &self.0.workers {
            w.inbox.config.force_push(Arc::clone(config));
        }
    }

    /// The data interface names in index order (as rules and connection
    /// listings number them).
    pub fn interface_names(&self) -> &[String] {
        &self.0.interfaces
    }

    /// The workers' state-change event queues (consumer ends), in worker order.
    pub fn event_queues(&self) -> Vec<EventQueue> {
        self.0.workers.iter().map(|w| w.events.clone()).collect()
    }

    /// The workers' inbound queues (producer ends), in worker order.
    pub fn inbound_queues(&self) -> Vec<InboundQueue> {
        self.0.workers.iter().map(|w| w.inbound.clone()).collect()
    }

    /// Whether DPDK says data interface `interface`'s link is up.
    pub fn link_up(&self, interface: usize) -> bool {
        let Some(name) = self.0.interfaces.get(interface) else {
            return false;
        };
        self.0
            .ports
            .iter()
            .find(|(p, _)| p == name)
            .is_some_and(|(_, port)| port.link_up())
    }

    /// The workers' role, gratuitous ARP and data-probe signals.
    pub fn ha_signals(&self) -> Arc<HaSignals> {
        Arc::clone(&self.0.ha)
    }

    /// The unit's clock (the workers' origin).
    pub fn clock(&self) -> Clock {
        self.0.clock
    }

    /// Asks every worker for the connections matching `filter`, at most
    /// `limit` each, without waiting for the answers.
    pub fn list_connections(&self, filter: &ConnFilter, limit: usize) -> Listing {
        Listing::ask(self.0.workers.iter().map(|w| &*w.inbox), filter, limit)
    }

    /// Every counter as `name value`, workers first, then the ports' own.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        for (w, h) in self.0.workers.iter().enumerate() {
            all.extend(
                h.counters
                    .snapshot()
                    .into_iter()
                    .map(|(n, v)| (format!("worker{w}.{n}"), v)),
            );
        }
        for (name, port) in &self.0.ports {
            if let Ok(s) = port.stats() {
                for (n, v) in [
                    ("ipackets", s.ipackets),
                    ("opackets", s.opackets),
                    ("imissed", s.imissed),
                    ("ierrors", s.ierrors),
                    ("oerrors", s.oerrors),
                    ("rx_nombuf", s.rx_nombuf),
                ] {
                    all.push((format!("port.{name}.{n}"), v));
                }
            }
        }
        all
    }
}
