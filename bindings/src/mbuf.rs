//! One owned packet buffer (`rte_mbuf`).
//!
//! Layout of a single-segment mbuf's buffer:
//! ```text
//! buf_addr                                                      buf_addr + buf_len
//! |<-- headroom -->|<------------- data ------------->|<-- tailroom -->|
//!                  ^ data()  (prepend grows left,      ^ (append grows right,
//!                    adj shrinks from the left)          trim shrinks from the right)
//! ```

use std::ptr::NonNull;

use crate::port::PortId;
use crate::raw;

/// An owned packet buffer; `Drop` returns it (all its segments) to its pool.
///
/// Only single-segment packets are fully supported: [`data`](Mbuf::data) and
/// [`data_mut`](Mbuf::data_mut) show the **first segment** only. Check
/// [`is_contiguous`](Mbuf::is_contiguous) (or keep the MTU below the data room and never
/// enable scatter, which is how ports are configured here) before relying on them.
///
/// Must not outlive its [`Mempool`](crate::Mempool): a pool dropped while mbufs are out
/// is leaked rather than freed, so this is memory-safe, but the memory is gone for good.
#[repr(transparent)]
pub struct Mbuf(NonNull<raw::rte_mbuf>);

// SAFETY: an Mbuf is the only reference to its buffer (refcnt 1, direct, see from_raw), so
// moving it to another thread moves exclusive ownership; freeing it from any thread is
// safe because pktmbuf pools use MP/MC-safe rings (non-EAL threads bypass the caches).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf; `None` for NULL.
    ///
    /// # Safety
    /// `m` must be NULL or a valid mbuf that nobody else references or will free: refcnt 1,
    /// a direct mbuf (data in its own buffer), allocated from a pool that is still alive.
    /// Meant for what DPDK returns from rx bursts and ring dequeues.
    #[inline]
    pub unsafe fn from_raw(m: *mut raw::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(m).map(Mbuf)
    }

    /// Gives up ownership (no free), e.g. to hand the mbuf to a tx call DPDK then owns.
    #[inline]
    pub fn into_raw(self) -> *mut raw::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Starts loading the mbuf's header (length, data offset), which an rx
    /// burst hands over without touching.
    #[inline]
    pub fn prefetch_header(&self) {
        memhint::prefetch::at(self.0.as_ptr());
    }

    /// Starts loading the first lines of the packet data (reads the header).
    #[inline]
    pub fn prefetch_data(&self) {
        memhint::prefetch::read(self.data());
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut raw::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn hdr(&self) -> &raw::rte_mbuf {
        // SAFETY: the pointer is valid for as long as `self` (ownership invariant), and the
        // header is only mutated through `&mut self`.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let h = self.hdr();
        // rte_pktmbuf_mtod: buf_addr + data_off, which stays inside the buffer.
        h.buf_addr
            .cast::<u8>()
            .wrapping_add(usize::from(h.data_off))
    }

    /// The first segment's bytes (the whole packet when single-segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: data_ptr..data_ptr+data_len lies inside this mbuf's buffer (DPDK's
        // invariant, kept by every call here); we own it, nobody writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), usize::from(self.hdr().data_len)) }
    }

    /// The first segment's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.hdr().data_len);
        // SAFETY: as for `data`, and `&mut self` makes the access exclusive (refcnt 1,
        // direct mbuf: no other mbuf shares this buffer).
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Packet length over all segments (`pkt_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.hdr().pkt_len as usize
    }

    /// True for a zero-length packet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.hdr().pkt_len == 0
    }

    /// Bytes in the first segment (`data_len`, = `data().len()`).
    #[inline]
    pub fn data_len(&self) -> usize {
        usize::from(self.hdr().data_len)
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.hdr().nb_segs
    }

    /// True when the whole packet is in the first segment, i.e. `data()` is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.hdr().nb_segs == 1
    }

    /// Free bytes before the data (room for [`prepend`](Mbuf::prepend)).
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.hdr().data_off)
    }

    /// Free bytes after the data in the last segment (room for [`append`](Mbuf::append)).
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid owned mbuf; the call only reads its header.
        usize::from(unsafe { raw::tandem_shim_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// Grows the packet by `n` bytes at the end and returns them (contents undefined until
    /// written: DPDK does not clear them; they are initialised memory of the buffer, so
    /// reading is safe but meaningless). `None` if the tailroom is too small.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: valid exclusively owned mbuf; rte_pktmbuf_append checks the tailroom and
        // returns NULL rather than overflow.
        let p = unsafe { raw::tandem_shim_pktmbuf_append(self.0.as_ptr(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: DPDK returned the start of `n` bytes inside the last segment's buffer,
        // exclusively ours through `&mut self`. The pool's buffers are plain bytes that
        // DPDK zero-initialised (memzone) or earlier packets wrote: never uninitialised.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    /// Grows the packet by `n` bytes at the front (into the headroom) and returns them.
    /// `None` if the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: valid exclusively owned mbuf; rte_pktmbuf_prepend checks the headroom.
        let p = unsafe { raw::tandem_shim_pktmbuf_prepend(self.0.as_ptr(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: as for `append`: `n` bytes at the new data start, inside the buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    /// Removes `n` bytes from the front (e.g. strip a header). False, unchanged, if the
    /// first segment is shorter than `n`.
    #[inline]
    #[must_use = "false means nothing was removed"]
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: valid exclusively owned mbuf; rte_pktmbuf_adj checks the length.
        !unsafe { raw::tandem_shim_pktmbuf_adj(self.0.as_ptr(), n16) }.is_null()
    }

    /// Removes `n` bytes from the end. False, unchanged, if the last segment is shorter.
    #[inline]
    #[must_use = "false means nothing was removed"]
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: valid exclusively owned mbuf; rte_pktmbuf_trim checks the length.
        unsafe { raw::tandem_shim_pktmbuf_trim(self.0.as_ptr(), n16) == 0 }
    }

    /// The port the packet was received on (set by the rx burst; `PortId(u16::MAX)`,
    /// DPDK's `RTE_MBUF_PORT_INVALID`, for a locally allocated mbuf).
    #[inline]
    pub fn port(&self) -> PortId {
        PortId(self.hdr().port)
    }

    /// The NIC's RSS hash, if the port computed one (`RTE_MBUF_F_RX_RSS_HASH`).
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        if self.hdr().ol_flags & raw::TANDEM_MBUF_F_RX_RSS_HASH == 0 {
            return None;
        }
        // SAFETY: valid owned mbuf; reads the `hash.rss` union member, meaningful as the
        // flag says.
        Some(unsafe { raw::tandem_shim_mbuf_rss_hash(self.0.as_ptr()) })
    }

    /// Offload flags (`ol_flags`: `RTE_MBUF_F_RX_*` / `RTE_MBUF_F_TX_*`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.hdr().ol_flags
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain) exclusively; it goes back to its pool,
        // which is alive (a pool with mbufs out is never freed).
        unsafe { raw::tandem_shim_pktmbuf_free(self.0.as_ptr()) };
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("nb_segs", &self.nb_segs())
            .field("port", &self.port().0)
            .finish()
    }
}
/// The packet data as a byte slice: what the pure packet code (`dataplane`)
/// reads and rewrites, without knowing it is an mbuf.
impl AsRef<[u8]> for Mbuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for Mbuf {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}
