//! # syncd — state synchronisation between the two units of an HA pair
//!
//! On the active unit the sync lcore drains every worker's state-change
//! queue, packs the records into MTU-sized datagrams (a versioned header, then
//! pfsync-style sub-headers each followed by fixed-size records), seals them
//! with AES-256-GCM under keys derived from the cluster's pre-shared key, and
//! delivers them reliably (sequence numbers, ack/nack, bounded retransmits)
//! on the HA links. On the passive unit it opens, checks order and replay, and
//! hands each record to the worker that owns its shard, which installs it as a
//! *larval* entry ready for a takeover.
//!
//! Every module here is pure: bytes and a clock (`now_ns`, nanoseconds of the
//! unit's monotonic clock) in, bytes and decisions out. The daemon (`mgmt`)
//! owns the loop that feeds them and the ports.
//!
//! * [`psk`]: the cluster's pre-shared key file.
//! * [`seal`]: AEAD, the HKDF key schedule, rotation with overlap, replay window.
//! * [`channel`]: sequence numbers, cumulative acks, nacks, the retransmit window.
//! * [`wire`]: the datagram: header, sub-headers, fixed-size records.
//! * [`session`]: the partner's identity and epochs, the keys between the two
//!   boots, and every check a datagram passes (each drop counted by reason).
//! * [`batch`]: packing state changes into bodies (MTU, delay, updates per entry).
//! * [`links`]: which HA links work, each way, and which one the stream uses.
//! * [`bulk`]: whole-table transfers, bracketed, timed out and retried.
//! * [`mgmt`]: messages between the daemons (console, `hasync`), in chunks on the stream.
//! * [`engine`]: the sync lcore's work, tying them together: workers' queues
//!   on one side, datagrams on the other.
#![forbid(unsafe_code)]

pub mod batch;
pub mod bulk;
pub mod channel;
pub mod engine;
pub mod links;
pub mod mgmt;
pub mod psk;
pub mod seal;
pub mod session;
pub mod wire;
