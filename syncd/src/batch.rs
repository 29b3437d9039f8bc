//! Packing the workers' state changes into datagram bodies. A body leaves
//! (pfsync's rules) when the next record would pass the HA link's MTU, when
//! its oldest record has waited the flush delay, or when one entry has been
//! updated `flush_updates` times in it — a newer compact update of an entry
//! replaces the older one in place, so a busy connection costs one record
//! per datagram, not one per packet.

use crate::wire::{BodyWriter, Full, Message};
use dataplane::conntrack::record::SyncId;

/// An entry with a compact update in the body being filled.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: SyncId,
    /// The record's offset in the body.
    at: usize,
    /// Updates it stands for; 0 once a full state or a delete of the same
    /// name followed (a later update must not be folded back before those).
    count: u32,
    /// Its slot in the index.
    slot: usize,
}

/// One body being filled.
#[derive(Debug)]
pub struct Batch {
    writer: BodyWriter,
    /// When its first record was added.
    opened_at: Option<u64>,
    /// Entries with a compact update in this body, in order.
    updates: Vec<Pending>,
    /// Open addressing over `updates` (index + 1; 0 is free), at least twice
    /// as many slots as a body has records: finding an entry's update is one
    /// or two probes however many the body holds (a 9000-byte body holds 277,
    /// and a scan of them cost more than packing and sealing together).
    index: Vec<u32>,
    mask: usize,
    /// Bit n: shard n has records in it (all ones past 63).
    shards: u64,
    /// An entry reached `flush_updates`.
    flush_now: bool,
    flush_delay_ns: u64,
    flush_updates: u32,
    /// Updates folded into an earlier one.
    coalesced: u64,
}

impl Batch {
    /// A batch of bodies of at most `capacity` bytes.
    pub fn new(capacity: usize, flush_delay_ns: u64, flush_updates: u32) -> Batch {
        let most = capacity / crate::wire::UPDATE_LEN + 1;
        let slots = (2 * most + 2).next_power_of_two();
        Batch {
            writer: BodyWriter::new(capacity),
            opened_at: None,
            updates: Vec::with_capacity(most),
            index: vec![0; slots],
            mask: slots - 1,
            shards: 0,
            flush_now: false,
            flush_delay_ns,
            flush_updates: flush_updates.max(1),
            coalesced: 0,
        }
    }

    fn home(&self, id: SyncId) -> usize {
        // The high bits of a multiplicative hash; the mask keeps them in range.
        #[allow(clippy::cast_possible_truncation)]
        let h = (id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        h & self.mask
    }

    /// The live pending update of `id`, if any.
    fn find(&self, id: SyncId) -> Option<usize> {
        let mut i = self.home(id);
        loop {
            let k = self.index[i] as usize;
            if k == 0 {
                return None;
            }
            let u = &self.updates[k - 1];
            if u.id == id && u.count > 0 {
                return Some(k - 1);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// A full state or a delete of `id` follows its update: later updates go
    /// after it.
    fn forget(&mut self, id: SyncId) {
        if self.updates.is_empty() {
            return;
        }
        if let Some(k) = self.find(id) {
            self.updates[k].count = 0;
        }
    }

    fn remember(&mut self, id: SyncId, at: usize) {
        let mut i = self.home(id);
        while self.index[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.updates.push(Pending {
            id,
            at,
            count: 1,
            slot: i,
        });
        // At most one per record of a body: far below `u32::MAX`.
        self.index[i] = u32::try_from(self.updates.len()).unwrap_or(u32::MAX);
    }

    /// Adds a message about shard `shard` (if any) at `now_ns`; [`Full`] when
    /// the body must leave first (then nothing was added).
    pub fn push(&mut self, now_ns: u64, m: &Message, shard: Option<usize>) -> Result<(), Full> {
        match *m {
            Message::Update { id, .. } => {
                if let Some(k) = self.find(id) {
                    let u = &mut self.updates[k];
                    self.writer.rewrite(u.at, m);
                    u.count += 1;
                    self.coalesced += 1;
                    if u.count >= self.flush_updates {
                        self.flush_now = true;
                    }
                    return Ok(());
                }
                let at = self.writer.push(m)?;
                self.remember(id, at);
                if self.flush_updates == 1 {
                    self.flush_now = true;
                }
            }
            // A later update of the same name belongs after these, never
            // folded into an update written before them.
            Message::Insert(r) => {
                self.writer.push(m)?;
                self.forget(r.id);
            }
            Message::Delete { id, .. } => {
                self.writer.push(m)?;
                self.forget(id);
            }
            _ => {
                self.writer.push(m)?;
            }
        }
        self.opened_at.get_or_insert(now_ns);
        if let Some(s) = shard {
            self.shards |= if s < 64 { 1 << s } else { u64::MAX };
        }
        Ok(())
    }

    /// Whether the body should leave now.
    pub fn due(&self, now_ns: u64) -> bool {
        self.opened_at
            .is_some_and(|t| self.flush_now || now_ns.saturating_sub(t) >= self.flush_delay_ns)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.writer.as_bytes()
    }

    /// Records in it.
    pub fn records(&self) -> usize {
        self.writer.records()
    }

    /// The shards whose records it carries (bit n = shard n).
    pub fn shards(&self) -> u64 {
        self.shards
    }

    /// Updates folded into an earlier one so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// Starts the next body.
    pub fn clear(&mut self) {
        self.writer.clear();
        for u in &self.updates {
            self.index[u.slot] = 0;
        }
        self.updates.clear();
        self.opened_at = None;
        self.shards = 0;
        self.flush_now = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{records, Kind, SECTION_LEN, UPDATE_LEN};
    use dataplane::conntrack::record::Progress;

    fn update(id: u64, state: u8) -> Message {
        Message::Update {
            id: SyncId(id),
            rss: 0,
            progress: Progress {
                state,
                ..Progress::default()
            },
        }
    }

    #[test]
    fn leaves_after_the_delay() {
        let mut b = Batch::new(1400, 1_000_000, 4);
        assert!(!b.due(0));
        b.push(10, &update(1, 1), Some(0)).unwrap();
        assert!(!b.due(1_000_009));
        assert!(b.due(1_000_010));
        b.clear();
        assert!(b.is_empty() && !b.due(u64::MAX));
    }

    #[test]
    fn a_busy_entry_costs_one_record_and_flushes_after_n_updates() {
        let mut b = Batch::new(1400, 1_000_000, 3);
        b.push(0, &update(1, 1), Some(0)).unwrap();
        b.push(0, &update(2, 1), Some(1)).unwrap();
        b.push(0, &update(1, 2), Some(0)).unwrap();
        assert!(!b.due(0));
        b.push(0, &update(1, 3), Some(0)).unwrap();
        assert!(b.due(0), "third update of entry 1");
        assert_eq!((b.records(), b.coalesced(), b.shards()), (2, 2, 0b11));
        let got: Vec<_> = records(Kind::Data, b.body()).map(Result::unwrap).collect();
        assert_eq!(got, [update(1, 3), update(2, 1)]);
    }

    #[test]
    fn an_update_after_a_delete_of_its_name_is_not_folded_back() {
        let mut b = Batch::new(1400, 1_000_000, 8);
        b.push(0, &update(1, 1), None).unwrap();
        b.push(
            0,
            &Message::Delete {
                id: SyncId(1),
                rss: 0,
            },
            None,
        )
        .unwrap();
        b.push(0, &update(1, 2), None).unwrap();
        let got: Vec<_> = records(Kind::Data, b.body()).map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_large_body_folds_each_entry_and_starts_clean() {
        let mut b = Batch::new(8884, 1_000_000, 8);
        let most = (8884 - SECTION_LEN) / UPDATE_LEN;
        for round in 1..=3 {
            for id in 0..most as u64 {
                b.push(0, &update(id, round), None).unwrap();
            }
        }
        assert_eq!((b.records(), b.coalesced()), (most, 2 * most as u64));
        let got: Vec<_> = records(Kind::Data, b.body()).map(Result::unwrap).collect();
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, m)| *m == update(i as u64, 3)));
        b.clear();
        b.push(0, &update(7, 1), None).unwrap();
        assert_eq!((b.records(), b.coalesced()), (1, 2 * most as u64));
    }

    #[test]
    fn full_means_nothing_was_added() {
        let mut b = Batch::new(SECTION_LEN + UPDATE_LEN, 1, 8);
        b.push(0, &update(1, 1), None).unwrap();
        assert_eq!(b.push(0, &update(2, 1), None), Err(Full));
        assert_eq!(b.body().len(), SECTION_LEN + UPDATE_LEN);
    }
}
