//! Who is active: the role state machine, pure, on an explicit clock.
//!
//! ```text
//!            start ──► LISTENING (passive) ── partner heard, or listen time up ──┐
//!                                                                                ▼
//!   ┌──────────────────────────── decide (every input, every tick) ─────────────────────┐
//!   │ 1. forced here (haactive / hapassive)                → that role       (Forced)     │
//!   │ 2. partner silent on every HA link for the dead interval:                           │
//!   │      this unit active                                → active   (PartnerLost/Alone) │
//!   │      it answered the data probe since it fell silent → passive  (HaLinksDown)      │
//!   │      the probe still has time to be answered         → passive  (Probing)          │
//!   │      else                                            → active   (PartnerLost/Alone) │
//!   │ 3. partner forced                                    → the other role (PartnerForced)│
//!   │ 4. this unit passive and its bulk not in yet         → passive  (Joining)          │
//!   │    the partner's bulk not in yet, it is not active:                                │
//!   │      this unit active, or the lower serial           → active   (PartnerJoining)   │
//!   │      else (both starting)                            → passive  (Serial)           │
//!   │ 5. higher quality                                    → active   (Quality)          │
//!   │ 6. higher priority ("active if equal")               → active   (Priority)         │
//!   │ 7. equal: the active one stays (no needless swap, no failback)       (Incumbent)   │
//!   │    neither or both active: the lower serial          → active   (Serial)           │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The partner is lost only when *every* HA link has been silent for the
//! dead interval: the daemon calls [`Election::heard`] for a heartbeat from
//! any link, so one link down changes nothing here.
//!
//! # Split brain: the data probe
//!
//! Silent HA links may mean a dead partner, or broken links (cut cables,
//! heartbeats lost one way) with the partner alive and active. To tell them
//! apart, a unit with probe addresses configured (the partner's own
//! addresses on the data networks, Stormshield's "ICMP monitoring") asks
//! them while it is passive and the partner has been silent for half the
//! dead interval ([`Election::wants_probe`]; the daemon sends ICMP echo requests and
//! reports each answer with [`Election::probe_answered`]). At the dead
//! interval a passive unit takes over only if no answer came since the
//! partner fell silent and the probe has had [`Timing::probe_wait_ns`] to be
//! answered; an answer keeps it passive for as long as answers keep coming.
//! An active unit never gives up its role for silence. So with heartbeats
//! lost one way, or every HA link cut, exactly one unit stays active; without
//! probe addresses such a unit takes over, and two are active until a link
//! returns (the rules then keep one: quality, priority, serial).
//!
//! Every change carries its reason and is counted, so role changes can be
//! checked exactly.

use crate::quality::Quality;

/// A unit's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Forwards, owns the virtual addresses.
    Active,
    /// Holds the partner's state, forwards nothing.
    Passive,
}

impl Role {
    /// The role as the console and the log say it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Passive => "passive",
        }
    }
}

/// Why a unit has its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Still listening for the partner after start.
    Listening,
    /// No partner was ever heard.
    Alone,
    /// Forced here (`haactive`, `hapassive`).
    Forced,
    /// The partner is forced into the other role.
    PartnerForced,
    /// The partner went silent on every HA link.
    PartnerLost,
    /// Every HA link is silent but the partner answers on the data networks.
    HaLinksDown,
    /// Every HA link is silent; the probe on the data networks is out.
    Probing,
    /// This unit has not received its bulk yet.
    Joining,
    /// The partner has not received its bulk yet.
    PartnerJoining,
    /// Quality decided.
    Quality,
    /// Equal quality; priority decided.
    Priority,
    /// Equal quality and priority: the active unit stays active.
    Incumbent,
    /// Equal everything and no incumbent: the lower serial is active.
    Serial,
}

impl Reason {
    /// A short phrase for the HA event log.
    pub fn text(self) -> &'static str {
        match self {
            Reason::Listening => "listening for the partner",
            Reason::Alone => "no partner",
            Reason::Forced => "forced",
            Reason::PartnerForced => "the partner is forced",
            Reason::PartnerLost => "partner lost",
            Reason::HaLinksDown => "HA links down, partner alive on the data networks",
            Reason::Probing => "partner silent, probing it on the data networks",
            Reason::Joining => "joining: bulk not received yet",
            Reason::PartnerJoining => "the partner is joining",
            Reason::Quality => "quality",
            Reason::Priority => "priority",
            Reason::Incumbent => "equal: the active one stays",
            Reason::Serial => "equal: lower serial",
        }
    }
}

/// What a heartbeat says of the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partner {
    /// Its serial (NUL-padded).
    pub serial: [u8; 16],
    /// Its quality.
    pub quality: Quality,
    /// Its configured priority (higher: active if equal).
    pub priority: u8,
    /// It forwards now.
    pub active: bool,
    /// It is forced, and into which role.
    pub forced: Option<Role>,
    /// It has received its bulk.
    pub bulk_done: bool,
}

/// The timing of the election, in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a starting unit listens for its partner before deciding.
    pub listen_ns: u64,
    /// Every HA link silent this long: the partner is lost.
    pub dead_ns: u64,
    /// With probe addresses: how long a probe sent at half the dead interval
    /// may take to be answered before a passive unit takes over (at most the
    /// dead interval's other half, so detection takes no longer); `None`
    /// without probe addresses.
    pub probe_wait_ns: Option<u64>,
}

/// A role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Before.
    pub from: Role,
    /// After.
    pub to: Role,
    /// Why.
    pub reason: Reason,
}

/// Active when this unit wins a comparison.
fn better(wins: bool) -> Role {
    if wins {
        Role::Active
    } else {
        Role::Passive
    }
}

/// One unit's election.
#[derive(Debug, Clone)]
pub struct Election {
    timing: Timing,
    serial: [u8; 16],
    priority: u8,
    quality: Quality,
    forced: Option<Role>,
    bulk_done: bool,
    started_ns: u64,
    partner: Option<(Partner, u64)>,
    ever_heard: bool,
    last_heard_ns: u64,
    probe_answered_ns: Option<u64>,
    role: Role,
    reason: Reason,
    since_ns: u64,
    changes: u64,
}

impl Election {
    /// A unit of `serial` and `priority` starting at `now_ns`: passive,
    /// listening for its partner.
    pub fn new(timing: Timing, serial: [u8; 16], priority: u8, now_ns: u64) -> Election {
        Election {
            timing,
            serial,
            priority,
            quality: Quality::FULL,
            forced: None,
            bulk_done: false,
            started_ns: now_ns,
            partner: None,
            ever_heard: false,
            last_heard_ns: now_ns,
            probe_answered_ns: None,
            role: Role::Passive,
            reason: Reason::Listening,
            since_ns: now_ns,
            changes: 0,
        }
    }

    /// A heartbeat from the partner arrived (on any HA link).
    pub fn heard(&mut self, now_ns: u64, partner: Partner) -> Option<Change> {
        self.partner = Some((partner, now_ns));
        self.ever_heard = true;
        self.last_heard_ns = now_ns;
        self.decide(now_ns)
    }

    /// This unit's quality changed.
    pub fn set_quality(&mut self, now_ns: u64, quality: Quality) -> Option<Change> {
        self.quality = quality;
        self.decide(now_ns)
    }

    /// The configured priority changed (`enha`).
    pub fn set_priority(&mut self, now_ns: u64, priority: u8) -> Option<Change> {
        self.priority = priority;
        self.decide(now_ns)
    }

    /// This unit's configured priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Forces a role (`haactive`, `hapassive`), or removes the force (`hareset`).
    pub fn force(&mut self, now_ns: u64, role: Option<Role>) -> Option<Change> {
        self.forced = role;
        self.decide(now_ns)
    }

    /// This unit's bulk is in (or, `false`, it wants one again).
    pub fn set_bulk_done(&mut self, now_ns: u64, done: bool) -> Option<Change> {
        self.bulk_done = done;
        self.decide(now_ns)
    }

    /// The partner answered the probe on the data networks at `at_ns`.
    pub fn probe_answered(&mut self, now_ns: u64, at_ns: u64) -> Option<Change> {
        self.probe_answered_ns = Some(at_ns);
        self.decide(now_ns)
    }

    /// Whether the daemon should probe the partner on the data networks now:
    /// probe addresses are configured, this unit is passive (an active one
    /// never gives up its role for silence, so it has nothing to ask), and
    /// every HA link has been silent for half the dead interval (or since
    /// the start).
    pub fn wants_probe(&self, now_ns: u64) -> bool {
        self.timing.probe_wait_ns.is_some()
            && self.role == Role::Passive
            && now_ns.saturating_sub(self.last_heard_ns) >= self.timing.dead_ns / 2
    }

    /// Time passes (the listen time ends, the partner falls silent).
    pub fn tick(&mut self, now_ns: u64) -> Option<Change> {
        self.decide(now_ns)
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Since when (ns).
    pub fn since_ns(&self) -> u64 {
        self.since_ns
    }

    /// The force in effect.
    pub fn forced(&self) -> Option<Role> {
        self.forced
    }

    /// Role changes so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The partner, if heard within the dead interval.
    pub fn partner(&self, now_ns: u64) -> Option<Partner> {
        self.partner
            .filter(|(_, at)| now_ns.saturating_sub(*at) < self.timing.dead_ns)
            .map(|(p, _)| p)
    }

    fn rule(&self, now_ns: u64) -> (Role, Reason) {
        use Reason::*;
        use Role::*;
        if let Some(r) = self.forced {
            return (r, Forced);
        }
        let Some(p) = self.partner(now_ns) else {
            if !self.ever_heard && now_ns.saturating_sub(self.started_ns) < self.timing.listen_ns {
                return (Passive, Listening);
            }
            let lost = if self.ever_heard { PartnerLost } else { Alone };
            if self.role == Active {
                return (Active, lost);
            }
            if let Some(wait) = self.timing.probe_wait_ns {
                // Silent since the last heartbeat (or the start); the probe
                // went out half a dead interval later.
                let silent_since = self.last_heard_ns;
                let alive = self.probe_answered_ns.is_some_and(|at| {
                    at >= silent_since && now_ns.saturating_sub(at) < self.timing.dead_ns
                });
                if alive {
                    return (Passive, HaLinksDown);
                }
                let probe_sent = silent_since.saturating_add(self.timing.dead_ns / 2);
                if now_ns < probe_sent.saturating_add(wait) {
                    return (Passive, Probing);
                }
            }
            return (Active, lost);
        };
        match p.forced {
            Some(Active) => return (Passive, PartnerForced),
            Some(Passive) => return (Active, PartnerForced),
            None => {}
        }
        // An active unit that wants the partner's table again (the partner
        // restarted) keeps forwarding meanwhile.
        if !self.bulk_done && self.role == Passive {
            return (Passive, Joining);
        }
        // The partner joining stays passive; someone must forward: this unit
        // if it does already. Two units starting together decide on stale
        // heartbeats (each may finish its bulk before it hears the other
        // did), so there the lower serial takes the role, and only once.
        if !p.bulk_done && !p.active {
            if self.role == Active || self.serial < p.serial {
                return (Active, PartnerJoining);
            }
            return (Passive, Serial);
        }
        if self.quality != p.quality {
            return (better(self.quality > p.quality), Quality);
        }
        if self.priority != p.priority {
            return (better(self.priority > p.priority), Priority);
        }
        match (self.role == Active, p.active) {
            (true, false) => (Active, Incumbent),
            (false, true) => (Passive, Incumbent),
            _ => (better(self.serial < p.serial), Serial),
        }
    }

    fn decide(&mut self, now_ns: u64) -> Option<Change> {
        let (role, reason) = self.rule(now_ns);
        // The reason shown is always the current one; only a new role counts.
        self.reason = reason;
        if role == self.role {
            return None;
        }
        let change = Change {
            from: self.role,
            to: role,
            reason,
        };
        self.role = role;
        self.since_ns = now_ns;
        self.changes += 1;
        Some(change)
    }
}

#[cfg(test)]
mod tests;
