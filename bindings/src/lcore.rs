//! Logical cores: who am I, which workers exist, run a closure on one, and the TSC clock.
//!
//! An lcore is an EAL thread pinned to one CPU. The thread that called
//! [`Eal::init`](crate::Eal::init) is the main lcore; the others ("workers") sit idle
//! until something is launched on them with [`launch`]. Threads spawned later (even by
//! the main lcore) are *not* lcores: [`current`] is `None` there and mempools use no
//! per-lcore cache, but they inherit the main lcore's CPU pinning.

use std::os::raw::{c_int, c_void};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use crate::eal::eal_ref;
use crate::error::{errno, DpdkError, ToResult};
use crate::raw;

/// An EAL logical core id (`rte_lcore_id()`), as given with `-l`/`--lcores`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

impl LcoreId {
    /// The NUMA socket this lcore's CPU sits on.
    pub fn socket(self) -> SocketId {
        // SAFETY: reads EAL's static lcore table; any id is accepted (out of range gives 0).
        let s = unsafe { raw::rte_lcore_to_socket_id(self.0) };
        SocketId(i32::try_from(s).unwrap_or(SocketId::ANY.0))
    }
}

impl std::fmt::Display for LcoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lcore {}", self.0)
    }
}

/// A NUMA socket id; [`SocketId::ANY`] lets DPDK choose (what vdevs report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub i32);

impl SocketId {
    /// `SOCKET_ID_ANY`.
    pub const ANY: SocketId = SocketId(-1);

    /// The socket of the calling lcore (`ANY` on non-EAL threads).
    pub fn current() -> SocketId {
        // SAFETY: reads a thread-local; valid on any thread.
        let s = unsafe { raw::rte_socket_id() };
        i32::try_from(s).map_or(SocketId::ANY, SocketId)
    }

    /// As DPDK's `unsigned` socket parameters take it (`ANY` becomes `u32::MAX`).
    pub(crate) fn as_c_uint(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

/// The lcore the calling thread is, or `None` for a non-EAL thread (any thread not
/// created by EAL and not the one that called init).
pub fn current() -> Option<LcoreId> {
    // SAFETY: reads a thread-local; valid on any thread, before or after init.
    let id = unsafe { raw::tandem_shim_lcore_id() };
    (id < raw::RTE_MAX_LCORE).then_some(LcoreId(id))
}

/// The main lcore (the one that ran `rte_eal_init`).
pub fn main() -> LcoreId {
    // SAFETY: reads EAL's static configuration; no precondition.
    LcoreId(unsafe { raw::rte_get_main_lcore() })
}

/// Number of enabled lcores, main included.
pub fn count() -> u32 {
    // SAFETY: reads EAL's static configuration; no precondition.
    unsafe { raw::rte_lcore_count() }
}

/// The enabled worker lcores (every lcore but the main one), ascending.
pub fn workers() -> impl Iterator<Item = LcoreId> {
    // rte_get_next_lcore(-1, ...) is how RTE_LCORE_FOREACH_WORKER starts.
    let mut prev = u32::MAX;
    std::iter::from_fn(move || {
        // SAFETY: reads EAL's static lcore table; `prev` is either u32::MAX (start) or an
        // id it returned; skip_main=1, wrap=0 ends with RTE_MAX_LCORE.
        let next = unsafe { raw::rte_get_next_lcore(prev, 1, 0) };
        (next < raw::RTE_MAX_LCORE).then(|| {
            prev = next;
            LcoreId(next)
        })
    })
}

/// What [`wait`] returns for a closure that panicked (the panic message went to stderr).
pub const PANICKED: i32 = i32::MIN;

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Runs on the worker lcore: unpacks and runs the closure.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Box<Job>` leaked by `launch` for this one call; DPDK passes it
    // exactly once, so ownership comes back here exactly once.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // Unwinding out of an `extern "C"` fn aborts the process; catch it and report instead.
    std::panic::catch_unwind(AssertUnwindSafe(job)).unwrap_or(PANICKED)
}

/// Serialises launches: `rte_eal_remote_launch` checks the worker's state and then sets
/// its function without a lock, so two launchers racing for one worker would collide.
static LAUNCH: Mutex<()> = Mutex::new(());

/// Runs `f` on worker lcore `lcore`; its return value is read with [`LaunchHandle::wait`].
///
/// Errors: `EINVAL` if `lcore` is not an enabled worker (the main lcore is never one),
/// `EBUSY` if it is still running something. DPDK documents launching "from the main lcore
/// only"; in 22.11 it is a state check plus a pipe message, safe from any thread once the
/// launches are serialised, which this function does.
pub fn launch<F>(lcore: LcoreId, f: F) -> Result<LaunchHandle, DpdkError>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let ctx = || format!("rte_eal_remote_launch({lcore})");
    let _eal = eal_ref(&ctx())?;
    if lcore == main() || !is_enabled(lcore) {
        return Err(DpdkError::invalid(
            errno::EINVAL,
            ctx(),
            "not an enabled worker lcore",
        ));
    }
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job);
    let _g = LAUNCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: `trampoline` matches lcore_function_t; `arg` is a valid leaked Box<Job> the
    // trampoline takes back; the closure is Send + 'static so running it on another thread
    // at any later time is sound. `lcore` is an enabled worker (checked above).
    let ret =
        unsafe { raw::rte_eal_remote_launch(Some(trampoline), arg.cast::<c_void>(), lcore.0) };
    if let Err(e) = ret.to_result(ctx) {
        // SAFETY: the launch failed, so DPDK never passed `arg` on: we still own it.
        drop(unsafe { Box::from_raw(arg) });
        return Err(e);
    }
    Ok(LaunchHandle { lcore })
}

/// A closure running on a worker lcore. Dropping the handle detaches it (the lcore stays
/// busy until the closure returns; [`wait`] still works).
#[derive(Debug)]
#[must_use = "dropping the handle detaches the closure; call wait() for its result"]
pub struct LaunchHandle {
    lcore: LcoreId,
}

impl LaunchHandle {
    /// The lcore it runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// True while the closure has not returned yet.
    pub fn is_running(&self) -> bool {
        // SAFETY: reads the worker's state atomically; the id is an enabled worker.
        unsafe { raw::rte_eal_get_lcore_state(self.lcore.0) != raw::rte_lcore_state_t_WAIT }
    }

    /// Blocks (spinning) until the closure returns; its return value, or [`PANICKED`].
    pub fn wait(self) -> i32 {
        wait(self.lcore)
    }
}

fn is_enabled(lcore: LcoreId) -> bool {
    // SAFETY: reads EAL's static lcore table; out-of-range ids return 0.
    lcore.0 < raw::RTE_MAX_LCORE && unsafe { raw::rte_lcore_is_enabled(lcore.0) } != 0
}

/// Waits (spinning) until worker `lcore` is idle and returns the last launched closure's
/// return value (0 if nothing ran; [`PANICKED`] if it panicked).
pub fn wait(lcore: LcoreId) -> i32 {
    if lcore == main() || !is_enabled(lcore) {
        return 0;
    }
    // SAFETY: `lcore` is an enabled worker; rte_eal_wait_lcore only spins on its state and
    // reads its result.
    unsafe { raw::rte_eal_wait_lcore(lcore.0) }
}

/// Waits until every worker lcore is idle.
pub fn wait_all() {
    if !matches!(current(), Some(c) if c != main()) {
        // SAFETY: spins on each worker's state; we are not a worker (it would wait for
        // itself), which the condition above guarantees.
        unsafe { raw::rte_eal_mp_wait_lcore() };
    }
}

/// The CPU time-stamp counter (cycles since reset); cheap enough for the fast path.
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the cycle counter; no precondition.
        unsafe { raw::tandem_shim_rdtsc() }
    }
}

/// TSC ticks per second, as EAL measured it at init (0 before init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; no precondition.
    unsafe { raw::rte_get_tsc_hz() }
}

/// A spin-wait hint (x86 `PAUSE`, what `rte_pause` does), for idle polling loops.
#[inline]
pub fn pause() {
    std::hint::spin_loop();
}
