//! The main lcore's loop: the thread EAL started on, once the unit is up.
//! It is where syncd and the election run in profiles without a sync core
//! (the lab's: the main lcore runs them between its other tasks), so its
//! latency is bounded, and the bound is this:
//!
//! * It never blocks. It does no file or socket I/O and takes no lock the
//!   control plane holds: the workers' event queues are lock-free, log lines
//!   (the HA event log too) go to a lossy queue, the health probes publish
//!   one atomic, and the control plane (supervisor, control socket, signals,
//!   log writer, health probes) has threads of its own.
//! * A round that finds nothing to do sleeps at most [`MAX_IDLE_SLEEP`]: a
//!   task that falls due meanwhile runs at most that late, plus the OS's
//!   wake-up latency (about 75 µs on average and up to ~5 ms now and then on
//!   the 2-CPU lab VM, see the DPDK notes).
//!
//! Its task: synchronisation with the partner and the election
//! ([`SyncTask`]), which drains the workers' state-change events. A unit without a partner has nobody to
//! tell, so its events are counted (`main.events_drained`) and dropped; the
//! queues never fill.

use crate::sync_task::SyncTask;
use dataplane::conntrack::event::EventQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use workers::Clock;

/// The longest sleep of an idle round.
pub const MAX_IDLE_SLEEP: Duration = Duration::from_millis(1);

/// The main lcore's tasks.
pub struct MainLoop {
    events: Vec<EventQueue>,
    drained: Arc<AtomicU64>,
    sync: Option<SyncTask>,
    clock: Clock,
}

impl MainLoop {
    /// A loop over the workers' event queues: `sync` takes them when the unit
    /// has a partner; `clock` is the unit's.
    pub fn new(events: Vec<EventQueue>, sync: Option<SyncTask>, clock: Clock) -> Self {
        Self {
            events,
            drained: Arc::default(),
            sync,
            clock,
        }
    }

    /// Ends the loop's tasks: the HA ports close (before the unit's pool and
    /// EAL go).
    pub fn close(self) {
        if let Some(s) = self.sync {
            s.close();
        }
    }

    /// Its counters, for the supervisor to report (`main.*`).
    pub fn counters(&self) -> impl Fn(&mut Vec<(String, u64)>) + Send + Clone + 'static {
        let drained = Arc::clone(&self.drained);
        move |out| {
            out.push((
                "main.events_drained".into(),
                drained.load(Ordering::Relaxed),
            ))
        }
    }

    /// Runs rounds until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if self.round() == 0 {
                std::thread::sleep(MAX_IDLE_SLEEP);
            }
        }
    }

    /// One round of every task; returns how much work it found.
    pub fn round(&mut self) -> usize {
        if let Some(sync) = self.sync.as_mut() {
            return sync.round(self.clock.now_ns());
        }
        let mut n = 0;
        for q in &self.events {
            while q.pop().is_some() {
                n += 1;
            }
        }
        self.drained.fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}
