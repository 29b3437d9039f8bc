//! Packing the workers' state changes into datagram bodies. A body leaves
//! (pfsync's rules) when the next record would pass the HA link's MTU, when
//! its oldest record has waited the flush delay, or when one entry has been
//! updated `flush_updates` times in it — a newer compact update of an entry
//! replaces the older one in place, so a busy connection costs one record
//! per datagram, not one per packet.

use crate::wire::{BodyWriter, Full, Message};
use dataplane::conntrack::record::SyncId;

/// One body being filled.
#[derive(Debug)]
pub struct Batch {
    writer: BodyWriter,
    /// When its first record was added.
    opened_at: Option<u64>,
    /// Entries with a compact update in this body: the record's offset and
    /// how many updates it stands for.
    updates: Vec<(SyncId, usize, u32)>,
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
        Batch {
            writer: BodyWriter::new(capacity),
            opened_at: None,
            updates: Vec::with_capacity(capacity / crate::wire::UPDATE_LEN + 1),
            shards: 0,
            flush_now: false,
            flush_delay_ns,
            flush_updates: flush_updates.max(1),
            coalesced: 0,
        }
    }

    /// Adds a message about shard `shard` (if any) at `now_ns`; [`Full`] when
    /// the body must leave first (then nothing was added).
    pub fn push(&mut self, now_ns: u64, m: &Message, shard: Option<usize>) -> Result<(), Full> {
        match *m {
            Message::Update { id, .. } => {
                if let Some(u) = self.updates.iter_mut().find(|u| u.0 == id) {
                    self.writer.rewrite(u.1, m);
                    u.2 += 1;
                    self.coalesced += 1;
                    if u.2 >= self.flush_updates {
                        self.flush_now = true;
                    }
                    return Ok(());
                }
                let at = self.writer.push(m)?;
                self.updates.push((id, at, 1));
                if self.flush_updates == 1 {
                    self.flush_now = true;
                }
            }
            // A later update of the same name belongs after these, never
            // folded into an update written before them.
            Message::Insert(r) => {
                self.writer.push(m)?;
                self.updates.retain(|u| u.0 != r.id);
            }
            Message::Delete { id, .. } => {
                self.writer.push(m)?;
                self.updates.retain(|u| u.0 != id);
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
    fn full_means_nothing_was_added() {
        let mut b = Batch::new(SECTION_LEN + UPDATE_LEN, 1, 8);
        b.push(0, &update(1, 1), None).unwrap();
        assert_eq!(b.push(0, &update(2, 1), None), Err(Full));
        assert_eq!(b.body().len(), SECTION_LEN + UPDATE_LEN);
    }
}
