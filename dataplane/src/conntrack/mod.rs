//! Connection tracking: one shard per worker, owned outright.
//!
//! * [`shard`]: one worker's tracking: the decisions the firewall asks for.
//! * [`conn`]: what the table holds per connection, and the pseudo-states
//!   of connectionless protocols.
//! * [`event`]: the queues between a worker and the sync lcore, both ways.
//! * [`record`]: a connection as the two units of a pair tell each other
//!   about it (names, rule references, compact updates, digests).
//! * [`id_index`]: the partner's names of adopted entries.
//! * [`key`]: the direction-independent flow key.
//! * [`table`]: the fixed-capacity, preallocated connection table of one shard.
//! * [`wheel`]: the per-worker timer wheel that expires entries incrementally.
//! * [`rss`]: the symmetric Toeplitz hash that says which worker owns a flow.
//! * [`tcp`]: TCP state machine and sequence-window tracking (as strict as
//!   Linux conntrack with `nf_conntrack_tcp_loose=0`).

pub mod conn;
pub mod event;
pub mod id_index;
pub mod key;
pub mod record;
pub mod rss;
pub mod shard;
pub mod table;
pub mod tcp;
pub mod wheel;

pub use key::{FlowKey, Side};

#[cfg(test)]
mod tcp_tests;

#[cfg(test)]
mod shard_tests;
