//! # mgmt — configuration and the operator's console
//!
//! Loads, validates and applies a unit's configuration and rules (RON), boots
//! a unit (`tandemd`), serves its control socket (`tandemctl`: counters,
//! connections, rules, sync, reload, and the serial-console commands
//! operators know: `hainfo`, `hamode`, `haactive` / `hapassive` /
//! `hareset`, `hasync`, `hasynctest`, `hadiff`, `enha`, `halog`),
//! synchronises its connections with its partner over the HA links, elects
//! with it which unit is active, and synchronises configuration files.
//!
//! A running unit's threads, and what each owns (`tandemd` only wires them):
//!
//! ```text
//!  main lcore ── main_lcore::MainLoop: sync (HA ports, syncd engine)    bounded latency
//!               and the election (heartbeats in, role out)
//!  health     ── health: links, disks, TPM → the quality factor        file and device I/O
//!  workers    ── workers::Worker, one per worker lcore                  polling
//!  supervisor ── supervisor::Supervisor: rules, role, counters files    commands in order
//!  control    ── control::ControlServer: the socket, every client       transport only
//!  signals    ── SIGHUP → supervisor; SIGTERM/SIGINT → stop
//!  log        ── log::init: a writer thread; lines dropped, never waited for
//! ```
//!
//! * [`config`]: the unit configuration file (interfaces, routes, timeouts,
//!   and the HA section: serials, election, key file, HA links, sync pacing).
//! * [`rules`]: the rules file.
//! * [`lock`]: one unit per EAL prefix and per port.
//! * [`unit`](mod@unit): booting a unit on DPDK and taking it down.
//! * [`supervisor`]: the one owner of the running unit's configuration.
//! * [`console`]: the requests and answers of the console.
//! * [`control`]: the control socket (transport).
//! * [`main_lcore`]: the main lcore's loop.
//! * [`ha_link`]: one HA link's frames (the sync protocol's UDP datagrams,
//!   ARP for the partner), pure.
//! * [`ha_port`]: the DPDK port dedicated to an HA link, driving an
//!   [`ha_link::HaLink`].
//! * [`sync_task`]: synchronisation as a task of the main lcore: the HA
//!   ports, the sync engine, the workers' queues; its log lines and status.
//! * [`election_task`]: the election as a task of the sync loop: the role,
//!   taking over and handing over, the HA event log.
//! * [`health`]: this unit's health inputs and quality factor, probed on a
//!   thread of their own.
//! * [`log`]: the unit's log (journald or stderr, never blocking), and the
//!   HA event log file.
//! * [`thread`]: control-plane threads, on the profile's control CPUs.
//! * [`counters_file`]: the counters, rewritten to a file every second.
//! * [`prometheus`]: the same counters in Prometheus' text format, for
//!   node_exporter's textfile collector.
//! * [`atomic_file`]: replacing a file so readers never see half of one.
//! * [`peer`]: the daemons' questions and answers over the HA link.
//! * [`node`]: what a member says of itself (`hainfo`'s figures).
//! * [`confsync`]: configuration sync: the files, digests, staging, record.
#![forbid(unsafe_code)]
// Output goes through `log`/`tracing`, whose write errors never stop a unit.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod atomic_file;
pub mod config;
pub mod confsync;
pub mod console;
pub mod control;
pub mod counters_file;
pub mod election_task;
pub mod ha_link;
pub mod ha_port;
pub mod health;
pub mod lock;
pub mod log;
pub mod main_lcore;
pub mod node;
pub mod peer;
pub mod prometheus;
pub mod rules;
pub mod supervisor;
pub mod sync_task;
pub mod thread;
pub mod unit;
