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
//! This crate is a placeholder until the HA issues land; the foundation runs a
//! single standalone unit.
#![forbid(unsafe_code)]
