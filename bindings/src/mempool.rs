//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::burst::Burst;
use crate::eal::{control_lock, eal_ref, EalRef};
use crate::error::{errno, DpdkError, ToResult};
use crate::lcore::SocketId;
use crate::mbuf::Mbuf;
use crate::raw;

/// A pool of packet buffers. Cheap to clone (shared handle); every [`Port`](crate::Port)
/// configured with it keeps a clone, so the pool outlives the ports using it.
///
/// # Drop
/// The pool is freed when the last handle goes **and** every mbuf is back
/// (`in_use() == 0`). If mbufs are still out (held by a [`Burst`], a ring, a worker…), the
/// pool — and with it the EAL — is deliberately leaked with a warning on stderr instead:
/// freeing it would leave those mbufs dangling. Drop workers, bursts and ports first.
///
/// # Thread safety
/// `Send + Sync`: pools made by `rte_pktmbuf_pool_create` use the default multi-producer /
/// multi-consumer ring ops, so any thread may alloc and free concurrently. Each EAL lcore
/// has its own lock-free object cache (`cache_size`); non-EAL threads have no cache and go
/// straight to the (MT-safe) ring, which is correct but slower.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<Inner>,
}

struct Inner {
    ptr: NonNull<raw::rte_mempool>,
    name: String,
    size: u32,
    /// `None` only while being leaked in Drop.
    eal: Option<EalRef>,
}

// SAFETY: the pointer is to an MP/MC-safe mempool (see the type docs); Inner never hands
// out `&mut` to it and only DPDK's thread-safe entry points are called through it.
unsafe impl Send for Inner {}
// SAFETY: as above: all operations through a shared `&Inner` are MT-safe DPDK calls.
unsafe impl Sync for Inner {}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("available", &self.available())
            .finish()
    }
}

impl Mempool {
    /// Buffer size (`data_room`) fitting a 1518-byte frame plus the 128-byte headroom.
    pub const DEFAULT_DATA_ROOM: u16 = 2176; // RTE_MBUF_DEFAULT_BUF_SIZE

    /// Creates a pool of `n_mbufs` buffers of `data_room` bytes each (headroom included),
    /// with a per-lcore cache of `cache_size` (0 = none; at most 512 and ≤ n/1.5).
    ///
    /// `n_mbufs` is best a power of two minus one (the ring below holds 2^k - 1). Without
    /// hugepages, `-m` must be big enough: 2047 default mbufs need ~12 MB, 8191 ~48 MB.
    /// Names are global per process (`EEXIST` on reuse); keep them under ~24 bytes (DPDK
    /// prefixes them for the memzone and ring it creates).
    pub fn new(
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
        socket: SocketId,
    ) -> Result<Mempool, DpdkError> {
        let ctx = || {
            format!("rte_pktmbuf_pool_create({name}, n={n_mbufs}, cache={cache_size}, data_room={data_room})")
        };
        let eal = eal_ref(&ctx())?;
        let cname = CString::new(name)
            .map_err(|_| DpdkError::invalid(errno::EINVAL, ctx(), "name contains a NUL byte"))?;
        let _g = control_lock();
        // SAFETY: valid C string; EAL running (we hold a ref); control calls serialised.
        // priv_size 0: no private area after each rte_mbuf.
        let ptr = unsafe {
            raw::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n_mbufs,
                cache_size,
                0,
                data_room,
                socket.0,
            )
        }
        .to_result(ctx)?;
        Ok(Mempool {
            inner: Arc::new(Inner {
                ptr,
                name: name.to_owned(),
                size: n_mbufs,
                eal: Some(eal),
            }),
        })
    }

    /// Takes one buffer (empty, headroom reserved), or `None` if the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive (we hold it); alloc is MT-safe; the result is either
        // NULL or a fresh mbuf with refcnt 1 that nobody else references.
        let m = unsafe { raw::tandem_shim_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        // SAFETY: see above — a fresh, exclusively owned, direct mbuf (or NULL).
        unsafe { Mbuf::from_raw(m) }
    }

    /// Appends `n` fresh buffers to `burst`, all or nothing. False (and `burst` unchanged)
    /// if the pool has fewer than `n` or `burst` has less than `n` spare room.
    pub fn alloc_bulk(&self, burst: &mut Burst, n: usize) -> bool {
        let Ok(count) = u32::try_from(n) else {
            return false;
        };
        if n > burst.spare() {
            return false;
        }
        let slots = burst.spare_slots();
        // SAFETY: `slots` has room for at least `n` pointers (checked above); the pool is
        // alive; on success DPDK wrote `n` fresh exclusively-owned mbufs into it.
        let ret = unsafe {
            raw::tandem_shim_pktmbuf_alloc_bulk(self.inner.ptr.as_ptr(), slots.as_mut_ptr(), count)
        };
        if ret != 0 {
            return false;
        }
        // SAFETY: the first `n` spare slots now hold valid owned mbufs.
        unsafe { burst.commit(n) };
        true
    }

    /// Buffers free in the pool (including those parked in per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a racy but memory-safe read.
        unsafe { raw::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Buffers currently allocated (= size - available).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for `available`.
        unsafe { raw::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    /// Total number of buffers.
    pub fn capacity(&self) -> u32 {
        self.inner.size
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The raw pool, for calls this crate does not wrap. It stays valid while `self` lives.
    pub fn as_ptr(&self) -> *mut raw::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the pool is still alive here.
        let in_use = unsafe { raw::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            log::warn!(
                "dpdk-sys: mempool {:?} dropped with {in_use} mbuf(s) still out; leaking it (and the EAL) to keep them valid",
                self.name
            );
            std::mem::forget(self.eal.take());
            return;
        }
        let _g = control_lock();
        // SAFETY: the last handle is gone (no Port holds a clone: ports keep one), and no
        // mbuf is out (in_use == 0), so nothing refers to the pool's memory any more.
        unsafe { raw::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
