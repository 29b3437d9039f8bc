//! EAL (Environment Abstraction Layer) life cycle: init once, clean up last, hotplug vdevs.
//!
//! # Pitfalls
//! - `rte_eal_init` works **once per process**: a second call fails with `EALREADY`, also
//!   after `rte_eal_cleanup()`. Tests therefore either run one process per test or share one
//!   EAL per test binary (e.g. a `OnceLock<Eal>`), each test hot-plugging its own vdevs.
//! - After init, the calling thread **and every thread it spawns later** are pinned to the
//!   main lcore's CPU (EAL sets the thread's affinity, children inherit it). Spawn
//!   control-plane threads before init, or set their affinity (`mgmt::thread` does).
//! - Without hugepages use `--no-huge --no-shconf -m <MB> --no-pci -l 0-1 --file-prefix=<unique>`;
//!   `--in-memory` does not work without hugepages here.
//! - EAL leaves its runtime directory (`/var/run/dpdk/<file-prefix>/`, empty with
//!   `--no-shconf`) behind, also after cleanup: use a stable prefix per unit, or remove it.
//!
//! # Ownership
//! Every object that lives in DPDK memory ([`Mempool`](crate::Mempool), [`Port`](crate::Port),
//! [`Ring`](crate::Ring)) holds a reference to the EAL, so `rte_eal_cleanup` runs only after
//! the last of them is gone — never while a pointer into DPDK memory is still reachable.

use std::ffi::{CString, OsString};
use std::os::raw::{c_char, c_int};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::error::{errno, DpdkError, ToResult};
use crate::{lcore, port, raw};

/// What the process-wide EAL is doing.
enum State {
    Uninit,
    Running(Weak<EalInner>),
    /// Cleaned up (or cleanup skipped): DPDK cannot be used again in this process.
    Finished,
}

static STATE: Mutex<State> = Mutex::new(State::Uninit);

/// Serialises DPDK control-path calls (configure, queue setup, start/stop/close, pool and
/// ring create/free, hotplug): DPDK documents most of them as not thread-safe.
static CONTROL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A panic while holding the lock leaves no DPDK state half-written that the guard
    // protects (the C call either happened or not), so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Take before any non-thread-safe DPDK control call.
pub(crate) fn control_lock() -> MutexGuard<'static, ()> {
    lock(&CONTROL)
}

/// Keeps the EAL alive; `rte_eal_cleanup` runs when the last one is dropped.
#[derive(Debug)]
pub(crate) struct EalInner {
    _private: (),
}

/// A counted reference to the running EAL, held by every DPDK-memory object.
pub(crate) type EalRef = Arc<EalInner>;

/// A reference to the running EAL, or an error if it is not (or no longer) initialised.
pub(crate) fn eal_ref(context: &str) -> Result<EalRef, DpdkError> {
    let state = lock(&STATE);
    match &*state {
        State::Running(weak) => weak.upgrade().ok_or_else(|| not_running(context)),
        State::Uninit | State::Finished => Err(not_running(context)),
    }
}

fn not_running(context: &str) -> DpdkError {
    DpdkError::invalid(
        errno::ENODEV,
        context,
        "the EAL is not initialised (call Eal::init first) or was cleaned up",
    )
}

/// True between a successful [`Eal::init`] and the EAL's cleanup.
pub fn is_running() -> bool {
    matches!(&*lock(&STATE), State::Running(w) if w.strong_count() > 0)
}

impl Drop for EalInner {
    fn drop(&mut self) {
        if let Err(e) = cleanup_now() {
            log::warn!("dpdk-sys: {e}");
        }
    }
}

fn cleanup_now() -> Result<(), DpdkError> {
    *lock(&STATE) = State::Finished;
    if let Some(id) = lcore::current() {
        if id != lcore::main() {
            // rte_eal_mp_wait_lcore would wait for this very lcore to finish: deadlock.
            return Err(DpdkError::invalid(
                errno::EPERM,
                "rte_eal_cleanup",
                format!("last EAL reference dropped on worker lcore {}; cleanup skipped (the process must exit)", id.0),
            ));
        }
    }
    // SAFETY: waits (spinning) until every worker lcore is back in WAIT state, so no
    // launched closure still touches DPDK memory when it is released below.
    unsafe { raw::rte_eal_mp_wait_lcore() };
    let _g = control_lock();
    // SAFETY: this is the last EalRef: every Mempool/Port/Ring (all hold one) is gone, so
    // no Rust object points into DPDK memory any more; STATE is Finished, so none can be
    // created. rte_eal_cleanup itself refuses a second run.
    unsafe { raw::rte_eal_cleanup() }.to_result(|| "rte_eal_cleanup")?;
    Ok(())
}

/// The initialised EAL. Dropping it (or [`Eal::cleanup`]) releases DPDK once every
/// mempool, port and ring is gone too.
///
/// `Send + Sync`, so it can sit in a `static OnceLock<Eal>` (a static is never dropped:
/// the EAL then lives until the process exits, which is fine).
pub struct Eal {
    inner: Option<EalRef>,
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal")
            .field("running", &self.inner.is_some())
            .finish()
    }
}

impl Eal {
    /// Initialises DPDK with `args` (EAL options only, without a program name: `argv[0]` is
    /// added here). Returns `EALREADY` if DPDK was initialised before in this process.
    ///
    /// Pins the calling thread (and threads it spawns later) to the main lcore's CPU.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut state = lock(&STATE);
        if !matches!(*state, State::Uninit) {
            return Err(DpdkError::invalid(
                errno::EALREADY,
                "rte_eal_init",
                "DPDK can be initialised only once per process (also after cleanup)",
            ));
        }
        let prog = std::env::args_os()
            .next()
            .unwrap_or_else(|| OsString::from("tandem"));
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(
            CString::new(prog.to_string_lossy().into_owned())
                .unwrap_or_else(|_| c"tandem".to_owned()),
        );
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| {
                DpdkError::invalid(
                    errno::EINVAL,
                    "rte_eal_init",
                    format!("argument {a:?} contains a NUL byte"),
                )
            })?);
        }
        // EAL may permute argv and keep pointers into it for the life of the process, so
        // the strings and the array are leaked on purpose (once per process, a few bytes).
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = c_int::try_from(argv.len() - 1)
            .map_err(|_| DpdkError::invalid(errno::EINVAL, "rte_eal_init", "too many arguments"))?;
        let _g = control_lock();
        // SAFETY: argv holds argc valid NUL-terminated strings plus a NULL terminator, all
        // leaked ('static) so EAL may keep them; STATE is locked, so no other thread races
        // this (rte_eal_init is not thread-safe).
        let ret = unsafe { raw::rte_eal_init(argc, argv.as_mut_ptr()) };
        ret.to_result(|| {
            format!(
                "rte_eal_init({})",
                args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
            )
        })?;
        let inner = Arc::new(EalInner { _private: () });
        *state = State::Running(Arc::downgrade(&inner));
        Ok(Eal { inner: Some(inner) })
    }

    /// Releases DPDK now. Fails with `EBUSY` (and leaves cleanup to whichever object goes
    /// last) if mempools, ports or rings are still alive.
    ///
    /// Waits for every worker lcore to finish its launched closure first. Must not be
    /// called from a worker lcore.
    pub fn cleanup(mut self) -> Result<(), DpdkError> {
        let inner = self
            .inner
            .take()
            .expect("Eal holds its reference until cleanup");
        match Arc::try_unwrap(inner) {
            Ok(inner) => {
                std::mem::forget(inner); // its Drop would run cleanup_now a second time
                cleanup_now()
            }
            Err(shared) => {
                let others = Arc::strong_count(&shared) - 1;
                drop(shared);
                Err(DpdkError::invalid(
                    errno::EBUSY,
                    "rte_eal_cleanup",
                    format!("{others} mempool/port/ring object(s) still alive; cleanup deferred until the last is dropped"),
                ))
            }
        }
    }

    /// The DPDK version string of the library in use, e.g. `DPDK 22.11.11`.
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static NUL-terminated string; it needs
        // no initialisation.
        let p = unsafe { raw::rte_version() };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-null static C string.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    }
}

fn cstring(s: &str, context: &str) -> Result<CString, DpdkError> {
    CString::new(s).map_err(|_| {
        DpdkError::invalid(errno::EINVAL, context, format!("{s:?} contains a NUL byte"))
    })
}

/// Creates a device at run time, e.g. `hotplug_add("vdev", "net_null7", "")` or
/// `hotplug_add("vdev", "net_af_packet0", "iface=veth0")`; its port is then found with
/// [`PortId::by_name`](crate::PortId::by_name) under the same name.
///
/// `net_tap` and `net_af_packet` act in the *calling thread's* network namespace.
pub fn hotplug_add(bus: &str, name: &str, args: &str) -> Result<(), DpdkError> {
    let ctx = || format!("rte_eal_hotplug_add({bus}, {name}, {args:?})");
    let _eal = eal_ref(&ctx())?;
    let (b, n, a) = (
        cstring(bus, &ctx())?,
        cstring(name, &ctx())?,
        cstring(args, &ctx())?,
    );
    let _g = control_lock();
    // SAFETY: three valid C strings that outlive the call; EAL is running (we hold a ref)
    // and control calls are serialised.
    unsafe { raw::rte_eal_hotplug_add(b.as_ptr(), n.as_ptr(), a.as_ptr()) }.to_result(ctx)?;
    Ok(())
}

/// Removes a device added by [`hotplug_add`]. Fails with `EBUSY` while a
/// [`Port`](crate::Port) configured on it is alive (drop or close it first), because
/// removing a device under a live port would leave its queues dangling.
pub fn hotplug_remove(bus: &str, name: &str) -> Result<(), DpdkError> {
    let ctx = || format!("rte_eal_hotplug_remove({bus}, {name})");
    let _eal = eal_ref(&ctx())?;
    let (b, n) = (cstring(bus, &ctx())?, cstring(name, &ctx())?);
    let _g = control_lock();
    if let Ok(id) = port::PortId::by_name(name) {
        if port::is_live(id) {
            return Err(DpdkError::invalid(
                errno::EBUSY,
                ctx(),
                format!("port {} is still open", id.0),
            ));
        }
    }
    // SAFETY: valid C strings; EAL running; control calls serialised; no live Port uses
    // the device (checked above under the same lock that Port::configure takes).
    unsafe { raw::rte_eal_hotplug_remove(b.as_ptr(), n.as_ptr()) }.to_result(ctx)?;
    Ok(())
}
