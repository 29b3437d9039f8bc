//! The unit's clock: nanoseconds of the TSC, read without a system call. One
//! origin for the whole unit (every worker and the main lcore copy the same
//! `Clock`), so the seconds the workers stamp entries with and the seconds
//! the sync lcore compares them to are the same seconds.

use dpdk_sys::lcore;

/// Nanoseconds of the TSC since the unit's clock started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: u64,
    hz: u128,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// Starts now.
    pub fn new() -> Self {
        Self {
            start: lcore::tsc(),
            hz: u128::from(lcore::tsc_hz().max(1)),
        }
    }

    /// Nanoseconds since [`Clock::new`].
    #[inline]
    pub fn now_ns(&self) -> u64 {
        let ticks = u128::from(lcore::tsc().wrapping_sub(self.start));
        u64::try_from(ticks * 1_000_000_000 / self.hz).unwrap_or(u64::MAX)
    }
}
