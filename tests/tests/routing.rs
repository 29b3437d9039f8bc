//! The unit routes: real Linux client and server on either side of one
//! `tandemd` unit. Each test builds its own lab.
//!
//! With `TANDEM_LAB_ROUTER=kernel` the same tests run against the Linux
//! kernel as the router (checks of the unit's counters and of its shutdown
//! are skipped then): that validates the scripts themselves.

use std::time::Duration;

use tandem_tests::{blob, plan, services, Counters, Lab, Output};

/// How long the counters file gets to show an event (it is rewritten about
/// once a second). A bound on waiting, not a performance assertion.
const COUNTERS_WAIT: Duration = Duration::from_secs(15);

fn lab() -> Lab {
    let lab = Lab::from_env().expect("building the lab");
    if !lab.is_tandemd() {
        eprintln!(
            "note: {} routes this lab; unit-only checks are skipped",
            lab.router()
        );
    }
    lab
}

fn ping(lab: &Lab, args: &[&str]) -> Output {
    lab.client()
        .exec(["ping", "-n"].iter().chain(args))
        .expect("running ping")
}

/// `out` and, for a tandemd lab, the daemon's logs and non-zero counters,
/// for failure messages.
fn context(lab: &Lab, out: &Output) -> String {
    let counters = match lab.counters() {
        Ok(c) => format!("--- unit counters (non-zero) ---\n{}", c.nonzero()),
        Err(_) => String::new(),
    };
    format!("{out}\n{}\n{counters}", lab.unit_logs())
}

fn counters_now(lab: &Lab) -> Counters {
    // Not written yet counts as all zero.
    lab.counters().unwrap_or_default()
}

#[test]
fn ping_reaches_the_server_the_unit_and_the_virtual_ip() {
    let lab = lab();
    for target in [plan::SERVER_IP, plan::UNIT_DATA0_IP, plan::VIP0] {
        let out = ping(&lab, &["-c", "3", "-W", "2", target]);
        assert!(out.success(), "ping {target}:\n{}", context(&lab, &out));
    }
}

#[test]
fn the_virtual_ip_is_answered_by_the_virtual_mac() {
    let lab = lab();
    let out = ping(&lab, &["-c", "1", "-W", "2", plan::VIP0]);
    assert!(out.success(), "{}", context(&lab, &out));
    let neigh = lab.client().ip(&["neigh", "show", plan::VIP0]).unwrap();
    if lab.is_tandemd() {
        assert!(
            neigh.stdout.contains(plan::VMAC0),
            "the client learnt another MAC for the VIP:\n{neigh}"
        );
    }
}

#[test]
fn an_http_download_crosses_intact() {
    let lab = lab();
    let www = lab.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let sent = www.join("blob");
    blob::write_random(&sent, 4 * 1024 * 1024).unwrap();
    let _http = services::http_server(
        lab.server(),
        &www,
        plan::SERVER_IP,
        8080,
        &lab.dir().join("http"),
    )
    .expect("starting the HTTP server");
    let got = lab.dir().join("got");
    let out = lab
        .client()
        .exec_timeout(
            [
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                got.to_str().unwrap(),
                &format!("http://{}:8080/blob", plan::SERVER_IP),
            ],
            Duration::from_secs(90),
        )
        .expect("running curl");
    assert!(out.success(), "{}", context(&lab, &out));
    if let Err(diff) = blob::compare(&sent, &got) {
        panic!("the download differs: {diff}\n{}", lab.unit_logs());
    }
}

#[test]
fn an_iperf3_run_crosses() {
    let lab = lab();
    let _server = services::iperf3_server(
        lab.server(),
        plan::SERVER_IP,
        5201,
        &lab.dir().join("iperf3"),
    )
    .expect("starting the iperf3 server");
    let out = lab
        .client()
        .exec_timeout(
            [
                "iperf3",
                "-c",
                plan::SERVER_IP,
                "-p",
                "5201",
                "-t",
                "3",
                "-J",
                "--connect-timeout",
                "5000",
            ],
            Duration::from_secs(60),
        )
        .expect("running iperf3");
    assert!(out.success(), "{}", context(&lab, &out));
    let totals = services::iperf3_totals(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&lab, &out)));
    assert!(totals.sent_bytes > 0, "{totals:?}");
    assert!(totals.received_bytes > 0, "{totals:?}");
}

#[test]
fn ttl_expiry_is_reported_by_the_unit_and_counted() {
    let lab = lab();
    let ttl = |c: &Counters| c.sum_where(|name| name.contains("ttl"));
    let before = ttl(&counters_now(&lab));
    let out = ping(&lab, &["-c", "1", "-t", "1", "-W", "2", plan::SERVER_IP]);
    let from_unit = format!("From {}", plan::UNIT_DATA0_IP);
    assert!(
        out.stdout.contains("Time to live exceeded") && out.stdout.contains(&from_unit),
        "expected `Time to live exceeded` {from_unit}:\n{}",
        context(&lab, &out)
    );
    if lab.is_tandemd() {
        let after = lab.wait_counters("a TTL drop to be counted", COUNTERS_WAIT, |c| {
            ttl(c) > before
        });
        if let Err(e) = after {
            panic!("{e}\n{}", lab.unit_logs());
        }
    }
}

#[test]
fn the_static_route_is_followed() {
    let lab = lab();
    let out = ping(&lab, &["-c", "3", "-W", "2", plan::STATIC_TARGET]);
    assert!(out.success(), "{}", context(&lab, &out));
}

#[test]
fn no_route_gets_an_icmp_unreachable_from_the_unit() {
    let lab = lab();
    let out = ping(&lab, &["-c", "1", "-W", "2", plan::UNROUTED_IP]);
    let from_unit = [plan::UNIT_DATA0_IP, plan::VIP0]
        .iter()
        .any(|ip| out.stdout.contains(&format!("From {ip} ")));
    let unreachable = out.stdout.contains("Destination Net Unreachable")
        || out.stdout.contains("Destination Host Unreachable");
    assert!(
        !out.success() && from_unit && unreachable,
        "expected `Destination Net Unreachable` (or Host) from the unit:\n{}",
        context(&lab, &out)
    );
}

#[test]
fn sigterm_stops_the_unit_cleanly_and_the_counters_show_traffic() {
    let mut lab = lab();
    let out = ping(&lab, &["-c", "3", "-W", "2", plan::SERVER_IP]);
    assert!(out.success(), "{}", context(&lab, &out));
    if !lab.is_tandemd() {
        return;
    }
    let status = lab.stop_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "tandemd exited with {status}\n{}",
        lab.unit_logs()
    );
    // Written once more at exit.
    let counters = lab
        .counters()
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()));
    assert!(
        counters.sum("rx_packets") > 0 && counters.sum("tx_packets") > 0,
        "expected rx and tx > 0 after a ping:\n{counters}"
    );
}
