//! `memhint`: the two memory hints the pure packet code needs — a software
//! prefetch ([`prefetch`]) and transparent huge page advice for large tables
//! ([`memory`]). Each needs one `unsafe` call (an intrinsic, a system call),
//! so they live here beside `dpdk-sys`, in the `bindings` folder that holds
//! all of the workspace's `unsafe`, and not in `dpdk-sys` itself: the
//! connection tables, packet views and trackers use them without linking DPDK.
//!
//! Both are hints: neither changes a value nor can fail in a way the caller
//! must handle.
// Output goes through `log`/`tracing`, whose write errors never stop a unit.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod memory;
pub mod prefetch;
