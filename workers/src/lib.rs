//! # workers — the polling lcores of a unit, on DPDK
//!
//! * [`worker`]: the loop one worker lcore runs: rx bursts on its queue of
//!   every data port, the router (and firewall) of `dataplane`, tx bursts.
//! * [`links`]: what workers share — neighbour hints, frames handed to the
//!   worker that owns their flow, and each worker's control inbox.
//! * [`ha`]: the unit's role as the workers follow it (live or passive,
//!   gratuitous ARP on a takeover, the partner probe on the data networks).
//! * [`build`]: the one way to build a worker, used by `tandemd` and the bench.
//! * [`clock`]: the TSC clock the loop passes to the pure code.
//!
//! Everything a worker decides is in `dataplane`, which builds and tests
//! without DPDK; this crate is the thin layer that moves mbufs.
#![forbid(unsafe_code)]
// Output goes through `log`/`tracing`, whose write errors never stop a unit.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod build;
pub mod clock;
pub mod ha;
pub mod links;
pub mod worker;

pub use build::{build, BuildError, FirewallSpec, WorkerHandles, WorkerSpec, EVENT_QUEUE_LEN};
pub use clock::Clock;
pub use ha::HaSignals;
pub use links::{Handoff, NeighborMesh, WorkerLinks, INBOUND_QUEUE_LEN};
pub use worker::{IdlePolicy, PoolAlloc, Worker, WorkerPort};
