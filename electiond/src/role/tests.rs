//! One test per rule and transition, on an explicit clock.

use super::*;

const MS: u64 = 1_000_000;
const T: Timing = Timing {
    listen_ns: 300 * MS,
    dead_ns: 30 * MS,
    probe_wait_ns: None,
};

/// The timing with probe addresses configured.
const PROBED: Timing = Timing {
    probe_wait_ns: Some(20 * MS),
    ..T
};

fn serial(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn unit(name: &str, priority: u8) -> Election {
    let mut e = Election::new(T, serial(name), priority, 0);
    e.set_bulk_done(0, true);
    e
}

fn partner(name: &str) -> Partner {
    Partner {
        serial: serial(name),
        quality: Quality::FULL,
        priority: 0,
        active: false,
        forced: None,
        bulk_done: true,
    }
}

fn change(from: Role, to: Role, reason: Reason) -> Option<Change> {
    Some(Change { from, to, reason })
}

use Role::{Active, Passive};

#[test]
fn a_unit_alone_listens_then_takes_over() {
    let mut e = unit("A", 0);
    assert_eq!((e.role(), e.reason()), (Passive, Reason::Listening));
    assert_eq!(e.tick(299 * MS), None);
    assert_eq!(e.tick(300 * MS), change(Passive, Active, Reason::Alone));
    assert_eq!((e.changes(), e.since_ns()), (1, 300 * MS));
}

#[test]
fn a_partner_heard_while_listening_decides_at_once() {
    let mut e = unit("B", 0);
    let a = Partner {
        active: true,
        ..partner("A")
    };
    assert_eq!(e.heard(10 * MS, a), None);
    assert_eq!((e.role(), e.reason()), (Passive, Reason::Incumbent));
}

#[test]
fn higher_quality_is_active_and_a_drop_swaps() {
    let mut e = unit("A", 0);
    let b = Partner {
        quality: Quality(9000),
        ..partner("B")
    };
    assert_eq!(e.heard(MS, b), change(Passive, Active, Reason::Quality));
    assert_eq!(
        e.set_quality(2 * MS, Quality(8000)),
        change(Active, Passive, Reason::Quality)
    );
}

#[test]
fn equal_quality_goes_by_priority() {
    let mut e = unit("B", 5);
    let a = Partner {
        priority: 3,
        active: true,
        ..partner("A")
    };
    assert_eq!(e.heard(MS, a), change(Passive, Active, Reason::Priority));
    let mut low = unit("B", 1);
    assert_eq!(low.heard(MS, a), None);
    assert_eq!(low.reason(), Reason::Priority);
}

#[test]
fn a_priority_changed_at_run_time_decides_at_once() {
    let mut e = unit("B", 1);
    let a = Partner {
        priority: 3,
        active: true,
        ..partner("A")
    };
    assert_eq!(e.heard(MS, a), None);
    assert_eq!(
        e.set_priority(2 * MS, 5),
        change(Passive, Active, Reason::Priority)
    );
    assert_eq!(e.priority(), 5);
}

#[test]
fn equal_everything_the_active_one_stays_and_no_failback() {
    // B is active (it took over when A died); A comes back, gets its bulk,
    // and with equal quality and priority stays passive.
    let mut b = unit("B", 0);
    b.tick(300 * MS);
    assert_eq!(b.role(), Active);
    let mut a = Election::new(T, serial("A"), 0, 400 * MS);
    let b_view = Partner {
        active: true,
        ..partner("B")
    };
    assert_eq!(a.heard(401 * MS, b_view), None);
    assert_eq!(a.reason(), Reason::Joining);
    assert_eq!(a.heard(500 * MS, b_view), None);
    assert_eq!(a.set_bulk_done(500 * MS, true), None);
    assert_eq!((a.role(), a.reason()), (Passive, Reason::Incumbent));
    // B hears A passive: stays, no change counted.
    assert_eq!(b.heard(501 * MS, partner("A")), None);
    assert_eq!(
        (b.role(), b.reason(), b.changes()),
        (Active, Reason::Incumbent, 1)
    );
    assert_eq!(a.changes(), 0);
}

#[test]
fn with_no_incumbent_the_lower_serial_is_active() {
    let (mut a, mut b) = (unit("A", 0), unit("B", 0));
    assert_eq!(
        a.heard(MS, partner("B")),
        change(Passive, Active, Reason::Serial)
    );
    assert_eq!(b.heard(MS, partner("A")), None);
    assert_eq!(b.reason(), Reason::Serial);
    // Both active (a split brain that healed): the higher serial yields.
    let both = |n| Partner {
        active: true,
        ..partner(n)
    };
    let mut b2 = unit("B", 0);
    b2.tick(300 * MS);
    assert_eq!(
        b2.heard(301 * MS, both("A")),
        change(Active, Passive, Reason::Serial)
    );
    assert_eq!(a.heard(301 * MS, both("B")), None);
    assert_eq!(a.role(), Active);
}

#[test]
fn the_partner_is_lost_only_after_the_dead_interval() {
    let mut e = unit("B", 0);
    let a = Partner {
        active: true,
        ..partner("A")
    };
    e.heard(MS, a);
    assert_eq!(e.tick(MS + T.dead_ns - 1), None);
    assert_eq!(
        e.tick(MS + T.dead_ns),
        change(Passive, Active, Reason::PartnerLost)
    );
}

fn probed(name: &str) -> Election {
    let mut e = Election::new(PROBED, serial(name), 0, 0);
    e.set_bulk_done(0, true);
    e
}

#[test]
fn silent_ha_links_with_the_partner_alive_on_data_never_make_two_actives() {
    let mut e = probed("B");
    let active = Partner {
        active: true,
        ..partner("A")
    };
    e.heard(MS, active);
    assert!(!e.wants_probe(10 * MS));
    // Silent for half the dead interval: probe.
    assert!(e.wants_probe(16 * MS));
    assert_eq!(e.probe_answered(18 * MS, 18 * MS), None);
    assert_eq!(e.tick(40 * MS), None);
    assert_eq!((e.role(), e.reason()), (Passive, Reason::HaLinksDown));
    // Answers keep coming: still passive.
    assert_eq!(e.probe_answered(60 * MS, 60 * MS), None);
    assert_eq!(e.tick(80 * MS), None);
    // They stop (the partner died too): take over a dead interval later,
    // and stop probing.
    assert_eq!(e.tick(89 * MS), None);
    assert!(e.wants_probe(89 * MS));
    assert_eq!(
        e.tick(90 * MS),
        change(Passive, Active, Reason::PartnerLost)
    );
    assert!(!e.wants_probe(90 * MS));
}

#[test]
fn a_silent_partner_that_does_not_answer_the_probe_is_lost_at_the_dead_interval() {
    let mut e = probed("B");
    e.heard(
        MS,
        Partner {
            active: true,
            ..partner("A")
        },
    );
    // An answer from before the silence proves nothing.
    assert_eq!(e.probe_answered(MS, MS / 2), None);
    assert_eq!(e.tick(31 * MS), None);
    assert_eq!((e.role(), e.reason()), (Passive, Reason::Probing));
    // Probe sent at 1 + 15 ms, waited 20 ms: lost at 36 ms.
    assert_eq!(e.tick(35 * MS), None);
    assert_eq!(
        e.tick(36 * MS),
        change(Passive, Active, Reason::PartnerLost)
    );
}

#[test]
fn an_active_unit_never_gives_up_its_role_for_silence() {
    let mut e = probed("A");
    e.heard(MS, partner("B"));
    assert_eq!(e.role(), Active);
    assert_eq!(e.probe_answered(50 * MS, 50 * MS), None);
    assert_eq!(e.tick(100 * MS), None);
    assert_eq!((e.role(), e.reason()), (Active, Reason::PartnerLost));
    assert!(!e.wants_probe(100 * MS), "nothing to ask once active");
}

#[test]
fn an_active_unit_wanting_its_restarted_partners_table_stays_active() {
    let mut e = unit("A", 0);
    e.heard(MS, partner("B"));
    assert_eq!(e.role(), Active);
    // B restarted: A asks for its table again, B is joining.
    assert_eq!(e.set_bulk_done(2 * MS, false), None);
    let joining = Partner {
        bulk_done: false,
        ..partner("B")
    };
    assert_eq!(e.heard(3 * MS, joining), None);
    assert_eq!((e.role(), e.reason()), (Active, Reason::PartnerJoining));
}

#[test]
fn forced_roles_win_and_a_reset_lets_the_rules_decide_again() {
    let mut e = unit("A", 0);
    let worse = Partner {
        quality: Quality(5000),
        ..partner("B")
    };
    e.heard(MS, worse);
    assert_eq!(e.role(), Active);
    assert_eq!(
        e.force(2 * MS, Some(Passive)),
        change(Active, Passive, Reason::Forced)
    );
    assert_eq!(e.forced(), Some(Passive));
    assert_eq!(e.heard(3 * MS, worse), None, "forced regardless of quality");
    assert_eq!(
        e.force(4 * MS, None),
        change(Passive, Active, Reason::Quality)
    );
}

#[test]
fn a_forced_partner_gets_its_role_and_this_unit_the_other() {
    let mut e = unit("A", 9);
    let forced_active = Partner {
        forced: Some(Active),
        quality: Quality(1),
        ..partner("B")
    };
    assert_eq!(e.heard(MS, forced_active), None);
    assert_eq!(e.reason(), Reason::PartnerForced);
    let forced_passive = Partner {
        forced: Some(Passive),
        ..partner("B")
    };
    assert_eq!(
        e.heard(2 * MS, forced_passive),
        change(Passive, Active, Reason::PartnerForced)
    );
}

#[test]
fn a_joining_unit_stays_passive_until_its_bulk_unless_the_partner_is_gone() {
    let mut e = Election::new(T, serial("A"), 9, 0);
    let worse = Partner {
        quality: Quality(1000),
        ..partner("B")
    };
    assert_eq!(e.heard(MS, worse), None);
    assert_eq!(e.reason(), Reason::Joining);
    assert_eq!(
        e.tick(MS + T.dead_ns),
        change(Passive, Active, Reason::PartnerLost),
        "the partner is gone: no bulk to wait for"
    );
    // The other side: a partner still joining leaves this unit active,
    // whatever the partner's priority.
    let mut a = unit("A", 0);
    let joining = Partner {
        bulk_done: false,
        quality: Quality::FULL,
        priority: 200,
        ..partner("B")
    };
    assert_eq!(
        a.heard(MS, joining),
        change(Passive, Active, Reason::PartnerJoining)
    );
}

#[test]
fn every_reason_has_a_text() {
    use Reason::*;
    for r in [
        Listening,
        Alone,
        Forced,
        PartnerForced,
        PartnerLost,
        HaLinksDown,
        Joining,
        PartnerJoining,
        Quality,
        Priority,
        Incumbent,
        Serial,
    ] {
        assert!(!r.text().is_empty());
    }
}

#[test]
fn two_units_starting_together_change_role_once_between_them() {
    let mut a = Election::new(T, serial("A"), 0, 0);
    let mut b = Election::new(T, serial("B"), 0, 0);
    let says = |e: &Election| Partner {
        serial: e.serial,
        quality: Quality::FULL,
        priority: 0,
        active: e.role() == Active,
        forced: None,
        bulk_done: e.bulk_done,
    };
    // Both hear each other, both joining: passive.
    assert_eq!(a.heard(MS, says(&b)), None);
    assert_eq!(b.heard(MS, says(&a)), None);
    // B's bulk ends first, but on a stale heartbeat A may be about to
    // decide too: the lower serial takes the role, so B waits.
    assert_eq!(b.set_bulk_done(2 * MS, true), None);
    assert_eq!((b.role(), b.reason()), (Passive, Reason::Serial));
    // A hears B done; its own bulk ends: A takes the role.
    assert_eq!(a.heard(3 * MS, says(&b)), None);
    assert_eq!(
        a.set_bulk_done(4 * MS, true),
        change(Passive, Active, Reason::Serial)
    );
    assert_eq!(b.heard(5 * MS, says(&a)), None);
    assert_eq!((b.role(), b.reason()), (Passive, Reason::Incumbent));
    // Had A finished first, it would not have waited for B.
    let mut a2 = Election::new(T, serial("A"), 0, 0);
    a2.heard(MS, says(&b.clone()));
    let joining = Partner {
        bulk_done: false,
        ..partner("B")
    };
    a2.heard(MS, joining);
    assert_eq!(
        a2.set_bulk_done(2 * MS, true),
        change(Passive, Active, Reason::PartnerJoining)
    );
    assert_eq!(a.changes() + b.changes(), 1);
}

/// The fail-soft case of another sync protocol version: the partner's
/// heartbeats are refused whole, so it is never heard, but it answers on the
/// data networks: the starting unit stays passive instead of making two
/// actives.
#[test]
fn a_starting_unit_that_never_hears_its_partner_but_finds_it_on_data_stays_passive() {
    let mut e = probed("B");
    assert!(e.wants_probe(16 * MS), "probing from the start");
    assert_eq!(e.probe_answered(20 * MS, 20 * MS), None);
    assert_eq!(e.probe_answered(T.listen_ns, T.listen_ns), None);
    assert_eq!(e.tick(T.listen_ns + MS), None);
    assert_eq!((e.role(), e.reason()), (Passive, Reason::HaLinksDown));
    // The answers stop: alone after all.
    assert_eq!(
        e.tick(T.listen_ns + 100 * MS),
        change(Passive, Active, Reason::Alone)
    );
}
