//! Differential test: tandem's TCP tracker against Linux's own conntrack.
//!
//! Every trace of `tandem_tests::diff::traces` is replayed through a Linux
//! firewall namespace (`nf_conntrack_tcp_loose=0`, nft dropping
//! `ct state invalid`) and through `dataplane::conntrack::tcp`, and the
//! verdicts are compared packet by packet. Differences listed in
//! `tandem_tests::diff::DELIBERATE` are printed with their reason; any other
//! fails the test with a table. Linux must also give the verdicts the traces
//! expect: that checks the harness. Needs root, nftables, conntrack and
//! python3 with scapy; run with `--nocapture` to see every packet.

use tandem_tests::diff::linux::{self, LinuxFirewall};
use tandem_tests::diff::{all_traces, tandem, Report, Verdict};

#[test]
fn tandem_and_linux_conntrack_agree_packet_by_packet() {
    let fw = LinuxFirewall::new().expect("setting up the Linux firewall namespaces");
    let kernel = fw
        .fw()
        .exec_ok(["uname", "-r"])
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_default();
    println!(
        "Linux {kernel} in {:?}, {}, python {}",
        fw.namespaces(),
        // Read back from the namespace: what was in force, not what was asked.
        linux::SYSCTLS
            .iter()
            .map(|(key, _)| {
                let value = fw
                    .fw()
                    .exec_ok(["sysctl", "-n", key])
                    .map(|o| o.stdout.trim().to_string())
                    .unwrap_or_else(|e| format!("? ({e})"));
                format!("{}={value}", key.rsplit('.').next().unwrap_or(key))
            })
            .collect::<Vec<_>>()
            .join(" "),
        fw.python()
    );

    let mut report = Report::default();
    let mut wire_mismatches = Vec::new();
    for trace in all_traces() {
        let observed = fw
            .replay(&trace)
            .unwrap_or_else(|e| panic!("Linux side of {}: {e}", trace.name));
        // Both trackers must have judged the same segment: what tandem's
        // parser reads from the bytes Linux saw is what the driver tracked.
        for (i, (p, o)) in trace.packets.iter().zip(&observed).enumerate() {
            let tracked = tandem::segment(p);
            match tandem::parse_wire(&o.tcp) {
                Ok(parsed) if parsed == tracked => {}
                other => wire_mismatches.push(format!(
                    "{} #{}: tracked {tracked:?}, on the wire {other:?}",
                    trace.name,
                    i + 1
                )),
            }
        }
        let linux: Vec<Verdict> = observed.iter().map(|o| o.verdict).collect();
        let tandem = tandem::run(&trace);
        report.add(&trace, &linux, &tandem);
    }

    println!("{}", report.full_table());
    println!("{report}");
    assert!(
        wire_mismatches.is_empty(),
        "the frames on the wire are not the segments tandem tracked:\n{}",
        wire_mismatches.join("\n")
    );
    assert!(report.ok(), "{report}");
}

/// Tandem alone, against the verdicts the traces expect of Linux: no
/// namespaces, no root, milliseconds. The same documented differences
/// apply. Quick feedback while working on the tracker.
#[test]
fn tandem_gives_the_verdicts_linux_is_expected_to_give() {
    let mut report = Report::default();
    for trace in all_traces() {
        let expected: Vec<Verdict> = trace
            .packets
            .iter()
            .map(|p| p.expect.expect("every packet has an expectation"))
            .collect();
        report.add(&trace, &expected, &tandem::run(&trace));
    }
    println!("{}", report.full_table());
    assert!(
        report.ok(),
        "(no Linux here: the `linux` column holds the verdicts the traces expect of Linux)\n{report}"
    );
}
