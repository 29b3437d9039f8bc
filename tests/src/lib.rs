//! Lab harness: network namespaces, veth pairs, real Linux peers.
//!
//! A [`Lab`] puts one unit between a Linux client and a Linux server, each in
//! a namespace of its own, wired with veth pairs (picture and addresses in
//! [`plan`]); a [`PairLab`] puts an HA pair there, its HA links through a
//! namespace where they can be impaired ([`pair`]). The unit is `tandemd` on DPDK `net_af_packet`, or — to check
//! the harness itself — the Linux kernel. Everything is RAII: processes,
//! namespaces and files are gone when the lab is dropped, also on panic.
//!
//! ```no_run
//! use tandem_tests::{plan, Lab};
//! let lab = Lab::routed().unwrap();
//! let out = lab.client().exec(["ping", "-n", "-c", "3", "-W", "2", plan::SERVER_IP]).unwrap();
//! assert!(out.success(), "{out}");
//! println!("{}", lab.counters().unwrap().nonzero());
//! ```
//!
//! Every external command runs under a time limit; nothing is killed by
//! name, only the pids the harness started. Needs root, iproute2, ethtool,
//! procps (`kill`, `sysctl`), and for the services `python3`, `curl`,
//! `iperf3`, `ping`.
//!
//! Environment:
//! - `TANDEMD`: the daemon binary (default: `tandemd` in the running
//!   executable's cargo profile directory, see [`tandemd::locate`]);
//! - `TANDEMCTL`: the control client [`Lab::ctl`] runs (default: beside
//!   `tandemd`'s default place);
//! - `TANDEM_LAB_PROFILE`: the hardware profile (default
//!   `hw-profiles/profiles/lab.ron`);
//! - `TANDEM_LAB_ROUTER=kernel`: [`Lab::from_env`] lets Linux route, to
//!   check test scripts without the firmware.
//!
//! Modules: [`lab`] (the lab), [`plan`] (its addresses), [`netns`] and
//! [`veth`] (namespaces and wires), [`pair`] (the two-unit lab),
//! [`conns`] (a unit's connection table, two tables compared), [`flows`]
//! (many held TCP connections and UDP flows), [`failover`] (what a
//! takeover costs a client: a UDP probe and a checked TCP stream), [`tandemd`] (starting the daemon),
//! [`process`] and [`command`] (processes we start, bounded commands),
//! [`demo`] (what the demos share),
//! [`services`] (servers in the namespaces), [`counters`] (the unit's
//! counters file), [`blob`] (test payloads), [`wait`] (bounded polling),
//! [`diff`] (the differential test against Linux conntrack), [`error`].

#![forbid(unsafe_code)]

pub mod blob;
pub mod command;
pub mod conns;
pub mod counters;
pub mod demo;
pub mod diff;
pub mod error;
pub mod failover;
pub mod flows;
pub mod lab;
pub mod netns;
pub mod pair;
pub mod plan;
pub mod process;
pub mod services;
pub mod tandemd;
pub mod veth;
pub mod wait;

pub use command::Output;
pub use counters::Counters;
pub use error::{Error, Result};
pub use lab::{Lab, LabBuilder, RouterKind, RulesSource};
pub use netns::Netns;
pub use pair::{Direction, PairLab, Unit};
pub use process::Proc;
pub use tandemd::Tandemd;
