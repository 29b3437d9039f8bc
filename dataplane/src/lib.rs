//! # dataplane — what a worker core does to every packet
//!
//! * [`wire`]: zero-copy packet views (smoltcp style): checked once, then no
//!   accessor panics; the same parser runs on a test fixture and on an mbuf.
#![forbid(unsafe_code)]

pub mod wire;
