//! What a scenario measured.

use crate::cpu::Interval;
use crate::frames::Size;
use dataplane::counters::WorkerCounters;
use hdrhistogram::Histogram;

/// One measured interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epoch {
    /// Packets received in it.
    pub packets: u64,
    /// Its time.
    pub interval: Interval,
}

impl Epoch {
    /// On-CPU cycles per packet.
    pub fn cycles_per_packet(&self) -> f64 {
        self.interval.on_cpu_cycles() as f64 / self.packets.max(1) as f64
    }
}

/// Packets through one core over some intervals (epochs).
#[derive(Debug, Clone)]
pub struct Figure {
    /// What ran (`route + firewall`, ...).
    pub scenario: String,
    /// Which loop was measured.
    pub measured_loop: &'static str,
    /// Established flows the frames belong to (one frame each in the ring).
    pub flows: u64,
    /// The measured intervals.
    pub epochs: Vec<Epoch>,
    /// The correctness checks: `Err` says what did not add up.
    pub check: Result<(), String>,
    /// Instructions per cycle of the worker thread (`perf stat`), one per measurement.
    pub ipc: Vec<f64>,
    /// Frame size.
    pub size: Size,
    /// TSC cycles each packet spent in the loop, rx burst return to its tx burst
    /// (bench loop only).
    pub latency: Option<Histogram<u64>>,
}

impl Figure {
    /// All epochs together.
    pub fn total(&self) -> Epoch {
        self.epochs.iter().fold(Epoch::default(), |a, e| Epoch {
            packets: a.packets + e.packets,
            interval: a.interval.add(e.interval),
        })
    }

    /// Cycles per packet of each epoch long enough to count (at least a tenth of the
    /// longest), ascending.
    fn per_epoch(&self) -> Vec<f64> {
        let longest = self.epochs.iter().map(|e| e.packets).max().unwrap_or(0);
        let mut v: Vec<f64> = self
            .epochs
            .iter()
            .filter(|e| e.packets * 10 >= longest && e.packets > 0)
            .map(Epoch::cycles_per_packet)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// On-CPU cycles per packet: the median epoch (robust against a noisy neighbour).
    pub fn cycles_per_packet(&self) -> f64 {
        let v = self.per_epoch();
        match v.len() {
            0 => self.total().cycles_per_packet(),
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The best (least disturbed) epoch's cycles per packet.
    pub fn best_cycles_per_packet(&self) -> f64 {
        self.per_epoch()
            .first()
            .copied()
            .unwrap_or_else(|| self.total().cycles_per_packet())
    }

    /// The worst epoch's cycles per packet.
    pub fn worst_cycles_per_packet(&self) -> f64 {
        self.per_epoch()
            .last()
            .copied()
            .unwrap_or_else(|| self.total().cycles_per_packet())
    }

    /// Million packets per second of on-CPU time, at the median epoch's cost.
    pub fn mpps(&self, hz: u64) -> f64 {
        hz as f64 / self.cycles_per_packet().max(1e-9) / 1e6
    }

    /// Seconds of wall time measured.
    pub fn seconds(&self, hz: u64) -> f64 {
        self.total().interval.wall_cycles as f64 / hz as f64
    }

    /// Mean IPC over the measurements, if any.
    pub fn mean_ipc(&self) -> Option<f64> {
        (!self.ipc.is_empty()).then(|| self.ipc.iter().sum::<f64>() / self.ipc.len() as f64)
    }

    /// Latency quantiles in ns (p50, p99, p99.9, max), if recorded.
    pub fn latency_ns(&self, hz: u64) -> Option<[f64; 4]> {
        let h = self.latency.as_ref().filter(|h| !h.is_empty())?;
        let ns = |c: u64| c as f64 * 1e9 / hz as f64;
        Some([
            ns(h.value_at_quantile(0.5)),
            ns(h.value_at_quantile(0.99)),
            ns(h.value_at_quantile(0.999)),
            ns(h.max()),
        ])
    }

    /// On-CPU share of the measured wall time.
    pub fn share(&self) -> f64 {
        self.total().interval.share()
    }

    /// Adds a later round's measurement of the same scenario: epochs, IPC and latency
    /// pooled, the first failed check kept.
    pub fn merge(&mut self, other: Figure) {
        self.epochs.extend(other.epochs);
        if self.check.is_ok() {
            self.check = other.check;
        }
        self.ipc.extend(other.ipc);
        if let (Some(a), Some(b)) = (self.latency.as_mut(), other.latency.as_ref()) {
            let _ = a.add(b);
        }
    }
}

/// Several workers at once, each on its own core with the flows RSS gives it.
#[derive(Debug, Clone)]
pub struct Scaling {
    /// The workers' CPUs, in worker order.
    pub cpus: Vec<u32>,
    /// Established flows over all workers.
    pub flows: u64,
    /// One figure per worker (its flows, its epochs).
    pub per_worker: Vec<Figure>,
}

impl Scaling {
    /// Workers.
    pub fn workers(&self) -> usize {
        self.per_worker.len()
    }

    /// What the cores can do together: the sum of each worker's on-CPU rate
    /// (median epoch).
    pub fn mpps(&self, hz: u64) -> f64 {
        self.per_worker.iter().map(|f| f.mpps(hz)).sum()
    }

    /// What they did: each worker's packets over its measured wall time, summed
    /// (they ran at the same time). Below [`Scaling::mpps`] when something else took
    /// the CPUs meanwhile.
    pub fn wall_mpps(&self, hz: u64) -> f64 {
        self.per_worker
            .iter()
            .map(|f| f.total().packets as f64 / f.seconds(hz).max(1e-12) / 1e6)
            .sum()
    }

    /// Cycles per packet of each worker (median epoch).
    pub fn cycles_per_packet(&self) -> Vec<f64> {
        self.per_worker
            .iter()
            .map(Figure::cycles_per_packet)
            .collect()
    }

    /// Each worker's on-CPU share of the wall time.
    pub fn shares(&self) -> Vec<f64> {
        self.per_worker.iter().map(Figure::share).collect()
    }

    /// The first failed check of any worker.
    pub fn check(&self) -> Result<(), String> {
        for (w, f) in self.per_worker.iter().enumerate() {
            if let Err(e) = &f.check {
                return Err(format!("worker {w}: {e}"));
            }
        }
        Ok(())
    }

    /// Adds a later round's epochs, worker by worker.
    pub fn merge(&mut self, other: Scaling) {
        for (a, b) in self.per_worker.iter_mut().zip(other.per_worker) {
            a.merge(b);
        }
    }
}

/// The new-connection run.
#[derive(Debug, Clone)]
pub struct NewConns {
    /// SYNs sent, each a new flow.
    pub conns: u64,
    /// The measured interval.
    pub interval: Interval,
    /// Correctness checks.
    pub check: Result<(), String>,
    /// Events offered to the sync queue, and refused because it was full.
    pub events: (u64, u64),
    /// Connection table bytes and capacity.
    pub table: (usize, usize),
}

impl NewConns {
    /// Connections per second of on-CPU time.
    pub fn per_second(&self, hz: u64) -> f64 {
        let secs = self.interval.on_cpu_cycles() as f64 / hz as f64;
        self.conns as f64 / secs.max(1e-12)
    }

    /// On-CPU cycles per new connection.
    pub fn cycles_per_conn(&self) -> f64 {
        self.interval.on_cpu_cycles() as f64 / self.conns.max(1) as f64
    }
}

/// The counters a check compares, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `rx_packets`.
    pub rx: u64,
    /// `tx_packets`.
    pub tx: u64,
    /// `forwarded`.
    pub forwarded: u64,
    /// `accepted_state`.
    pub accepted_state: u64,
    /// `accepted_new`.
    pub accepted_new: u64,
    /// Every drop reason together.
    pub dropped: u64,
    /// `handed_off` (to the worker that owns the flow).
    pub handed_off: u64,
}

impl Counts {
    /// Reads them now.
    pub fn of(c: &WorkerCounters) -> Self {
        Self {
            rx: c.rx_packets.get(),
            tx: c.tx_packets.get(),
            forwarded: c.forwarded.get(),
            accepted_state: c.accepted_state.get(),
            accepted_new: c.accepted_new.get(),
            dropped: c.dropped_total(),
            handed_off: c.handed_off.get(),
        }
    }

    /// `self - base`, field by field.
    pub fn since(&self, base: &Counts) -> Counts {
        Counts {
            rx: self.rx - base.rx,
            tx: self.tx - base.tx,
            forwarded: self.forwarded - base.forwarded,
            accepted_state: self.accepted_state - base.accepted_state,
            accepted_new: self.accepted_new - base.accepted_new,
            dropped: self.dropped - base.dropped,
            handed_off: self.handed_off - base.handed_off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that received `packets` per epoch of `wall` cycles, `pre` of them
    /// preempted.
    fn worker(epochs: &[(u64, u64, u64)]) -> Figure {
        Figure {
            scenario: "s".into(),
            measured_loop: "l",
            flows: 10,
            epochs: epochs
                .iter()
                .map(|&(packets, wall, pre)| Epoch {
                    packets,
                    interval: Interval {
                        wall_cycles: wall,
                        preempted_cycles: pre,
                    },
                })
                .collect(),
            check: Ok(()),
            ipc: Vec::new(),
            size: Size::Bytes(64),
            latency: None,
        }
    }

    #[test]
    fn scaling_adds_on_cpu_rates_and_wall_rates() {
        let hz = 1_000_000_000;
        // Worker 0: 500 cycles/packet on-CPU, never preempted. Worker 1: 1000 on-CPU
        // cycles/packet, preempted half the time.
        let s = Scaling {
            cpus: vec![1, 0],
            flows: 20,
            per_worker: vec![
                worker(&[(2_000_000, 1_000_000_000, 0)]),
                worker(&[(1_000_000, 2_000_000_000, 1_000_000_000)]),
            ],
        };
        assert_eq!(s.workers(), 2);
        assert_eq!(s.cycles_per_packet(), vec![500.0, 1000.0]);
        assert!((s.mpps(hz) - 3.0).abs() < 1e-9, "2 + 1 Mpps on-CPU");
        assert!(
            (s.wall_mpps(hz) - 2.5).abs() < 1e-9,
            "2 + 0.5 Mpps of wall time"
        );
        assert_eq!(s.shares(), vec![1.0, 0.5]);
        assert!(s.check().is_ok());
    }

    #[test]
    fn a_failed_worker_fails_the_row_and_rounds_pool() {
        let mut bad = worker(&[(10, 1000, 0)]);
        bad.check = Err("3 dropped".into());
        let mut s = Scaling {
            cpus: vec![1, 0],
            flows: 20,
            per_worker: vec![worker(&[(10, 1000, 0)]), bad],
        };
        assert_eq!(s.check().unwrap_err(), "worker 1: 3 dropped");
        let again = s.clone();
        s.merge(again);
        assert_eq!(s.per_worker[0].epochs.len(), 2);
    }
}
