//! Rings of mbufs, and ethdev ports made of rings (for benchmarks and tests).
//!
//! Two ways to get a ring-backed port:
//! - `--vdev=net_ring0` on the EAL command line (or `hotplug_add("vdev", "net_ringN", "")`):
//!   the driver makes its own rings, one per queue pair, and **tx queue i feeds rx queue
//!   i** of the same port: a loopback. Up to 16 queues.
//! - [`eth_from_rings`]: a port whose rx queues read from, and tx queues write to, rings
//!   you created, e.g. to inject traffic from a generator lcore with [`Ring::enqueue_burst`].
//!
//! A benchmark over rings must touch packet data: passing a handful of mbuf pointers
//! around reaches 1000+ Mpps, a meaningless figure.

use std::ffi::CString;
use std::os::raw::{c_uint, c_void};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use crate::burst::Burst;
use crate::eal::{control_lock, eal_ref, EalRef};
use crate::error::{errno, DpdkError, ToResult};
use crate::lcore::SocketId;
use crate::port::PortId;
use crate::raw;

/// A multi-producer / multi-consumer ring of mbufs (`rte_ring`). Cheap to clone (shared).
///
/// `Send + Sync`: created without `RING_F_SP_ENQ`/`RING_F_SC_DEQ`, so any thread may
/// enqueue and dequeue concurrently. Dropping the last handle frees the mbufs still inside,
/// then the ring.
#[derive(Clone)]
pub struct Ring {
    inner: Arc<RingInner>,
}

struct RingInner {
    ptr: NonNull<raw::rte_ring>,
    name: String,
    _eal: EalRef,
}

// SAFETY: an MP/MC rte_ring: every operation through `&RingInner` is DPDK-thread-safe, and
// it only ever holds owned mbufs (Send).
unsafe impl Send for RingInner {}
// SAFETY: as above.
unsafe impl Sync for RingInner {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.inner.name)
            .field("count", &self.count())
            .finish()
    }
}

impl Ring {
    /// Creates a ring holding up to `capacity` mbufs (any count: `RING_F_EXACT_SZ`).
    /// Names are global per process.
    pub fn new(name: &str, capacity: u32, socket: SocketId) -> Result<Ring, DpdkError> {
        let ctx = || format!("rte_ring_create({name}, {capacity})");
        let eal = eal_ref(&ctx())?;
        let c = CString::new(name)
            .map_err(|_| DpdkError::invalid(errno::EINVAL, ctx(), "name contains a NUL byte"))?;
        let _g = control_lock();
        // SAFETY: valid C string; EAL running; control calls serialised. Flags: MP/MC
        // (the default) with an exact size.
        let ptr =
            unsafe { raw::rte_ring_create(c.as_ptr(), capacity, socket.0, raw::RING_F_EXACT_SZ) }
                .to_result(ctx)?;
        Ok(Ring {
            inner: Arc::new(RingInner {
                ptr,
                name: name.to_owned(),
                _eal: eal,
            }),
        })
    }

    /// Moves packets from the front of `burst` into the ring; returns how many fit (the
    /// rest stay in `burst`).
    #[inline]
    pub fn enqueue_burst(&self, burst: &mut Burst) -> usize {
        let pkts = burst.front_slots();
        let count = c_uint::try_from(pkts.len()).unwrap_or(c_uint::MAX);
        // SAFETY: the ring is alive (we hold it) and MP-safe; `pkts` holds `count` owned
        // mbufs; the ring takes ownership of the first `n`.
        let n = unsafe {
            raw::tandem_shim_ring_enqueue_burst(
                self.inner.ptr.as_ptr(),
                pkts.as_ptr().cast::<*mut c_void>(),
                count,
                std::ptr::null_mut(),
            )
        };
        let n = n as usize;
        burst.consumed(n);
        n
    }

    /// Moves up to `burst.spare()` packets from the ring into `burst`; returns how many.
    #[inline]
    pub fn dequeue_burst(&self, burst: &mut Burst) -> usize {
        let slots = burst.spare_slots();
        let want = c_uint::try_from(slots.len()).unwrap_or(c_uint::MAX);
        // SAFETY: the ring is alive and MC-safe; it holds only owned mbufs; `slots` has
        // room for `want` pointers.
        let n = unsafe {
            raw::tandem_shim_ring_dequeue_burst(
                self.inner.ptr.as_ptr(),
                slots.as_mut_ptr().cast::<*mut c_void>(),
                want,
                std::ptr::null_mut(),
            )
        };
        let n = n as usize;
        // SAFETY: `n` owned mbufs were written into the spare slots.
        unsafe { burst.commit(n) };
        n
    }

    /// Packets in the ring now.
    pub fn count(&self) -> usize {
        // SAFETY: the ring is alive; a racy but memory-safe read.
        unsafe { raw::tandem_shim_ring_count(self.inner.ptr.as_ptr()) as usize }
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The raw ring, valid while `self` lives.
    pub fn as_ptr(&self) -> *mut raw::rte_ring {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        let mut b = Burst::new();
        loop {
            let slots = b.spare_slots();
            let want = c_uint::try_from(slots.len()).unwrap_or(c_uint::MAX);
            // SAFETY: last handle: nobody else uses the ring; it holds only owned mbufs.
            let n = unsafe {
                raw::tandem_shim_ring_dequeue_burst(
                    self.ptr.as_ptr(),
                    slots.as_mut_ptr().cast::<*mut c_void>(),
                    want,
                    std::ptr::null_mut(),
                )
            } as usize;
            if n == 0 {
                break;
            }
            // SAFETY: `n` owned mbufs were written into the spare slots.
            unsafe { b.commit(n) };
            b.clear();
        }
        let _g = control_lock();
        // SAFETY: the ring is empty and no handle refers to it (a ring-backed port holds a
        // handle in PORT_RINGS until it is closed).
        unsafe { raw::rte_ring_free(self.ptr.as_ptr()) };
    }
}

/// Rings handed to `eth_from_rings`, by port id: the driver holds raw pointers to them,
/// so they live until that port is closed (see `release_port_rings`).
static PORT_RINGS: Mutex<Vec<(u16, Ring)>> = Mutex::new(Vec::new());

/// Called by `Port` after closing `id`: the driver no longer touches these rings. The
/// caller drops them with no lock held (a Ring's Drop takes the control lock).
pub(crate) fn release_port_rings(id: PortId) -> Vec<Ring> {
    let mut all = PORT_RINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut *all)
        .into_iter()
        .partition(|(p, _)| *p == id.0);
    *all = rest;
    mine.into_iter().map(|(_, r)| r).collect()
}

/// Creates an ethdev named `name` whose rx queue i reads `rx[i]` and tx queue i writes
/// `tx[i]` (`rte_eth_from_rings`). Configure it with [`Port::configure`](crate::Port::configure)
/// like any port (queue counts ≤ the ring counts).
///
/// The rings are kept alive (clones held here) until the [`Port`](crate::Port) configured
/// on this id is closed or dropped; if it never is, they — and therefore the EAL — live
/// until the process exits ([`Eal::cleanup`](crate::Eal::cleanup) then reports `EBUSY`).
pub fn eth_from_rings(
    name: &str,
    rx: &[Ring],
    tx: &[Ring],
    socket: SocketId,
) -> Result<PortId, DpdkError> {
    let ctx = || {
        format!(
            "rte_eth_from_rings({name}, {} rx, {} tx)",
            rx.len(),
            tx.len()
        )
    };
    let _eal = eal_ref(&ctx())?;
    let c = CString::new(name)
        .map_err(|_| DpdkError::invalid(errno::EINVAL, ctx(), "name contains a NUL byte"))?;
    if rx.is_empty() || tx.is_empty() {
        return Err(DpdkError::invalid(
            errno::EINVAL,
            ctx(),
            "needs at least one rx and one tx ring",
        ));
    }
    let rx_ptrs: Vec<*mut raw::rte_ring> = rx.iter().map(Ring::as_ptr).collect();
    let tx_ptrs: Vec<*mut raw::rte_ring> = tx.iter().map(Ring::as_ptr).collect();
    let too_many = |_| DpdkError::invalid(errno::EINVAL, ctx(), "too many rings");
    let (nrx, ntx) = (
        c_uint::try_from(rx.len()).map_err(too_many)?,
        c_uint::try_from(tx.len()).map_err(too_many)?,
    );
    let id = {
        let _g = control_lock();
        // SAFETY: valid C string and arrays of live ring pointers (kept alive below until
        // the port is closed); EAL running; control calls serialised.
        unsafe {
            raw::rte_eth_from_rings(
                c.as_ptr(),
                rx_ptrs.as_ptr(),
                nrx,
                tx_ptrs.as_ptr(),
                ntx,
                socket.as_c_uint(),
            )
        }
        .to_result(ctx)?
    };
    let id = u16::try_from(id)
        .map_err(|_| DpdkError::invalid(errno::EINVAL, ctx(), "port id out of range"))?;
    PORT_RINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(rx.iter().chain(tx).map(|r| (id, r.clone())));
    Ok(PortId(id))
}
