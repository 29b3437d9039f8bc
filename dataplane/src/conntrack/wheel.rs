//! The per-worker timer wheel that expires connection-table entries.
//!
//! A hashed timing wheel of [`SPAN`] slots, one tick each. Every live entry
//! sits in exactly one slot's list; the lists are *intrusive*: the links are
//! a [`Timer`] inside the entry itself (12 bytes), so scheduling is O(1) and
//! never allocates. The slot heads are sentinel nodes of the same circular
//! lists, which is why an entry need not remember its slot to be unlinked.
//!
//! ```text
//!   ids 0..HEAD_BASE            : entries (the table's Vec)
//!   ids HEAD_BASE + s, s < SPAN : the head of slot s (the wheel's Vec)
//!
//!   head[s] ⇄ entry 7 ⇄ entry 3 ⇄ (back to head[s])   one slot = one tick
//! ```
//!
//! * **Lazy rescheduling.** Extending an expiry (every packet of a live
//!   connection does) only stores the new tick. When the entry's slot comes
//!   due and its expiry is still in the future, it is relinked to the slot of
//!   its real expiry. An entry is therefore always in a slot *at or before*
//!   its expiry, never after.
//! * **Shortening** (a FIN turns five days into two minutes) moves the entry
//!   at once, so it still expires on time.
//! * **Far timers.** The wheel covers ticks `cursor .. cursor + SPAN`; an
//!   expiry further away sits in the last slot of that window and is looked
//!   at again then — a five-day timeout costs one relink per `SPAN` ticks.
//! * **Precision.** An entry is handed out no earlier than its expiry tick;
//!   called every tick with enough budget, at most one tick late (only an
//!   entry scheduled at or before a tick that was already processed waits
//!   for the next one).
//! * **Incremental.** [`Wheel::pop_due`] does at most `budget` entries of
//!   work per call and continues where it stopped; empty slots are skipped
//!   through an occupancy bitmap (at most `SPAN / 64` words per call), so
//!   there is never a stop-the-world scan.
//!
//! Ticks are `u32` in the caller's unit (seconds or fractions); the wheel is
//! agnostic. There is no wrap handling: at one tick per second since boot,
//! `u32` lasts 136 years.

/// "No entry": the end of a free list, and the `prev` of an unlinked timer.
pub const NONE: u32 = u32::MAX;

/// Link ids at and above this are slot heads; entry ids must be below it.
pub const HEAD_BASE: u32 = 1 << 31;

/// Slots in the wheel (ticks covered). A power of two and a multiple of 64.
pub const SPAN: u32 = 4096;

/// The per-entry bookkeeping of the wheel: the expiry and the list links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    expires: u32,
    next: u32,
    prev: u32,
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::unlinked()
    }
}

impl Timer {
    /// A timer in no list.
    pub const fn unlinked() -> Timer {
        Timer {
            expires: 0,
            next: NONE,
            prev: NONE,
        }
    }

    /// The expiry tick last set.
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// Whether the timer is in a wheel slot (i.e. its entry is live).
    pub fn is_linked(&self) -> bool {
        self.prev != NONE
    }

    /// The `next` link; while unlinked, the owner may use it (the table
    /// threads its free list through it).
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Sets the `next` link of an unlinked timer.
    pub fn set_next_unlinked(&mut self, next: u32) {
        debug_assert!(!self.is_linked());
        self.next = next;
    }
}

/// Where the wheel finds the [`Timer`] of entry `id` (inside the entry).
pub trait Timers {
    /// The timer of entry `id` (`id < HEAD_BASE`).
    fn timer(&mut self, id: u32) -> &mut Timer;
}

impl Timers for [Timer] {
    fn timer(&mut self, id: u32) -> &mut Timer {
        &mut self[id as usize]
    }
}

/// A hashed timing wheel over intrusive lists; see the module docs.
#[derive(Debug)]
pub struct Wheel {
    /// Sentinel node of each slot's circular list (`expires` unused).
    heads: Vec<Timer>,
    /// One bit per slot: set while the slot's list is not empty.
    occupied: Vec<u64>,
    /// The next tick to process; every linked entry is in the slot of a tick
    /// in `cursor .. cursor + SPAN`. `u64` so `cursor + SPAN` cannot wrap.
    cursor: u64,
}

impl Default for Wheel {
    fn default() -> Wheel {
        Wheel::new()
    }
}

/// The link node `id`: an entry's timer or a slot head. A free function so
/// the borrow covers only the two stores, not the whole wheel.
fn node<'a, S: Timers + ?Sized>(
    heads: &'a mut [Timer],
    store: &'a mut S,
    id: u32,
) -> &'a mut Timer {
    if id >= HEAD_BASE {
        &mut heads[(id - HEAD_BASE) as usize]
    } else {
        store.timer(id)
    }
}

impl Wheel {
    /// An empty wheel whose first tick to process is 0.
    pub fn new() -> Wheel {
        let heads = (0..SPAN)
            .map(|s| {
                let me = HEAD_BASE + s;
                Timer {
                    expires: 0,
                    next: me,
                    prev: me,
                }
            })
            .collect();
        Wheel {
            heads,
            occupied: vec![0; SPAN as usize / 64],
            cursor: 0,
        }
    }

    /// The next tick [`pop_due`](Self::pop_due) will process.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Schedules the unlinked entry `id` to expire at `expires`.
    pub fn schedule<S: Timers + ?Sized>(&mut self, store: &mut S, id: u32, expires: u32) {
        debug_assert!(id < HEAD_BASE);
        debug_assert!(!store.timer(id).is_linked());
        store.timer(id).expires = expires;
        self.link(store, id, u64::from(expires));
    }

    /// Changes the expiry of the linked entry `id`: later is only stored
    /// (lazy); earlier moves the entry now so it is not handed out late.
    #[inline]
    pub fn set_expiry<S: Timers + ?Sized>(&mut self, store: &mut S, id: u32, expires: u32) {
        let t = store.timer(id);
        assert!(t.is_linked(), "set_expiry on a free entry {id}");
        if expires >= t.expires {
            t.expires = expires;
        } else {
            self.unlink(store, id);
            self.schedule(store, id, expires);
        }
    }

    /// Takes the linked entry `id` out of its slot.
    pub fn unlink<S: Timers + ?Sized>(&mut self, store: &mut S, id: u32) {
        let t = store.timer(id);
        let (prev, next) = (t.prev, t.next);
        assert!(prev != NONE, "unlink of an unlinked entry {id}");
        t.prev = NONE;
        t.next = NONE;
        node(&mut self.heads, store, prev).next = next;
        node(&mut self.heads, store, next).prev = prev;
        // Both neighbours are the same head: that slot is now empty.
        if prev == next && prev >= HEAD_BASE {
            self.set_occupied(prev - HEAD_BASE, false);
        }
    }

    /// The next entry whose expiry is `<= now`, already unlinked, or `None`
    /// when none is due or `budget` is used up. Each entry looked at costs
    /// one unit of `budget`, whether handed out or relinked to a later slot.
    pub fn pop_due<S: Timers + ?Sized>(
        &mut self,
        store: &mut S,
        now: u32,
        budget: &mut usize,
    ) -> Option<u32> {
        let now = u64::from(now);
        while *budget > 0 && self.cursor <= now {
            let slot = self.slot_of(self.cursor);
            let first = self.heads[slot as usize].next;
            if first >= HEAD_BASE {
                // This slot is done: jump to the next occupied one, if due.
                match self.next_occupied(now) {
                    Some(tick) => self.cursor = tick,
                    None => {
                        self.cursor = now + 1;
                        return None;
                    }
                }
                continue;
            }
            *budget -= 1;
            self.unlink(store, first);
            let expires = store.timer(first).expires;
            if u64::from(expires) <= now {
                return Some(first);
            }
            // Extended since it was scheduled: move it to its real slot,
            // always a later one (expires > now >= cursor).
            self.link(store, first, u64::from(expires));
        }
        None
    }

    /// Links `id` into the slot of `tick`, clamped into the window the wheel
    /// covers: past ticks go to the cursor's slot, far ones to the last slot.
    fn link<S: Timers + ?Sized>(&mut self, store: &mut S, id: u32, tick: u64) {
        let tick = tick.clamp(self.cursor, self.cursor + u64::from(SPAN) - 1);
        let slot = self.slot_of(tick);
        let head = HEAD_BASE + slot;
        let tail = self.heads[slot as usize].prev;
        let t = store.timer(id);
        t.prev = tail;
        t.next = head;
        node(&mut self.heads, store, tail).next = id;
        self.heads[slot as usize].prev = id;
        self.set_occupied(slot, true);
    }

    fn slot_of(&self, tick: u64) -> u32 {
        // The mask keeps the value below SPAN, a u32.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (tick & u64::from(SPAN - 1)) as u32;
        slot
    }

    fn set_occupied(&mut self, slot: u32, on: bool) {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if on {
            self.occupied[word] |= bit;
        } else {
            self.occupied[word] &= !bit;
        }
    }

    /// The first tick in `cursor ..= now` (at most one revolution) whose
    /// slot holds entries.
    fn next_occupied(&self, now: u64) -> Option<u64> {
        let limit = (now - self.cursor).min(u64::from(SPAN) - 1);
        let mut pos = self.slot_of(self.cursor) as usize;
        let mut dist = 0u64;
        loop {
            let bits = self.occupied[pos / 64] >> (pos % 64);
            if bits != 0 {
                let d = dist + u64::from(bits.trailing_zeros());
                return (d <= limit).then_some(self.cursor + d);
            }
            let step = 64 - pos % 64;
            dist += step as u64;
            if dist > limit {
                return None;
            }
            pos = (pos + step) % SPAN as usize;
        }
    }

    /// Bytes the wheel allocates (slot heads and bitmap).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Wheel>()
            + self.heads.len() * std::mem::size_of::<Timer>()
            + self.occupied.len() * std::mem::size_of::<u64>()
    }

    /// Checks every list's links against the bitmap; returns how many
    /// entries are linked (tests only).
    #[cfg(test)]
    pub(crate) fn check<S: Timers + ?Sized>(&mut self, store: &mut S) -> usize {
        let mut linked = 0;
        for slot in 0..SPAN as usize {
            let head = HEAD_BASE + u32::try_from(slot).unwrap();
            let mut prev = head;
            let mut id = self.heads[slot].next;
            let mut n = 0;
            while id != head {
                let t = *node(&mut self.heads, store, id);
                assert_eq!(t.prev, prev, "broken back link at {id}");
                prev = id;
                id = t.next;
                n += 1;
            }
            assert_eq!(self.heads[slot].prev, prev);
            let bit = self.occupied[slot / 64] >> (slot % 64) & 1;
            assert_eq!(bit == 1, n > 0, "bitmap wrong for slot {slot}");
            linked += n;
        }
        linked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains everything due at `now`, in order handed out.
    fn due(w: &mut Wheel, store: &mut [Timer], now: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut budget = usize::MAX;
        while let Some(id) = w.pop_due(store, now, &mut budget) {
            out.push(id);
        }
        out
    }

    #[test]
    fn entries_come_due_at_their_tick() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 4];
        w.schedule(&mut t[..], 0, 5);
        w.schedule(&mut t[..], 1, 3);
        w.schedule(&mut t[..], 2, 5);
        for now in 0..3 {
            assert!(due(&mut w, &mut t, now).is_empty());
        }
        assert_eq!(due(&mut w, &mut t, 3), [1]);
        assert!(due(&mut w, &mut t, 4).is_empty());
        assert_eq!(due(&mut w, &mut t, 5), [0, 2]);
        assert_eq!(w.check(&mut t[..]), 0);
        assert!(!t[0].is_linked());
    }

    #[test]
    fn extension_is_lazy_and_shortening_moves() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 2];
        w.schedule(&mut t[..], 0, 10);
        w.schedule(&mut t[..], 1, 100);
        w.set_expiry(&mut t[..], 0, 20); // stays in slot 10
        w.set_expiry(&mut t[..], 1, 15); // moves to slot 15
        let mut budget = usize::MAX;
        assert_eq!(w.pop_due(&mut t[..], 10, &mut budget), None);
        assert_eq!(budget, usize::MAX - 1, "slot 10 held the extended entry");
        assert_eq!(due(&mut w, &mut t, 15), [1]);
        assert_eq!(due(&mut w, &mut t, 19), [] as [u32; 0]);
        assert_eq!(due(&mut w, &mut t, 20), [0]);
    }

    #[test]
    fn far_timers_wait_in_the_last_slot() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 1];
        let far = 3 * SPAN + 17;
        w.schedule(&mut t[..], 0, far);
        let mut looked = 0;
        for now in 0..far {
            let mut budget = 10;
            assert_eq!(
                w.pop_due(&mut t[..], now, &mut budget),
                None,
                "early at {now}"
            );
            looked += 10 - budget;
        }
        assert_eq!(looked, 3, "one relink per revolution");
        assert_eq!(due(&mut w, &mut t, far), [0]);
    }

    #[test]
    fn past_expiry_comes_due_at_the_next_tick_processed() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 1];
        assert!(due(&mut w, &mut t, 50).is_empty());
        assert_eq!(w.cursor(), 51);
        w.schedule(&mut t[..], 0, 40);
        assert_eq!(due(&mut w, &mut t, 51), [0]);
    }

    #[test]
    fn budget_stops_and_resumes() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 10];
        for id in 0..10 {
            w.schedule(&mut t[..], id, 7);
        }
        let mut got = Vec::new();
        for _ in 0..4 {
            let mut budget = 3;
            while let Some(id) = w.pop_due(&mut t[..], 7, &mut budget) {
                got.push(id);
            }
            assert!(got.len() % 3 == 0 || got.len() == 10);
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_long_gap_is_crossed_without_visiting_anything_early() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 3];
        w.schedule(&mut t[..], 0, 5);
        w.schedule(&mut t[..], 1, 1_000_000);
        w.schedule(&mut t[..], 2, 4000);
        assert_eq!(due(&mut w, &mut t, 10_000), [0, 2]);
        // Entry 1 was relinked (it sat in the last slot), not handed out.
        assert!(t[1].is_linked());
        assert_eq!(due(&mut w, &mut t, 999_999), [] as [u32; 0]);
        assert_eq!(due(&mut w, &mut t, 1_000_000), [1]);
    }

    #[test]
    fn unlink_keeps_lists_and_bitmap_consistent() {
        let mut w = Wheel::new();
        let mut t = [Timer::unlinked(); 6];
        for id in 0..6 {
            w.schedule(&mut t[..], id, 3 + id % 2);
        }
        for id in [2, 0, 5, 3, 1, 4] {
            w.unlink(&mut t[..], id);
            w.check(&mut t[..]);
        }
        assert_eq!(w.check(&mut t[..]), 0);
        assert_eq!(w.occupied.iter().sum::<u64>(), 0);
    }
}
