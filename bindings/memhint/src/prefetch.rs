//! Software prefetch: start loading a cache line that will be read soon, so a
//! burst's cache misses overlap instead of being taken one after another
//! (what DPDK's `rte_prefetch0` does). A hint only: it never faults, changes
//! no value, and is a no-op where the CPU has no such instruction here.

/// Bytes per cache line on the CPUs DPDK supports here.
pub const CACHE_LINE: usize = 64;

/// Prefetches the line holding `addr` into all cache levels.
#[inline(always)]
fn line(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not dereference in the
    // architectural sense, cannot fault, and any address is allowed. SSE,
    // which provides it, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches every cache line `value` spans (its first three at most: enough
/// for a packet header or a table entry).
#[inline(always)]
pub fn read<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let len = std::mem::size_of_val(value);
    line(start);
    let first = start as usize / CACHE_LINE;
    let last = (start as usize + len.max(1) - 1) / CACHE_LINE;
    for l in 1..=(last - first).min(2) {
        line(start.wrapping_add(l * CACHE_LINE - start as usize % CACHE_LINE));
    }
}

/// Prefetches the line at `ptr`; for what the safe layer holds as raw pointers
/// (an mbuf's header).
#[inline(always)]
pub fn at<T>(ptr: *const T) {
    line(ptr.cast());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_value_and_span() {
        let v = vec![7u8; 300];
        read(&v[..]);
        read(&v[3..200]);
        read(&v[0..0]);
        read(&42u64);
        assert_eq!(v[299], 7, "a hint changes nothing");
    }
}
