//! A packet that reaches a worker which does not own its flow is handed to
//! the owner through a queue, never processed on the wrong shard.
//!
//! The unit runs `hw-profiles/profiles/lab-2w.ron`: two workers, data ports
//! with two `net_af_packet` queue pairs. The kernel spreads received packets
//! over those queues with its fanout hash, which is not symmetric, so the two
//! directions of a connection often arrive at different workers. Owners are
//! chosen by the unit's own symmetric hash; the non-owner hands the packet
//! over (`workerN.handed_off`). Had a packet been processed on the wrong
//! shard, its connection would be missing there and the unit would drop it
//! (`drop.tcp_no_connection`, an out-of-window drop or, for an echo reply,
//! `drop.no_connection`) and the transfers would fail or stall.
//!
//! Needs root, python3, curl and ping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_tests::{blob, plan, services, Counters, Lab, Output};

/// Short connections: each is a new flow, hashed afresh onto the queues.
const CONNECTIONS: usize = 30;
/// Bound on waiting for the counters file to show the traffic (it is
/// rewritten about once a second). A bound, not a performance assertion.
const COUNTERS_WAIT: Duration = Duration::from_secs(15);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn context(lab: &Lab, out: &Output) -> String {
    let counters = match lab.counters() {
        Ok(c) => format!("--- counters (non-zero) ---\n{}", c.nonzero()),
        Err(e) => format!("(no counters: {e})"),
    };
    format!("{out}\n{}\n{counters}", lab.unit_logs())
}

fn curl(lab: &Lab, url: &str, out: &Path) -> Output {
    lab.client()
        .exec_timeout(
            [
                "curl",
                "-sS",
                "--connect-timeout",
                "10",
                "--max-time",
                "60",
                "-o",
                out.to_str().expect("UTF-8 path"),
                "-w",
                "%{http_code}",
                url,
            ],
            Duration::from_secs(90),
        )
        .expect("running curl")
}

/// Counters that would show a packet processed by a worker that does not
/// hold its connection, or lost on the way to the owner.
fn wrong_shard_drops(c: &Counters) -> Vec<(String, u64)> {
    c.clone()
        .into_inner()
        .into_iter()
        .filter(|(name, v)| {
            *v != 0
                && (name.contains(".drop.tcp_")
                    || name.ends_with(".drop.handoff_full")
                    || name.ends_with(".drop.no_connection"))
        })
        .collect()
}

#[test]
fn packets_at_the_wrong_worker_are_handed_to_the_owner() {
    let lab = Lab::builder()
        .profile(repo_file("hw-profiles/profiles/lab-2w.ron"))
        .rules(repo_file("mgmt/examples/lab-rules.ron"))
        .build()
        .expect("building a two-worker lab with mgmt/examples/lab-rules.ron");

    let www = lab.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let small = www.join("small");
    let big = www.join("big");
    blob::write_random(&small, 20_000).unwrap();
    blob::write_random(&big, 1_000_000).unwrap();
    let _http = services::http_server(
        lab.server(),
        &www,
        plan::SERVER_IP,
        80,
        &lab.dir().join("http"),
    )
    .expect("starting the HTTP server");

    let got = lab.dir().join("got");
    for i in 0..CONNECTIONS {
        let (name, file) = if i % 10 == 0 {
            ("big", &big)
        } else {
            ("small", &small)
        };
        let out = curl(&lab, &format!("http://{}/{name}", plan::SERVER_IP), &got);
        assert!(
            out.success() && out.stdout.trim() == "200",
            "curl {i} of {name}\n{}",
            context(&lab, &out)
        );
        if let Err(diff) = blob::compare(file, &got) {
            panic!(
                "download {i} of {name} differs: {diff}\n{}",
                context(&lab, &out)
            );
        }
    }

    let out = lab
        .client()
        .exec(["ping", "-n", "-c", "3", "-W", "2", plan::SERVER_IP])
        .expect("running ping");
    assert!(out.success(), "ping\n{}", context(&lab, &out));

    // Every connection and the ping were let in once, by their owner.
    let want_new = u64::try_from(CONNECTIONS).unwrap() + 1;
    let c = lab
        .wait_counters("the connections to be counted", COUNTERS_WAIT, |c| {
            c.sum("accepted_new") >= want_new && c.sum("handed_off") > 0
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()));
    eprintln!(
        "handed_off: worker0 {}, worker1 {}; accepted_new: worker0 {}, worker1 {}",
        c.value("worker0.handed_off"),
        c.value("worker1.handed_off"),
        c.value("worker0.accepted_new"),
        c.value("worker1.accepted_new"),
    );
    assert_eq!(
        c.sum("accepted_new"),
        want_new,
        "each connection is created once\n{}",
        c.nonzero()
    );
    let drops = wrong_shard_drops(&c);
    assert!(
        drops.is_empty(),
        "drops that mean a packet met the wrong shard or was lost in the handoff: \
         {drops:?}\n{}",
        c.nonzero()
    );
}
