//! Memory advice for large tables that live outside DPDK's own memory.
//!
//! A connection table of a million entries is over 100 MB of randomly
//! accessed memory. On 4 KiB pages nearly every lookup also misses the TLB,
//! and in a virtual machine a TLB miss is a two-dimensional page walk. Asking
//! for transparent huge pages before the memory is first touched lets the
//! kernel back it with 2 MiB pages instead.

use std::ffi::c_void;

const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Asks the kernel to back the whole allocation of `v` (its capacity, not
/// just its length) with transparent huge pages. Call it right after
/// `Vec::with_capacity` and before filling the vector: pages touched before
/// the advice stay small. Returns whether the advice was taken; it is only
/// advice (`/sys/kernel/mm/transparent_hugepage/enabled` may be `never`).
pub fn advise_huge_pages<T>(v: &Vec<T>) -> bool {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    let start = v.as_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end <= first {
        return false;
    }
    // SAFETY: [first, end) lies inside the vector's allocation, which is
    // live for the duration of the call; MADV_HUGEPAGE only changes how the
    // kernel backs those pages and never their contents or validity.
    unsafe { libc::madvise(first as *mut c_void, end - first, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_vectors_are_left_alone_and_large_ones_advised() {
        let small: Vec<u64> = Vec::with_capacity(16);
        assert!(!advise_huge_pages(&small));
        let large: Vec<u64> = Vec::with_capacity(4 * HUGE_PAGE / 8);
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !thp.contains("[never]") && !thp.is_empty() {
            assert!(advise_huge_pages(&large));
        }
    }
}
