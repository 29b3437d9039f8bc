//! # dataplane — what a worker core decides for every packet
//!
//! Pure code: no DPDK, no I/O, no clock of its own (time comes in as an
//! argument). The worker loop that feeds it mbufs is the `workers` crate;
//! everything here builds and tests on plain byte buffers.
//!
//! * [`wire`]: zero-copy packet views (smoltcp style): checked once, then no
//!   accessor panics; the same parser runs on a test fixture and on an mbuf.
//! * [`forward`]: the unit as an IPv4 router (ARP, virtual IP/MAC, routes,
//!   ICMP), generic over the packet buffer.
//! * [`conntrack`]: connection tracking, one shard per worker (TCP window
//!   tracking as strict as Linux conntrack).
//! * [`filter`]: the rules (first match wins, default block).
//! * [`firewall`]: the stateful filter a routed packet passes: its entry
//!   decides, else the rules.
//! * [`control`]: what the control plane may ask a worker (rules, listings,
//!   the shared configuration).
//! * [`counters`]: per-worker counters, one per drop reason.
#![forbid(unsafe_code)]
// Output goes through `log`/`tracing`, whose write errors never stop a unit.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod conntrack;
pub mod control;
pub mod counters;
pub mod filter;
pub mod firewall;
pub mod forward;
pub mod wire;

#[cfg(test)]
mod test_packets;
