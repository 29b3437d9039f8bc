//! How much of a wall-clock interval a thread really spent on its CPU.
//!
//! The machine the bench runs on may be shared (other builds on the same two cores). A
//! busy-polling worker that gets preempted still sees its TSC advance, so cycles/packet
//! from the TSC alone would charge the packets for someone else's compile. The kernel's
//! per-thread `schedstat` (`/proc/<pid>/task/<tid>/schedstat`: on-CPU ns, run-queue wait
//! ns, timeslices) says how long the thread was runnable but not running; a polling loop
//! never blocks, so
//!
//! ```text
//! on-CPU cycles = TSC delta − run-queue wait delta × TSC Hz
//! ```
//!
//! The wait is accounted when the thread gets its CPU back (`sched_info_arrive`), so a
//! sample taken *by* the running thread, or after it stopped, is exact; the on-CPU
//! field itself is only updated at ticks and is not used for that reason. What this
//! cannot remove: cache lines the other tasks evicted meanwhile, and hypervisor steal.

use std::fs;

/// One reading of a thread's clock: TSC plus the kernel's run-queue wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// TSC when read.
    pub tsc: u64,
    /// Nanoseconds the thread had waited on a run queue so far.
    pub wait_ns: u64,
    /// Timeslices the thread had been given so far.
    pub slices: u64,
}

/// Where a thread's schedstat lives.
#[derive(Debug, Clone)]
pub struct ThreadStat {
    path: String,
}

impl ThreadStat {
    /// The calling thread (`/proc/thread-self`, resolved to its fixed path so that the
    /// handle can also be read by another thread).
    pub fn current() -> Self {
        let path = match fs::read_link("/proc/thread-self") {
            Ok(p) => format!("/proc/{}/schedstat", p.display()),
            Err(_) => "/proc/thread-self/schedstat".to_string(),
        };
        Self { path }
    }

    /// Thread `tid` of process `pid`.
    pub fn of(pid: u32, tid: u32) -> Self {
        Self {
            path: format!("/proc/{pid}/task/{tid}/schedstat"),
        }
    }

    /// The calling thread's id (from `/proc/thread-self`), 0 if unknown.
    pub fn current_tid() -> u32 {
        fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse().ok())
            .unwrap_or(0)
    }

    /// Reads the thread's counters, the TSC last: take it just before the interval.
    pub fn start(&self) -> Sample {
        let (wait_ns, slices) = self.read();
        Sample {
            tsc: dpdk_sys::lcore::tsc(),
            wait_ns,
            slices,
        }
    }

    /// Reads the TSC, then the thread's counters: take it just after the interval.
    pub fn end(&self) -> Sample {
        let tsc = dpdk_sys::lcore::tsc();
        let (wait_ns, slices) = self.read();
        Sample {
            tsc,
            wait_ns,
            slices,
        }
    }

    /// (run-queue wait ns, timeslices); zeros if the kernel has no schedstat.
    fn read(&self) -> (u64, u64) {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        let mut f = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let _on_cpu = f.next();
        (f.next().unwrap_or(0), f.next().unwrap_or(0))
    }

    /// Run-queue wait so far in ns (for intervals timed with another clock).
    pub fn wait_ns(&self) -> u64 {
        self.read().0
    }
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Interval {
    /// TSC cycles of wall time.
    pub wall_cycles: u64,
    /// Of which the thread was runnable but not running (preempted).
    pub preempted_cycles: u64,
}

impl Interval {
    /// From `a` to `b`, with the TSC at `hz`.
    pub fn between(a: Sample, b: Sample, hz: u64) -> Self {
        let wall = b.tsc.saturating_sub(a.tsc);
        let wait_ns = b.wait_ns.saturating_sub(a.wait_ns);
        let pre = u128::from(wait_ns) * u128::from(hz) / 1_000_000_000;
        let pre = u64::try_from(pre).unwrap_or(u64::MAX).min(wall);
        Self {
            wall_cycles: wall,
            preempted_cycles: pre,
        }
    }

    /// Cycles the thread actually ran.
    pub fn on_cpu_cycles(&self) -> u64 {
        self.wall_cycles - self.preempted_cycles
    }

    /// Sum of two intervals.
    pub fn add(self, o: Interval) -> Interval {
        Interval {
            wall_cycles: self.wall_cycles + o.wall_cycles,
            preempted_cycles: self.preempted_cycles + o.preempted_cycles,
        }
    }

    /// On-CPU share of the wall time, 0..=1.
    pub fn share(&self) -> f64 {
        if self.wall_cycles == 0 {
            return 1.0;
        }
        self.on_cpu_cycles() as f64 / self.wall_cycles as f64
    }
}

/// TSC cycles in `seconds` (negative or NaN: 0; saturating).
pub fn cycles(seconds: f64, hz: u64) -> u64 {
    let c = (seconds * hz as f64).max(0.0);
    // Saturating float-to-int conversion is the intent.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let c = c as u64;
    c
}
