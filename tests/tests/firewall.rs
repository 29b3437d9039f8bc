//! The unit filters statefully: real Linux client and server on either side
//! of one `tandemd` unit started with `mgmt/examples/lab-rules.ron` (pass TCP
//! to 198.18.2.2:80 and UDP to 198.18.2.2:5353 in on data0, pass ICMP echo
//! requests, block the rest). Each test builds its own lab and asks the unit
//! through its control socket (`tandemctl`).
//!
//! Needs root, python3 and curl; the hand-made segments need a python3 with
//! scapy (`$TANDEM_PYTHON`, else `python3`, else `/usr/bin/python3`) and nft.
//! Every wait is bounded; a negative ("nothing got through") is shown by what
//! the unit counted and, where the lab can, by a later packet of the same
//! flow arriving while the earlier one did not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_tests::wait::poll_until_detail;
use tandem_tests::{blob, command, plan, services, Counters, Lab, Netns, Output, Proc};

/// Bound on waiting for the unit's counters to show an event.
const COUNTER_WAIT: Duration = Duration::from_secs(15);
/// Bound on one attempt that the unit must block (curl gives up after it).
const BLOCKED_CONNECT_SECS: &str = "3";

fn example_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mgmt/examples/lab-rules.ron")
}

fn example_text() -> String {
    std::fs::read_to_string(example_rules()).expect("reading mgmt/examples/lab-rules.ron")
}

/// The example rules plus a pass for TCP to the server's port 8080.
fn rules_with_8080() -> String {
    let text = example_text();
    let end = "    ],\n)";
    assert!(
        text.contains(end),
        "the example rules file changed shape:\n{text}"
    );
    text.replace(
        end,
        "        (action: Pass, in: Some(\"data0\"), proto: Some(Tcp),\n         dst: Some(\"198.18.2.2\"), dst_ports: Some(\"8080\"), label: Some(\"alt-web\")),\n    ],\n)",
    )
}

fn lab() -> Lab {
    Lab::builder()
        .rules(example_rules())
        .build()
        .expect("building a lab with mgmt/examples/lab-rules.ron")
}

/// What a person needs when an assertion fails: the command's output, the
/// unit's logs and its non-zero counters.
fn context(lab: &Lab, out: &Output) -> String {
    let counters = match lab.ctl(&["counters", "--nonzero"]) {
        Ok(c) => format!("--- tandemctl counters --nonzero ---\n{}", c.stdout),
        Err(e) => format!("(no counters: {e})"),
    };
    format!("{out}\n{}\n{counters}", lab.unit_logs())
}

/// `tandemctl args...`, which must succeed; its stdout.
fn ctl(lab: &Lab, args: &[&str]) -> String {
    let out = lab
        .ctl(args)
        .unwrap_or_else(|e| panic!("tandemctl {args:?}: {e}\n{}", lab.unit_logs()));
    assert!(out.success(), "{}", context(lab, &out));
    out.stdout
}

/// The unit's counters, live, through the control socket.
fn counters(lab: &Lab) -> Counters {
    let text = ctl(lab, &["counters"]);
    Counters::parse(&text).unwrap_or_else(|(line, l)| {
        panic!("`tandemctl counters` line {line} is not `name value`: {l:?}\n{text}")
    })
}

/// Polls the counters (bounded) until `pred` holds; returns them.
fn wait_counters(lab: &Lab, what: &str, mut pred: impl FnMut(&Counters) -> bool) -> Counters {
    poll_until_detail(what, COUNTER_WAIT, || {
        let c = counters(lab);
        Ok(if pred(&c) {
            Ok(c)
        } else {
            Err(c.nonzero().to_string())
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()))
}

fn url(ip: &str, port: u16, path: &str) -> String {
    format!("http://{ip}:{port}/{path}")
}

/// `curl` in `ns`, bounded; `-w` prints the local port and the HTTP code.
fn curl(ns: &Netns, url: &str, out: &Path, connect_timeout: &str) -> Output {
    ns.exec_timeout(
        [
            "curl",
            "-sS",
            "--connect-timeout",
            connect_timeout,
            "--max-time",
            "60",
            "-o",
            out.to_str().expect("UTF-8 path"),
            "-w",
            "%{local_port} %{http_code}",
            url,
        ],
        Duration::from_secs(90),
    )
    .expect("running curl")
}

/// A web root with `blob` (random bytes) in it.
fn www(lab: &Lab, len: u64) -> PathBuf {
    let www = lab.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    blob::write_random(&www.join("blob"), len).unwrap();
    www
}

fn http_server(lab: &Lab, ns: &Netns, ip: &str, port: u16, www: &Path) -> Proc {
    services::http_server(
        ns,
        www,
        ip,
        port,
        &lab.dir()
            .join(format!("http-{}-{port}", ip.replace('.', "_"))),
    )
    .unwrap_or_else(|e| panic!("starting an HTTP server on {ip}:{port}: {e}"))
}

/// Asserts that curl was not let through: it gave up connecting (exit 28)
/// rather than being refused (7, which would mean something answered).
fn assert_timed_out(lab: &Lab, out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(28),
        "{what}: expected curl to time out connecting (exit 28)\n{}",
        context(lab, out)
    );
}

/// Lines of `ss` in `ns` for TCP sockets on local port `port`, listeners
/// left out: what a client got to open there.
fn tcp_sockets(ns: &Netns, port: u16) -> String {
    let out = ns
        .exec_ok(["ss", "-Htan", &format!("sport = :{port}")])
        .expect("running ss");
    out.stdout
        .lines()
        .filter(|l| !l.starts_with("LISTEN"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A line of a `conns` answer for a connection from `src` to `dst`.
fn conn_row<'a>(table: &'a str, src: &str, dst: &str) -> Option<&'a str> {
    table.lines().find(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.get(2) == Some(&src) && words.get(4) == Some(&dst)
    })
}

// ---------------------------------------------------------------------------
// Small Linux peers (python3 one-file programs, started as Procs).

/// TCP echo server: echoes every line back; logs `accepted IP PORT`.
const TCP_ECHO: &str = r#"
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("listening", flush=True)
def serve(c, a):
    print("accepted", a[0], a[1], flush=True)
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                break
            c.sendall(d)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"#;

/// UDP echo server; logs `got IP PORT TEXT` for every datagram.
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(2048)
    print("got", a[0], a[1], d.decode(errors="replace"), flush=True)
    s.sendto(d, a)
"#;

/// UDP client: sends argv[3] to argv[1]:argv[2] from port argv[4] (up to 3
/// tries, 1 s each); prints `reply TEXT` and exits 0, or `no reply`, exit 1.
const UDP_ASK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[4])))
s.settimeout(1.0)
for _ in range(3):
    s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        continue
    print("reply", d.decode(errors="replace"), "from", a[0], a[1], flush=True)
    sys.exit(0)
print("no reply", flush=True)
sys.exit(1)
"#;

/// TCP client that holds its connection: connects to argv[1]:argv[2] and
/// prints `connected PORT`; with argv[4] = `echo` exchanges `before` with an
/// echo server (`before-ok`); then waits (up to 120 s) for the file argv[3]
/// to exist and, with `echo`, exchanges `after` on the same connection
/// (`after-ok`, or `after-failed` within 10 s).
const TCP_HOLD: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("connected", s.getsockname()[1], flush=True)
echo = sys.argv[4] == "echo"
f = s.makefile("rb")
def exchange(word):
    try:
        s.sendall(word.encode() + b"\n")
        got = f.readline()
    except OSError as e:
        print(word + "-failed", e, flush=True)
        sys.exit(1)
    if got != word.encode() + b"\n":
        print(word + "-failed", repr(got), flush=True)
        sys.exit(1)
    print(word + "-ok", flush=True)
if echo:
    exchange("before")
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[3]):
    if time.monotonic() > deadline:
        print("the go-ahead never came", flush=True)
        sys.exit(2)
    time.sleep(0.05)
if echo:
    exchange("after")
"#;

fn python(ns: &Netns, lab: &Lab, name: &str, program: &str, args: &[&str]) -> Proc {
    let mut argv = vec!["python3", "-c", program];
    argv.extend_from_slice(args);
    ns.spawn(argv, Some(&lab.dir().join(name)))
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// Waits (bounded) until `proc` printed a line starting with `word`; returns it.
fn wait_line(proc: &mut Proc, word: &str) -> String {
    poll_until_detail(
        &format!("`{word}` from {}", proc.label()),
        Duration::from_secs(30),
        || {
            if let Some(line) = proc.stdout().lines().find(|l| l.starts_with(word)) {
                return Ok(Ok(line.to_string()));
            }
            match proc.try_status() {
                Some(status) => Ok(Err(format!("exited with {status}\n{}", proc.logs()))),
                None => Ok(Err(proc.logs())),
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn udp_echo(lab: &Lab, port: u16) -> Proc {
    let p = port.to_string();
    let mut proc = python(
        lab.server(),
        lab,
        &format!("udp-echo-{port}"),
        UDP_ECHO,
        &[plan::SERVER_IP, &p],
    );
    wait_line(&mut proc, "listening");
    proc
}

fn tcp_echo(lab: &Lab, port: u16) -> Proc {
    let p = port.to_string();
    let mut proc = python(
        lab.server(),
        lab,
        &format!("tcp-echo-{port}"),
        TCP_ECHO,
        &[plan::SERVER_IP, &p],
    );
    wait_line(&mut proc, "listening");
    proc
}

fn udp_ask(lab: &Lab, port: u16, text: &str, sport: u16) -> Output {
    lab.client()
        .exec_timeout(
            [
                "python3",
                "-c",
                UDP_ASK,
                plan::SERVER_IP,
                &port.to_string(),
                text,
                &sport.to_string(),
            ],
            Duration::from_secs(30),
        )
        .expect("running the UDP client")
}

// ---------------------------------------------------------------------------

/// curl to the allowed web server works and the download is intact; the
/// unit lists the connections (a live one ESTABLISHED, curl's own in its
/// closing state) with the rule and interfaces that admitted them, and
/// counts them.
#[test]
fn allowed_http_crosses_and_the_unit_lists_and_counts_it() {
    let lab = lab();
    let www = www(&lab, 1_000_000);
    let _http = http_server(&lab, lab.server(), plan::SERVER_IP, 80, &www);

    let got = lab.dir().join("got");
    let out = curl(lab.client(), &url(plan::SERVER_IP, 80, "blob"), &got, "10");
    assert!(out.success(), "{}", context(&lab, &out));
    if let Err(diff) = blob::compare(&www.join("blob"), &got) {
        panic!("the download differs: {diff}\n{}", context(&lab, &out));
    }
    let curl_port = out
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();

    // A connection that stays open while the unit is asked (http.server
    // waits for its request line).
    let go = lab.dir().join("go");
    let mut held = python(
        lab.client(),
        &lab,
        "held",
        TCP_HOLD,
        &[plan::SERVER_IP, "80", go.to_str().unwrap(), "idle"],
    );
    let line = wait_line(&mut held, "connected");
    let held_port = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();

    // The client's last handshake ACK may still be on its way through the
    // unit when connect() returns: wait (bounded) for ESTABLISHED.
    let server = format!("{}:80", plan::SERVER_IP);
    let held_src = format!("{}:{held_port}", plan::CLIENT_IP);
    let table = poll_until_detail(
        "the held connection to be listed ESTABLISHED",
        COUNTER_WAIT,
        || {
            let table = ctl(&lab, &["conns", "proto", "tcp", "port", "80"]);
            let established = conn_row(&table, &held_src, &server)
                .is_some_and(|row| row.split_whitespace().nth(5) == Some("ESTABLISHED"));
            Ok(if established { Ok(table) } else { Err(table) })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()));
    println!("{table}");
    let live = conn_row(&table, &held_src, &server).unwrap_or_default();
    let words: Vec<&str> = live.split_whitespace().collect();
    assert_eq!(
        words[5..9],
        ["ESTABLISHED", "0", "data0", "data1"],
        "state, rule, in, out of the live connection:\n{table}"
    );
    assert!(live.ends_with("sync"), "rules sync by default:\n{table}");
    let done = conn_row(&table, &format!("{}:{curl_port}", plan::CLIENT_IP), &server)
        .unwrap_or_else(|| {
            panic!("curl's connection from port {curl_port} is not listed:\n{table}")
        });
    let state = done.split_whitespace().nth(5).unwrap_or_default();
    assert!(
        ["TIME_WAIT", "CLOSE", "LAST_ACK", "CLOSE_WAIT", "FIN_WAIT"].contains(&state),
        "curl's finished connection should be closing, is {state}:\n{table}"
    );
    assert!(
        table.lines().any(|l| l.trim() == "2 connection(s)"),
        "expected exactly curl's and the held connection:\n{table}"
    );
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("W  PROTO  SOURCE"), "{table}");

    // Filters narrow the listing.
    let only = ctl(
        &lab,
        &["conns", "state", "established", "addr", plan::CLIENT_IP],
    );
    assert!(only.contains("1 connection(s)"), "{only}");
    let none = ctl(&lab, &["conns", "proto", "udp"]);
    assert!(none.contains("0 connection(s)"), "{none}");

    let c = counters(&lab);
    assert!(c.sum("accepted_new") >= 2, "accepted_new:\n{}", c.nonzero());
    assert!(
        c.sum("accepted_state") > 0,
        "accepted_state:\n{}",
        c.nonzero()
    );
    // The counters answer can be narrowed, as an operator would.
    let drops = ctl(&lab, &["counters", "drop."]);
    assert!(
        !drops.is_empty() && drops.lines().all(|l| l.contains("drop.")),
        "{drops}"
    );

    // The rules in force are the example's, with interface names.
    let rules = ctl(&lab, &["rules"]);
    assert!(
        rules.starts_with("rules ") && rules.contains("3 rules, default block"),
        "{rules}"
    );
    assert!(
        rules.contains("pass in on data0 proto tcp to 198.18.2.2"),
        "{rules}"
    );
    assert!(
        rules.contains("port 80") && rules.contains("port 5353"),
        "{rules}"
    );
    std::fs::write(&go, b"").unwrap();
    assert_eq!(
        held.wait_timeout(Duration::from_secs(30))
            .map(|s| s.success()),
        Some(true),
        "{}",
        held.logs()
    );
}

/// A port the rules do not pass gets nothing through: curl gives up
/// connecting, the server never sees a connection, the unit lists none and
/// counts the drops as `blocked_by_rule`.
#[test]
fn a_blocked_port_gets_nothing_through() {
    let lab = lab();
    let www = www(&lab, 1000);
    let http = http_server(&lab, lab.server(), plan::SERVER_IP, 8080, &www);
    let before = counters(&lab).sum("drop.blocked_by_rule");

    let out = curl(
        lab.client(),
        &url(plan::SERVER_IP, 8080, "blob"),
        &lab.dir().join("got"),
        BLOCKED_CONNECT_SECS,
    );
    assert_timed_out(&lab, &out, "TCP to 198.18.2.2:8080 is not passed");
    let after = wait_counters(&lab, "the blocked SYNs to be counted", |c| {
        c.sum("drop.blocked_by_rule") > before
    });
    println!(
        "drop.blocked_by_rule {before} -> {}",
        after.sum("drop.blocked_by_rule")
    );
    let seen = tcp_sockets(lab.server(), 8080);
    assert!(
        seen.is_empty(),
        "the server has connections on 8080:\n{seen}"
    );
    assert!(
        !http.stderr().contains("GET /blob"),
        "the server got a request:\n{}",
        http.logs()
    );
    let table = ctl(&lab, &["conns", "port", "8080"]);
    assert!(table.contains("0 connection(s)"), "{table}");
}

/// UDP to 5353 passes and the echo comes back (the reply direction of an
/// allowed flow passes by its state); so does a ping (the ICMP echo rule)
/// and its reply; UDP to 5354 is blocked.
#[test]
fn udp_5353_and_ping_pass_both_ways_and_udp_5354_is_blocked() {
    let lab = lab();
    let echo = udp_echo(&lab, 5353);
    let other = udp_echo(&lab, 5354);

    let out = udp_ask(&lab, 5353, "hello-5353", 40053);
    assert!(
        out.success() && out.stdout.contains("reply hello-5353 from 198.18.2.2 5353"),
        "{}",
        context(&lab, &out)
    );
    assert!(
        echo.stdout().contains("got 198.18.1.2 40053 hello-5353"),
        "{}",
        echo.logs()
    );
    let table = ctl(&lab, &["conns", "proto", "udp"]);
    println!("{table}");
    let row = conn_row(&table, "198.18.1.2:40053", "198.18.2.2:5353")
        .unwrap_or_else(|| panic!("the UDP flow is not listed:\n{table}"));
    assert!(
        row.split_whitespace().nth(5) == Some("UDP_REPLIED"),
        "{table}"
    );

    let out = lab
        .client()
        .exec(["ping", "-n", "-c", "2", "-W", "2", plan::SERVER_IP])
        .expect("running ping");
    assert!(out.success(), "{}", context(&lab, &out));
    let table = ctl(&lab, &["conns", "proto", "icmp"]);
    let row = conn_row(&table, plan::CLIENT_IP, plan::SERVER_IP)
        .unwrap_or_else(|| panic!("the ping is not listed:\n{table}"));
    assert!(
        row.split_whitespace().nth(5) == Some("ICMP_REPLIED") && row.contains("id="),
        "{table}"
    );

    let before = counters(&lab).sum("drop.blocked_by_rule");
    let out = udp_ask(&lab, 5354, "hello-5354", 40054);
    assert!(
        !out.success() && out.stdout.contains("no reply"),
        "UDP to 5354 must be blocked:\n{}",
        context(&lab, &out)
    );
    wait_counters(&lab, "the blocked datagrams to be counted", |c| {
        c.sum("drop.blocked_by_rule") > before
    });
    assert!(!other.stdout().contains("got"), "{}", other.logs());
    let table = ctl(&lab, &["conns", "port", "5354"]);
    assert!(table.contains("0 connection(s)"), "{table}");
}

/// Only the client opens connections: client -> server:80 works, but the
/// server cannot open one to the client's port 80 (default block), though
/// the replies of the client's own connection reach it.
#[test]
fn the_server_cannot_open_connections_to_the_client() {
    let lab = lab();
    let www = www(&lab, 1000);
    let _server_http = http_server(&lab, lab.server(), plan::SERVER_IP, 80, &www);
    let client_http = http_server(&lab, lab.client(), plan::CLIENT_IP, 80, &www);

    let out = curl(
        lab.client(),
        &url(plan::SERVER_IP, 80, "blob"),
        &lab.dir().join("got-client"),
        "10",
    );
    assert!(
        out.success(),
        "client -> server must work:\n{}",
        context(&lab, &out)
    );

    let before = counters(&lab).sum("drop.blocked_by_rule");
    let out = curl(
        lab.server(),
        &url(plan::CLIENT_IP, 80, "blob"),
        &lab.dir().join("got-server"),
        BLOCKED_CONNECT_SECS,
    );
    assert_timed_out(&lab, &out, "server -> client TCP is not passed");
    wait_counters(&lab, "the server's SYNs to be counted as blocked", |c| {
        c.sum("drop.blocked_by_rule") > before
    });
    let seen = tcp_sockets(lab.client(), 80);
    assert!(seen.is_empty(), "the client has connections on 80:\n{seen}");
    assert!(
        !client_http.stderr().contains("GET /blob"),
        "the client's server got a request:\n{}",
        client_http.logs()
    );
}

// ---------------------------------------------------------------------------
// Hand-made segments (tests/scripts/tcp_probe.py, scapy).

/// A python3 that has scapy (the differential test's finder).
fn scapy_python() -> String {
    tandem_tests::diff::linux::find_python().unwrap_or_else(|e| panic!("{e}"))
}

/// Drops the client kernel's RSTs from `sport` (it knows nothing of the
/// probe's connection and would reset it on the SYN/ACK).
fn drop_client_resets(lab: &Lab, sport: u16) {
    let sport = sport.to_string();
    for cmd in [
        vec!["nft", "add", "table", "inet", "tandem_probe"],
        vec![
            "nft",
            "add",
            "chain",
            "inet",
            "tandem_probe",
            "out",
            "{ type filter hook output priority 0; policy accept; }",
        ],
        vec![
            "nft",
            "add",
            "rule",
            "inet",
            "tandem_probe",
            "out",
            "tcp",
            "sport",
            &sport,
            "tcp",
            "flags",
            "&",
            "rst",
            "==",
            "rst",
            "drop",
        ],
    ] {
        lab.client()
            .exec_ok(&cmd)
            .unwrap_or_else(|e| panic!("nft in the client namespace: {e}"));
    }
}

/// Runs tcp_probe.py `mode` from the client's `sport` to the server's port
/// 80 and returns its JSON report.
fn tcp_probe(lab: &Lab, mode: &str, sport: u16) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tcp_probe.py");
    let netns = |ns: &Netns| format!("/run/netns/{}", ns.name());
    let mut cmd = std::process::Command::new(scapy_python());
    cmd.arg(&script).args([
        mode,
        "--client-ns",
        &netns(lab.client()),
        "--server-ns",
        &netns(lab.server()),
        "--src",
        plan::CLIENT_IP,
        "--dst",
        plan::SERVER_IP,
        "--sport",
        &sport.to_string(),
        "--dport",
        "80",
        "--timeout",
        "10",
    ]);
    let out = command::run(&mut cmd, Duration::from_secs(90)).expect("running tcp_probe.py");
    assert!(out.success(), "{}", context(lab, &out));
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("tcp_probe.py did not print JSON ({e}):\n{out}"));
    println!(
        "tcp_probe.py {mode}:\n{}",
        report["log"]
            .as_array()
            .map(|l| l
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join("\n"))
            .unwrap_or_default()
    );
    report
}

fn arrived(report: &serde_json::Value) -> Vec<String> {
    report["arrived"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An ACK of no connection (no SYN before it, random numbers; bare and with
/// data) never reaches the server: only the SYN sent after it on the same
/// addresses and ports arrives. The unit counts them as
/// `tcp_no_connection`.
#[test]
fn a_spoofed_mid_stream_ack_is_dropped() {
    let lab = lab();
    let _echo = tcp_echo(&lab, 80);
    let before = counters(&lab).sum("drop.tcp_no_connection");
    let report = tcp_probe(&lab, "spoof-ack", 45123);
    assert_eq!(
        arrived(&report),
        ["syn"],
        "only the SYN may reach the server:\n{report:#}\n{}",
        lab.unit_logs()
    );
    assert_eq!(
        report["handshake"], true,
        "the SYN/ACK came back:\n{report:#}"
    );
    let c = wait_counters(&lab, "both spoofed ACKs to be counted", |c| {
        c.sum("drop.tcp_no_connection") >= before + 2
    });
    println!(
        "drop.tcp_no_connection {before} -> {}",
        c.sum("drop.tcp_no_connection")
    );
}

/// On a real connection (handshake through the unit), a segment far beyond
/// the server's window is dropped (`tcp_seq_over_window`) while an in-window
/// segment sent after it arrives and is acknowledged by the server.
#[test]
fn an_out_of_window_segment_on_a_live_connection_is_dropped() {
    let lab = lab();
    let echo = tcp_echo(&lab, 80);
    drop_client_resets(&lab, 45124);
    let before = counters(&lab).sum("drop.tcp_seq_over_window");
    let report = tcp_probe(&lab, "window", 45124);
    assert_eq!(
        report["handshake"],
        true,
        "handshake through the unit:\n{report:#}\n{}",
        lab.unit_logs()
    );
    assert_eq!(
        arrived(&report),
        ["syn", "ack", "in-window"],
        "the out-of-window segment must not reach the server, the in-window one must:\n{report:#}\n{}",
        lab.unit_logs()
    );
    assert_eq!(
        report["acked"], true,
        "the server acknowledged the in-window data:\n{report:#}"
    );
    assert!(
        echo.stdout().contains("accepted 198.18.1.2 45124"),
        "{}",
        echo.logs()
    );
    wait_counters(&lab, "the out-of-window segment to be counted", |c| {
        c.sum("drop.tcp_seq_over_window") > before
    });
    let table = ctl(&lab, &["conns", "port", "45124"]);
    let row = conn_row(&table, "198.18.1.2:45124", "198.18.2.2:80")
        .unwrap_or_else(|| panic!("the probe's connection is not listed:\n{table}"));
    assert_eq!(
        row.split_whitespace().nth(5),
        Some("ESTABLISHED"),
        "{table}"
    );
}

/// ICMP errors pass only when related to the connection they quote and sent
/// back to the quoted packet's source. On a real connection (handshake
/// through the unit), the client sends the server three fragmentation-needed
/// errors: one quoting the client's own segment (forged: an error travels
/// to the source of what it quotes; Linux drops it too), one quoting a
/// server segment far outside the server's sequence space (forged, pf's
/// check), and one quoting the server's next segment, as the client's stack
/// would. Only the last reaches the server; each refusal has its counter.
#[test]
fn forged_icmp_errors_about_a_live_connection_are_dropped() {
    let lab = lab();
    let _echo = tcp_echo(&lab, 80);
    drop_client_resets(&lab, 45127);
    let names = [
        "drop.icmp_error_wrong_direction",
        "drop.icmp_error_out_of_window",
        "accepted_related",
    ];
    let before = counters(&lab);
    let report = tcp_probe(&lab, "icmp-error", 45127);
    assert_eq!(
        report["handshake"],
        true,
        "handshake through the unit:\n{report:#}\n{}",
        lab.unit_logs()
    );
    assert_eq!(
        arrived(&report),
        ["syn", "ack", "related-error"],
        "only the related error may reach the server:\n{report:#}\n{}",
        lab.unit_logs()
    );
    let after = wait_counters(&lab, "the three errors to be counted", |c| {
        names.iter().all(|n| c.sum(n) > before.sum(n))
    });
    for n in names {
        println!("{n} {} -> {}", before.sum(n), after.sum(n));
        assert_eq!(after.sum(n), before.sum(n) + 1, "{n}");
    }
}

/// The probe's negatives mean something: through a router that does not
/// filter (Linux, no firewall), the same spoofed and out-of-window segments,
/// and the forged ICMP errors, do reach the server, and the probe reports them.
#[test]
fn the_probe_sees_what_an_unfiltered_router_lets_through() {
    let lab = Lab::kernel_routed().expect("building a kernel-routed lab");
    let _echo = tcp_echo(&lab, 80);
    let report = tcp_probe(&lab, "spoof-ack", 45125);
    assert_eq!(
        arrived(&report),
        ["spoofed-bare-ack", "spoofed-data-ack", "syn"],
        "{report:#}"
    );
    drop_client_resets(&lab, 45126);
    let report = tcp_probe(&lab, "window", 45126);
    assert_eq!(
        arrived(&report),
        ["syn", "ack", "out-of-window", "in-window"],
        "{report:#}"
    );
    drop_client_resets(&lab, 45128);
    let report = tcp_probe(&lab, "icmp-error", 45128);
    assert_eq!(
        arrived(&report),
        [
            "syn",
            "ack",
            "forged-error",
            "out-of-window-error",
            "related-error"
        ],
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------
// Reloading the rules.

/// `tandemctl rules`' first line (`rules <revision>: ...`).
fn rules_header(lab: &Lab) -> String {
    ctl(lab, &["rules"])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `file:line:column:` the unit's refusal names for the lab's rules
/// file, if it does.
fn located_in(text: &str, file: &Path) -> Option<(u32, u32)> {
    let prefix = format!("{}:", file.display());
    let rest = &text[text.find(&prefix)? + prefix.len()..];
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    Some((line, col))
}

/// `tandemctl reload` puts new rules in force (8080 now passes) and keeps
/// the connections established before it; a broken rules file is refused
/// with `file:line:column` and the rules in force stay.
#[test]
fn reload_puts_new_rules_in_force_keeps_connections_and_refuses_a_broken_file() {
    let lab = lab();
    let _echo = tcp_echo(&lab, 80);
    let www = www(&lab, 100_000);
    let _alt = http_server(&lab, lab.server(), plan::SERVER_IP, 8080, &www);
    let got = lab.dir().join("got");
    let alt = url(plan::SERVER_IP, 8080, "blob");

    // A connection made under the old rules, kept open across the reload.
    let go = lab.dir().join("go");
    let mut held = python(
        lab.client(),
        &lab,
        "held",
        TCP_HOLD,
        &[plan::SERVER_IP, "80", go.to_str().unwrap(), "echo"],
    );
    wait_line(&mut held, "before-ok");

    let out = curl(lab.client(), &alt, &got, BLOCKED_CONNECT_SECS);
    assert_timed_out(&lab, &out, "8080 before the reload");
    let old = rules_header(&lab);

    lab.write_rules(&rules_with_8080()).unwrap();
    let answer = ctl(&lab, &["reload"]);
    assert!(answer.starts_with("rules reloaded: 4 rule(s)"), "{answer}");
    let new = rules_header(&lab);
    assert!(new.contains("4 rules") && new != old, "{old}\n{new}");
    assert!(ctl(&lab, &["rules"]).contains("port 8080"));

    let out = curl(lab.client(), &alt, &got, "10");
    assert!(
        out.success(),
        "8080 after the reload:\n{}",
        context(&lab, &out)
    );
    assert_eq!(blob::compare(&www.join("blob"), &got), Ok(100_000));

    std::fs::write(&go, b"").unwrap();
    wait_line(&mut held, "after-");
    assert!(
        held.stdout().contains("after-ok"),
        "the connection made before the reload broke:\n{}\n{}",
        held.logs(),
        context(&lab, &out)
    );

    // A broken file: refused, located, and the rules in force stay.
    let rules = lab.rules_path().unwrap().to_path_buf();
    let broken = rules_with_8080().replace("Some(\"8080\")", "Some(\"80800\")");
    lab.write_rules(&broken).unwrap();
    let out = lab.ctl(&["reload"]).expect("running tandemctl");
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.starts_with("error: "), "{out}");
    assert!(
        out.stderr.contains("port `80800` is not in 0..=65535"),
        "{out}"
    );
    let (line, col) = located_in(&out.stderr, &rules)
        .unwrap_or_else(|| panic!("no {}:LINE:COLUMN in the refusal:\n{out}", rules.display()));
    let bad_line = broken.lines().nth(line as usize - 1).unwrap_or_default();
    assert!(
        bad_line.contains("80800") && col > 1,
        "line {line} col {col} is `{bad_line}`"
    );
    assert_eq!(rules_header(&lab), new, "the rules in force changed");
    // Port 80 (a fresh connection: the go-ahead file exists, so the
    // client exchanges both words at once) and 8080 still pass.
    let out = lab
        .client()
        .exec_timeout(
            [
                "python3",
                "-c",
                TCP_HOLD,
                plan::SERVER_IP,
                "80",
                go.to_str().unwrap(),
                "echo",
            ],
            Duration::from_secs(60),
        )
        .expect("running the TCP client");
    assert!(
        out.success() && out.stdout.contains("after-ok"),
        "port 80 after the refused reload:\n{}",
        context(&lab, &out)
    );
    let out = curl(lab.client(), &alt, &got, "10");
    assert!(
        out.success(),
        "8080 after the refused reload:\n{}",
        context(&lab, &out)
    );
}

/// SIGHUP reloads the rules file too. The new rules no longer pass port 80:
/// new connections to it are blocked, yet the connection made before the
/// reload keeps working (its entry decides, not the rules). A broken file
/// on SIGHUP is refused in the unit's log and the rules in force stay.
#[test]
fn sighup_reloads_and_existing_connections_outlive_their_rule() {
    let mut lab = lab();
    let _echo = tcp_echo(&lab, 80);
    let www = www(&lab, 10_000);
    let _alt = http_server(&lab, lab.server(), plan::SERVER_IP, 8080, &www);
    let got = lab.dir().join("got");

    let go = lab.dir().join("go");
    let mut held = python(
        lab.client(),
        &lab,
        "held",
        TCP_HOLD,
        &[plan::SERVER_IP, "80", go.to_str().unwrap(), "echo"],
    );
    wait_line(&mut held, "before-ok");

    let old = rules_header(&lab);
    let moved = example_text().replace("dst_ports: Some(\"80\")", "dst_ports: Some(\"8080\")");
    assert_ne!(
        moved,
        example_text(),
        "the example rules file changed shape"
    );
    lab.write_rules(&moved).unwrap();
    lab.sighup().unwrap();
    let new = poll_until_detail("SIGHUP to put the new rules in force", COUNTER_WAIT, || {
        let h = rules_header(&lab);
        Ok(if h != old { Ok(h) } else { Err(h) })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.unit_logs()));
    assert!(new.contains("3 rules"), "{new}");
    assert!(
        lab.unit_logs().contains("rules reloaded: 3 rule(s)"),
        "{}",
        lab.unit_logs()
    );

    let out = curl(
        lab.client(),
        &url(plan::SERVER_IP, 80, ""),
        &got,
        BLOCKED_CONNECT_SECS,
    );
    assert_timed_out(&lab, &out, "a new connection to port 80 after the reload");
    std::fs::write(&go, b"").unwrap();
    wait_line(&mut held, "after-");
    assert!(
        held.stdout().contains("after-ok"),
        "the connection made before the reload broke:\n{}\n{}",
        held.logs(),
        lab.unit_logs()
    );
    let out = curl(
        lab.client(),
        &url(plan::SERVER_IP, 8080, "blob"),
        &got,
        "10",
    );
    assert!(out.success(), "8080 after SIGHUP:\n{}", context(&lab, &out));

    lab.write_rules("(rules: [(action: Pass,]").unwrap();
    lab.sighup().unwrap();
    poll_until_detail("the unit to refuse the broken file", COUNTER_WAIT, || {
        let logs = lab.unit_logs();
        Ok(
            if logs.contains("rules refused, the rules in force stay: ") {
                Ok(())
            } else {
                Err(logs)
            },
        )
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rules = lab.rules_path().unwrap().display().to_string();
    assert!(
        lab.unit_logs()
            .contains(&format!("the rules in force stay: {rules}:1:")),
        "{}",
        lab.unit_logs()
    );
    assert_eq!(rules_header(&lab), new, "the rules in force changed");
    let out = curl(
        lab.client(),
        &url(plan::SERVER_IP, 8080, "blob"),
        &got,
        "10",
    );
    assert!(
        out.success(),
        "8080 after the refused SIGHUP:\n{}",
        context(&lab, &out)
    );
}

// ---------------------------------------------------------------------------
// The control socket itself.

/// A second unit given the same control socket refuses to start (it binds
/// before DPDK starts, so it touches no port) and the first keeps answering;
/// a request the unit does not know gets a one-line `error:` and a failing
/// exit status from `tandemctl`.
#[test]
fn a_second_unit_cannot_take_the_control_socket() {
    let lab = lab();
    let socket = lab.tandemd().unwrap().control_path().to_path_buf();
    let binary = tandem_tests::tandemd::locate().unwrap();
    let profile = tandem_tests::tandemd::lab_profile().unwrap();
    let out = lab
        .unit()
        .exec_timeout(
            [
                binary.as_os_str(),
                "--profile".as_ref(),
                profile.as_os_str(),
                "--config".as_ref(),
                lab.config_path().as_os_str(),
                "--control".as_ref(),
                socket.as_os_str(),
                "--file-prefix".as_ref(),
                "tandem-second-unit".as_ref(),
            ],
            Duration::from_secs(30),
        )
        .expect("running a second tandemd");
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "control socket {}: another process answers on it",
            socket.display()
        )),
        "{out}"
    );
    assert!(ctl(&lab, &["help"]).contains("conns"));

    let out = lab.ctl(&["counters", "--all"]).unwrap();
    assert_eq!(out.status.code(), Some(2), "refused before sending:\n{out}");
    assert_eq!(
        out.stderr,
        "error: counters: unknown option `--all`; options: --nonzero, --json\n"
    );
    let out = lab.ctl(&["counters", "no-such-counter"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "refused by the unit:\n{out}");
    assert_eq!(
        out.stderr,
        "error: no counter name contains `no-such-counter`\n"
    );
}
