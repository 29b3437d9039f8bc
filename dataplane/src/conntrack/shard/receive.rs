//! The receiving side of a shard: the partner's records become larval
//! entries (see the [`super`] docs), updates never go backwards, unknown
//! names are asked for, bulks' ends and partner restarts drop what is stale.

use super::*;
use crate::conntrack::event::InboundQueue;

/// What the receiving side did with the partner's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// New larval entries.
    pub installed: u64,
    /// Full states that replaced an entry held under the same name or key.
    pub replaced: u64,
    /// Compact updates applied.
    pub updated: u64,
    /// Updates older than what the entry holds, not applied.
    pub stale: u64,
    /// Updates for a name this shard does not hold (the full state is asked for).
    pub unknown: u64,
    /// Deletes applied.
    pub deleted: u64,
    /// Deletes for a name this shard does not hold.
    pub unknown_deletes: u64,
    /// Records with a state value out of range.
    pub bad: u64,
    /// Full states refused because the table is full (none is evicted).
    pub table_full: u64,
    /// Adopted entries dropped by a flush (the partner restarted).
    pub flushed: u64,
    /// Adopted entries a bulk did not refresh, dropped at its end.
    pub purged: u64,
    /// Digest checks that found a difference.
    pub digest_mismatches: u64,
    /// Digest checks that agreed.
    pub digest_matches: u64,
}

/// Seconds an adopted entry outlives the timeout its record gave: the
/// partner's delete normally comes first, so the two tables agree.
pub const LARVAL_GRACE: u32 = 30;

/// Items a burst of [`Shard::receive_from`] prefetches together.
const RECEIVE_BURST: usize = 16;

impl Shard {
    /// Takes up to `budget` items from `queue` and handles them at `now`
    /// (seconds), in order; returns how many. Installing is memory-bound (the
    /// name's index slot, the key's slot, the entry: three misses on a large
    /// table), so a burst of items is taken first and their loads started a
    /// stage at a time, letting the misses of the burst overlap, as the
    /// worker does for a burst of packets.
    pub fn receive_from(&mut self, queue: &InboundQueue, budget: usize, now: u32) -> usize {
        let mut done = 0;
        let mut burst = [Inbound::SendDigest; RECEIVE_BURST];
        while done < budget {
            let mut n = 0;
            while n < RECEIVE_BURST && done + n < budget {
                let Some(item) = queue.pop() else { break };
                burst[n] = item;
                n += 1;
            }
            if n == 0 {
                break;
            }
            let items = &burst[..n];
            for item in items {
                match item {
                    Inbound::Install(r) => self.table.prefetch_slot(self.table.hash(&r.key)),
                    Inbound::Update { id, .. } | Inbound::Delete(id) => {
                        self.sync.adopted.prefetch(*id);
                    }
                    _ => {}
                }
            }
            for item in items {
                match item {
                    Inbound::Install(r) => self.table.prefetch_entry(self.table.hash(&r.key)),
                    Inbound::Update { id, .. } | Inbound::Delete(id) => {
                        if let Some(local) = self.sync.adopted.get(*id) {
                            self.table.prefetch_id(local);
                        }
                    }
                    _ => {}
                }
            }
            for item in items {
                self.receive(*item, now);
            }
            done += n;
        }
        done
    }

    /// Larval entries forward from now on (this unit took over); each leaves
    /// its larval state at its first packet, and, larval or not, they are
    /// this unit's to tell the partner about (changes, deletes, bulks) as its
    /// own are. `false` stops that again. The worker calls it when the
    /// unit's role changes (the workers' `HaSignals`).
    pub fn go_live(&mut self, live: bool) {
        self.sync.live = live;
    }

    /// Handles one item from the sync lcore at `now` (seconds).
    pub fn receive(&mut self, item: Inbound, now: u32) {
        match item {
            Inbound::Install(r) => self.install(&r, now),
            Inbound::Update { id, rss, progress } => self.update(id, rss, &progress, now),
            Inbound::Delete(id) => match self.adopted_entry(id) {
                Some(local) => {
                    self.remove(local);
                    self.received.deleted += 1;
                }
                None => self.received.unknown_deletes += 1,
            },
            Inbound::Digest(theirs) => {
                let ours = self.sync.digest;
                if ours == theirs {
                    self.received.digest_matches += 1;
                } else {
                    self.received.digest_mismatches += 1;
                }
                let refused = self.received.table_full + self.received.bad;
                self.sync.events.push(Event::DigestChecked {
                    theirs,
                    ours,
                    refused,
                });
            }
            // A live shard's entries are this unit's connections now: only a
            // shard still holding the partner's (larval) ones drops them.
            Inbound::BulkEnd(_) | Inbound::Flush if self.sync.live => {}
            Inbound::BulkEnd(started) => {
                // Last told before the bulk began (in 16-bit second arithmetic).
                let before = |conn: &Conn| {
                    let age = low16(started).wrapping_sub(conn.synced_at);
                    age != 0 && age < 0x8000
                };
                self.received.purged += self.drop_adopted(before);
            }
            Inbound::Flush => self.received.flushed += self.drop_adopted(|_| true),
            Inbound::Export => self.export(),
            Inbound::Request(id) => self.answer(id, now),
            Inbound::SendDigest => {
                let d = self.sync.digest;
                self.sync.events.push(Event::Digest(d));
            }
        }
    }

    /// The larval entry the partner named `id`, if this shard holds it.
    fn adopted_entry(&self, id: SyncId) -> Option<u32> {
        self.sync.adopted.get(id)
    }

    fn install(&mut self, r: &Record, now: u32) {
        let Ok(mut conn) = r.larval(self.rules_revision(), now) else {
            self.received.bad += 1;
            return;
        };
        conn.flags |= self.parity;
        conn.synced_at = low16(now);
        let expires = now
            .saturating_add(r.progress.timeout)
            .saturating_add(LARVAL_GRACE);
        // What this shard holds under the name or the key is replaced: the
        // partner's full state is the newer truth.
        let hash = self.table.hash(&r.key);
        let by_name = self.adopted_entry(r.id);
        let by_key = self.table.find(&r.key, hash);
        if by_name.is_some() || by_key.is_some() {
            self.received.replaced += 1;
        }
        for local in [by_name, by_key].into_iter().flatten() {
            if self.table.is_live(local) {
                let key = *self.table.key(local);
                let old = self.table.remove(local);
                // Quietly: the partner knows, it told us.
                self.sync.forget(local, &key, &old);
            }
        }
        let Ok(local) = self.table.insert(r.key, hash, conn, expires) else {
            self.received.table_full += 1;
            return;
        };
        if self.sync.adopted.insert(r.id, local).is_err() {
            // Sized like the table, so this cannot happen; never leave an
            // entry without its name.
            self.table.remove(local);
            self.received.table_full += 1;
            return;
        }
        self.sync.adopted_ids[local as usize] = r.id;
        self.sync.digest.add(&r.key, &conn.l4);
        self.received.installed += 1;
    }

    fn update(&mut self, id: SyncId, rss: u16, p: &crate::conntrack::record::Progress, now: u32) {
        let Some(local) = self.adopted_entry(id) else {
            self.received.unknown += 1;
            self.sync.events.push(Event::Unknown { id, rss });
            return;
        };
        let conn = self.table.get(local);
        let before = conn.l4;
        let mut l4 = conn.l4;
        match apply_progress(&mut l4, p) {
            Ok(()) => {
                let key = *self.table.key(local);
                let d = &mut self.sync.digest;
                d.sum = d
                    .sum
                    .wrapping_sub(Digest::term(&key, &before))
                    .wrapping_add(Digest::term(&key, &l4));
                let conn = self.table.get_mut(local);
                conn.l4 = l4;
                conn.synced_at = low16(now);
                let expires = now.saturating_add(p.timeout).saturating_add(LARVAL_GRACE);
                self.table.set_expiry(local, expires);
                self.received.updated += 1;
            }
            Err(NotApplied::Stale) => self.received.stale += 1,
            Err(NotApplied::Bad) => self.received.bad += 1,
        }
    }

    /// The partner asked for an entry's full state.
    fn answer(&mut self, id: SyncId, now: u32) {
        let local = if id.creator() == self.sync.creator && id.worker() == self.sync.worker {
            Some(id.slot())
                .filter(|&s| self.table.is_live(s) && self.table.get(s).flags & flag::ADOPTED == 0)
        } else {
            self.adopted_entry(id)
        };
        if let Some(local) = local {
            if self.sync.ours(self.table.get(local)) {
                let record = self.record(local, now);
                self.sync.events.push(Event::Conn {
                    kind: EventKind::Requested,
                    record,
                });
            }
        }
    }

    /// Drops every adopted larval entry for which `doomed` says so; returns
    /// how many. A whole-table walk: rare (a partner restart, a bulk's end).
    fn drop_adopted(&mut self, doomed: impl Fn(&Conn) -> bool) -> u64 {
        let mut dropped = 0;
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for id in 0..capacity {
            if !self.table.is_live(id) {
                continue;
            }
            let conn = self.table.get(id);
            if conn.flags & (flag::ADOPTED | flag::LARVAL) == flag::ADOPTED | flag::LARVAL
                && doomed(conn)
            {
                self.remove(id);
                dropped += 1;
            }
        }
        dropped
    }
}
