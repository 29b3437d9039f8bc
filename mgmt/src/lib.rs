//! # mgmt — configuration and the operator's console
//!
//! Loads, validates and applies a unit's configuration and rules (RON), boots
//! a unit (`tandemd`), and serves its control socket (`tandemctl`: counters,
//! connections, rules, reload). Later: the serial-console commands operators
//! know (`hainfo`, `hamode`, `hasync`, `haactive`, `hapassive`,
//! `hareset`, `hadiff`, `hasynctest`, `enha`) and config sync between members.
//!
//! * [`config`]: the unit configuration file (interfaces, routes, timeouts).
//! * [`rules`]: the rules file.
//! * [`unit`]: booting a unit on DPDK and taking it down.
//! * [`control`]: the control socket and its protocol.
//! * [`counters_file`]: the counters, rewritten to a file every second.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod counters_file;
pub mod rules;
pub mod unit;
