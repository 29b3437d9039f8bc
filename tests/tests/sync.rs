//! The pair synchronises: two real units ([`PairLab`]: A active, B passive,
//! two HA links through a middle namespace), real Linux TCP and UDP through
//! A, and B's table checked against A's through `tandemctl conns` — the same
//! connections in the same states, every one larval on B, none on A — while
//! the links are clean, lossy, cut one way or down, and across restarts of
//! either unit. The last test reads the main link with the independent
//! decoder (`scripts/sync_decode.py`).
//!
//! One lab at a time (a lock in this file): each runs two DPDK units, and the
//! machine they are written for has two cores. Every wait is bounded and no
//! assertion is about time: tables are polled until they agree, and a
//! timeout shows the last difference, both units' `tandemctl sync` and logs.
//!
//! Needs root, python3, nft and tcpdump; the decoder needs a python3 with
//! scapy and cryptography (`$TANDEM_PYTHON`, else `python3`, else
//! `/usr/bin/python3`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tandem_tests::conns::{self, ConnKey, Entry};
use tandem_tests::flows::{FlowServer, HeldFlows, Open};
use tandem_tests::pair::{Relay, SYNCED_PORT, UDP_PORT, UNSYNCED_PORT};
use tandem_tests::wait::poll_until_detail;
use tandem_tests::{command, plan, Counters, Direction, PairLab, Unit};

/// Bound on the pair agreeing after a change (a bulk, a thousand
/// connections through 5 % loss): a hang's limit, not a measure.
const SYNC_WAIT: Duration = Duration::from_secs(60);

/// Bound on a link's state showing in `tandemctl sync` (a link is down after
/// 1 s of silence by default).
const LINK_WAIT: Duration = Duration::from_secs(20);

static ONE_LAB: Mutex<()> = Mutex::new(());

/// Two DPDK units on a two-core machine: one pair at a time.
fn one_lab_at_a_time() -> MutexGuard<'static, ()> {
    ONE_LAB.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pair whose units found each other: B has A's (empty) table.
fn pair() -> PairLab {
    let lab = PairLab::new().unwrap_or_else(|e| panic!("building the pair lab: {e}"));
    for unit in Unit::BOTH {
        lab.wait_sync(unit, "in sync with its partner", SYNC_WAIT, |s| {
            s.in_sync && s.bulk_done()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    }
    lab
}

/// The server: TCP on the synced and the unsynced ports, UDP echo.
fn server(lab: &PairLab) -> FlowServer {
    FlowServer::start(
        lab.server(),
        plan::SERVER_IP,
        &[SYNCED_PORT, UNSYNCED_PORT],
        Some(UDP_PORT),
        &lab.dir().join("flow-server"),
    )
    .unwrap_or_else(|e| panic!("starting the flow server: {e}"))
}

/// Flows from the client through A, held until dropped.
fn open(lab: &PairLab, name: &str, what: Open) -> HeldFlows {
    HeldFlows::open(lab.client(), &what, &lab.dir().join(name))
        .unwrap_or_else(|e| panic!("opening the flows `{name}`: {e}\n{}", lab.context()))
}

fn to_server() -> Open {
    Open::new(plan::SERVER_IP)
}

/// Waits until every connection of `open` is on A, established (answered),
/// and B's table matches A's (the entries `keep` selects); both tables.
fn wait_match(
    lab: &PairLab,
    keep: impl Fn(&Entry) -> bool,
    open: &[ConnKey],
) -> (Vec<Entry>, Vec<Entry>) {
    wait_match_and(lab, keep, |a| opened(a, open))
}

/// `Err` saying how many of `open` `table` does not hold established yet.
fn opened(table: &[Entry], open: &[ConnKey]) -> Result<(), String> {
    let states: BTreeMap<_, _> = table.iter().map(|e| (&e.key, e.state.as_str())).collect();
    let not_yet: Vec<&ConnKey> = open
        .iter()
        .filter(|k| !states.get(k).is_some_and(|s| open_state(k, s)))
        .collect();
    match not_yet.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(format!(
            "{} of {} flows not established on A yet, e.g. {first} ({})",
            not_yet.len(),
            open.len(),
            states.get(first).copied().unwrap_or("absent")
        )),
    }
}

/// Waits until `also` accepts A's table and B's table matches A's (the
/// entries `keep` selects); both tables.
fn wait_match_and(
    lab: &PairLab,
    keep: impl Fn(&Entry) -> bool,
    also: impl Fn(&[Entry]) -> Result<(), String>,
) -> (Vec<Entry>, Vec<Entry>) {
    poll_until_detail("B's table to match A's", SYNC_WAIT, || {
        let a = lab.conns(Unit::A)?;
        let b = lab.conns(Unit::B)?;
        let d = conns::compare(&a, &b, &keep);
        Ok(match also(&a) {
            Err(why) => Err(format!("{why}\n{d}")),
            Ok(()) if d.is_empty() => Ok((a, b)),
            Ok(()) => Err(d.to_string()),
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()))
}

/// Asserts that every key is in `table` in a state `state_ok` accepts.
fn assert_holds(
    table: &[Entry],
    keys: &[ConnKey],
    what: &str,
    state_ok: impl Fn(&ConnKey, &str) -> bool,
) {
    let held: BTreeMap<_, _> = table.iter().map(|e| (&e.key, e.state.as_str())).collect();
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !held.contains_key(k))
        .map(ToString::to_string)
        .collect();
    let wrong: Vec<String> = keys
        .iter()
        .filter_map(|k| held.get(k).map(|s| (k, *s)))
        .filter(|(k, s)| !state_ok(k, s))
        .map(|(k, s)| format!("{k} {s}"))
        .collect();
    assert!(
        missing.is_empty() && wrong.is_empty(),
        "{what}: {} of {} connections missing, {} in another state\nmissing (first 10): {:?}\nother state (first 10): {:?}",
        missing.len(),
        keys.len(),
        wrong.len(),
        &missing[..missing.len().min(10)],
        &wrong[..wrong.len().min(10)],
    );
}

/// Established TCP, answered UDP: what a held flow is.
fn open_state(k: &ConnKey, state: &str) -> bool {
    match k.proto.as_str() {
        "tcp" => state == "ESTABLISHED",
        "udp" => state == "UDP_REPLIED",
        _ => false,
    }
}

fn keys_of(table: &[Entry]) -> BTreeSet<&ConnKey> {
    table.iter().map(|e| &e.key).collect()
}

fn counters(lab: &PairLab, unit: Unit) -> Counters {
    lab.counters(unit)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()))
}

/// Polls both units' counters until `pred` holds for (A's, B's): the sync
/// lcore publishes its counters every 100 ms, so they trail the tables.
fn wait_counters(
    lab: &PairLab,
    what: &str,
    pred: impl Fn(&Counters, &Counters) -> bool,
) -> (Counters, Counters) {
    poll_until_detail(what, SYNC_WAIT, || {
        let (a, b) = (lab.counters(Unit::A)?, lab.counters(Unit::B)?);
        Ok(if pred(&a, &b) {
            Ok((a, b))
        } else {
            Err(format!(
                "--- A ---\n{}--- B ---\n{}",
                a.nonzero(),
                b.nonzero()
            ))
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()))
}

/// The sum over workers of a worker counter (`sync_installed`, ...).
fn workers(c: &Counters, name: &str) -> u64 {
    c.sum_where(|n| n.starts_with("worker") && n.ends_with(&format!(".{name}")))
}

/// A thousand TCP connections (data on every third) and 200 UDP flows.
fn thousand() -> Open {
    to_server()
        .tcp(1000, SYNCED_PORT)
        .send_every(3)
        .udp(200, UDP_PORT)
}

/// The states a TCP connection closed by the client ends in: TIME_WAIT
/// after the FIN exchange, or CLOSE when the server's kernel answers a
/// second ACK with a RST (a veth may deliver the server's ACK and FIN out of
/// order when two CPUs sent them, and the client then ACKs twice); a CLOSE
/// entry expires after 10 s.
fn closed_state(state: &str) -> bool {
    matches!(state, "TIME_WAIT" | "CLOSE")
}

/// Waits until B matches A with every connection of `closed` ended on A
/// ([`closed_state`] or gone), then checks that A and B hold `open`
/// established (answered) and nothing of `closed` in another state, and
/// that both units say they are in sync.
fn assert_in_step(lab: &PairLab, what: &str, open: &[ConnKey], closed: &[ConnKey]) {
    let closing = |t: &[Entry]| {
        let closed: BTreeSet<&ConnKey> = closed.iter().collect();
        t.iter()
            .filter(|e| closed.contains(&e.key) && !closed_state(&e.state))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let (a, b) = wait_match_and(
        lab,
        |_| true,
        |a| match closing(a).as_slice() {
            [] => opened(a, open),
            [first, ..] => Err(format!(
                "{} closed connection(s) not ended on A yet, e.g. {first}",
                closing(a).len()
            )),
        },
    );
    for (unit, table) in [(Unit::A, &a), (Unit::B, &b)] {
        assert_holds(table, open, &format!("{unit} ({what})"), open_state);
        let left = closing(table);
        assert!(
            left.is_empty(),
            "{unit} ({what}): {} closed connection(s) in another state: {:?}",
            left.len(),
            &left[..left.len().min(10)]
        );
    }
    // Both units also say so: digests agree, nothing unacknowledged.
    assert_in_sync(lab);
}

fn tcp_only(keys: &[ConnKey]) -> Vec<ConnKey> {
    keys.iter().filter(|k| k.proto == "tcp").cloned().collect()
}

#[test]
fn a_thousand_connections_and_200_udp_flows_reach_the_passive_over_clean_lossy_and_reordering_links(
) {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let _server = server(&lab);

    // A clean link.
    let first = open(&lab, "clean", thousand());
    let first_keys = first.keys(plan::CLIENT_IP);
    assert_in_step(&lab, "clean links", &first_keys, &[]);
    assert_eq!(
        lab.conns(Unit::A).expect("A's table").len(),
        1200,
        "A holds the lab's flows only"
    );
    let (ca, _) = wait_counters(
        &lab,
        "A to count 1200 inserts sent, B 1200 installed",
        |a, b| a.value("sync.inserts_sent") >= 1200 && workers(b, "sync_installed") >= 1200,
    );
    let retransmitted = ca.value("sync.retransmitted");

    // 5 % random loss on both HA links, both ways: the first thousand close
    // (their FINs are updates), a thousand more open.
    for link in 0..2 {
        lab.set_loss(link, 5).expect("setting 5 % loss");
    }
    first.close().expect("closing the first flows");
    let second = open(&lab, "lossy", thousand());
    let second_keys = second.keys(plan::CLIENT_IP);
    let mut closed = tcp_only(&first_keys);
    assert_in_step(&lab, "5 % loss", &second_keys, &closed);
    wait_counters(
        &lab,
        "the loss to reach the sync stream (A retransmits)",
        |a, _| a.value("sync.retransmitted") > retransmitted,
    );

    // The main link (the stream's) reordered by a relay: a fifth of the
    // frames held back 10 ms, each way. The second thousand close, a third
    // opens.
    for link in 0..2 {
        lab.restore(link).expect("ending the loss");
    }
    lab.relay(
        0,
        Relay {
            reorder_percent: 20.0,
            delay_ms: 10.0,
            loss_percent: 0.0,
            seed: 2026,
        },
    )
    .expect("starting the relay");
    second.close().expect("closing the second flows");
    let third = open(&lab, "reordered", thousand());
    closed.extend(tcp_only(&second_keys));
    assert_in_step(&lab, "reordering", &third.keys(plan::CLIENT_IP), &closed);
    let relayed = lab.relay_stats(0).expect("the relay's counts");
    assert!(
        relayed.overtaken > 0 && relayed.a_to_b > 0 && relayed.b_to_a > 0,
        "the relay reordered frames both ways: {relayed:?}"
    );
    let st = lab.sync_status(Unit::A).expect("A's sync status");
    assert_eq!(
        st.stream_link(),
        Some(0),
        "the stream stayed on the reordered link\n{}",
        st.text
    );
}

#[test]
fn a_killed_passive_gets_the_whole_table_back_idle_connections_included() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let _server = server(&lab);
    let idle = open(&lab, "idle", to_server().tcp(1, SYNCED_PORT));
    let flows = open(
        &lab,
        "flows",
        to_server()
            .tcp(300, SYNCED_PORT)
            .send_every(2)
            .udp(50, UDP_PORT),
    );
    let mut keys = idle.keys(plan::CLIENT_IP);
    keys.extend(flows.keys(plan::CLIENT_IP));
    wait_match(&lab, |_| true, &keys);
    let b_epoch = lab
        .sync_status(Unit::A)
        .expect("A's sync status")
        .partner_epoch;

    lab.kill_and_restart(Unit::B)
        .unwrap_or_else(|e| panic!("restarting B: {e}\n{}", lab.context()));
    let st = lab
        .wait_sync(Unit::B, "the bulk from A, in sync", SYNC_WAIT, |s| {
            s.bulk_done() && s.in_sync
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    assert!(st.partner_epoch.is_some(), "{}", st.text);
    lab.wait_sync(Unit::A, "B's new boot, in sync", SYNC_WAIT, |s| {
        s.partner_epoch.is_some() && s.partner_epoch != b_epoch && s.in_sync
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));

    let (a, b) = wait_match(&lab, |_| true, &keys);
    assert_holds(&a, &keys, "A", open_state);
    assert_holds(&b, &keys, "B after its restart", open_state);
    let idle_key = &idle.keys(plan::CLIENT_IP)[0];
    assert!(
        b.iter().any(|e| &e.key == idle_key && e.larval()),
        "the connection idle since before the restart is larval on B"
    );
    wait_counters(
        &lab,
        "B to count A's bulk received and the table installed anew, A the bulk sent",
        |a, b| {
            b.value("sync.bulks_received") >= 1
                && workers(b, "sync_installed") >= 351
                && a.value("sync.bulks_sent") >= 1
        },
    );
}

#[test]
fn an_active_restarted_without_a_takeover_leaves_the_passive_with_its_new_table_only() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let _server = server(&lab);
    let old = open(
        &lab,
        "old",
        to_server()
            .tcp(200, SYNCED_PORT)
            .send_every(2)
            .udp(50, UDP_PORT),
    );
    let (_, b) = wait_match(&lab, |_| true, &old.keys(plan::CLIENT_IP));
    assert_holds(
        &b,
        &old.keys(plan::CLIENT_IP),
        "B before A restarts",
        open_state,
    );
    let a_epoch = lab
        .sync_status(Unit::B)
        .expect("B's sync status")
        .partner_epoch;

    // A reboots and comes back active (B is configured passive: no
    // takeover). The client still holds the old connections, idle: A has
    // forgotten them and nothing makes them known again.
    let status = lab
        .restart(Unit::A)
        .unwrap_or_else(|e| panic!("restarting A: {e}\n{}", lab.context()));
    assert!(status.success(), "A stopped cleanly: {status}");
    lab.wait_sync(Unit::B, "A's new boot, its bulk, in sync", SYNC_WAIT, |s| {
        s.partner_epoch.is_some() && s.partner_epoch != a_epoch && s.bulk_done() && s.in_sync
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));

    let new = open(
        &lab,
        "new",
        to_server()
            .tcp(200, SYNCED_PORT)
            .send_every(2)
            .udp(50, UDP_PORT),
    );
    let new_keys = new.keys(plan::CLIENT_IP);
    let (a, b) = wait_match(&lab, |_| true, &new_keys);
    assert_holds(&a, &new_keys, "A after its restart", open_state);
    assert_holds(&b, &new_keys, "B", open_state);
    let old_keys: BTreeSet<ConnKey> = old.keys(plan::CLIENT_IP).into_iter().collect();
    for (unit, table) in [(Unit::A, &a), (Unit::B, &b)] {
        let left: Vec<_> = keys_of(table)
            .into_iter()
            .filter(|k| old_keys.contains(*k))
            .collect();
        assert!(
            left.is_empty(),
            "{unit} still holds {} connection(s) of A's previous boot, e.g. {}",
            left.len(),
            left[0]
        );
    }
    wait_counters(
        &lab,
        "B to count A's previous boot's entries flushed",
        |_, b| workers(b, "sync_flushed") >= 250,
    );
}

#[test]
fn connections_of_a_rule_with_sync_off_stay_on_the_active() {
    let _one = one_lab_at_a_time();
    let lab = pair();
    let _server = server(&lab);
    // The unsynced ones first: the stream is in order, so once the synced
    // ones opened after them are on B, the unsynced would be there too.
    let unsynced = open(&lab, "unsynced", to_server().tcp(50, UNSYNCED_PORT));
    let synced = open(&lab, "synced", to_server().tcp(50, SYNCED_PORT));
    let unsynced_keys = unsynced.keys(plan::CLIENT_IP);
    let mut keys = unsynced_keys.clone();
    keys.extend(synced.keys(plan::CLIENT_IP));
    let (a, b) = wait_match(&lab, Entry::synced, &keys);
    assert_holds(&a, &unsynced_keys, "A: the unsynced rule's", open_state);
    assert_holds(
        &b,
        &synced.keys(plan::CLIENT_IP),
        "B: the synced rule's",
        open_state,
    );
    let flagged: Vec<_> = a
        .iter()
        .filter(|e| unsynced_keys.contains(&e.key) && e.synced())
        .collect();
    assert!(flagged.is_empty(), "flagged sync on A: {flagged:?}");
    let on_b: Vec<_> = b
        .iter()
        .filter(|e| unsynced_keys.contains(&e.key))
        .collect();
    assert!(
        on_b.is_empty(),
        "{} connection(s) of the `sync: false` rule on B, e.g. {}",
        on_b.len(),
        on_b[0]
    );
    assert_eq!(b.len(), 50, "B holds the synced rule's connections only");
}

#[test]
fn a_main_link_cut_one_way_is_shown_on_both_units_and_sync_goes_on_over_the_backup() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let _server = server(&lab);
    lab.cut(0, Direction::AToB).expect("cutting link 0 A→B");
    for (unit, state) in [
        (Unit::A, "one-way (partner does not hear us)"),
        (Unit::B, "one-way (we do not hear the partner)"),
    ] {
        lab.wait_sync(
            unit,
            &format!("link 0 `{state}`, the stream on link 1"),
            LINK_WAIT,
            |s| s.link_state(0) == state && s.link_state(1) == "up" && s.stream_link() == Some(1),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    }
    let before = counters(&lab, Unit::B).value("sync.link1.records_received");
    let flows = open(
        &lab,
        "flows",
        to_server().tcp(100, SYNCED_PORT).udp(20, UDP_PORT),
    );
    let (_, b) = wait_match(&lab, |_| true, &flows.keys(plan::CLIENT_IP));
    assert_holds(&b, &flows.keys(plan::CLIENT_IP), "B", open_state);
    wait_counters(&lab, "B to count the records received on link 1", |_, b| {
        b.value("sync.link1.records_received") >= before + 120
    });

    assert_in_sync(&lab);

    // Mended, the link is up both ways on both units again, and the stream
    // goes back to it (the first link that works both ways).
    lab.restore(0).expect("restoring link 0");
    for unit in Unit::BOTH {
        lab.wait_sync(unit, "link 0 up again, the stream on it", LINK_WAIT, |s| {
            s.link_state(0) == "up" && s.stream_link() == Some(0)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    }
}

/// Both units say they are in sync (a partner, its bulk, digests agreeing,
/// nothing unacknowledged, no gap).
fn assert_in_sync(lab: &PairLab) {
    for unit in Unit::BOTH {
        lab.wait_sync(unit, "in sync", SYNC_WAIT, |s| s.in_sync)
            .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    }
}

#[test]
fn with_the_main_link_down_sync_goes_on_over_the_backup_and_nothing_is_lost() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let _server = server(&lab);
    let before = open(
        &lab,
        "before",
        to_server().tcp(100, SYNCED_PORT).udp(20, UDP_PORT),
    );
    wait_match(&lab, |_| true, &before.keys(plan::CLIENT_IP));

    lab.down(0).expect("setting link 0 down");
    for unit in Unit::BOTH {
        lab.wait_sync(unit, "link 0 down, the stream on link 1", LINK_WAIT, |s| {
            s.link_state(0) == "down" && s.link_state(1) == "up" && s.stream_link() == Some(1)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    }
    let after = open(
        &lab,
        "after",
        to_server()
            .tcp(200, SYNCED_PORT)
            .send_every(2)
            .udp(50, UDP_PORT),
    );
    let mut keys = before.keys(plan::CLIENT_IP);
    keys.extend(after.keys(plan::CLIENT_IP));
    let (a, b) = wait_match(&lab, |_| true, &keys);
    assert_holds(&a, &keys, "A", open_state);
    assert_holds(&b, &keys, "B with link 0 down", open_state);
    assert_in_sync(&lab);
    for unit in Unit::BOTH {
        let st = lab.sync_status(unit).expect("sync status");
        assert_eq!(st.stream_link(), Some(1), "{unit}\n{}", st.text);
    }
}

/// `sync_decode.py` on a capture of the main link: every datagram opens,
/// and the inserts name the connections the client opened.
#[test]
fn the_independent_decoder_opens_every_datagram_and_reads_the_inserts() {
    let _one = one_lab_at_a_time();
    let lab = pair();
    let _server = server(&lab);
    let capture = lab.capture(0).expect("starting tcpdump on link 0");
    let flows = open(
        &lab,
        "flows",
        to_server()
            .tcp(50, SYNCED_PORT)
            .send_every(2)
            .udp(20, UDP_PORT),
    );
    wait_match(&lab, |_| true, &flows.keys(plan::CLIENT_IP));
    let pcap = capture.stop().expect("stopping tcpdump");

    let python = tandem_tests::diff::linux::find_python().unwrap_or_else(|e| panic!("{e}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sync_decode.py");
    let serials = format!("{},{}", Unit::A.serial(), Unit::B.serial());
    let out = command::run(
        std::process::Command::new(&python)
            .arg(&script)
            .args(["--psk", lab.psk_hex(), "--serials", &serials, "--pcap"])
            .arg(&pcap),
        Duration::from_secs(120),
    )
    .expect("running sync_decode.py");
    assert!(out.success(), "{out}");

    let mut datagrams = 0;
    let mut from_a = 0;
    let mut ends = BTreeSet::new();
    for line in out.stdout.lines() {
        let d: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        datagrams += 1;
        assert_eq!(
            d["opened"], true,
            "a datagram the decoder could not open: {d}"
        );
        assert!(d.get("error").is_none(), "a datagram in error: {d}");
        if d["serial"] == Unit::A.serial() {
            from_a += 1;
        }
        for r in d["records"].as_array().into_iter().flatten() {
            if r["action"] == "insert" {
                let end = |a: &str, p: &str| format!("{}:{}", r[a].as_str().unwrap_or("?"), r[p]);
                let pair = [
                    end("lower_address", "lower_port"),
                    end("higher_address", "higher_port"),
                ];
                ends.insert((r["l4_kind"].as_str().unwrap_or("?").to_string(), pair));
            }
        }
    }
    assert!(
        from_a > 0 && datagrams > from_a,
        "datagrams both ways: {datagrams} ({from_a} from A)\n{out}"
    );
    let missing: Vec<String> = flows
        .keys(plan::CLIENT_IP)
        .iter()
        .filter(|k| {
            let mut pair = [k.src.clone(), k.dst.clone()];
            pair.sort();
            // The decoder orders the ends as the record does: lower first.
            !ends.contains(&(k.proto.clone(), pair.clone()))
                && !ends.contains(&(k.proto.clone(), [pair[1].clone(), pair[0].clone()]))
        })
        .map(ToString::to_string)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} connections have no insert record the decoder read, e.g. {:?}\n{} insert(s) read, e.g. {:?}",
        missing.len(),
        flows.keys(plan::CLIENT_IP).len(),
        missing.first(),
        ends.len(),
        ends.iter().next()
    );
}

/// What a lab leaves when its test fails: nothing. A unit killed (its EAL
/// runtime directory and lock files stay behind it), a relay, a capture and
/// held flows running, then a panic.
#[test]
fn a_pair_lab_leaves_nothing_behind_when_its_test_panics() {
    let _one = one_lab_at_a_time();
    let seen = Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = pair();
        let server = server(&lab);
        let flows = open(&lab, "flows", to_server().tcp(10, SYNCED_PORT));
        let a_pid = lab.tandemd(Unit::A).expect("A runs").pid();
        lab.kill(Unit::B).expect("killing B");
        lab.relay(1, Relay::default()).expect("starting a relay");
        let capture = lab.capture(0).expect("starting a capture");
        let pids = vec![
            a_pid,
            lab.relay_pid(1).expect("the relay's pid"),
            capture.pid(),
            server.proc().pid(),
            flows.proc().pid(),
        ];
        let prefixes: Vec<String> = Unit::BOTH
            .iter()
            .map(|u| lab.unit_ns(*u).name().to_string())
            .collect();
        *seen.lock().unwrap() = Some((lab.namespaces(), pids, prefixes, lab.dir().to_path_buf()));
        panic!("a test failing in the middle of a pair lab");
    }));
    assert!(result.is_err(), "the closure should have panicked");
    let (names, pids, prefixes, dir) = seen.lock().unwrap().take().expect("the lab was built");
    let listed = tandem_tests::netns::list().expect("ip netns list");
    let left: Vec<_> = names.iter().filter(|n| listed.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the lab"
        );
    }
    for prefix in &prefixes {
        let runtime = Path::new(tandem_tests::tandemd::DPDK_RUNTIME_DIR).join(prefix);
        assert!(!runtime.exists(), "{} left behind", runtime.display());
        let lock = Path::new(tandem_tests::tandemd::LOCK_DIR).join(format!("prefix-{prefix}.lock"));
        assert!(!lock.exists(), "{} left behind", lock.display());
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}
