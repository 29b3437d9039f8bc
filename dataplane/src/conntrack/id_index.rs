//! The names the partner gave: [`SyncId`] → this shard's entry, for entries
//! adopted from the partner (a unit finds the entries it created itself from
//! their names alone). Fixed capacity, allocated once, open addressing with
//! linear probing and backward-shift deletion (no tombstones), like the
//! connection table's own index.

use super::record::SyncId;

/// The index is full (it is sized to the table, so the table refuses first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sync id index full")]
pub struct IndexFull;

/// Adopted names → entry ids.
pub struct IdIndex {
    /// `(name, entry id + 1)`; 0 in the second field marks an empty slot.
    slots: Vec<(u64, u32)>,
    mask: usize,
    len: usize,
    capacity: usize,
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdIndex")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Names are dense in their low bits: spread them before taking a home.
fn mix(id: u64) -> u64 {
    super::table::splitmix_finish(id)
}

impl IdIndex {
    /// An index for `capacity` names (load factor at most 0.8).
    pub fn with_capacity(capacity: usize) -> IdIndex {
        let n = (capacity + capacity / 4 + 1).next_power_of_two();
        // Written, not `vec!`'d: zeroed memory from the allocator is only
        // mapped at its first touch, which would come page by page while a
        // bulk arrives (a page fault per record).
        let mut slots = Vec::with_capacity(n);
        slots.resize(n, (0, 0));
        touch(&mut slots);
        IdIndex {
            slots,
            mask: n - 1,
            len: 0,
            capacity,
        }
    }

    fn home(&self, id: SyncId) -> usize {
        // The mask keeps it in range; the truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let h = mix(id.0) as usize;
        h & self.mask
    }

    /// Starts loading the slot a lookup of `id` probes first.
    #[inline]
    pub fn prefetch(&self, id: SyncId) {
        if let Some(slot) = self.slots.get(self.home(id)) {
            memhint::prefetch::read(slot);
        }
    }

    /// The entry adopted under `id`.
    pub fn get(&self, id: SyncId) -> Option<u32> {
        let mut i = self.home(id);
        loop {
            let (k, v) = self.slots[i];
            if v == 0 {
                return None;
            }
            if k == id.0 {
                return Some(v - 1);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Records that `id` is entry `entry` (replacing what it named before).
    pub fn insert(&mut self, id: SyncId, entry: u32) -> Result<(), IndexFull> {
        let mut i = self.home(id);
        loop {
            let (k, v) = self.slots[i];
            if v == 0 {
                if self.len >= self.capacity {
                    return Err(IndexFull);
                }
                self.slots[i] = (id.0, entry.saturating_add(1));
                self.len += 1;
                return Ok(());
            }
            if k == id.0 {
                self.slots[i].1 = entry.saturating_add(1);
                return Ok(());
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Forgets `id`; returns the entry it named.
    pub fn remove(&mut self, id: SyncId) -> Option<u32> {
        let mut i = self.home(id);
        loop {
            let (k, v) = self.slots[i];
            if v == 0 {
                return None;
            }
            if k == id.0 {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let entry = self.slots[i].1 - 1;
        // Shift the rest of the cluster back over the hole.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let (k, v) = self.slots[j];
            if v == 0 {
                break;
            }
            let home = self.home(SyncId(k));
            // Movable when its home is not within (hole, j], cyclically.
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.slots[hole] = (0, 0);
        self.len -= 1;
        Some(entry)
    }

    /// Names held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every name.
    pub fn clear(&mut self) {
        self.slots.fill((0, 0));
        self.len = 0;
    }
}

/// Writes every element once, so that each page is mapped now (a store the
/// optimiser cannot drop: the values are read back).
pub(crate) fn touch<T: Copy>(v: &mut [T]) {
    for x in v.iter_mut() {
        *x = std::hint::black_box(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map_under_churn() {
        let mut ix = IdIndex::with_capacity(1000);
        let mut model = HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct names, so inserts, replaces and removes all happen.
            let id = SyncId((x % 1500) | (x & 0xff00_0000_0000_0000));
            if x & 1 == 0 {
                let r = ix.insert(id, step);
                if model.len() < 1000 || model.contains_key(&id) {
                    assert_eq!(r, Ok(()));
                    model.insert(id, step);
                } else {
                    assert_eq!(r, Err(IndexFull));
                }
            } else {
                assert_eq!(ix.remove(id), model.remove(&id));
            }
            assert_eq!(ix.len(), model.len());
        }
        for (id, v) in &model {
            assert_eq!(ix.get(*id), Some(*v));
        }
        ix.clear();
        assert!(ix.is_empty());
        assert_eq!(ix.get(*model.keys().next().unwrap()), None);
    }

    #[test]
    fn any_name_works_even_all_ones() {
        let mut ix = IdIndex::with_capacity(4);
        ix.insert(SyncId(u64::MAX), 0).unwrap();
        ix.insert(SyncId(0), 3).unwrap();
        assert_eq!(
            (ix.get(SyncId(u64::MAX)), ix.get(SyncId(0))),
            (Some(0), Some(3))
        );
        assert_eq!(ix.remove(SyncId(0)), Some(3));
        assert_eq!(ix.get(SyncId(0)), None);
    }
}
