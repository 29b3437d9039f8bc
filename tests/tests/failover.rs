//! The pair fails over: two real units on a real switch ([`PairLab`] with
//! [`DataWiring::Switched`]: a Linux bridge namespace between the client,
//! both units' `data0`, and one between the server and both `data1`), the
//! roles elected, real Linux TCP and UDP through the active unit. Each test
//! checks behaviour only — who is active, how many role changes, every
//! connection still carrying data, every stream byte in order — never time:
//! the outage figures are the bench's (`bench --only failover`).
//!
//! One lab at a time (a lock in this file). The dead interval is 300 ms here,
//! not the 30 ms default: this shared two-core machine sometimes leaves a
//! thread unscheduled for tens of ms, and a test must not see a failover it
//! did not cause.
//!
//! Needs root, python3, nft and ping.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tandem_tests::failover::{self, Probe, ProbeServer};
use tandem_tests::flows::{FlowServer, HeldFlows, Open};
use tandem_tests::pair::DataWiring;
use tandem_tests::wait::poll_until_detail;
use tandem_tests::{plan, Direction, PairLab, Unit};

/// Bound on the pair settling after a change: a hang's limit, not a measure.
const SETTLE: Duration = Duration::from_secs(60);
/// The heartbeat pacing of these labs (see the module docs).
const TUNING: &str = "heartbeat_interval_ms: 50, link_dead_ms: 300";
/// The TCP port of the held connections.
const HELD_PORT: u16 = 5001;

static ONE_LAB: Mutex<()> = Mutex::new(());

fn one_lab_at_a_time() -> MutexGuard<'static, ()> {
    ONE_LAB.lock().unwrap_or_else(|e| e.into_inner())
}

/// An elected pair on the switch, settled: one unit active (the first to
/// hold the other's table at the start took the role, and nothing changed
/// since), the other passive with its table; and which is active.
fn pair() -> (PairLab, Unit) {
    let lab = PairLab::builder()
        .data(DataWiring::Switched)
        .sync_tuning(TUNING)
        .election("listen_ms: 500")
        .build()
        .unwrap_or_else(|e| panic!("building the pair lab: {e}"));
    let active = lab.active_unit(SETTLE).unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, active);
    assert_eq!(
        (changes(&lab, active), changes(&lab, active.partner())),
        (1, 0),
        "one role change at the start, none on the passive\n{}",
        lab.context()
    );
    (lab, active)
}

/// Waits until `active` is active and live and its partner passive, not
/// live, with the active's table.
fn wait_roles(lab: &PairLab, active: Unit) {
    lab.wait_roles(active, SETTLE)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `unit`'s role changes so far (this boot).
fn changes(lab: &PairLab, unit: Unit) -> u64 {
    lab.counters(unit)
        .unwrap_or_else(|e| panic!("{e}"))
        .value("ha.role_changes")
}

fn held(lab: &PairLab, count: usize) -> (FlowServer, HeldFlows) {
    let server = FlowServer::start_with(
        lab.server(),
        plan::SERVER_IP,
        &[HELD_PORT],
        None,
        true,
        &lab.dir().join("flow-server"),
    )
    .unwrap_or_else(|e| panic!("starting the flow server: {e}"));
    let flows = HeldFlows::open(
        lab.client(),
        &Open::new(plan::SERVER_IP).tcp(count, HELD_PORT),
        &lab.dir().join("held"),
    )
    .unwrap_or_else(|e| panic!("opening {count} connections: {e}\n{}", lab.context()));
    (server, flows)
}

/// Waits until `passive` holds every connection its partner does (the
/// active may hold some larval after a takeover: idle ones).
fn wait_synced(lab: &PairLab, passive: Unit) {
    lab.wait_tables_agree(passive, SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
}

/// Every held connection still carries data.
fn all_alive(lab: &PairLab, flows: &mut HeldFlows, count: usize, when: &str) {
    let poked = flows.poke().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (poked.answered, poked.unanswered.len()),
        (count, 0),
        "{when}: connections that no longer carry data (client ports): {:?}\n{}",
        poked.unanswered,
        lab.context()
    );
}

/// `ping` from the client to the server every 10 ms for `count` pings;
/// returns how many were lost.
fn pings_lost(lab: &PairLab, count: u32) -> u32 {
    failover::pings_lost(lab.client(), plan::SERVER_IP, count).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn killing_the_active_hands_every_connection_and_the_stream_to_the_passive() {
    let _one = one_lab_at_a_time();
    let (mut lab, first) = pair();
    let second = first.partner();
    let (_server, mut flows) = held(&lab, 1000);
    let _probe_server = ProbeServer::start(lab.server(), plan::SERVER_IP, &lab.dir().join("ps"))
        .unwrap_or_else(|e| panic!("{e}"));
    let probe = Probe::start(
        lab.client(),
        plan::SERVER_IP,
        Duration::from_secs(8),
        &lab.dir().join("probe"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_synced(&lab, second);
    lab.kill(first).unwrap_or_else(|e| panic!("{e}"));

    let seen = probe.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        seen.tcp_intact,
        "the stream through the takeover: {seen:?}\n{}",
        lab.context()
    );
    assert!(seen.udp_answered > 0, "{seen:?}");
    all_alive(&lab, &mut flows, 1000, "after the takeover");
    let b = lab.counters(second).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (b.value("ha.active"), b.value("ha.role_changes")),
        (1, 1),
        "{second} took over, once\n{}",
        lab.context()
    );
    assert!(b.sum("went_live") >= 1000, "{}", lab.context());
    assert!(b.sum("windows_relearnt") > 0, "{}", lab.context());
    assert!(b.sum("garp_sent") > 0, "{}", lab.context());
    let halog = lab
        .ctl_ok(second, &["halog", "-n", "20"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        halog.contains("role passive → active: partner lost"),
        "{halog}"
    );

    // The old active returns: passive, takes the table, stays passive.
    lab.start(first).unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, second);
    wait_synced(&lab, first);
    all_alive(&lab, &mut flows, 1000, "after the old active returned");
    assert_eq!(
        changes(&lab, first),
        0,
        "the old active never changed role this boot"
    );
    assert_eq!(changes(&lab, second), 1, "no failback");
}

#[test]
fn one_ha_link_down_or_heartbeats_lost_one_way_never_change_a_role() {
    let _one = one_lab_at_a_time();
    let (mut lab, active) = pair();
    let passive = active.partner();
    lab.down(0).unwrap_or_else(|e| panic!("{e}"));
    lab.wait_sync(passive, "the main link down", SETTLE, |s| {
        s.link_state(0) == "down"
    })
    .unwrap_or_else(|e| panic!("{e}"));
    lab.restore(0).unwrap_or_else(|e| panic!("{e}"));
    // Every heartbeat from the active to the passive lost, on both links:
    // the passive must not take over, because the active still answers on
    // the data networks.
    let to_passive = match active {
        Unit::A => Direction::AToB,
        Unit::B => Direction::BToA,
    };
    for link in 0..2 {
        lab.cut(link, to_passive).unwrap_or_else(|e| panic!("{e}"));
    }
    lab.wait_sync(active, "the passive hearing nothing", SETTLE, |s| {
        s.link_state(0) != "up" && s.link_state(1) != "up"
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pings_lost(&lab, 100), 0, "{}", lab.context());
    // Then every HA link cut both ways (a cut is one way: set the links'
    // ends down).
    for link in 0..2 {
        lab.down(link).unwrap_or_else(|e| panic!("{e}"));
    }
    lab.wait_sync(passive, "nothing heard", SETTLE, |s| {
        s.link_state(0) == "down" && s.link_state(1) == "down"
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pings_lost(&lab, 100), 0, "{}", lab.context());
    assert_eq!(
        (changes(&lab, active), changes(&lab, passive)),
        (1, 0),
        "{}",
        lab.context()
    );
    let p = lab.counters(passive).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.value("ha.active"),
        0,
        "never two actives\n{}",
        lab.context()
    );
    for link in 0..2 {
        lab.restore(link).unwrap_or_else(|e| panic!("{e}"));
    }
    wait_roles(&lab, active);
}

#[test]
fn a_data_link_down_on_the_active_swaps_the_roles_and_they_stay() {
    let _one = one_lab_at_a_time();
    let (lab, active) = pair();
    let passive = active.partner();
    lab.set_data_link(active, "data1", false)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, passive);
    assert_eq!(
        pings_lost(&lab, 50),
        0,
        "through {passive}\n{}",
        lab.context()
    );
    // The cable back: equal quality, the new active stays (no failback).
    lab.set_data_link(active, "data1", true)
        .unwrap_or_else(|e| panic!("{e}"));
    poll_until_detail("the quality back to 100 %", SETTLE, || {
        let a = lab.counters(active)?;
        Ok(if a.value("ha.quality_percent") == 100 {
            Ok(())
        } else {
            Err(lab.context())
        })
    })
    .unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, passive);
    assert_eq!((changes(&lab, active), changes(&lab, passive)), (2, 1));
}

#[test]
fn forced_roles_and_the_planned_switchover_lose_no_ping() {
    let _one = one_lab_at_a_time();
    let (lab, first) = pair();
    let second = first.partner();
    let pinging = std::thread::scope(|s| {
        let ping = s.spawn(|| pings_lost(&lab, 300));
        std::thread::sleep(Duration::from_millis(800));
        let said = lab.ctl_ok(first, &["hapassive"]);
        (ping.join().unwrap_or(u32::MAX), said)
    });
    assert_eq!(pinging.1.ok().as_deref(), Some("role forced: passive"));
    wait_roles(&lab, second);
    let mode = lab
        .ctl_ok(first, &["hamode"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        mode.starts_with("mode: passive\nforced: passive\nreason: forced\n"),
        "{mode}"
    );
    // tandemctl is a multi-call binary: linked as `hamode`, it is `hamode`.
    let tandemctl = tandem_tests::tandemd::locate_tandemctl().unwrap_or_else(|e| panic!("{e}"));
    let hamode = lab.dir().join("hamode");
    std::os::unix::fs::symlink(&tandemctl, &hamode).unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(&hamode)
        .arg("--socket")
        .arg(lab.dir().join(second.letter()).join("control.sock"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("mode: active\nforced: no\n"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pinging.0,
        0,
        "pings lost in the switchover\n{}",
        lab.context()
    );
    // The force removed: the new active stays (incumbent). Forced back.
    lab.ctl_ok(first, &["hareset"])
        .unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, second);
    let back = std::thread::scope(|s| {
        let ping = s.spawn(|| pings_lost(&lab, 300));
        std::thread::sleep(Duration::from_millis(800));
        lab.ctl_ok(first, &["haactive"])
            .unwrap_or_else(|e| panic!("{e}"));
        ping.join().unwrap_or(u32::MAX)
    });
    wait_roles(&lab, first);
    assert_eq!(
        back,
        0,
        "pings lost forcing {first} active\n{}",
        lab.context()
    );
    assert_eq!((changes(&lab, first), changes(&lab, second)), (3, 2));
}

#[test]
fn twenty_kills_of_the_active_in_a_row_lose_no_connection() {
    let _one = one_lab_at_a_time();
    let (mut lab, mut active) = pair();
    let (_server, mut flows) = held(&lab, 100);
    for kill in 1..=20 {
        wait_synced(&lab, active.partner());
        lab.kill(active).unwrap_or_else(|e| panic!("{e}"));
        let survivor = active.partner();
        lab.wait_active(survivor, SETTLE)
            .unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        // Poked after every second kill only: between, they are idle across
        // two takeovers (larval on the survivor, then in its bulk to the
        // returning unit).
        if kill % 2 == 0 {
            all_alive(&lab, &mut flows, 100, &format!("after kill {kill}"));
        }
        lab.start(active).unwrap_or_else(|e| panic!("{e}"));
        wait_roles(&lab, survivor);
        active = survivor;
    }
}

/// `profile` (RON) with `disks` and `tpm` replaced, written to `path`.
fn profile_with(profile: &std::path::Path, disks: &str, tpm: bool, path: &std::path::Path) {
    let text = std::fs::read_to_string(profile).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("disks: [],") && text.contains("tpm: false,"));
    let text = text
        .replace("disks: [],", &format!("disks: [{disks}],"))
        .replace("tpm: false,", &format!("tpm: {tpm},"));
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_missing_tpm_and_a_failed_disk_lower_the_quality_and_decide_the_roles() {
    let _one = one_lab_at_a_time();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Each unit has a disk (a directory it write-probes); B's profile says
    // the model has a TPM, which this machine lacks: B is at 75 %.
    let (disk_a, disk_b) = (dir.path().join("disk-a"), dir.path().join("disk-b"));
    for d in [&disk_a, &disk_b] {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let disk = |d: &std::path::Path| {
        format!(
            "(name: \"disk0\", path: \"{}\", probe_dir: Some(\"{}\"))",
            d.display(),
            d.display()
        )
    };
    let lab_ron = tandem_tests::tandemd::lab_profile().unwrap_or_else(|e| panic!("{e}"));
    let sync_ron = tandem_tests::pair::sync_core_profile().unwrap_or_else(|e| panic!("{e}"));
    let (pa, pb) = (dir.path().join("a.ron"), dir.path().join("b.ron"));
    profile_with(&lab_ron, &disk(&disk_a), false, &pa);
    profile_with(&sync_ron, &disk(&disk_b), true, &pb);
    let lab = PairLab::builder()
        .data(DataWiring::Switched)
        .sync_tuning(TUNING)
        .election("listen_ms: 500")
        .profile_of(Unit::A, &pa)
        .profile_of(Unit::B, &pb)
        .build()
        .unwrap_or_else(|e| panic!("building the pair lab: {e}"));
    wait_roles(&lab, Unit::A);
    let quality = |u: Unit| {
        lab.counters(u)
            .unwrap_or_else(|e| panic!("{e}"))
            .value("ha.quality_percent")
    };
    assert_eq!((quality(Unit::A), quality(Unit::B)), (100, 75));
    // A's disk goes: 2 of 3 inputs, 66 % < 75 %: B takes over.
    std::fs::remove_dir(&disk_a).unwrap_or_else(|e| panic!("{e}"));
    wait_roles(&lab, Unit::B);
    assert_eq!(quality(Unit::A), 66);
    assert!(
        lab.ha_log(Unit::A).contains("quality 100% → 66%"),
        "{}",
        lab.ha_log(Unit::A)
    );
    assert_eq!(pings_lost(&lab, 50), 0, "through B\n{}", lab.context());
}
