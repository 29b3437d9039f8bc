//! IPv4 fragments through the unit, end to end: real Linux peers send them
//! (`ping -s` above the MTU without DF, and scapy for a lone first fragment)
//! and the unit runs `hw-profiles/profiles/lab-pcap.ron`.
//!
//! Why that profile: the default lab's `net_af_packet` ports join a
//! PACKET_FANOUT group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel
//! reassembles fragments before DPDK reads them and the fragment policy cannot
//! be seen. Measured on `lab.ron`, with the example rules and without:
//! `ping -c 3 -s 2000 -M dont` sends three sets of two fragments; the kernel
//! hands DPDK three reassembled 2028-byte datagrams, which `net_af_packet`'s
//! 2048-byte ring frames cut to 1982 bytes of frame, so the unit counts
//! `drop.ipv4_bad_length 3` and `drop.ipv4_fragment 0` (and no reply comes
//! back even when routing only); a lone first fragment never arrives (no
//! counter moves, `port.data0.ipackets` included). Through `net_pcap` on the
//! same veth ends (libpcap: no fanout, no defragmentation) the same traffic is
//! counted `drop.ipv4_fragment 7`, fragment by fragment: the first test below
//! fails on `lab.ron` and passes on `lab-pcap.ron`.
//!
//! What reached a Linux peer is read from its kernel's own counters
//! (`/proc/net/snmp`, per namespace): `ReasmReqds` counts the fragments it
//! received, `ReasmOKs` the datagrams it reassembled, `FragCreates` the
//! fragments it made. Needs root, ping and a python3 with scapy
//! (`$TANDEM_PYTHON`, else `python3`, else `/usr/bin/python3`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_tests::wait::poll_until_detail;
use tandem_tests::{plan, Counters, Lab, Netns, Output};

/// Bound on waiting for counters (the unit's file is rewritten about once a
/// second). A bound on waiting, not a performance assertion.
const COUNTERS_WAIT: Duration = Duration::from_secs(15);
/// Echo requests per `ping` run.
const PINGS: u64 = 3;
/// ICMP payload that makes a 2028-byte datagram: two fragments on a 1500-byte link.
const TWO_FRAGMENTS: &str = "2000";
/// A UDP port the example rules pass to the server, so that only the fragment
/// policy can stop the scapy fragment.
const PASSED_UDP_PORT: &str = "5353";

fn profile_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hw-profiles/profiles")
        .join(name)
}

fn example_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mgmt/examples/lab-rules.ron")
}

/// `lab-pcap.ron` with `data1` (towards the server) given an MTU of `mtu`
/// bytes of IP, written into `dir`. The veth stays at 1500: only the unit's
/// idea of the egress MTU changes.
fn pcap_profile_with_data1_mtu(dir: &Path, mtu: u16) -> PathBuf {
    let text = std::fs::read_to_string(profile_path("lab-pcap.ron")).expect("reading lab-pcap.ron");
    let data1 = r#"Vdev("net_pcap1,iface=data1,phy_mac=1"), rx_queues: 1, tx_queues: 1"#;
    assert_eq!(
        text.matches(data1).count(),
        1,
        "lab-pcap.ron changed shape:\n{text}"
    );
    let path = dir.join("lab-pcap.ron");
    std::fs::write(&path, text.replace(data1, &format!("{data1}, mtu: {mtu}")))
        .expect("writing the profile");
    path
}

fn pcap_lab(profile: &Path, rules: bool) -> Lab {
    let builder = Lab::builder().profile(profile);
    let builder = if rules {
        builder.rules(example_rules())
    } else {
        builder
    };
    builder.build().expect("building a lab-pcap lab")
}

fn ping(lab: &Lab, args: &[&str]) -> Output {
    lab.client()
        .exec(["ping", "-n", "-W", "2", "-i", "0.2"].iter().chain(args))
        .expect("running ping")
}

/// The `Ip:` counters of `ns`'s kernel (`/proc/net/snmp`), by name.
fn ip_stats(ns: &Netns) -> BTreeMap<String, u64> {
    let out = ns
        .exec_ok(["cat", "/proc/net/snmp"])
        .unwrap_or_else(|e| panic!("reading /proc/net/snmp: {e}"));
    let mut ip = out.stdout.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap_or(""), ip.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

/// How much `name` grew from `before` to `after`.
fn grew(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    let get = |m: &BTreeMap<String, u64>| m.get(name).copied().unwrap_or(0);
    get(after) - get(before)
}

/// Sends, from the client, the first fragment (1480 bytes of payload, MF
/// set) of a 2000-byte UDP datagram to the server's `port`, and never the
/// rest: an incomplete set. Raw IP socket, so the client kernel routes it.
fn send_lone_first_fragment(lab: &Lab, port: &str) {
    const PROGRAM: &str = r#"
import socket, sys
from scapy.layers.inet import IP, UDP, fragment
src, dst, dport = sys.argv[1:4]
datagram = IP(src=src, dst=dst, id=0x7a6d) / UDP(sport=40000, dport=int(dport)) / (b"F" * 2000)
first = fragment(datagram, fragsize=1480)[0]
assert first.flags.MF and first.frag == 0 and len(first) == 1500, first.summary()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes(first), (dst, 0))
"#;
    let python = tandem_tests::diff::linux::find_python().unwrap_or_else(|e| panic!("{e}"));
    let args = [
        &python,
        "-c",
        PROGRAM,
        plan::CLIENT_IP,
        plan::SERVER_IP,
        port,
    ];
    let out = lab.client().exec(args).expect("running python3");
    assert!(
        out.success(),
        "sending a lone fragment: {}",
        lab.context(&out)
    );
}

/// Waits (bounded) until the unit's counters satisfy `pred`.
fn wait_unit(lab: &Lab, what: &str, pred: impl FnMut(&Counters) -> bool) -> Counters {
    lab.wait_counters(what, COUNTERS_WAIT, pred)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()))
}

/// [`PINGS`] echo requests to the server that the client's kernel sends as
/// two fragments each (DF clear).
fn fragmented_pings(lab: &Lab) -> Output {
    let count = PINGS.to_string();
    ping(
        lab,
        &[
            "-c",
            &count,
            "-s",
            TWO_FRAGMENTS,
            "-M",
            "dont",
            plan::SERVER_IP,
        ],
    )
}

/// With the example rules, real fragments from the client reach the unit and
/// are dropped as `ipv4_fragment`, one count per fragment: three complete sets
/// made by the client's kernel (ICMP echo requests, which the rules pass when
/// whole) and an incomplete one made with scapy (UDP to port 5353, also
/// passed when whole). Nothing of them reaches the server (its kernel
/// received no fragment), while an unfragmented ping before and after does.
#[test]
fn with_rules_real_fragments_reach_the_unit_and_are_dropped_as_ipv4_fragment() {
    let lab = pcap_lab(&profile_path("lab-pcap.ron"), true);
    let out = ping(&lab, &["-c", "1", plan::SERVER_IP]);
    assert!(out.success(), "the path works: {}", lab.context(&out));
    let (client0, server0) = (ip_stats(lab.client()), ip_stats(lab.server()));

    let out = fragmented_pings(&lab);
    assert!(
        out.stdout.contains(" 0 received"),
        "fragmented echo requests passed: {}",
        lab.context(&out)
    );
    send_lone_first_fragment(&lab, PASSED_UDP_PORT);

    let made = grew(&client0, &ip_stats(lab.client()), "FragCreates");
    assert_eq!(
        made,
        2 * PINGS,
        "the client kernel made two fragments a ping"
    );
    let sent = made + 1;
    let c = wait_unit(&lab, "every fragment to be counted", |c| {
        c.sum("drop.ipv4_fragment") >= sent
    });
    assert_eq!(
        c.sum("drop.ipv4_fragment"),
        sent,
        "one count per fragment:\n{c}"
    );
    let out = ping(&lab, &["-c", "1", plan::SERVER_IP]);
    assert!(out.success(), "the path still works: {}", lab.context(&out));
    let server = ip_stats(lab.server());
    assert_eq!(
        grew(&server0, &server, "ReasmReqds"),
        0,
        "a fragment reached the server\n{}",
        lab.unit_logs()
    );
}

/// Routing only (no rules): fragments cross the unit as they are. The
/// server's kernel receives exactly the fragments the client's made, plus the
/// lone scapy fragment, and reassembles every echo request; its replies, which
/// it fragments itself, come back and are reassembled by the client. The unit
/// fragmented nothing and dropped nothing.
#[test]
fn routing_only_fragments_cross_the_unit_as_they_are() {
    let lab = pcap_lab(&profile_path("lab-pcap.ron"), false);
    let (client0, server0) = (ip_stats(lab.client()), ip_stats(lab.server()));
    let out = fragmented_pings(&lab);
    assert!(
        out.success() && out.stdout.contains(&format!(" {PINGS} received")),
        "{}",
        lab.context(&out)
    );
    send_lone_first_fragment(&lab, "9");

    let made = grew(&client0, &ip_stats(lab.client()), "FragCreates");
    assert_eq!(
        made,
        2 * PINGS,
        "the client kernel made two fragments a ping"
    );
    let server = poll_until_detail(
        "the lone fragment to reach the server",
        COUNTERS_WAIT,
        || {
            let s = ip_stats(lab.server());
            let got = grew(&server0, &s, "ReasmReqds");
            Ok(if got > made {
                Ok(s)
            } else {
                Err(format!("ReasmReqds grew by {got}"))
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()));
    assert_eq!(grew(&server0, &server, "ReasmReqds"), made + 1);
    assert_eq!(grew(&server0, &server, "ReasmOKs"), PINGS);
    let client = ip_stats(lab.client());
    assert_eq!(
        grew(&client0, &client, "ReasmReqds"),
        grew(&server0, &server, "FragCreates"),
        "the replies' fragments all came back"
    );
    assert_eq!(grew(&client0, &client, "ReasmOKs"), PINGS);

    let crossed = made + grew(&server0, &server, "FragCreates") + 1;
    let c = wait_unit(&lab, "the fragments to be counted as forwarded", |c| {
        c.sum("forwarded") >= crossed
    });
    assert_eq!(
        c.sum("forwarded"),
        crossed,
        "each fragment forwarded once: {c}"
    );
    assert_eq!(c.sum("datagrams_fragmented"), 0, "{c}");
    assert_eq!(c.sum_where(|n| n.contains(".drop.")), 0, "{c}");
}

/// Item 8 end to end: `data1` sends at most 1000 bytes of IP while the path
/// carries 1500. An echo request of 1428 bytes without DF crosses the unit in
/// two fragments (976 + 432 bytes of payload) that the server reassembles,
/// and its reply comes back whole; with the example rules in force, the
/// firewall passed the datagram whole before the unit fragmented it. Then
/// the same size with DF set is refused with ICMP fragmentation needed
/// naming the MTU (RFC 1191), from the unit's data0 address. (DF set last:
/// once the client has learnt the path MTU, its kernel fragments itself.)
#[test]
fn over_the_egress_mtu_the_unit_fragments_without_df_and_refuses_with_df() {
    let dir = tempfile::tempdir().expect("a directory for the profile");
    let lab = pcap_lab(&pcap_profile_with_data1_mtu(dir.path(), 1000), true);
    let (client0, server0) = (ip_stats(lab.client()), ip_stats(lab.server()));
    let count = PINGS.to_string();
    let dont = ["-c", &count, "-s", "1400", "-M", "dont", plan::SERVER_IP];
    let out = ping(&lab, &dont);
    assert!(
        out.success() && out.stdout.contains(&format!(" {PINGS} received")),
        "{}",
        lab.context(&out)
    );
    assert_eq!(
        grew(&client0, &ip_stats(lab.client()), "FragCreates"),
        0,
        "the client sent whole datagrams"
    );
    let server = ip_stats(lab.server());
    assert_eq!(grew(&server0, &server, "ReasmReqds"), 2 * PINGS);
    assert_eq!(grew(&server0, &server, "ReasmOKs"), PINGS);
    let c = wait_unit(&lab, "the fragmentation to be counted", |c| {
        c.sum("fragments_created") >= 2 * PINGS
    });
    assert_eq!(
        (c.sum("datagrams_fragmented"), c.sum("fragments_created")),
        (PINGS, 2 * PINGS),
        "{c}"
    );
    assert_eq!(c.sum("accepted_new"), 1, "one ping, one connection: {c}");
    assert_eq!(c.sum_where(|n| n.contains(".drop.")), 0, "{c}");

    let out = ping(
        &lab,
        &["-c", "1", "-s", "1400", "-M", "do", plan::SERVER_IP],
    );
    let from_unit = format!("From {} ", plan::UNIT_DATA0_IP);
    assert!(
        out.stdout.contains(&from_unit)
            && out.stdout.contains("Frag needed and DF set (mtu = 1000)"),
        "expected `Frag needed and DF set (mtu = 1000)` {from_unit}: {}",
        lab.context(&out)
    );
    let c = wait_unit(&lab, "fragmentation_needed to be counted", |c| {
        c.sum("drop.fragmentation_needed") >= 1
    });
    assert_eq!(c.sum("drop.fragmentation_needed"), 1, "{c}");
    assert_eq!(c.sum("datagrams_fragmented"), PINGS, "{c}");
}
