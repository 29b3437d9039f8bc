//! The unit's role as the workers follow it: a few atomics the control plane
//! writes and the workers read, one [`HaSignals`] shared by every worker
//! (`WorkerLinks::ha`). The control plane decides (the election); the
//! workers only follow, without a lock and without a queue that could be full.
//!
//! * **Live.** Every worker reads it at every poll (one relaxed load). On a
//!   change it makes its router live or passive (`Router::set_live`: the
//!   passive unit leaves forwarding and the virtual IPs and MACs to the
//!   active one) and lets its shard's larval entries go live at their first
//!   packet, or not (`Shard::go_live`). A unit without a partner stays live.
//! * **Gratuitous ARP.** [`HaSignals::announce`] asks for rounds of
//!   gratuitous ARP, one per virtual IP each (`Router::announce`). Worker 0
//!   takes what is pending and sends one round per poll; rounds asked while
//!   the unit is passive are dropped (a passive unit must not announce).
//! * **The partner probe.** While [`HaSignals::set_probing`] is on, worker 0
//!   sends an ICMP echo request to each of the partner's own addresses every
//!   [`PROBE_INTERVAL_NS`](crate::worker::PROBE_INTERVAL_NS) (the first at
//!   once); whichever worker receives an answer stamps its time, read with
//!   [`HaSignals::probe_seen_ns`].
//!
//! # Ordering on a takeover
//!
//! The control plane sets live ([`HaSignals::set_live`]) *before* it asks for
//! gratuitous ARP ([`HaSignals::announce`]). The first round goes out in
//! worker 0's next poll: worker 0 takes the rounds (acquire, pairing with
//! `announce`'s release) and, having taken some, reads live again, so it
//! has made its router live before it announces. The other workers follow
//! live at their own next poll; for those few microseconds a frame for the
//! virtual MAC that reaches one of them is still left to the partner.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// What the control plane tells the workers of the unit's role, and what
/// they tell it of the partner probe. Shared as `Arc<HaSignals>`.
#[derive(Debug)]
pub struct HaSignals {
    /// The unit forwards and owns the virtual addresses.
    live: AtomicBool,
    /// Rounds of gratuitous ARP asked for and not yet taken by worker 0.
    garp_rounds: AtomicU32,
    /// Worker 0 probes the partner on the data networks.
    probing: AtomicBool,
    /// When the partner last answered a probe, in ns of the unit's clock
    /// (0: never); every worker's router writes it.
    probe_seen_ns: Arc<AtomicU64>,
}

impl Default for HaSignals {
    /// Live, nothing asked, not probing.
    fn default() -> Self {
        Self {
            live: AtomicBool::new(true),
            garp_rounds: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            probe_seen_ns: Arc::default(),
        }
    }
}

impl HaSignals {
    /// Makes the workers live (active unit, or no partner) or passive; each
    /// follows at its next poll.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
    }

    /// Whether the workers are told to be live.
    #[inline]
    pub fn live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Asks for `rounds` more rounds of gratuitous ARP, added to what is
    /// pending. Call after [`HaSignals::set_live`]`(true)`.
    pub fn announce(&self, rounds: u32) {
        // Saturating: a control plane asking absurdly often gets many rounds,
        // never none.
        let _ = self
            .garp_rounds
            .fetch_update(Ordering::Release, Ordering::Relaxed, |r| {
                Some(r.saturating_add(rounds))
            });
    }

    /// Rounds of gratuitous ARP asked for and not yet taken by worker 0.
    pub fn garp_pending(&self) -> u32 {
        self.garp_rounds.load(Ordering::Relaxed)
    }

    /// Takes every pending round (worker 0). A relaxed load when none is:
    /// no locked instruction on the poll.
    #[inline]
    pub(crate) fn take_garp_rounds(&self) -> u32 {
        if self.garp_rounds.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.garp_rounds.swap(0, Ordering::Acquire)
    }

    /// Starts or stops the partner probe.
    pub fn set_probing(&self, on: bool) {
        self.probing.store(on, Ordering::Relaxed);
    }

    /// Whether worker 0 is told to probe.
    #[inline]
    pub fn probing(&self) -> bool {
        self.probing.load(Ordering::Relaxed)
    }

    /// When the partner last answered a probe, in ns of the unit's clock
    /// (`WorkerLinks::clock`); `None` if it never has.
    pub fn probe_seen_ns(&self) -> Option<u64> {
        match self.probe_seen_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// The cell the routers stamp (`Router::set_probe_seen`).
    pub(crate) fn probe_seen_cell(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.probe_seen_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_starts_live_without_anything_asked() {
        let ha = HaSignals::default();
        assert!(ha.live());
        assert!(!ha.probing());
        assert_eq!(ha.take_garp_rounds(), 0);
        assert_eq!(ha.probe_seen_ns(), None);
        ha.set_live(false);
        assert!(!ha.live());
    }

    #[test]
    fn rounds_asked_add_up_until_taken() {
        let ha = HaSignals::default();
        ha.announce(3);
        ha.announce(2);
        assert_eq!(ha.garp_pending(), 5);
        assert_eq!(ha.take_garp_rounds(), 5);
        assert_eq!(ha.take_garp_rounds(), 0);
        ha.announce(u32::MAX);
        ha.announce(1);
        assert_eq!(ha.take_garp_rounds(), u32::MAX, "saturates");
    }

    #[test]
    fn the_probe_stamp_is_read_through_the_shared_cell() {
        let ha = HaSignals::default();
        ha.set_probing(true);
        assert!(ha.probing());
        ha.probe_seen_cell().store(42, Ordering::Relaxed);
        assert_eq!(ha.probe_seen_ns(), Some(42));
    }
}
