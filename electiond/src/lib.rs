//! # electiond — who is active
//!
//! Sends and receives heartbeats on every HA link (serial, firmware version,
//! boot epoch, role, forced flag, quality, priority, config revision, sync
//! readiness), computes this unit's quality factor from its health inputs
//! (data interfaces, disks, TPM; weighted), and runs the role state machine:
//! higher quality is active, then configured priority, then the incumbent
//! stays. The peer is lost only when *every* HA link is silent for the dead
//! interval. `haactive`/`hapassive` force a role; `hareset` removes the force.
//!
//! Pure logic, on an explicit clock (the daemon feeds it heartbeats, probe
//! results and time, and acts on its decisions):
//!
//! * [`quality`]: the weighted quality factor.
//! * [`role`]: the role state machine (states, rules, reasons, split brain).
//!
//! Where the rest lives: the heartbeat is the sync protocol's control record
//! (`syncd::wire::Heartbeat`, sealed with the cluster key, sent first in
//! every poll of the sync engine); the health probes are `mgmt::health`;
//! the daemon's wiring (workers live or passive, gratuitous ARP, the data
//! probe, the ordered handover, the HA event log, the fail-soft mode when
//! firmware versions differ) is `mgmt::election_task`.
#![forbid(unsafe_code)]

pub mod quality;
pub mod role;
