//! `dpdk-sys`: the system DPDK (found with pkg-config) as raw bindgen bindings ([`raw`]),
//! a C shim for DPDK's `static inline` fast path, and a thin safe layer. With its sibling
//! `memhint`, the only code of the workspace with `unsafe` in it (both in `bindings/`).
//!
//! One concept per module: [`eal`] (init/cleanup/hotplug), [`lcore`] (cores, launch,
//! TSC), [`mempool`], [`mbuf`], [`port`] (configure, queues, stats), [`burst`] (batches
//! moved by rx/tx), [`ring_port`] (rings and ring-backed ports), [`error`], and [`raw`]
//! (the generated bindings). Prefetch and huge page advice, which need no DPDK, are in
//! the sibling crate `memhint`.
//!
//! Ownership rules that keep this memory-safe:
//! - every object living in DPDK memory holds the EAL, so cleanup runs after the last;
//! - a [`Port`] holds its [`Mempool`]; queue handles hold their `Port`;
//! - a mempool with mbufs still out is leaked, never freed under them.
//!
//! What it cannot return as an error (a failure inside `Drop`) it reports through the
//! `log` facade, never by printing: a closed stderr must not abort a unit.
// Output goes through `log`/`tracing`, whose write errors never stop a unit.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod burst;
pub mod eal;
pub mod error;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod raw;
pub mod ring_port;

pub use burst::{Burst, BURST_MAX};
pub use eal::Eal;
pub use error::{DpdkError, ToResult};
pub use lcore::{LaunchHandle, LcoreId, SocketId};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{
    LinkStatus, Port, PortConfig, PortId, PortInfo, PortStats, RssConfig, RxQueue, TxQueue,
};
pub use ring_port::Ring;

/// The DPDK version the bindings were generated from (`pkg-config --modversion libdpdk`).
pub const DPDK_VERSION: &str = env!("TANDEM_DPDK_VERSION");

/// The threading contract, checked at compile time: handles shared across threads are
/// `Send + Sync`; what one lcore owns is `Send` only (`RxQueue`/`TxQueue` must not be
/// `Sync`: one queue, one poller).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Eal>();
    send_sync::<Mempool>();
    send_sync::<Port>();
    send_sync::<Ring>();
    send::<Mbuf>();
    send::<Burst>();
    send::<RxQueue>();
    send::<TxQueue>();
};
