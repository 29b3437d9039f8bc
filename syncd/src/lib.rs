//! # syncd — state synchronisation between the two units of an HA pair
//!
//! Runs on a dedicated sync lcore. On the active unit it drains every worker's
//! state-change queue, packs the records into MTU-sized datagrams (a versioned
//! header, then pfsync-style sub-headers each followed by fixed-size records),
//! seals them with AES-256-GCM under keys derived from the cluster's pre-shared
//! key, and delivers them reliably (sequence numbers, ack/nack, bounded retries)
//! on the HA links. On the passive unit it opens, checks order and replay, and
//! hands each record to the worker that owns its shard, which installs it as a
//! *larval* entry ready for a takeover.
//!
//! This crate is a placeholder until the connection table (issue 3) exists:
//! there is nothing to synchronise before there is state.
#![forbid(unsafe_code)]
