//! The workers' clock: nanoseconds of the TSC, read without a system call.

use dpdk_sys::lcore;

/// Nanoseconds of the TSC since the worker started.
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
