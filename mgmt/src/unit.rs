//! Booting one unit: EAL, the packet pool, the data ports, one worker per
//! worker lcore; and taking it down again in the right order.
//!
//! Order matters for DPDK: workers stop polling before their ports stop,
//! ports close before the pool goes, and the EAL is cleaned up last.

use crate::config::UnitConfig;
use dataplane::conntrack::event::{Event, EventQueue};
use dataplane::control::{ConnFilter, ConnInfo, ConnQuery, WorkerInbox};
use dataplane::counters::WorkerCounters;
use dataplane::filter::RuleSet;
use dataplane::forward::router::Interface;
use dataplane::wire::EthernetAddress;
use dpdk_sys::{
    lcore, DpdkError, Eal, LaunchHandle, LcoreId, Mempool, Port, PortConfig, PortId, RssConfig,
    SocketId,
};
use hw_profiles::{Idle, Profile};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workers::{FirewallSpec, IdlePolicy, WorkerLinks, WorkerPort, WorkerSpec};

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

/// A running unit.
pub struct Unit {
    workers: Vec<LaunchHandle>,
    counters: Vec<Arc<WorkerCounters>>,
    inboxes: Vec<Arc<WorkerInbox>>,
    events: Vec<EventQueue>,
    ports: Vec<(String, Port)>,
    pool: Mempool,
    eal: Option<Eal>,
    file_prefix: String,
    /// The rules last put in force (`None`: routing without filtering).
    rules: Mutex<Option<Arc<RuleSet>>>,
    /// Data interface names in index order, for listings.
    interfaces: Vec<String>,
}

impl Unit {
    /// Boots the unit described by `profile` and `config`; workers poll until
    /// `stop` is set. With `rules`, forwarded traffic is filtered statefully;
    /// without, the unit is a plain router.
    pub fn boot(
        profile: &Profile,
        config: &UnitConfig,
        rules: Option<Arc<RuleSet>>,
        file_prefix: &str,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, BootError> {
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
        let mut handles = Vec::new();
        let mut counters = Vec::new();
        let mut inboxes = Vec::new();
        let mut events = Vec::new();
        let all_links = WorkerLinks::for_workers(workers);
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
                    timeouts: config.timeouts,
                }),
                idle,
            };
            let (worker, h) = workers::build(spec, wports, pool.clone(), Arc::clone(&stop), links)
                .map_err(|e| BootError::Mismatch(e.to_string()))?;
            let handle = lcore::launch(LcoreId(core), move || worker.run())
                .map_err(dpdk(format!("launch worker on lcore {core}")))?;
            handles.push(handle);
            counters.push(h.counters);
            inboxes.push(h.inbox);
            events.push(h.events);
        }
        Ok(Self {
            workers: handles,
            counters,
            inboxes,
            events,
            ports,
            pool,
            eal: Some(eal),
            file_prefix: file_prefix.to_string(),
            rules: Mutex::new(rules),
            interfaces: crate::rules::interface_names(config),
        })
    }

    /// Puts new rules in force on every worker; connections are kept.
    pub fn set_rules(&self, rules: &Arc<RuleSet>) {
        for inbox in &self.inboxes {
            inbox.rules.force_push(Arc::clone(rules));
        }
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(rules));
    }

    /// The rules last put in force (at boot or by [`Unit::set_rules`]);
    /// `None` when the unit routes without filtering.
    pub fn rules(&self) -> Option<Arc<RuleSet>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The data interface names in index order (as rules and connection
    /// listings number them).
    pub fn interface_names(&self) -> &[String] {
        &self.interfaces
    }

    /// Takes the state-change events the workers queued. Until syncd runs
    /// they have no consumer but this, and a standalone unit discards them.
    pub fn drain_events(&self, mut each: impl FnMut(usize, Event)) -> usize {
        let mut n = 0;
        for (w, q) in self.events.iter().enumerate() {
            while let Some(e) = q.pop() {
                each(w, e);
                n += 1;
            }
        }
        n
    }

    /// Lists connections matching `filter`, at most `limit` per worker,
    /// waiting at most `wait` for the workers to answer.
    pub fn connections(&self, filter: &ConnFilter, limit: usize, wait: Duration) -> Vec<ConnInfo> {
        let (tx, rx) = crossbeam::channel::unbounded();
        let mut asked = 0;
        for inbox in &self.inboxes {
            let q = ConnQuery {
                filter: filter.clone(),
                limit,
                reply: tx.clone(),
            };
            if inbox.queries.push(q).is_ok() {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while asked > 0 {
            match rx.recv_deadline(deadline) {
                Ok(Some(info)) => out.push(info),
                Ok(None) => asked -= 1,
                Err(_) => break,
            }
        }
        out
    }

    /// Every counter as `name value`, workers first, then the ports' own.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        for (w, c) in self.counters.iter().enumerate() {
            all.extend(
                c.snapshot()
                    .into_iter()
                    .map(|(n, v)| (format!("worker{w}.{n}"), v)),
            );
        }
        for (name, port) in &self.ports {
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

    /// Waits for the workers (after `stop` was set), stops and closes the
    /// ports, and cleans up the EAL. Returns the final counters.
    pub fn shutdown(mut self) -> Result<Vec<(String, u64)>, BootError> {
        for h in self.workers.drain(..) {
            let status = h.wait();
            if status != 0 {
                return Err(BootError::Mismatch(format!(
                    "a worker exited with status {status}"
                )));
            }
        }
        for (name, port) in &self.ports {
            port.stop().map_err(dpdk(format!("stop port {name}")))?;
        }
        let counters = self.counters();
        for (name, port) in self.ports.drain(..) {
            port.close().map_err(dpdk(format!("close port {name}")))?;
        }
        if let Some(eal) = self.eal.take() {
            drop(self.pool);
            eal.cleanup().map_err(dpdk("EAL cleanup"))?;
        }
        // EAL leaves its runtime directory behind even with --no-shconf.
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.file_prefix));
        Ok(counters)
    }
}
