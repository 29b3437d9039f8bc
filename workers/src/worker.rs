//! The worker loop: one per worker lcore, polling its queue on every data port.
//!
//! Worker `w` owns rx and tx queue `w` of every data port outright (the
//! profile gives every data port one queue pair per worker), its router and
//! neighbour cache, and its counters. Per iteration it reads a burst from each
//! port, hands every frame to the router, and transmits what came out in
//! per-port bursts; what a tx queue does not take after a few tries is freed
//! and counted (`tx_full`). Neighbours one worker learns reach the others
//! through small lock-free queues, so each cache stays single-owner.
//!
//! Idle policy: busy-poll by default; `Adaptive` sleeps after a run of empty
//! polls, doubling the sleep up to a bound, and returns to polling at once
//! when a packet arrives — two lab units on a two-core machine would starve
//! each other otherwise.
//!
//! The unit's role ([`crate::ha`]): every worker follows live/passive at the
//! start of each poll; worker 0 alone also sends the gratuitous ARP the
//! control plane asks for, or a new shared configuration calls for (a round
//! per poll), and, while asked, the partner probe every [`PROBE_INTERVAL_NS`].

use crate::links::WorkerLinks;
use dataplane::control::{ActiveQuery, LiveConfig};
use dataplane::counters::{DropReason, WorkerCounters};
use dataplane::forward::router::Learned;
use dataplane::forward::{BufPool, IfIndex, Router};
use dpdk_sys::{lcore, Burst, Mbuf, Mempool, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Frames the router builds come from the same pool as received ones.
pub struct PoolAlloc(pub Mempool);

impl BufPool for PoolAlloc {
    type Buf = Mbuf;
    fn alloc(&mut self, len: usize) -> Option<Mbuf> {
        let mut m = self.0.alloc()?;
        m.append(len)?.fill(0);
        Some(m)
    }
}

/// What a worker does when a poll finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll again at once.
    BusyPoll,
    /// Sleep after [`SPIN_BEFORE_SLEEP`] empty polls, doubling up to this many µs.
    Adaptive {
        /// Longest sleep in microseconds.
        max_sleep_us: u32,
    },
}

/// Empty polls before an adaptive worker starts to sleep.
pub const SPIN_BEFORE_SLEEP: u32 = 256;
/// How often the neighbour timers run.
pub const POLL_INTERVAL_NS: u64 = 10_000_000;
/// How often worker 0 probes the partner on the data networks while the
/// control plane asks (`HaSignals::set_probing`): 5 ms. The election asks
/// only while the partner has been silent on every HA link for half the
/// dead interval (15 ms by default) and decides at the dead interval, so a
/// probe must have several chances to be answered in that half; 200
/// requests a second per partner address cost nothing, and only then.
pub const PROBE_INTERVAL_NS: u64 = 5_000_000;
/// Rounds of gratuitous ARP worker 0 sends, live, when a new shared
/// configuration moves a virtual IP or MAC: as many as a takeover's
/// (`mgmt::election_task::GARP_ROUNDS`), hosts and switches having to move
/// just as much.
pub const RECONFIGURE_GARP_ROUNDS: u32 = 5;
/// Attempts to hand a burst to a full tx queue before dropping the rest.
const TX_ATTEMPTS: usize = 4;
/// Items from the sync lcore a worker installs per poll: bounded, so a bulk
/// arriving never stalls forwarding.
pub const INBOUND_BUDGET: usize = 256;

/// One data port as a worker sees it: its own queue pair.
pub struct WorkerPort {
    /// Queue `w` of the port, for receiving.
    pub rx: RxQueue,
    /// Queue `w` of the port, for sending.
    pub tx: TxQueue,
}

/// Everything one worker lcore owns.
pub struct Worker {
    index: usize,
    ports: Vec<WorkerPort>,
    router: Router<Mbuf>,
    pool: PoolAlloc,
    idle: IdlePolicy,
    stop: Arc<AtomicBool>,
    links: WorkerLinks,
    counters: Arc<WorkerCounters>,
    /// Scratch kept across iterations, so a poll allocates nothing.
    rx: Burst,
    out: Vec<(IfIndex, Mbuf)>,
    tx: Vec<Burst>,
    learned: Vec<Learned>,
    next_timer: u64,
    query: Option<ActiveQuery>,
    /// Worker 0: rounds of gratuitous ARP taken and not yet sent.
    garp_rounds: u32,
    /// When worker 0 probes next (0: at once).
    next_probe: u64,
}

impl Worker {
    /// A worker; `ports[i]` is interface `i` of the router.
    pub fn new(
        index: usize,
        ports: Vec<WorkerPort>,
        router: Router<Mbuf>,
        pool: Mempool,
        idle: IdlePolicy,
        stop: Arc<AtomicBool>,
        links: WorkerLinks,
    ) -> Self {
        let tx = ports.iter().map(|_| Burst::new()).collect();
        let mut worker = Self {
            counters: Arc::clone(router.counters()),
            index,
            ports,
            router,
            pool: PoolAlloc(pool),
            idle,
            stop,
            links,
            rx: Burst::new(),
            out: Vec::with_capacity(4 * dpdk_sys::BURST_MAX),
            tx,
            learned: Vec::new(),
            next_timer: 0,
            query: None,
            garp_rounds: 0,
            next_probe: 0,
        };
        // The shard starts passive and the router live: both take the role
        // the unit has now.
        worker.follow_live(worker.links.ha.live());
        worker
    }

    /// Polls until `stop` is set. Returns 0 (the lcore's exit status).
    pub fn run(mut self) -> i32 {
        let clock = self.links.clock;
        let mut empty_polls = 0u32;
        let mut sleep_us = 1u32;
        while !self.stop.load(Ordering::Relaxed) {
            if self.poll_once(clock.now_ns()) > 0 {
                empty_polls = 0;
                sleep_us = 1;
                continue;
            }
            if let IdlePolicy::Adaptive { max_sleep_us } = self.idle {
                empty_polls = empty_polls.saturating_add(1);
                if empty_polls >= SPIN_BEFORE_SLEEP {
                    self.counters.idle_sleeps.inc();
                    std::thread::sleep(Duration::from_micros(u64::from(sleep_us)));
                    sleep_us = (sleep_us * 2).min(max_sleep_us.max(1));
                }
            }
        }
        0
    }

    /// One iteration of the loop at `now` (ns of the worker's [`Clock`]): the unit's
    /// role followed, a burst from every port through the router and out, the frames
    /// other workers handed over, the neighbours they learnt, every
    /// [`POLL_INTERVAL_NS`] the timers, the control inbox and the gauges, and on
    /// worker 0 the gratuitous ARP and the partner probe asked for. Returns the
    /// packets it received; the bench drives this same call.
    pub fn poll_once(&mut self, now: u64) -> usize {
        let live = self.links.ha.live();
        if live != self.router.live() {
            self.follow_live(live);
        }
        let workers = self.links.handoff.workers();
        let mut got = 0;
        for i in 0..self.ports.len() {
            got += self.ports[i].rx.rx_burst(&mut self.rx);
            self.prefetch_burst();
            for m in self.rx.drain() {
                self.counters.rx_packets.inc();
                self.counters.rx_bytes.add(m.len() as u64);
                if workers > 1 {
                    let owner = self.links.handoff.owner(m.data(), self.index);
                    if owner != self.index {
                        self.counters.handed_off.inc();
                        if self.links.handoff.send(owner, i, m).is_err() {
                            self.counters.record_drop(DropReason::HandoffFull);
                        }
                        continue;
                    }
                }
                self.router.handle(i, m, now, &mut self.pool, &mut self.out);
            }
            transmit(&mut self.ports, &mut self.out, &mut self.tx, &self.counters);
        }
        while let Some((i, m)) = self.links.handoff.take(self.index) {
            got += 1;
            self.router.handle(i, m, now, &mut self.pool, &mut self.out);
        }
        while let Some(l) = self.links.mesh.take(self.index) {
            self.router.learn_shared(l, now, &mut self.out);
        }
        self.router.take_learned(&mut self.learned);
        if !self.learned.is_empty() {
            self.links.mesh.tell_others(self.index, &self.learned);
            self.learned.clear();
        }
        if now >= self.next_timer {
            self.router.poll(now, &mut self.pool, &mut self.out);
            self.next_timer = now + POLL_INTERVAL_NS;
            self.control();
        }
        if let Some(fw) = self.router.firewall_mut() {
            let secs = u32::try_from(now / 1_000_000_000).unwrap_or(u32::MAX);
            let shard = fw.shard_mut();
            // Every poll, as the table asks: a bounded amount, nothing when
            // nothing is due this second (then it costs a comparison).
            shard.expire(secs);
            shard.receive_from(&self.links.inbound, INBOUND_BUDGET, secs);
            shard.service(secs);
        }
        if let Some(q) = self.query.as_mut() {
            if let Some(fw) = self.router.firewall() {
                let secs = u32::try_from(now / 1_000_000_000).unwrap_or(u32::MAX);
                if q.step(self.index, fw.shard().table(), secs) {
                    self.query = None;
                }
            }
        }
        if self.index == 0 {
            self.lead(now);
        }
        transmit(&mut self.ports, &mut self.out, &mut self.tx, &self.counters);
        got
    }

    /// Makes the router and the shard live or passive.
    fn follow_live(&mut self, live: bool) {
        self.router.set_live(live);
        if let Some(fw) = self.router.firewall_mut() {
            fw.shard_mut().go_live(live);
        }
        if !live {
            // A passive unit must not announce the virtual IPs.
            self.garp_rounds = 0;
        }
    }

    /// Worker 0's share of the role: the gratuitous ARP asked for, a round
    /// per poll, and the partner probe (see [`crate::ha`]).
    fn lead(&mut self, now: u64) {
        let asked = self.links.ha.take_garp_rounds();
        if asked > 0 {
            // Taken with acquire: the live set before the ask is seen now.
            let live = self.links.ha.live();
            if live != self.router.live() {
                self.follow_live(live);
            }
            if live {
                self.garp_rounds = self.garp_rounds.saturating_add(asked);
            }
        }
        if self.garp_rounds > 0 {
            self.garp_rounds -= 1;
            self.router.announce(&mut self.pool, &mut self.out);
        }
        if self.links.ha.probing() && self.router.probe_targets().next().is_some() {
            if now >= self.next_probe {
                self.next_probe = now.saturating_add(PROBE_INTERVAL_NS);
                self.router.probe(now, &mut self.pool, &mut self.out);
            }
        } else {
            // The first probe of the next asking goes at once.
            self.next_probe = 0;
        }
    }

    /// Starts the memory loads the received burst will need, one kind at a
    /// time, so that the cache misses of up to 64 packets overlap instead of
    /// being taken one after another: the mbuf headers, then the packet data
    /// (needs the headers), then the connection index slots (needs the data),
    /// then the connection entries (needs the slots).
    fn prefetch_burst(&self) {
        if self.rx.is_empty() {
            return;
        }
        for m in self.rx.iter() {
            m.prefetch_header();
        }
        for m in self.rx.iter() {
            m.prefetch_data();
        }
        let Some(fw) = self.router.firewall() else {
            return;
        };
        let mut hashes = [0u64; dpdk_sys::BURST_MAX];
        let mut n = 0;
        for m in self.rx.iter() {
            if let Some(h) = fw.prefetch_slot(m.data()) {
                hashes[n] = h;
                n += 1;
            }
        }
        for &h in &hashes[..n] {
            fw.prefetch_entry(h);
        }
    }

    /// The router, for setup and inspection between polls (the bench re-teaches
    /// neighbours between epochs).
    pub fn router_mut(&mut self) -> &mut Router<Mbuf> {
        &mut self.router
    }

    /// The router.
    pub fn router(&self) -> &Router<Mbuf> {
        &self.router
    }
}

impl Worker {
    /// Takes a new shared configuration, new rules and listing requests, and
    /// publishes the shard's gauges.
    fn control(&mut self) {
        if let Some(cfg) = self.links.inbox.config.pop() {
            self.reconfigure(&cfg);
        }
        let Some(fw) = self.router.firewall_mut() else {
            return;
        };
        // A reload waits until the last one's renumbering is done; a newer
        // reload meanwhile replaces it in the inbox.
        if fw.ready_for_rules() {
            if let Some(rules) = self.links.inbox.rules.pop() {
                // Ready, so taken.
                let _ = fw.set_rules(rules);
            }
        }
        if self.query.is_none() {
            self.query = self.links.inbox.queries.pop().map(ActiveQuery::new);
        }
        fw.publish(&self.counters);
    }

    /// Puts a shared configuration in force, whole or not at all: a refusal
    /// changes nothing and is only counted (a worker does not log).
    /// When a virtual IP or MAC moved, a live worker 0 announces them as on
    /// a takeover; the other workers take the configuration at their own
    /// next control round, within [`POLL_INTERVAL_NS`].
    fn reconfigure(&mut self, cfg: &LiveConfig) {
        let Ok(moved) = self.router.reconfigure(&cfg.router) else {
            self.counters.config_refused.inc();
            return;
        };
        if let Some(fw) = self.router.firewall_mut() {
            fw.set_timeouts(cfg.timeouts);
        }
        self.counters.config_applied.inc();
        if moved && self.index == 0 && self.router.live() {
            self.garp_rounds = self.garp_rounds.saturating_add(RECONFIGURE_GARP_ROUNDS);
        }
    }
}

/// Moves `out` into per-port bursts and sends them.
fn transmit(
    ports: &mut [WorkerPort],
    out: &mut Vec<(IfIndex, Mbuf)>,
    tx: &mut [Burst],
    counters: &WorkerCounters,
) {
    for (iface, m) in out.drain(..) {
        let Some(burst) = tx.get_mut(iface) else {
            continue;
        };
        if let Err(m) = burst.push(m) {
            send(&mut ports[iface].tx, burst, counters);
            if burst.push(m).is_err() {
                counters.record_drop(DropReason::TxFull);
            }
        }
    }
    for (port, burst) in ports.iter_mut().zip(tx.iter_mut()) {
        if !burst.is_empty() {
            send(&mut port.tx, burst, counters);
        }
    }
}

/// Sends a burst, retrying a full queue a few times; frees and counts the rest.
fn send(txq: &mut TxQueue, burst: &mut Burst, counters: &WorkerCounters) {
    for _ in 0..TX_ATTEMPTS {
        let bytes: usize = burst.iter().map(Mbuf::len).sum();
        let sent = txq.tx_burst(burst);
        let left: usize = burst.iter().map(Mbuf::len).sum();
        counters.tx_packets.add(sent as u64);
        counters.tx_bytes.add((bytes - left) as u64);
        if burst.is_empty() {
            return;
        }
        lcore::pause();
    }
    for _ in 0..burst.len() {
        counters.record_drop(DropReason::TxFull);
    }
    burst.clear();
}
