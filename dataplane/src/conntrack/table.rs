//! The connection table of one shard: fixed capacity, preallocated at boot,
//! owned by one worker (no locks), with incremental expiry.
//!
//! ```text
//!  slots: Vec<u64>   open addressing, linear probing, no tombstones
//!  ┌───────────┬───────────┬───────┬───────────┐
//!  │ tag │ id  │ tag │ id  │ EMPTY │ tag │ id  │ ...    tag  = hash >> 32
//!  └───────────┴─────┬─────┴───────┴───────────┘        home = tag · n >> 32
//!                    ▼
//!  entries: Vec<Entry<V>>, id = index
//!  ┌──────────────┬─────────────────────────────┬───────┐
//!  │ key: FlowKey │ timer: expires, next, prev  │ value │
//!  └──────────────┴─────────────────────────────┴───────┘
//!  Free entries are threaded through `timer.next`; live ones through the
//!  timer wheel's slot lists (see [`super::wheel`]).
//! ```
//!
//! * **Full means full.** All memory is allocated in
//!   [`ConnTable::with_capacity`]; a full table refuses a new connection
//!   ([`Full`], the caller counts it) and never evicts a live one. Nothing
//!   allocates afterwards.
//! * **Index.** `slots` has `capacity + capacity / 4 + 1` slots, so the load
//!   factor never exceeds 0.8 and there is always an empty slot (probes end).
//!   At 0.8, linear probing looks at ~3 slots for a hit and ~13 for a miss on
//!   average: two adjacent cache lines of 8-byte slots. The home slot is
//!   Lemire's `tag · n >> 32` rather than a mask, so `n` need not be a power
//!   of two (a power of two would cost up to 21 bytes per entry instead of
//!   10). Lookups compare the 32-bit tag first and read the entry only on a
//!   tag match. Deletion shifts the following cluster back (no tombstones),
//!   so lookups do not degrade with churn. The home is a function of the tag
//!   alone, which is what lets the shift work without touching entries.
//! * **Hash.** Keyed per boot (`seed`): an attacker chooses 5-tuples, and
//!   with an unkeyed hash could pile them into one probe chain. It is a
//!   folded-multiply construction (wyhash/foldhash style), a few ns, good
//!   distribution, not cryptographic — the seed must stay secret and fresh
//!   per boot, which is all that is needed to deny crafted collisions.
//! * **Expiry** is incremental through the per-shard timer wheel:
//!   [`ConnTable::expire`] does a bounded amount of work per call and is
//!   meant to be called on every poll.
//! * **Time** is `u32` ticks in whatever unit the caller chooses (seconds,
//!   or 1/8 s): the table only compares them. There is no wrap handling;
//!   seconds since boot last 136 years, 1/8 s ticks 17 years.
//!
//! # Memory
//!
//! Per entry: the key (38 bytes), the wheel's [`Timer`] (12 bytes), the
//! value, and padding to the value's alignment (`#[repr(C)]`, key first so
//! a lookup's key compare touches the entry's first line). Plus 8 bytes of
//! slot per 0.8 entry (10 bytes). Measured (`entry_overhead` test; the
//! `Conn` row as of its first version):
//!
//! | value `V`                  | `Entry<V>` | bookkeeping incl. slots | 1M connections |
//! | -------------------------- | ---------- | ----------------------- | -------------- |
//! | 88 bytes, align 4          | 140 bytes  | 14 + 10 = 24 bytes      | 150 MB         |
//! | 88 bytes, align 8          | 144 bytes  | 18 + 10 = 28 bytes      | 154 MB         |
//! | 72 bytes, align 8          | 128 bytes  | 18 + 10 = 28 bytes      | 138 MB         |
//! | `conn::Conn` (72, align 4) | 124 bytes  | 14 + 10 = 24 bytes      | 134 MB         |
//!
//! (1M = 1 000 000 entries; "MB" = 10⁶ bytes: entries + 1 250 001 slots × 8;
//! the wheel adds 50 KB per shard; [`ConnTable::memory_bytes`] says
//! 150 049 728 bytes for the first row.) For the 128-byte entry target the
//! value may be at most 76 bytes at align 4 or 72 at align 8.
//!
//! # Speed
//!
//! Release build on the 2-core development VM (AMD EPYC, 4 KiB pages), a
//! full 1M table (load 0.8): hash 5 ns; `find` of an entry in cache 13 ns;
//! `find` of random keys ~150 ns and a miss ~160 ns; filling 1M entries
//! ~130 ns per insert. Random lookups are memory-bound — two dependent
//! misses, slot then entry — and on this VM one dependent random load over
//! 150 MB costs ~340 ns, mostly page walks. So [`ConnTable::with_capacity`]
//! asks for transparent huge pages (`madvise(MADV_HUGEPAGE)`, through
//! `memhint`) before it first touches the memory; the kernel may decline.

use std::mem;

use super::key::FlowKey;
use super::wheel::{Timer, Timers, Wheel, HEAD_BASE, NONE};

/// The largest capacity of one table. Entry ids must stay below the wheel's
/// head ids, and the home-slot arithmetic needs fewer than 2³² slots.
pub const MAX_CAPACITY: usize = 1 << 30;

/// An unused index slot (no live id has all low 32 bits set).
const EMPTY: u64 = u64::MAX;

/// The table is full: the new connection was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection table full")]
pub struct Full;

/// One connection: its key, its timer-wheel bookkeeping and the tracker's
/// value. `repr(C)` keeps the key first (read by every lookup) and the timer
/// next to it (written by every packet).
#[derive(Debug, Default)]
#[repr(C)]
pub struct Entry<V> {
    key: FlowKey,
    timer: Timer,
    value: V,
}

impl<V> Timers for [Entry<V>] {
    #[inline]
    fn timer(&mut self, id: u32) -> &mut Timer {
        &mut self[id as usize].timer
    }
}

/// The connection table of one shard; see the module docs.
pub struct ConnTable<V> {
    entries: Vec<Entry<V>>,
    slots: Vec<u64>,
    wheel: Wheel,
    /// Head of the free-entry list (through `timer.next`), [`NONE`] if full.
    free: u32,
    len: u32,
    /// Hash keys derived from the seed.
    secret: [u64; 7],
}

impl<V> std::fmt::Debug for ConnTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTable")
            .field("len", &self.len)
            .field("capacity", &self.entries.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// 64×64→128-bit multiply, folded back to 64 bits: the mixing step of
/// wyhash and foldhash.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    // Both halves are kept; truncating to the low half is the point.
    #[allow(clippy::cast_possible_truncation)]
    let lo = p as u64;
    lo ^ (p >> 64) as u64
}

/// splitmix64: expands the seed into independent hash keys.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    splitmix_finish(*state)
}

/// splitmix64's finaliser: spreads every input bit over the output (the
/// adopted-name index and the digest use it too).
pub(crate) fn splitmix_finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The tag of a hash: its upper 32 bits.
#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The entry id stored in an occupied slot (its low 32 bits).
#[inline(always)]
fn slot_id(slot: u64) -> u32 {
    // The low half is the id by construction.
    #[allow(clippy::cast_possible_truncation)]
    let id = slot as u32;
    id
}

impl<V: Default> ConnTable<V> {
    /// A table for `capacity` connections, all memory allocated and touched
    /// now. `seed` keys the hash; use a fresh random value per boot.
    ///
    /// # Panics
    /// If `capacity` is above [`MAX_CAPACITY`].
    pub fn with_capacity(capacity: usize, seed: u64) -> ConnTable<V> {
        assert!(
            capacity <= MAX_CAPACITY,
            "capacity {capacity} above {MAX_CAPACITY}"
        );
        // Huge pages before the first touch: a lookup is a random access
        // into this memory, and on 4 KiB pages nearly every one misses the TLB.
        let mut entries = Vec::with_capacity(capacity);
        memhint::memory::advise_huge_pages(&entries);
        for id in 0..capacity {
            // Thread the free list in id order.
            let next = if id + 1 < capacity {
                u32::try_from(id + 1).expect("capacity checked above")
            } else {
                NONE
            };
            let mut timer = Timer::unlinked();
            timer.set_next_unlinked(next);
            entries.push(Entry {
                key: FlowKey::default(),
                timer,
                value: V::default(),
            });
        }
        let mut state = seed;
        let secret = std::array::from_fn(|_| splitmix(&mut state));
        let mut slots = Vec::with_capacity(capacity + capacity / 4 + 1);
        memhint::memory::advise_huge_pages(&slots);
        slots.resize(capacity + capacity / 4 + 1, EMPTY);
        ConnTable {
            entries,
            slots,
            wheel: Wheel::new(),
            free: if capacity == 0 { NONE } else { 0 },
            len: 0,
            secret,
        }
    }

    /// Removes the live entry `id` and returns its value; its id may be
    /// handed out again by the next insert.
    ///
    /// # Panics
    /// If `id` is not live.
    pub fn remove(&mut self, id: u32) -> V {
        self.wheel.unlink(&mut self.entries[..], id);
        self.release(id)
    }

    /// Removes the entries whose expiry is `<= now`, giving each to
    /// `on_expired` (its id, key and value). Looks at no more than `budget`
    /// entries (handed out or rescheduled) and continues where it stopped on
    /// the next call; empty ticks are skipped cheaply. Call it on every poll.
    /// Returns how many entries it removed.
    pub fn expire(
        &mut self,
        now: u32,
        budget: usize,
        mut on_expired: impl FnMut(u32, &FlowKey, V),
    ) -> usize {
        let mut budget = budget;
        let mut removed = 0;
        while let Some(id) = self.wheel.pop_due(&mut self.entries[..], now, &mut budget) {
            let value = self.release(id);
            // The key stays in the freed entry until the id is reused.
            on_expired(id, &self.entries[id as usize].key, value);
            removed += 1;
        }
        removed
    }

    /// Takes the entry `id`, already out of the wheel, out of the index and
    /// onto the free list.
    fn release(&mut self, id: u32) -> V {
        let hash = self.hash(&self.entries[id as usize].key);
        self.unindex(hash, id);
        let e = &mut self.entries[id as usize];
        e.timer.set_next_unlinked(self.free);
        self.free = id;
        self.len -= 1;
        mem::take(&mut e.value)
    }
}

impl<V> ConnTable<V> {
    /// How many connections the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// How many connections the table holds.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an insert would be refused.
    pub fn is_full(&self) -> bool {
        self.free == NONE
    }

    /// Bytes allocated by the table (entries, index and wheel).
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * mem::size_of::<Entry<V>>()
            + self.slots.len() * mem::size_of::<u64>()
            + self.wheel.memory_bytes()
    }

    /// The keyed hash of `key` for this table: compute it once per packet
    /// and pass it to [`find`](Self::find) and [`insert`](Self::insert).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let [a, b, c, d, e] = key.words();
        let k = &self.secret;
        // Two independent multiplies for the addresses, then the tail
        // (ports, protocol, family), then a final mix.
        let x = fold(a ^ k[0], b ^ k[1]);
        let y = fold(c ^ k[2], d ^ k[3]);
        let z = fold(e ^ k[4], x ^ k[5]);
        fold(y ^ k[6], z)
    }

    /// The home slot of a tag: `tag · n / 2³²`, in `0..n`.
    #[inline(always)]
    fn home(&self, tag: u32) -> usize {
        let n = self.slots.len() as u64;
        // The product over 2³² is below n, a usize.
        #[allow(clippy::cast_possible_truncation)]
        let home = ((u64::from(tag) * n) >> 32) as usize;
        home
    }

    /// Starts loading the index slot a lookup of `hash` probes first.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(tag_of(hash))) {
            memhint::prefetch::read(slot);
        }
    }

    /// Starts loading the entry `id` (any `u32` may be given).
    #[inline]
    pub fn prefetch_id(&self, id: u32) {
        if let Some(e) = self.entries.get(id as usize) {
            memhint::prefetch::read(e);
        }
    }

    /// Starts loading the entry of the first slot near `hash`'s home whose tag
    /// matches (best once [`prefetch_slot`](Self::prefetch_slot) has brought
    /// the slot in); looks at a few slots at most.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        let tag = tag_of(hash);
        let home = self.home(tag);
        for &slot in self.slots.iter().skip(home).take(4) {
            if slot == EMPTY {
                return;
            }
            if tag_of(slot) == tag {
                if let Some(e) = self.entries.get(slot_id(slot) as usize) {
                    memhint::prefetch::read(e);
                }
                return;
            }
        }
    }

    /// The id of the live entry with `key`, if any. `hash` is
    /// [`hash(key)`](Self::hash).
    #[inline]
    pub fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let tag = tag_of(hash);
        let mut i = self.home(tag);
        loop {
            // `get` doubles as the wrap-around check: one compare per probe.
            let Some(&slot) = self.slots.get(i) else {
                i = 0;
                continue;
            };
            if slot == EMPTY {
                return None;
            }
            if tag_of(slot) == tag {
                let id = slot_id(slot);
                if self.entries[id as usize].key == *key {
                    return Some(id);
                }
            }
            i += 1;
        }
    }

    /// Adds a connection expiring at tick `expires` and returns its id, or
    /// [`Full`] (the value is dropped). `hash` is [`hash(&key)`](Self::hash);
    /// the key must not be in the table (check with `find` first).
    pub fn insert(&mut self, key: FlowKey, hash: u64, value: V, expires: u32) -> Result<u32, Full> {
        debug_assert_eq!(hash, self.hash(&key), "hash not from this table");
        debug_assert!(self.find(&key, hash).is_none(), "duplicate key {key:?}");
        let id = self.free;
        if id == NONE {
            return Err(Full);
        }
        let e = &mut self.entries[id as usize];
        self.free = e.timer.next();
        e.key = key;
        e.value = value;

        let tag = tag_of(hash);
        let mut i = self.home(tag);
        loop {
            match self.slots.get_mut(i) {
                None => i = 0,
                Some(slot) if *slot == EMPTY => {
                    *slot = (u64::from(tag) << 32) | u64::from(id);
                    break;
                }
                Some(_) => i += 1,
            }
        }
        self.wheel.schedule(&mut self.entries[..], id, expires);
        self.len += 1;
        Ok(id)
    }

    /// Removes slot of `id` from the index and shifts the rest of its
    /// cluster back, so no probe chain is left broken.
    fn unindex(&mut self, hash: u64, id: u32) {
        let n = self.slots.len();
        let next = |i: usize| if i + 1 == n { 0 } else { i + 1 };
        let mut hole = self.home(tag_of(hash));
        loop {
            let slot = self.slots[hole];
            assert!(slot != EMPTY, "entry {id} missing from the index");
            if slot_id(slot) == id {
                break;
            }
            hole = next(hole);
        }
        let mut j = hole;
        loop {
            j = next(j);
            let slot = self.slots[j];
            if slot == EMPTY {
                break;
            }
            // The slot at j may move into the hole if the hole lies on its
            // probe path, i.e. cyclically within home..=j.
            let home = self.home(tag_of(slot));
            let from_home = if j >= home { j - home } else { j + n - home };
            let from_hole = if j >= hole { j - hole } else { j + n - hole };
            if from_home >= from_hole {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
    }

    /// Whether `id` is an entry that is live now (any `u32` may be asked).
    pub fn is_live(&self, id: u32) -> bool {
        self.entries
            .get(id as usize)
            .is_some_and(|e| e.timer.is_linked())
    }

    /// The value of the live entry `id`.
    #[inline]
    pub fn get(&self, id: u32) -> &V {
        let e = &self.entries[id as usize];
        debug_assert!(e.timer.is_linked(), "entry {id} is free");
        &e.value
    }

    /// The value of the live entry `id`, to update it.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut V {
        let e = &mut self.entries[id as usize];
        debug_assert!(e.timer.is_linked(), "entry {id} is free");
        &mut e.value
    }

    /// The key of the live entry `id`.
    #[inline]
    pub fn key(&self, id: u32) -> &FlowKey {
        let e = &self.entries[id as usize];
        debug_assert!(e.timer.is_linked(), "entry {id} is free");
        &e.key
    }

    /// The expiry tick of the live entry `id`.
    #[inline]
    pub fn expiry(&self, id: u32) -> u32 {
        let e = &self.entries[id as usize];
        debug_assert!(e.timer.is_linked(), "entry {id} is free");
        e.timer.expires()
    }

    /// Sets the expiry tick of the live entry `id`. Cheap when it moves
    /// later (every packet of a live connection): only the tick is stored.
    ///
    /// # Panics
    /// If `id` is not live.
    #[inline]
    pub fn set_expiry(&mut self, id: u32, expires: u32) {
        self.wheel.set_expiry(&mut self.entries[..], id, expires);
    }

    /// Every live entry, in id order. Walks the whole table: for the
    /// control plane, never the fast path.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &FlowKey, &V)> {
        self.iter_from(0)
    }

    /// Every live entry from id `start` on, in id order: lets a listing
    /// resume where it stopped without walking the table from the start.
    pub fn iter_from(&self, start: u32) -> impl Iterator<Item = (u32, &FlowKey, &V)> {
        let skip = (start as usize).min(self.entries.len());
        // Entries first: the id range is not advanced past the last entry,
        // so `start` near `u32::MAX` cannot overflow it.
        self.entries[skip..]
            .iter()
            .zip(start..)
            .filter(|(e, _)| e.timer.is_linked())
            .map(|(e, id)| (id, &e.key, &e.value))
    }
}

// Entry ids are below the wheel's head ids.
const _: () = assert!(MAX_CAPACITY <= HEAD_BASE as usize);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};

    /// xorshift64*: deterministic test randomness.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u32) -> u32 {
            u32::try_from(self.next() % u64::from(n)).unwrap()
        }
    }

    fn v4(a: u32, b: u32) -> (IpAddr, IpAddr) {
        (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))
    }

    /// The n-th of many distinct TCP keys.
    fn key(n: u32) -> FlowKey {
        let (a, b) = v4(0xc612_0000 | (n & 0xffff), 0xc613_0000);
        let port = 1024 + u16::try_from(n >> 16).unwrap();
        FlowKey::from_packet(a, port, b, 443, 6).0
    }

    fn insert<V: Default>(
        t: &mut ConnTable<V>,
        k: FlowKey,
        v: V,
        expires: u32,
    ) -> Result<u32, Full> {
        let h = t.hash(&k);
        t.insert(k, h, v, expires)
    }

    fn find<V>(t: &ConnTable<V>, k: &FlowKey) -> Option<u32> {
        t.find(k, t.hash(k))
    }

    /// Checks every structural invariant of the table.
    fn check<V: Default>(t: &mut ConnTable<V>) {
        let n = t.slots.len();
        let mut indexed = 0;
        for j in 0..n {
            let slot = t.slots[j];
            if slot == EMPTY {
                continue;
            }
            indexed += 1;
            let id = slot_id(slot);
            let e = &t.entries[id as usize];
            assert!(e.timer.is_linked(), "slot {j} points at free entry {id}");
            assert_eq!(tag_of(slot), tag_of(t.hash(&e.key)));
            // No empty slot between the home and j.
            let mut i = t.home(tag_of(slot));
            while i != j {
                assert_ne!(t.slots[i], EMPTY, "probe path of slot {j} broken at {i}");
                i = (i + 1) % n;
            }
            assert_eq!(find(t, &e.key), Some(id));
        }
        assert_eq!(indexed, t.len());
        let mut free = 0;
        let mut id = t.free;
        while id != NONE {
            assert!(!t.entries[id as usize].timer.is_linked());
            free += 1;
            id = t.entries[id as usize].timer.next();
        }
        assert_eq!(free + t.len(), t.capacity());
        assert_eq!(t.wheel.check(&mut t.entries[..]), t.len());
    }

    // ---- index ----

    #[test]
    fn insert_find_remove() {
        let mut t = ConnTable::<u64>::with_capacity(8, 1);
        assert!(t.is_empty());
        let a = insert(&mut t, key(1), 11, 100).unwrap();
        let b = insert(&mut t, key(2), 22, 100).unwrap();
        assert_eq!(
            (find(&t, &key(1)), find(&t, &key(2)), find(&t, &key(3))),
            (Some(a), Some(b), None)
        );
        assert_eq!(
            (*t.get(a), *t.get(b), t.key(a), t.len()),
            (11, 22, &key(1), 2)
        );
        *t.get_mut(a) += 1;
        assert_eq!(t.remove(a), 12);
        assert_eq!(find(&t, &key(1)), None);
        assert_eq!(find(&t, &key(2)), Some(b));
        assert_eq!(t.len(), 1);
        check(&mut t);
    }

    #[test]
    fn prefetching_any_hash_changes_nothing() {
        let mut t = ConnTable::<u64>::with_capacity(64, 3);
        for n in 0..60 {
            insert(&mut t, key(n), u64::from(n), 100).unwrap();
        }
        let mut rng = Rng(9);
        for _ in 0..10_000 {
            let h = rng.next();
            t.prefetch_slot(h);
            t.prefetch_entry(h);
        }
        for n in 0..60 {
            t.prefetch_entry(t.hash(&key(n)));
            assert_eq!(*t.get(find(&t, &key(n)).unwrap()), u64::from(n));
        }
        // Homes near the end of the index: no probe past it.
        t.prefetch_entry(u64::MAX);
        check(&mut t);
    }

    #[test]
    fn both_directions_find_one_entry() {
        let mut t = ConnTable::<u8>::with_capacity(4, 7);
        let (a, b) = v4(0xc612_0102, 0xc612_0202);
        let (k1, _) = FlowKey::from_packet(a, 40000, b, 80, 6);
        let (k2, _) = FlowKey::from_packet(b, 80, a, 40000, 6);
        let id = insert(&mut t, k1, 1, 10).unwrap();
        assert_eq!(find(&t, &k2), Some(id));
        let (udp, _) = FlowKey::from_packet(b, 80, a, 40000, 17);
        assert_eq!(find(&t, &udp), None);
    }

    #[test]
    fn full_table_refuses_and_removal_makes_room() {
        let mut t = ConnTable::<u32>::with_capacity(3, 2);
        let ids: Vec<u32> = (0..3)
            .map(|n| insert(&mut t, key(n), 0, 5).unwrap())
            .collect();
        assert!(t.is_full());
        assert_eq!(insert(&mut t, key(9), 0, 5), Err(Full));
        // Nothing was evicted.
        for n in 0..3 {
            assert!(find(&t, &key(n)).is_some());
        }
        t.remove(ids[1]);
        assert!(!t.is_full());
        assert_eq!(
            insert(&mut t, key(9), 0, 5),
            Ok(ids[1]),
            "the freed id is reused"
        );
        assert_eq!(insert(&mut t, key(10), 0, 5), Err(Full));
        check(&mut t);
    }

    #[test]
    fn zero_capacity_is_always_full() {
        let mut t = ConnTable::<u32>::with_capacity(0, 2);
        assert!(t.is_full());
        assert_eq!(find(&t, &key(1)), None);
        assert_eq!(insert(&mut t, key(1), 0, 5), Err(Full));
    }

    /// Random inserts and removals against a `HashMap`, on small tables at
    /// up to full load so clusters are long and wrap around the index end.
    #[test]
    fn random_ops_match_a_hashmap() {
        for (capacity, universe, seed) in [(16, 40, 1), (200, 400, 2), (1000, 1500, 3)] {
            let mut rng = Rng(0x9e37_79b9 + seed);
            let mut t = ConnTable::<u64>::with_capacity(capacity, seed);
            let mut model: HashMap<FlowKey, (u32, u64)> = HashMap::new();
            for op in 0..100_000u64 {
                let k = key(rng.below(universe));
                match (find(&t, &k), model.get(&k).copied()) {
                    (Some(id), Some((mid, v))) => {
                        assert_eq!((id, *t.get(id)), (mid, v));
                        if rng.below(2) == 0 {
                            assert_eq!(t.remove(id), v);
                            model.remove(&k);
                        }
                    }
                    (None, None) => match insert(&mut t, k, op, 1000) {
                        Ok(id) => {
                            model.insert(k, (id, op));
                        }
                        Err(Full) => assert_eq!(model.len(), capacity),
                    },
                    (got, want) => panic!("op {op}: table {got:?}, model {want:?}"),
                }
                assert_eq!(t.len(), model.len());
                if op % 5000 == 0 {
                    check(&mut t);
                }
            }
            check(&mut t);
            for (k, (id, v)) in &model {
                assert_eq!(find(&t, k), Some(*id));
                assert_eq!(t.get(*id), v);
            }
            let mut listed: Vec<u32> = t.iter().map(|(id, _, _)| id).collect();
            let mut want: Vec<u32> = model.values().map(|&(id, _)| id).collect();
            listed.sort_unstable();
            want.sort_unstable();
            assert_eq!(listed, want);
            let half = u32::try_from(capacity / 2).unwrap();
            let tail: Vec<u32> = t.iter_from(half).map(|(id, _, _)| id).collect();
            assert_eq!(
                tail,
                want.iter()
                    .copied()
                    .filter(|&id| id >= half)
                    .collect::<Vec<_>>()
            );
            assert_eq!(t.iter_from(u32::MAX).count(), 0);
        }
    }

    #[test]
    fn seeds_change_the_hash_and_it_spreads() {
        let a = ConnTable::<u8>::with_capacity(0, 1);
        let b = ConnTable::<u8>::with_capacity(0, 2);
        assert_ne!(a.hash(&key(5)), b.hash(&key(5)));
        // Sequential keys (one address byte, one port apart) land evenly in
        // 256 buckets by tag and by low bits.
        let (mut hi, mut lo) = ([0u32; 256], [0u32; 256]);
        let n = 256 * 1024;
        for i in 0..n {
            let h = a.hash(&key(i));
            hi[usize::from(h.to_be_bytes()[0])] += 1;
            lo[usize::from(h.to_le_bytes()[0])] += 1;
        }
        // Expected 1024 per bucket, σ ≈ 32: allow 6σ.
        for c in hi.iter().chain(&lo) {
            assert!((832..=1216).contains(c), "bucket count {c}");
        }
    }

    // ---- expiry ----

    /// Runs `expire` at `now` with unlimited budget; returns expired keys.
    fn expire_at<V: Default>(t: &mut ConnTable<V>, now: u32) -> Vec<FlowKey> {
        let mut out = Vec::new();
        let n = t.expire(now, usize::MAX, |_, k, _| out.push(*k));
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn entries_expire_at_their_tick() {
        let mut t = ConnTable::<u32>::with_capacity(10, 3);
        insert(&mut t, key(1), 1, 30).unwrap();
        insert(&mut t, key(2), 2, 31).unwrap();
        let mut got = Vec::new();
        for now in 0..30 {
            got.extend(expire_at(&mut t, now));
        }
        assert!(got.is_empty());
        assert_eq!(expire_at(&mut t, 30), [key(1)]);
        assert_eq!(find(&t, &key(1)), None);
        assert_eq!(expire_at(&mut t, 31), [key(2)]);
        assert!(t.is_empty());
        check(&mut t);
    }

    #[test]
    fn expired_callback_gets_id_key_and_value() {
        let mut t = ConnTable::<u32>::with_capacity(10, 3);
        let id = insert(&mut t, key(4), 44, 2).unwrap();
        let mut seen = None;
        t.expire(2, 8, |i, k, v| seen = Some((i, *k, v)));
        assert_eq!(seen, Some((id, key(4), 44)));
    }

    #[test]
    fn refreshed_entries_survive_and_shortened_expire_early() {
        let mut t = ConnTable::<u32>::with_capacity(10, 4);
        let live = insert(&mut t, key(1), 0, 10).unwrap();
        let fin = insert(&mut t, key(2), 0, 432_000).unwrap(); // 5 days
        for now in 0..100 {
            t.set_expiry(live, now + 10); // a packet every tick
            assert!(expire_at(&mut t, now).is_empty(), "at {now}");
        }
        t.set_expiry(fin, 120); // a FIN at tick 100: 20 ticks left
        t.set_expiry(live, 150);
        assert_eq!(t.expiry(fin), 120);
        for now in 100..120 {
            assert!(expire_at(&mut t, now).is_empty(), "at {now}");
        }
        assert_eq!(expire_at(&mut t, 120), [key(2)]);
        for now in 121..150 {
            assert!(expire_at(&mut t, now).is_empty(), "at {now}");
        }
        assert_eq!(expire_at(&mut t, 150), [key(1)]);
    }

    #[test]
    fn far_expiry_beyond_the_wheel_is_on_time() {
        use super::super::wheel::SPAN;
        let mut t = ConnTable::<u32>::with_capacity(4, 5);
        let far = 432_000; // 5 days of seconds, > 100 revolutions
        insert(&mut t, key(1), 0, far).unwrap();
        insert(&mut t, key(2), 0, SPAN + 3).unwrap();
        let mut when = Vec::new();
        for now in 0..=far {
            for k in expire_at(&mut t, now) {
                when.push((k, now));
            }
        }
        assert_eq!(when, [(key(2), SPAN + 3), (key(1), far)]);
    }

    #[test]
    fn budget_limits_each_call_and_the_rest_follows() {
        let mut t = ConnTable::<u32>::with_capacity(100, 6);
        for n in 0..100 {
            insert(&mut t, key(n), 0, 7).unwrap();
        }
        // Not yet due: nothing is touched, whatever the budget.
        assert_eq!(t.expire(6, 1000, |_, _, _| ()), 0);
        assert_eq!(t.len(), 100);
        let mut calls = 0;
        while !t.is_empty() {
            let want = t.len().min(30);
            assert_eq!(t.expire(7, 30, |_, _, _| ()), want);
            calls += 1;
        }
        assert_eq!(calls, 4);
        check(&mut t);
    }

    #[test]
    fn expire_looks_only_at_due_slots() {
        let mut t = ConnTable::<u32>::with_capacity(100, 6);
        let later: Vec<u32> = (0..50)
            .map(|n| insert(&mut t, key(n), 0, 1000 + n).unwrap())
            .collect();
        let extended = insert(&mut t, key(99), 0, 5).unwrap();
        t.set_expiry(extended, 2000);
        let timers = |t: &ConnTable<u32>| -> Vec<Timer> {
            later
                .iter()
                .map(|&id| t.entries[id as usize].timer)
                .collect()
        };
        let before = timers(&t);
        // At tick 5 the extended entry is relinked; the 50 later entries
        // (their links and expiry) are never touched until their tick.
        for now in 0..1000 {
            assert_eq!(t.expire(now, 1, |_, _, _| ()), 0);
        }
        assert_eq!(timers(&t), before);
        assert_eq!(t.len(), 51);
        assert_eq!(t.expire(1000, 1, |_, _, _| ()), 1);
        check(&mut t);
    }

    #[test]
    fn removal_unlinks_from_the_wheel() {
        let mut t = ConnTable::<u32>::with_capacity(4, 8);
        let a = insert(&mut t, key(1), 0, 3).unwrap();
        insert(&mut t, key(2), 0, 3).unwrap();
        t.remove(a);
        check(&mut t);
        assert_eq!(expire_at(&mut t, 3), [key(2)]);
        check(&mut t);
    }

    // ---- size and scale ----

    #[test]
    fn entry_overhead() {
        #[derive(Default)]
        #[allow(dead_code)]
        struct Align8([u64; 11]);
        #[derive(Default)]
        #[allow(dead_code)]
        struct Align8Small([u64; 9]);
        let key = mem::size_of::<FlowKey>();
        assert_eq!(key, 38);
        assert_eq!(mem::size_of::<Timer>(), 12);
        let e88 = mem::size_of::<Entry<[u8; 88]>>();
        let e88w = mem::size_of::<Entry<Align8>>();
        let e72w = mem::size_of::<Entry<Align8Small>>();
        println!(
            "Entry<[u8; 88]> = {e88} bytes, bookkeeping {}",
            e88 - key - 88
        );
        println!(
            "Entry<88 bytes align 8> = {e88w} bytes, bookkeeping {}",
            e88w - key - 88
        );
        println!("Entry<72 bytes align 8> = {e72w} bytes");
        assert_eq!((e88, e88w, e72w), (140, 144, 128));
        #[derive(Default)]
        #[allow(dead_code)]
        struct Align4([u32; 22]);
        assert_eq!(mem::size_of::<Entry<Align4>>(), 140);
        let t = ConnTable::<Align4>::with_capacity(1000, 0);
        let slot_bytes = t.slots.len() * 8;
        assert_eq!(slot_bytes, 10_008, "10 bytes of index per entry");
        println!("1000 entries: {} bytes", t.memory_bytes());
        // The table's `Conn` row.
        assert_eq!(mem::size_of::<Entry<super::super::conn::Conn>>(), 124);
    }

    /// The 1M-connection shard of the requirements, with a tracker-sized
    /// value (88 bytes), filled to the brim (about 2 s in a debug build).
    #[test]
    fn a_million_connections() {
        #[derive(Default)]
        struct Conn([u32; 22]);
        let n: u32 = 1_000_000;
        let mut t = ConnTable::<Conn>::with_capacity(n as usize, 42);
        assert_eq!(t.memory_bytes() / 1_000_000, 150, "the documented 150 MB");
        for i in 0..n {
            let mut v = Conn::default();
            v.0[0] = i;
            insert(&mut t, key(i), v, 10).unwrap();
        }
        assert!(t.is_full());
        assert_eq!(t.len(), n as usize);
        for i in 0..n {
            let id = find(&t, &key(i)).unwrap();
            assert_eq!(t.get(id).0[0], i);
        }
        assert_eq!(insert(&mut t, key(n), Conn::default(), 10), Err(Full));
        assert_eq!(t.expire(10, usize::MAX, |_, _, _| ()), n as usize);
        assert!(t.is_empty());
    }
}
