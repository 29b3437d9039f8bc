//! The two queues between a worker and the sync lcore, one pair per worker,
//! both bounded lock-free `ArrayQueue`s with one producer and one consumer
//! and no allocation per item:
//!
//! ```text
//!  worker w ── EventQueue (what changed in shard w) ──► sync lcore ──► partner
//!  worker w ◄── InboundQueue (records for shard w) ◄── sync lcore ◄── partner
//! ```
//!
//! The worker never blocks on either. The contract that makes "nothing is
//! silently lost" true lives in the shard ([`super::shard`]): an event the
//! queue refuses is counted and remembered — the entry is marked `RESEND`
//! (its full state goes again) or, for a delete, kept in a bounded record of
//! refused deletes — and re-offered when the queue has room; what even that
//! cannot hold is caught by the digests, which resynchronise the shard.

use super::key::FlowKey;
use super::record::{Digest, Progress, Record, SyncId};
use crate::counters::Counter;
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

/// Why a connection's state is being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A connection was created.
    Created,
    /// TCP reached ESTABLISHED (or a pseudo-state flow saw its first reply).
    Established,
    /// Any other state transition.
    StateChanged,
    /// The connection started to close (FIN or RST seen).
    Closing,
    /// A long-lived entry is still alive: extend the partner's copy.
    Refresh,
    /// Its earlier event was refused by a full queue: the full state again.
    Resent,
    /// Part of a bulk: the whole table, streamed to a partner that joins.
    Exported,
    /// The partner asked for it (it had an update for a name it did not know).
    Requested,
}

impl EventKind {
    /// Whether the partner needs the full state (it may not have the entry),
    /// rather than only what changed.
    pub fn full(self) -> bool {
        matches!(
            self,
            EventKind::Created | EventKind::Resent | EventKind::Exported | EventKind::Requested
        )
    }
}

/// What a worker tells the sync lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A synchronised connection's state, full (the partner can install it
    /// from this alone) whatever the kind; the kind says whether the partner
    /// needs all of it ([`EventKind::full`]).
    Conn {
        /// Why.
        kind: EventKind,
        /// The state after the change.
        record: Record,
    },
    /// The connection is gone (expired, reset, reopened).
    Deleted {
        /// Its name.
        id: SyncId,
        /// Its key (for the flow hash that picks the partner's shard).
        key: FlowKey,
    },
    /// The digest of this shard's synchronised entries at this point of its
    /// stream (the partner compares once it has applied everything before).
    Digest(Digest),
    /// The last record of the bulk this shard was asked for.
    BulkDone,
    /// (Receiving side) this shard compared its digest with the partner's;
    /// if they differ, the partner should send this shard again.
    DigestChecked {
        /// What the partner said.
        theirs: Digest,
        /// What this shard holds.
        ours: Digest,
        /// The partner's records this shard has refused so far (table full,
        /// state out of range): a difference they explain is not healed by
        /// sending the shard again.
        refused: u64,
    },
    /// (Receiving side) an update named an entry this shard does not hold:
    /// ask the partner for its full state.
    Unknown {
        /// The partner's name for it.
        id: SyncId,
        /// Low 16 bits of its flow hash, as the update said.
        rss: u16,
    },
}

/// The producer end of one worker's event queue (and, cloned, the consumer's).
#[derive(Clone)]
pub struct EventQueue {
    queue: Arc<ArrayQueue<Event>>,
    /// Events accepted into the queue.
    pub sent: Arc<Counter>,
    /// Events refused because the queue was full.
    pub overflow: Arc<Counter>,
}

impl EventQueue {
    /// A queue for `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Arc::new(ArrayQueue::new(capacity.max(1))),
            sent: Arc::default(),
            overflow: Arc::default(),
        }
    }

    /// Offers an event; `false` when the queue is full (counted).
    #[inline]
    pub fn push(&self, e: Event) -> bool {
        match self.queue.push(e) {
            Ok(()) => {
                self.sent.inc();
                true
            }
            Err(_) => {
                self.overflow.inc();
                false
            }
        }
    }

    /// Takes the oldest event (the consumer side: the sync lcore, or a test).
    pub fn pop(&self) -> Option<Event> {
        self.queue.pop()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether at least half the queue is free: background work (re-sends,
    /// bulk export) only queues then, so live events always find room.
    pub fn has_headroom(&self) -> bool {
        self.queue.len() <= self.queue.capacity() / 2
    }
}

/// What the sync lcore hands a worker for its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// A connection's full state from the partner: install it larval, or
    /// replace what this shard holds under its name or key.
    Install(Record),
    /// What changed in a connection the partner named.
    Update {
        /// The partner's name for it.
        id: SyncId,
        /// Low 16 bits of its flow hash (said back if the name is unknown).
        rss: u16,
        /// The change.
        progress: Progress,
    },
    /// The partner's connection is gone.
    Delete(SyncId),
    /// The partner's digest of the entries this shard should hold: compare.
    Digest(Digest),
    /// The bulk that began at this second (this unit's clock) ended: drop the
    /// adopted entries it did not refresh (the partner no longer has them).
    BulkEnd(u32),
    /// Drop every adopted entry still larval (the partner restarted without a
    /// takeover: what it said before is void). A shard that went live keeps
    /// its entries: they are this unit's connections now.
    Flush,
    /// (Sending side) stream the whole table as [`EventKind::Exported`]
    /// events, then [`Event::BulkDone`].
    Export,
    /// (Sending side) send the full state of this entry again.
    Request(SyncId),
    /// (Sending side) put the digest of this shard in the stream.
    SendDigest,
}

/// A worker's inbound queue (both ends).
#[derive(Clone)]
pub struct InboundQueue {
    queue: Arc<ArrayQueue<Inbound>>,
    /// Items refused because the queue was full (the sync lcore keeps them
    /// and retries: the channel only acknowledges what was handed over).
    pub full: Arc<Counter>,
}

impl InboundQueue {
    /// A queue for `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Arc::new(ArrayQueue::new(capacity.max(1))),
            full: Arc::default(),
        }
    }

    /// Offers an item (a copy: the caller keeps it); `false` when the queue is
    /// full (counted).
    #[inline]
    pub fn push(&self, item: Inbound) -> bool {
        let taken = self.queue.push(item).is_ok();
        if !taken {
            self.full.inc();
        }
        taken
    }

    /// Takes the oldest item (the worker).
    #[inline]
    pub fn pop(&self) -> Option<Inbound> {
        self.queue.pop()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Items that can be pushed now without refusal.
    pub fn room(&self) -> usize {
        self.queue.capacity() - self.queue.len()
    }
}
