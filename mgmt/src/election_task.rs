//! The election as a task of the sync loop: it feeds [`electiond::role`]
//! what the heartbeats, the health probes, the data probe and the console
//! say, and acts on its decisions — the workers' role ([`HaSignals`]),
//! gratuitous ARP, what this unit's own heartbeats say — and writes the HA
//! event log.
//!
//! It runs in the same loop as synchronisation ([`crate::sync_task`]), right
//! after the HA ports are read and before anything is sent, so a decision
//! taken on a heartbeat goes out in the very next heartbeat.
//!
//! # Taking over, handing over
//!
//! * Becoming active: the workers go live first (larval entries forward at
//!   their first packet), then worker 0 sends [`GARP_ROUNDS`] rounds of
//!   gratuitous ARP for every virtual IP, and as many again
//!   [`GARP_AGAIN_NS`] later (a switch or host that missed the first).
//! * Leaving the active role while the partner is there (a planned
//!   switchover, a better partner): this unit keeps forwarding until the
//!   partner's heartbeat says it is active, at most [`HANDOVER_NS`], so the
//!   partner is live before this unit stops — nothing is lost in between.
//!   Leaving it because the partner is forced or lost needs no wait.
//!
//! # Firmware versions differ: the fail-soft mode
//!
//! The cluster update procedure (upgrade the passive unit, let it take the
//! table, switch over, upgrade the other) must not lose connections, so a
//! pair whose firmware differs keeps working as far as it can:
//!
//! * **Same sync protocol version** (the usual case between releases):
//!   heartbeats, election and synchronisation run as usual; the mismatch is
//!   an HA event (`firmware mismatch: this unit runs 1.2.0, partner B runs
//!   1.3.0`, once per partner firmware) and `tandemctl sync` shows the
//!   partner's version. An upgraded unit rejoins passive (joining: it waits
//!   for the table, then the active one stays, no swap), so `hapassive` on
//!   the old active hands over without loss, or its reboot is a takeover.
//! * **Another sync protocol version**: every datagram is refused whole
//!   (`sync.drop.wrong_version`, and a log line naming both versions), so
//!   neither unit hears the other's heartbeats. The active unit stays active
//!   (silence never takes the role away); a starting unit probes the
//!   partner's data addresses (`ha.election.probe`), finds it alive and stays
//!   passive (`HA links down, partner alive on the data networks`). Nothing
//!   is synchronised meanwhile: a takeover then loses the connections, as
//!   the log says. Without probe addresses the starting unit would take the
//!   role too (two actives): configure them, or keep both units on one
//!   protocol version.
//!
//! # The HA event log
//!
//! Lines of `tracing` target [`HA_LOG`]: role changes with their reason,
//! partner lost and back, quality changes, forced mode set and cleared,
//! firmware mismatch; the sync task adds links lost and back and bulks.
//! `log::init` writes them to the log and to the HA log file.

use crate::config::{HaConfig, HaRole};
use crate::health::Health;
use electiond::quality::Quality;
use electiond::role::{Change, Election, Partner, Reason, Role, Timing};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use syncd::engine::{Engine, Local};
use syncd::wire::Forced;
use workers::HaSignals;

/// The `tracing` target of the HA event log.
pub const HA_LOG: &str = "ha";
/// Rounds of gratuitous ARP on becoming active, and again later.
pub const GARP_ROUNDS: u32 = 5;
/// When the second salvo of gratuitous ARP goes, after the first, in ns.
pub const GARP_AGAIN_NS: u64 = 2_000_000_000;
/// The longest a unit leaving the active role keeps forwarding while it
/// waits for its partner to say it is active, in ns.
pub const HANDOVER_NS: u64 = 1_000_000_000;

/// The role the console forces, shared between the supervisor (which sets
/// it) and the election (which reads it every round).
#[derive(Debug, Default)]
pub struct ForceCell(AtomicU8);

impl ForceCell {
    /// A cell forcing `role`.
    pub fn new(role: Option<HaRole>) -> Arc<ForceCell> {
        let cell = Arc::new(ForceCell::default());
        cell.set(role);
        cell
    }

    /// Forces `role`, or (`None`) lets the election decide.
    pub fn set(&self, role: Option<HaRole>) {
        let v = match role {
            None => 0,
            Some(HaRole::Active) => 1,
            Some(HaRole::Passive) => 2,
        };
        self.0.store(v, Ordering::Relaxed);
    }

    /// The role forced.
    pub fn get(&self) -> Option<Role> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(Role::Active),
            2 => Some(Role::Passive),
            _ => None,
        }
    }
}

/// What the console changes while the unit runs, beside the forced role:
/// the priority (`enha`) and the configuration revision the heartbeats
/// carry (the supervisor's, after every change of the synchronised files).
#[derive(Debug)]
pub struct HaParams {
    priority: AtomicU8,
    config_revision: AtomicU32,
}

impl HaParams {
    /// The parameters at start.
    pub fn new(priority: u8, config_revision: u32) -> Arc<HaParams> {
        Arc::new(HaParams {
            priority: AtomicU8::new(priority),
            config_revision: AtomicU32::new(config_revision),
        })
    }

    /// A new priority, decided on at the election's next round.
    pub fn set_priority(&self, p: u8) {
        self.priority.store(p, Ordering::Relaxed);
    }

    /// The priority in force.
    pub fn priority(&self) -> u8 {
        self.priority.load(Ordering::Relaxed)
    }

    /// The configuration revision the next heartbeat carries.
    pub fn set_config_revision(&self, r: u32) {
        self.config_revision.store(r, Ordering::Relaxed);
    }

    fn config_revision(&self) -> u32 {
        self.config_revision.load(Ordering::Relaxed)
    }
}

/// A forced role as heartbeats and counters say it (0 none, 1 active, 2
/// passive).
fn wire_forced(r: Option<Role>) -> Forced {
    match r {
        None => Forced::No,
        Some(Role::Active) => Forced::Active,
        Some(Role::Passive) => Forced::Passive,
    }
}

/// What a heartbeat's forced field says, as a role.
fn forced_role(f: Forced) -> Option<Role> {
    match f {
        Forced::No => None,
        Forced::Active => Some(Role::Active),
        Forced::Passive => Some(Role::Passive),
    }
}

/// The election task.
pub struct ElectionTask {
    election: Election,
    signals: Arc<HaSignals>,
    health: Arc<Health>,
    force: Arc<ForceCell>,
    params: Arc<HaParams>,
    peer_serial: [u8; 16],
    peer: String,
    firmware: u32,
    quality: Quality,
    heard_ns: Option<u64>,
    partner_here: bool,
    bulk_done: bool,
    probe_seen_ns: Option<u64>,
    garp_again_ns: Option<u64>,
    handover_until_ns: Option<u64>,
    firmware_told: Option<u32>,
}

impl ElectionTask {
    /// The election of the unit `ha` describes, starting at `now_ns`,
    /// passive and listening; `dead_ns` is the dead interval.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ha: &HaConfig,
        dead_ns: u64,
        signals: Arc<HaSignals>,
        health: Arc<Health>,
        force: Arc<ForceCell>,
        params: Arc<HaParams>,
        firmware: u32,
        now_ns: u64,
    ) -> ElectionTask {
        let e = &ha.election;
        let timing = Timing {
            listen_ns: u64::try_from(e.listen.as_nanos()).unwrap_or(u64::MAX),
            dead_ns,
            probe_wait_ns: (!e.probe.is_empty()).then_some(dead_ns / 2),
        };
        signals.set_live(false);
        let quality = health.quality();
        let mut election = Election::new(timing, ha.serial, params.priority(), now_ns);
        election.set_quality(now_ns, quality);
        ElectionTask {
            election,
            signals,
            health,
            force,
            params,
            peer_serial: ha.peer_serial,
            peer: ha.peer_serial_str().to_owned(),
            firmware,
            quality,
            heard_ns: None,
            partner_here: false,
            bulk_done: false,
            probe_seen_ns: None,
            garp_again_ns: None,
            handover_until_ns: None,
            firmware_told: None,
        }
    }

    /// The election, for the status.
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// `ha.active` (1: this unit's role is active), `ha.live` (the workers
    /// forward), `ha.role_changes`, `ha.quality_percent`, `ha.forced` (0
    /// none, 1 active, 2 passive), `ha.partner_present`.
    pub fn counters(&self, now_ns: u64, out: &mut Vec<(String, u64)>) {
        let e = &self.election;
        for (name, v) in [
            ("active", u64::from(e.role() == Role::Active)),
            ("live", u64::from(self.signals.live())),
            ("role_changes", e.changes()),
            ("quality_percent", u64::from(self.quality.percent())),
            ("forced", wire_forced(e.forced()) as u64),
            ("partner_present", u64::from(e.partner(now_ns).is_some())),
        ] {
            out.push((format!("ha.{name}"), v));
        }
    }

    /// `hamode`'s answer: the role, whether forced, why, since when.
    pub fn mode_text(&self, now_ns: u64) -> String {
        let e = &self.election;
        format!(
            "mode: {}\nforced: {}\nreason: {}\nsince: {} s\n",
            e.role().name(),
            e.forced().map_or("no", Role::name),
            e.reason().text(),
            now_ns.saturating_sub(e.since_ns()) / 1_000_000_000
        )
    }

    /// This unit's quality factor as last read.
    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// One round at `now_ns`: read every input, decide, act, and tell the
    /// engine what the next heartbeat says.
    pub fn round(&mut self, now_ns: u64, engine: &mut Engine) {
        let mut changes: Vec<Change> = Vec::new();
        let mut note = |c: Option<Change>| changes.extend(c);

        let q = self.health.quality();
        if q != self.quality {
            tracing::warn!(target: HA_LOG, "quality {}% → {}%", self.quality.percent(), q.percent());
            self.quality = q;
            note(self.election.set_quality(now_ns, q));
        }
        let priority = self.params.priority();
        if priority != self.election.priority() {
            tracing::warn!(target: HA_LOG, "priority {} → {priority}", self.election.priority());
            note(self.election.set_priority(now_ns, priority));
        }
        let forced = self.force.get();
        if forced != self.election.forced() {
            match forced {
                Some(r) => tracing::warn!(target: HA_LOG, "forced mode set: {}", r.name()),
                None => tracing::warn!(target: HA_LOG, "forced mode cleared"),
            }
            note(self.election.force(now_ns, forced));
        }
        let bulk_done = engine.bulk_done();
        if bulk_done != self.bulk_done {
            self.bulk_done = bulk_done;
            note(self.election.set_bulk_done(now_ns, bulk_done));
        }
        if let Some((hb, at)) = engine.partner() {
            if self.heard_ns != Some(at) {
                self.heard_ns = Some(at);
                let partner = Partner {
                    serial: self.peer_serial,
                    quality: Quality(hb.quality),
                    priority: hb.priority,
                    active: hb.active,
                    forced: forced_role(hb.forced),
                    bulk_done: hb.bulk_done,
                };
                if !self.partner_here {
                    self.partner_here = true;
                    tracing::warn!(target: HA_LOG, "partner {} here", self.peer);
                }
                if hb.firmware != self.firmware && self.firmware_told != Some(hb.firmware) {
                    self.firmware_told = Some(hb.firmware);
                    tracing::warn!(
                        target: HA_LOG,
                        "firmware mismatch: this unit runs {}, partner {} runs {} (fail-soft: roles and sync go on; upgrade the passive first)",
                        version(self.firmware),
                        self.peer,
                        version(hb.firmware)
                    );
                }
                note(self.election.heard(at, partner));
            }
        }
        if let Some(seen) = self.signals.probe_seen_ns() {
            if self.probe_seen_ns != Some(seen) {
                self.probe_seen_ns = Some(seen);
                note(self.election.probe_answered(now_ns, seen));
            }
        }
        note(self.election.tick(now_ns));
        if self.partner_here && self.election.partner(now_ns).is_none() {
            self.partner_here = false;
            tracing::warn!(
                target: HA_LOG,
                "partner {} lost: silent on every HA link",
                self.peer
            );
        }
        self.signals.set_probing(self.election.wants_probe(now_ns));

        for c in changes {
            self.changed(now_ns, c);
        }
        self.keep_live(now_ns);
        if self.garp_again_ns.is_some_and(|at| now_ns >= at) {
            self.garp_again_ns = None;
            if self.election.role() == Role::Active {
                self.signals.announce(GARP_ROUNDS);
            }
        }
        let active = self.election.role() == Role::Active;
        engine.set_active(active);
        engine.set_local(Local {
            quality: self.quality.0,
            priority: self.election.priority(),
            forced: wire_forced(self.election.forced()),
            config_revision: self.params.config_revision(),
            bulk_done: self.bulk_done,
        });
    }

    fn changed(&mut self, now_ns: u64, c: Change) {
        tracing::warn!(
            target: HA_LOG,
            "role {} → {}: {}",
            c.from.name(),
            c.to.name(),
            c.reason.text()
        );
        match c.to {
            Role::Active => {
                self.handover_until_ns = None;
                // Live first: the first frames the switch sends after the
                // gratuitous ARP find the workers forwarding.
                self.signals.set_live(true);
                self.signals.announce(GARP_ROUNDS);
                self.garp_again_ns = Some(now_ns.saturating_add(GARP_AGAIN_NS));
            }
            Role::Passive => {
                let handover = self.election.partner(now_ns).is_some()
                    && !matches!(c.reason, Reason::PartnerForced);
                if handover {
                    self.handover_until_ns = Some(now_ns.saturating_add(HANDOVER_NS));
                } else {
                    self.signals.set_live(false);
                }
            }
        }
    }

    /// A unit handing over stops forwarding once the partner says it is
    /// active (or the handover times out).
    fn keep_live(&mut self, now_ns: u64) {
        let Some(until) = self.handover_until_ns else {
            return;
        };
        let partner_active = self.election.partner(now_ns).is_some_and(|p| p.active);
        if partner_active || now_ns >= until || self.election.role() == Role::Active {
            self.handover_until_ns = None;
            if self.election.role() == Role::Passive {
                self.signals.set_live(false);
                tracing::info!(
                    target: HA_LOG,
                    "handover done: {}",
                    if partner_active {
                        "the partner is active"
                    } else {
                        "the partner did not say it is active in time"
                    }
                );
            }
        }
    }
}

/// `major.minor.patch` of a firmware number.
fn version(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}
