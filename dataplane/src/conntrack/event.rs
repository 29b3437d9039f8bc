//! State-change events: what a worker tells syncd about its connections.
//!
//! Each worker owns one bounded lock-free queue (crossbeam's `ArrayQueue`)
//! and is its only producer; syncd is the consumer. The worker never blocks
//! on it: a full queue counts the overflow and the caller marks the entry
//! `RESEND`, so the next reconciliation pass sends its full state — nothing is
//! silently lost.

use super::conn::Conn;
use super::key::FlowKey;
use crate::counters::Counter;
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

/// Why an event was emitted.
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
    /// The entry was removed (expired, reset, reopened).
    Deleted,
    /// A long-lived entry is still alive: extend the partner's copy.
    Refresh,
}

/// One change, with the connection's full state (so the partner can
/// install it from this event alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The connection.
    pub key: FlowKey,
    /// Its state after the change.
    pub conn: Conn,
    /// Seconds of life left at the time of the event.
    pub timeout: u32,
}

/// The producer end of one worker's event queue.
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

    /// Takes the oldest event (the consumer side: syncd, or a test).
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
}
