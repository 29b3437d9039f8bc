//! The shard's background work, a bounded amount per [`Shard::service`]
//! call: refused deletes and marked entries sent again, bulk exports, the
//! renumbering of rule indexes after a reload, and connections that became old
//! enough to be synchronised.

use super::*;

impl Shard {
    /// A `SYNC_LATER` entry old enough becomes synchronised: the partner
    /// hears of it now, in full. Returns whether it did.
    pub(super) fn mature(&mut self, id: u32, now: u32) -> bool {
        let conn = self.table.get(id);
        if conn.flags & flag::SYNC_LATER == 0 || now.saturating_sub(conn.created) < self.min_age {
            return false;
        }
        let key = *self.table.key(id);
        let conn = self.table.get_mut(id);
        conn.flags = (conn.flags & !flag::SYNC_LATER) | flag::SYNC;
        let l4 = conn.l4;
        self.sync.young = self.sync.young.saturating_sub(1);
        self.sync.digest.add(&key, &l4);
        self.emit(id, EventKind::Created, now);
        true
    }

    fn mature_walk(&mut self, now: u32) {
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if self.sync.young == 0 || !self.sync.events.has_headroom() {
                return;
            }
            if self.mature_cursor >= capacity {
                self.mature_cursor = 0;
            }
            let id = self.mature_cursor;
            if self.table.is_live(id) {
                self.mature(id, now);
            }
            self.mature_cursor += 1;
        }
    }

    /// Background work, a bounded amount per call (the worker calls it every
    /// few milliseconds): refused deletes and marked entries go again while
    /// the event queue has headroom, a bulk export proceeds, and a reload's
    /// renumbering proceeds.
    pub fn service(&mut self, now: u32) {
        while let Some(&(id, key)) = self.sync.lost_deletes.front() {
            if !self.sync.events.has_headroom()
                || !self.sync.events.push(Event::Deleted { id, key })
            {
                break;
            }
            self.sync.lost_deletes.pop_front();
        }
        if self.sync.resend_pending > 0 && self.sync.lost_deletes.is_empty() {
            self.resend_walk(now);
        }
        if self.export_cursor.is_some() {
            self.export_walk(now);
        }
        if self.renumber.is_some() {
            self.renumber_walk();
        }
        if self.sync.young > 0 {
            self.mature_walk(now);
        }
    }

    fn resend_walk(&mut self, now: u32) {
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if self.resend_cursor >= capacity {
                self.resend_cursor = 0;
            }
            let id = self.resend_cursor;
            if !self.sync.events.has_headroom() {
                return;
            }
            if self.table.is_live(id) && self.table.get(id).flags & flag::RESEND != 0 {
                let record = self.record(id, now);
                let event = Event::Conn {
                    kind: EventKind::Resent,
                    record,
                };
                if !self.sync.events.push(event) {
                    return;
                }
                let entry = self.table.get_mut(id);
                entry.flags &= !flag::RESEND;
                entry.synced_at = low16(now);
                self.sync.resend_pending -= 1;
                self.stats.resent += 1;
                if self.sync.resend_pending == 0 {
                    return;
                }
            }
            self.resend_cursor += 1;
        }
    }

    fn export_walk(&mut self, now: u32) {
        let Some(mut cursor) = self.export_cursor else {
            return;
        };
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if !self.sync.events.has_headroom() {
                break;
            }
            if cursor >= capacity {
                if self.sync.events.push(Event::BulkDone) {
                    self.export_cursor = None;
                    return;
                }
                break;
            }
            if self.table.is_live(cursor) && self.sync.ours(self.table.get(cursor)) {
                let record = self.record(cursor, now);
                let event = Event::Conn {
                    kind: EventKind::Exported,
                    record,
                };
                if !self.sync.events.push(event) {
                    break;
                }
                self.stats.exported += 1;
            }
            cursor += 1;
        }
        self.export_cursor = Some(cursor);
    }

    /// Starts streaming the whole table (synchronised, not larval entries),
    /// long-idle ones included, paced by [`Shard::service`]; then
    /// [`Event::BulkDone`]. Asked again while one runs, it starts over.
    pub fn export(&mut self) {
        self.export_cursor = Some(0);
    }

    /// Whether a bulk export is in progress.
    pub fn exporting(&self) -> bool {
        self.export_cursor.is_some()
    }

    /// Puts a new rule set in force for new entries: `revision` is its
    /// content hash, `map` takes each index of the set in force until now to
    /// its index in the new one ([`NO_RULE`] when it is gone). Existing
    /// entries keep meaning the old set until the walker has renumbered them.
    /// Returns `false` (and changes nothing) while the last renumbering runs.
    pub fn renumber_rules(&mut self, revision: u64, map: Vec<u16>) -> bool {
        if self.renumber.is_some() {
            return false;
        }
        self.parity ^= flag::RULES_ODD;
        self.revisions[usize::from(self.parity != 0)] = revision;
        if !self.table.is_empty() {
            self.renumber = Some(Renumber { map, cursor: 0 });
        }
        true
    }

    /// Whether a renumbering is still in progress.
    pub fn renumbering(&self) -> bool {
        self.renumber.is_some()
    }

    /// The rule set revision new entries' rule indexes refer to.
    pub fn rules_revision(&self) -> u64 {
        self.revisions[usize::from(self.parity != 0)]
    }

    fn renumber_walk(&mut self) {
        let Some(r) = self.renumber.as_mut() else {
            return;
        };
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        let end = r
            .cursor
            .saturating_add(u32::try_from(4 * WALK_BUDGET).unwrap_or(u32::MAX))
            .min(capacity);
        for id in r.cursor..end {
            if !self.table.is_live(id) {
                continue;
            }
            let conn = self.table.get_mut(id);
            if conn.flags & flag::RULES_ODD != self.parity {
                conn.flags ^= flag::RULES_ODD;
                if usize::from(conn.rule) < r.map.len() {
                    conn.rule = r.map[usize::from(conn.rule)];
                } else if conn.rule != DEFAULT_RULE {
                    conn.rule = NO_RULE;
                }
                self.stats.renumbered += 1;
            }
        }
        r.cursor = end;
        if end >= capacity {
            self.renumber = None;
        }
    }
}
