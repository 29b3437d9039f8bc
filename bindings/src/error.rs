//! The control-plane error type: an errno, DPDK's text for it, and what we were doing.
//!
//! Fast-path calls (bursts, mbuf edits) never build a `DpdkError`: they return counts,
//! `Option` or `bool`, because allocating a message per packet is what you must not do.

use std::ffi::CStr;
use std::os::raw::c_int;

use crate::raw;

/// The libc errno values this crate reports itself (Linux numbering, as DPDK uses).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory (name lookups).
    pub const ENOENT: i32 = 2;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// No such device.
    pub const ENODEV: i32 = 19;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// No space left.
    pub const ENOSPC: i32 = 28;
    /// Operation not supported.
    pub const ENOTSUP: i32 = 95;
    /// Operation already in progress (EAL initialised twice).
    pub const EALREADY: i32 = 114;
}

/// A failed DPDK call: `{context}: {message} (errno {errno})`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {message} (errno {errno})")]
pub struct DpdkError {
    /// Positive errno (libc values, or DPDK's own from `RTE_MIN_ERRNO` = 1000 upwards).
    pub errno: i32,
    /// `rte_strerror(errno)`, or our own explanation when DPDK gave no errno.
    pub message: String,
    /// What was being attempted, e.g. `rte_eth_dev_configure(port 0)`.
    pub context: String,
}

impl DpdkError {
    /// An error for `errno` with DPDK's text for it.
    pub fn from_errno(errno: i32, context: impl Into<String>) -> Self {
        Self {
            errno,
            message: strerror(errno),
            context: context.into(),
        }
    }

    /// An error for the current thread's `rte_errno` (set by calls that return -1 or NULL).
    pub fn last(context: impl Into<String>) -> Self {
        Self::from_errno(last_errno(), context)
    }

    /// An error found by this crate's own checks (no DPDK call failed), with our message.
    pub fn invalid(errno: i32, context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
            context: context.into(),
        }
    }
}

/// The calling thread's `rte_errno` (a C thread-local, hence the shim).
pub fn last_errno() -> i32 {
    // SAFETY: reads a thread-local int; valid on any thread, EAL initialised or not.
    unsafe { raw::tandem_shim_errno() }
}

/// DPDK's text for `errno` (covers both libc errnos and DPDK's `E_RTE_*`).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a NUL-terminated string
    // that is either static or in a per-thread buffer; we copy it out before returning.
    let ptr = unsafe { raw::rte_strerror(errno) };
    if ptr.is_null() {
        return format!("unknown error {errno}");
    }
    // SAFETY: non-null, NUL-terminated, valid until the next rte_strerror on this thread.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Turns DPDK's C return conventions into `Result`.
///
/// - `c_int`: `>= 0` is success (the value is returned); `-1` means "see `rte_errno`";
///   any other negative value is `-errno` (ethdev style).
/// - raw pointers: NULL means "see `rte_errno`".
pub trait ToResult {
    /// The success value.
    type Ok;
    /// `Ok` or a `DpdkError` whose context is built lazily (only on failure).
    fn to_result<C: Into<String>>(self, context: impl FnOnce() -> C)
        -> Result<Self::Ok, DpdkError>;
}

impl ToResult for c_int {
    type Ok = c_int;
    fn to_result<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<c_int, DpdkError> {
        match self {
            r if r >= 0 => Ok(r),
            -1 => {
                // Some calls return -1 and set rte_errno, some return -EPERM (= -1). Prefer
                // rte_errno when it says something.
                let e = last_errno();
                Err(DpdkError::from_errno(if e > 0 { e } else { 1 }, context()))
            }
            r => Err(DpdkError::from_errno(-r, context())),
        }
    }
}

impl<T> ToResult for *mut T {
    type Ok = std::ptr::NonNull<T>;
    fn to_result<C: Into<String>>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<Self::Ok, DpdkError> {
        std::ptr::NonNull::new(self).ok_or_else(|| DpdkError::last(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_errno_is_error_with_text() {
        let e = (-22 as c_int).to_result(|| "op").unwrap_err();
        assert_eq!(e.errno, 22);
        assert_eq!(e.context, "op");
        assert!(e.message.contains("nvalid"), "{}", e.message);
        assert_eq!(e.to_string(), format!("op: {} (errno 22)", e.message));
    }

    #[test]
    fn non_negative_is_ok() {
        assert_eq!((0 as c_int).to_result(|| "op"), Ok(0));
        assert_eq!((7 as c_int).to_result(|| "op"), Ok(7));
    }

    #[test]
    fn null_is_error() {
        let p: *mut u8 = std::ptr::null_mut();
        assert!(p.to_result(|| "alloc").is_err());
    }

    #[test]
    fn dpdk_errnos_have_text() {
        // E_RTE_NO_CONFIG = RTE_MIN_ERRNO + 2 is DPDK's own; rte_strerror knows it.
        assert!(
            strerror(1002).to_lowercase().contains("config"),
            "{}",
            strerror(1002)
        );
    }
}
