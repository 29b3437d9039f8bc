//! # dataplane — what a worker core does to every packet
//!
//! * [`wire`]: zero-copy packet views (smoltcp style): checked once, then no
//!   accessor panics; the same parser runs on a test fixture and on an mbuf.
//! * [`forward`]: the unit as an IPv4 router (ARP, virtual IP/MAC, routes,
//!   ICMP), generic over the packet buffer so it is tested without DPDK.
//! * [`counters`]: per-worker counters, one per drop reason.
//! * [`worker`]: the polling loop on a DPDK lcore.
#![forbid(unsafe_code)]

pub mod conntrack;
pub mod control;
pub mod counters;
pub mod filter;
pub mod firewall;
pub mod forward;
pub mod wire;
pub mod worker;
