//! One way to build a worker, for `tandemd` and the bench alike: the router
//! over the unit's interfaces, the firewall with its shard and event queue
//! when the unit filters, and the handles the control plane keeps. Anything
//! a worker gains (a sync inbox, say) is added here once, so the bench always
//! measures the worker a unit runs.

use crate::links::WorkerLinks;
use crate::worker::{IdlePolicy, Worker, WorkerPort};
use dataplane::conntrack::conn::Timeouts;
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::conntrack::shard::Shard;
use dataplane::control::WorkerInbox;
use dataplane::counters::WorkerCounters;
use dataplane::filter::RuleSet;
use dataplane::firewall::Firewall;
use dataplane::forward::router::Interface;
use dataplane::forward::{Router, RouterConfig};
use dpdk_sys::Mempool;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// State-change events a worker may queue before the sync lcore takes them.
pub const EVENT_QUEUE_LEN: usize = 16_384;

/// The stateful filter of a worker.
#[derive(Debug, Clone)]
pub struct FirewallSpec {
    /// The rules in force at start.
    pub rules: Arc<RuleSet>,
    /// Connections this worker's shard holds; all its memory is taken at build.
    pub capacity: usize,
    /// Key of the shard's hash: fresh and secret per boot in a unit, so crafted
    /// 5-tuples cannot collide on purpose (fixed in the bench, for repeatable runs).
    pub seed: u64,
    /// Connection timeouts, in seconds.
    pub timeouts: Timeouts,
    /// This unit's boot epoch: names the shard's entries between the units
    /// (`conntrack::record::SyncId`).
    pub epoch: u64,
    /// Seconds a connection lives before it is synchronised (0: at once).
    pub sync_min_age: u32,
}

/// What a worker is, apart from its ports and links.
#[derive(Debug, Clone)]
pub struct WorkerSpec<'a> {
    /// Its index: the queue it polls on every data port, and its shard.
    pub index: usize,
    /// Interfaces and routes.
    pub router: &'a RouterConfig,
    /// The interfaces with their ports' facts (MAC, MTU), in port order.
    pub interfaces: Vec<Interface>,
    /// The filter; `None` routes without filtering.
    pub firewall: Option<FirewallSpec>,
    /// What it does when a poll finds nothing.
    pub idle: IdlePolicy,
    /// The partner's own addresses on the data networks (empty: none): worker
    /// 0 probes them while the control plane asks (`HaSignals::set_probing`),
    /// and every worker recognises their answers. See `Router::probe`.
    pub probe_targets: Vec<Ipv4Addr>,
}

/// What the control plane keeps of a worker once the worker runs on its lcore.
#[derive(Clone)]
pub struct WorkerHandles {
    /// Its counters (written by the worker only).
    pub counters: Arc<WorkerCounters>,
    /// Rules and listings for it.
    pub inbox: Arc<WorkerInbox>,
    /// Its shard's state-change events (the consumer end).
    pub events: EventQueue,
    /// Records from the partner for its shard (the producer end).
    pub inbound: InboundQueue,
}

/// Why a worker cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A static route whose gateway is on none of the interfaces' subnets.
    #[error("route {0}: gateway on no subnet")]
    BadRoute(usize),
    /// A worker index past 255 (entries' names hold it in 8 bits).
    #[error("worker {0}: at most 256 workers")]
    TooManyWorkers(usize),
}

/// Builds the worker `spec` describes on `ports` (queue `spec.index` of each
/// data port, in interface order), its frames from `pool`, polling until
/// `stop`, sharing `links` with the other workers.
pub fn build(
    spec: WorkerSpec<'_>,
    ports: Vec<WorkerPort>,
    pool: Mempool,
    stop: Arc<AtomicBool>,
    links: WorkerLinks,
) -> Result<(Worker, WorkerHandles), BuildError> {
    let counters = Arc::new(WorkerCounters::default());
    let mut router = Router::new(spec.router, spec.interfaces, Arc::clone(&counters))
        .map_err(BuildError::BadRoute)?;
    router.set_probe_targets(spec.probe_targets);
    router.set_probe_seen(links.ha.probe_seen_cell());
    let events = EventQueue::new(EVENT_QUEUE_LEN);
    if let Some(fw) = spec.firewall {
        let mut shard = Shard::new(fw.capacity, fw.seed, fw.timeouts, events.clone());
        let worker =
            u8::try_from(spec.index).map_err(|_| BuildError::TooManyWorkers(spec.index))?;
        shard.set_identity(fw.epoch, worker);
        shard.set_min_age(fw.sync_min_age);
        router.set_firewall(Firewall::new(shard, fw.rules));
    }
    let handles = WorkerHandles {
        counters,
        inbox: Arc::clone(&links.inbox),
        events,
        inbound: links.inbound.clone(),
    };
    let worker = Worker::new(spec.index, ports, router, pool, spec.idle, stop, links);
    Ok((worker, handles))
}
