//! A fixed-capacity batch of owned mbufs: what one rx or tx burst moves.
//!
//! No heap per packet: a `Burst` is an inline array of [`BURST_MAX`] pointers plus two
//! indices, reused across loop iterations. Packets sit in `[head, tail)`; tx sends from
//! the front, rx appends at the back.

use crate::mbuf::Mbuf;
use crate::raw;

/// Largest burst a [`Burst`] can hold. DPDK drivers are tuned for 32; 64 leaves room.
pub const BURST_MAX: usize = 64;

/// Up to [`BURST_MAX`] owned mbufs. Dropping it frees what is left.
///
/// `Send` (it owns its mbufs, which are `Send`), so a worker can keep one per queue.
pub struct Burst {
    pkts: [*mut raw::rte_mbuf; BURST_MAX],
    head: usize,
    tail: usize,
    limit: usize,
}

// SAFETY: a Burst exclusively owns the mbufs in [head, tail) (they are `Mbuf`s in all but
// type), and `Mbuf: Send`; the other slots are unused.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst of capacity [`BURST_MAX`].
    pub const fn new() -> Self {
        Self {
            pkts: [std::ptr::null_mut(); BURST_MAX],
            head: 0,
            tail: 0,
            limit: BURST_MAX,
        }
    }

    /// An empty burst holding at most `limit` packets (rx asks for at most that many).
    ///
    /// # Panics
    /// If `limit` is 0 or above [`BURST_MAX`].
    pub const fn with_limit(limit: usize) -> Self {
        assert!(
            limit > 0 && limit <= BURST_MAX,
            "burst limit must be in 1..=BURST_MAX"
        );
        Self {
            pkts: [std::ptr::null_mut(); BURST_MAX],
            head: 0,
            tail: 0,
            limit,
        }
    }

    /// Packets held.
    #[inline]
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// True if no packet is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// True when `len() == limit()`.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() >= self.limit
    }

    /// Most packets this burst holds.
    #[inline]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many more packets fit.
    #[inline]
    pub fn spare(&self) -> usize {
        self.limit - self.len()
    }

    /// Moves the packets to the front so `spare()` slots follow them contiguously.
    #[inline]
    fn compact(&mut self) {
        if self.head != 0 {
            self.pkts.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// Adds a packet at the back; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        if self.tail == BURST_MAX {
            self.compact();
        }
        self.pkts[self.tail] = m.into_raw();
        self.tail += 1;
        Ok(())
    }

    /// Takes the packet at the front.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.is_empty() {
            return None;
        }
        let p = self.pkts[self.head];
        self.head += 1;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        // SAFETY: slots in [head, tail) hold owned mbufs; this one just left the range, so
        // ownership moves to the returned Mbuf exactly once.
        unsafe { Mbuf::from_raw(p) }
    }

    /// The packets, in order, borrowed (e.g. to parse them in place).
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        let live = &self.pkts[self.head..self.tail];
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of
        // *mut rte_mbuf; every pointer in [head, tail) is a non-null owned mbuf.
        unsafe { std::slice::from_raw_parts(live.as_ptr().cast::<Mbuf>(), live.len()) }
    }

    /// The packets, in order, mutably (e.g. to rewrite headers in place).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        let live = &mut self.pkts[self.head..self.tail];
        // SAFETY: as for `as_slice`; `&mut self` makes the access exclusive. A caller can
        // only swap Mbufs within the slice, never duplicate or drop one (no Clone, and
        // `mem::replace` needs another owned Mbuf), so the ownership invariant holds.
        unsafe { std::slice::from_raw_parts_mut(live.as_mut_ptr().cast::<Mbuf>(), live.len()) }
    }

    /// Borrowing iterator over the packets.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Mutable borrowing iterator over the packets.
    #[inline]
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Takes every packet out, front first. Packets the iterator did not yield when it is
    /// dropped are freed. (Equivalent to repeated [`pop`](Burst::pop).)
    #[inline]
    pub fn drain(&mut self) -> Drain<'_> {
        Drain { burst: self }
    }

    /// Frees every packet (one `rte_pktmbuf_free_bulk` call).
    pub fn clear(&mut self) {
        let n = self.len();
        if n > 0 {
            let count = u32::try_from(n).expect("len <= BURST_MAX");
            // SAFETY: [head, tail) holds `n` owned mbufs; the bulk free consumes them, and
            // the indices are reset right after so they are never used again.
            unsafe { raw::rte_pktmbuf_free_bulk(self.pkts.as_mut_ptr().add(self.head), count) };
        }
        self.head = 0;
        self.tail = 0;
    }

    /// Raw slots after the packets, for DPDK to fill (rx burst, bulk alloc); at least
    /// `spare()` long.
    #[inline]
    pub(crate) fn spare_slots(&mut self) -> &mut [*mut raw::rte_mbuf] {
        self.compact();
        let end = self.tail + self.spare();
        &mut self.pkts[self.tail..end]
    }

    /// Marks the first `n` spare slots as holding packets.
    ///
    /// # Safety
    /// Those `n` slots (of the last `spare_slots()`) must hold valid owned mbufs, `n <= spare()`.
    #[inline]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.spare());
        self.tail += n;
    }

    /// The packets as the raw array a tx burst reads.
    #[inline]
    pub(crate) fn front_slots(&mut self) -> &mut [*mut raw::rte_mbuf] {
        &mut self.pkts[self.head..self.tail]
    }

    /// Forgets the first `n` packets, which DPDK now owns (tx'd / enqueued).
    #[inline]
    pub(crate) fn consumed(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.head += n.min(self.len());
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst")
            .field("len", &self.len())
            .field("limit", &self.limit)
            .finish()
    }
}

/// Draining iterator from [`Burst::drain`].
pub struct Drain<'a> {
    burst: &'a mut Burst,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        self.burst.pop()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.burst.len(), Some(self.burst.len()))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        self.burst.clear();
    }
}

impl<'a> IntoIterator for &'a Burst {
    type Item = &'a Mbuf;
    type IntoIter = std::slice::Iter<'a, Mbuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Burst {
    type Item = &'a mut Mbuf;
    type IntoIter = std::slice::IterMut<'a, Mbuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Owning iterator: `for m in burst { .. }`; what is not yielded is freed with the burst.
pub struct IntoIter {
    burst: Burst,
}

impl Iterator for IntoIter {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        self.burst.pop()
    }
}

impl IntoIterator for Burst {
    type Item = Mbuf;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { burst: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only paths that never touch a real mbuf can run without the EAL; the rest is
    // exercised by tests/eal.rs.
    #[test]
    fn empty_burst_bookkeeping() {
        let mut b = Burst::with_limit(32);
        assert_eq!((b.len(), b.spare(), b.limit()), (0, 32, 32));
        assert!(b.is_empty() && !b.is_full());
        assert!(b.pop().is_none());
        assert_eq!(b.drain().count(), 0);
        assert_eq!(b.spare_slots().len(), 32);
        b.clear();
    }

    #[test]
    #[should_panic(expected = "burst limit")]
    fn zero_limit_panics() {
        let _ = Burst::with_limit(0);
    }
}
