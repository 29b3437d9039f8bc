//! The measured loops.
//!
//! [`run_unit`] is `dataplane::worker::Worker::run` for one worker, statement for
//! statement (`dataplane/src/worker.rs`), with one change: it returns after a number of
//! packets or at a deadline instead of at a stop flag, so the bench can pause the core
//! between epochs (to put the frames' TTL back) without losing the router and its
//! connection table, which `Worker::run` consumes. Per iteration it does what the real
//! loop does: a clock read, an rx burst on every port, `Router::handle` for every frame,
//! per-port tx bursts (`dataplane::worker::transmit`, the real one), the handoff and neighbour inboxes,
//! the neighbour/expiry timer every 10 ms with the control inbox and the counters'
//! publication. The bench also runs the real `Worker::run` (see
//! [`crate::established`]) to check that the copy costs what the original costs.
//!
//! [`run_io`] is the floor: rx burst → tx burst on the other port, no packet touched
//! (what `dpdk-testpmd --forward-mode=io` does).

use crate::unit::Unit;
use crossbeam::queue::ArrayQueue;
use dataplane::control::WorkerInbox;
use dataplane::forward::router::Learned;
use dataplane::forward::IfIndex;
use dataplane::worker::{transmit, WorkerPort, POLL_INTERVAL_NS};
use dpdk_sys::lcore::tsc;
use dpdk_sys::{Burst, Mbuf};
use hdrhistogram::Histogram;
use std::sync::Arc;

pub use dataplane::worker::Clock;

/// When a measured loop returns.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    /// After at least this many packets were received.
    pub packets: u64,
    /// Or once the clock passes this (ns of the loop's [`Clock`]).
    pub deadline_ns: u64,
    /// Record each burst's time in the loop into [`LoopState::latency`].
    pub latency: bool,
}

/// What `Worker::run` keeps across iterations (its locals and links).
pub struct LoopState {
    rx: Burst,
    out: Vec<(IfIndex, Mbuf)>,
    tx: Vec<Burst>,
    learned: Vec<Learned>,
    next_timer: u64,
    /// This worker's handoff inbox (`Handoff`): empty with one worker.
    handoff: ArrayQueue<(IfIndex, Mbuf)>,
    /// This worker's neighbour inbox (`NeighborMesh`).
    mesh: ArrayQueue<Learned>,
    /// Rules and listings from the control thread.
    inbox: WorkerInbox,
    /// TSC cycles from an rx burst's return to the end of the tx bursts that sent its
    /// frames, recorded once per packet of the burst (bench only: `Worker::run` has no
    /// such clock reads).
    pub latency: Histogram<u64>,
}

impl LoopState {
    /// For `ports` ports.
    pub fn new(ports: usize) -> Self {
        Self {
            rx: Burst::new(),
            out: Vec::with_capacity(4 * dpdk_sys::BURST_MAX),
            tx: (0..ports).map(|_| Burst::new()).collect(),
            learned: Vec::new(),
            next_timer: 0,
            handoff: ArrayQueue::new(4096),
            mesh: ArrayQueue::new(256),
            inbox: WorkerInbox::default(),
            latency: Histogram::new(3).expect("3 significant figures"),
        }
    }
}

/// `Worker::run`'s loop body until `stop`; returns the packets received.
pub fn run_unit(
    ports: &mut [WorkerPort],
    unit: &mut Unit,
    clock: &Clock,
    st: &mut LoopState,
    stop: Stop,
) -> u64 {
    let counters = Arc::clone(unit.router.counters());
    let router = &mut unit.router;
    let pool = &mut unit.pool;
    let mut processed = 0u64;
    loop {
        let now = clock.now_ns();
        let mut got = 0;
        for i in 0..ports.len() {
            let n = ports[i].rx.rx_burst(&mut st.rx);
            let t0 = if stop.latency && n > 0 { tsc() } else { 0 };
            got += n;
            for m in st.rx.drain() {
                counters.rx_packets.inc();
                counters.rx_bytes.add(m.len() as u64);
                // One worker: `Worker::run` skips the owner lookup (`workers > 1`).
                router.handle(i, m, now, pool, &mut st.out);
            }
            transmit(ports, &mut st.out, &mut st.tx, &counters);
            if t0 != 0 {
                let _ = st.latency.record_n(tsc().saturating_sub(t0), n as u64);
            }
        }
        while let Some((i, m)) = st.handoff.pop() {
            got += 1;
            router.handle(i, m, now, pool, &mut st.out);
        }
        while let Some(l) = st.mesh.pop() {
            router.learn_shared(l, now, &mut st.out);
        }
        router.take_learned(&mut st.learned);
        if !st.learned.is_empty() {
            // No other worker to tell.
            st.learned.clear();
        }
        if now >= st.next_timer {
            router.poll(now, pool, &mut st.out);
            st.next_timer = now + POLL_INTERVAL_NS;
            // Worker::control
            if let Some(fw) = router.firewall_mut() {
                if let Some(rules) = st.inbox.rules.pop() {
                    fw.set_rules(rules);
                }
                let _ = st.inbox.queries.pop();
                fw.publish(&counters);
            }
        }
        transmit(ports, &mut st.out, &mut st.tx, &counters);

        processed += got as u64;
        if processed >= stop.packets || now >= stop.deadline_ns {
            return processed;
        }
    }
}

/// rx burst → tx burst on the other port, nothing touched; returns the packets received.
pub fn run_io(ports: &mut [WorkerPort], clock: &Clock, rx: &mut Burst, stop: Stop) -> u64 {
    let mut processed = 0u64;
    let n_ports = ports.len();
    loop {
        let now = clock.now_ns();
        for i in 0..n_ports {
            let n = ports[i].rx.rx_burst(rx);
            if n > 0 {
                processed += n as u64;
                let peer = (i + 1) % n_ports;
                ports[peer].tx.tx_burst(rx);
                rx.clear();
            }
        }
        if processed >= stop.packets || now >= stop.deadline_ns {
            return processed;
        }
    }
}
