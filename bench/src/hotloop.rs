//! The measured loops.
//!
//! [`run_worker`] calls `workers::Worker::poll_once` — the body of
//! `Worker::run`, the very function the unit runs — until a number of packets or a
//! deadline, instead of until a stop flag, so the bench can pause the core between
//! epochs (to put the frames' TTL back) and keep the worker with its connection table.
//! What it adds around each poll is one TSC read for the latency histogram.
//!
//! [`run_io`] is the floor: rx burst → tx burst on the other port, no packet touched
//! (what `dpdk-testpmd --forward-mode=io` does).

use dpdk_sys::lcore::tsc;
use dpdk_sys::Burst;
use hdrhistogram::Histogram;
use workers::{Worker, WorkerPort};

pub use workers::Clock;

/// When a measured loop returns.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    /// After at least this many packets were received.
    pub packets: u64,
    /// Or once the clock passes this (ns of the loop's [`Clock`]).
    pub deadline_ns: u64,
}

/// `Worker::poll_once` until `stop`; returns the packets received. With `latency`,
/// each poll that received packets records its duration in TSC cycles once per
/// packet: the time from the first rx burst of the poll to the end of its last tx
/// burst, which bounds the time any of those packets spent in the worker.
pub fn run_worker(
    worker: &mut Worker,
    clock: &Clock,
    stop: Stop,
    mut latency: Option<&mut Histogram<u64>>,
) -> u64 {
    let mut processed = 0u64;
    loop {
        let now = clock.now_ns();
        let t0 = tsc();
        let n = worker.poll_once(now) as u64;
        if n > 0 {
            if let Some(h) = latency.as_deref_mut() {
                let _ = h.record_n(tsc().saturating_sub(t0), n);
            }
        }
        processed += n;
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
