//! Self-tests of the lab harness, with the Linux kernel as the router: they
//! need no `tandemd`, and prove that traffic crosses the lab, that the
//! offloads are off, and that nothing is left behind — also after a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

use tandem_tests::{blob, netns, plan, services, Error, Lab, Netns};

fn kernel_lab() -> Lab {
    Lab::kernel_routed().expect("building a kernel-routed lab")
}

fn ping(ns: &Netns, target: &str) -> tandem_tests::Output {
    ns.exec(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", target])
        .expect("running ping")
}

fn assert_gone(names: &[String]) {
    let listed = netns::list().expect("ip netns list");
    let left: Vec<_> = names.iter().filter(|n| listed.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

#[test]
fn ping_crosses_the_kernel_router() {
    let lab = kernel_lab();
    for target in [
        plan::SERVER_IP,
        plan::UNIT_DATA0_IP,
        plan::VIP0,
        plan::STATIC_TARGET,
    ] {
        let out = ping(lab.client(), target);
        assert!(out.success(), "client -> {target}:\n{out}");
    }
    let out = ping(lab.server(), plan::CLIENT_IP);
    assert!(out.success(), "server -> client:\n{out}");
}

#[test]
fn http_transfer_crosses_intact() {
    let lab = kernel_lab();
    let www = lab.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let sent = www.join("blob");
    blob::write_random(&sent, 3_000_000).unwrap();
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
        .exec([
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-o",
            got.to_str().unwrap(),
            &format!("http://{}:8080/blob", plan::SERVER_IP),
        ])
        .expect("running curl");
    assert!(out.success(), "{out}");
    assert_eq!(blob::compare(&sent, &got), Ok(3_000_000));
}

#[test]
fn every_veth_end_has_offloads_off_and_every_namespace_is_quiet() {
    // The wiring shared by both routers: offloads off on every veth end,
    // lo up, IPv6 off, data ports up.
    let lab = kernel_lab();
    for (ns, ifname) in [
        (lab.unit(), "data0"),
        (lab.unit(), "data1"),
        (lab.unit(), "ha0"),
        (lab.unit(), "ha1"),
        (lab.client(), "eth0"),
        (lab.server(), "eth0"),
    ] {
        let out = ns.exec_ok(["ethtool", "-k", ifname]).unwrap();
        for feature in [
            "rx-checksumming",
            "tx-checksumming",
            "tcp-segmentation-offload",
            "generic-segmentation-offload",
            "generic-receive-offload",
        ] {
            let line = out
                .stdout
                .lines()
                .find(|l| l.starts_with(&format!("{feature}:")))
                .unwrap_or_else(|| panic!("{feature} missing:\n{out}"));
            assert!(line.contains(": off"), "{} {ifname}: {line}", ns.name());
        }
    }
    for ns in [lab.unit(), lab.client(), lab.server()] {
        let out = ns
            .exec_ok(["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"])
            .unwrap();
        assert_eq!(out.stdout.trim(), "1", "{}", ns.name());
        let out = ns.ip(&["-o", "link", "show", "lo"]).unwrap();
        assert!(out.stdout.contains("UP"), "{out}");
        // No DNS query ever heads for the host's resolver through the unit.
        let out = ns.exec_ok(["cat", "/etc/resolv.conf"]).unwrap();
        assert!(out.stdout.contains("nameserver 127.0.0.1"), "{out}");
    }
}

#[test]
fn namespaces_are_gone_after_drop() {
    let lab = kernel_lab();
    let names = lab.namespaces();
    let listed = netns::list().unwrap();
    for n in &names {
        assert!(listed.contains(n), "{n} not in {listed:?}");
    }
    drop(lab);
    assert_gone(&names);
    for n in &names {
        let etc = std::path::Path::new("/etc/netns").join(n);
        assert!(!etc.exists(), "{} left behind", etc.display());
    }
}

#[test]
fn namespaces_and_processes_are_gone_after_a_panic() {
    let seen: Mutex<Option<(Vec<String>, u32)>> = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let lab = kernel_lab();
        let sleeper = lab
            .server()
            .spawn(["sleep", "600"], None)
            .expect("spawning sleep");
        *seen.lock().unwrap() = Some((lab.namespaces(), sleeper.pid()));
        panic!("a test failing in the middle of a lab");
    }));
    assert!(result.is_err(), "the closure should have panicked");
    let (names, pid) = seen.lock().unwrap().take().expect("lab was built");
    assert_gone(&names);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} started in the lab survived"
    );
}

#[test]
fn labs_run_side_by_side() {
    let a = kernel_lab();
    let b = kernel_lab();
    let names: Vec<String> = a.namespaces().into_iter().chain(b.namespaces()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{names:?}");
    for lab in [&a, &b] {
        let out = ping(lab.client(), plan::SERVER_IP);
        assert!(out.success(), "{out}");
    }
}

#[test]
fn commands_in_a_namespace_are_bounded() {
    let ns = Netns::new("t").unwrap();
    let err = ns
        .exec_timeout(["sleep", "30"], Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // And they really run inside it: only lo exists there.
    let out = ns.ip(&["-o", "link"]).unwrap();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
}

#[test]
fn a_tandemd_lab_without_tandemd_fails_fast_and_clearly() {
    let err = match Lab::builder().tandemd("/nonexistent/tandemd").build() {
        Ok(_) => panic!("a lab with a missing daemon came up"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(text.contains("/nonexistent/tandemd"), "{text}");
    assert!(text.contains("cargo build --bins"), "{text}");
}

// ---------------------------------------------------------------------------
// The tandemd path, with a stand-in shell script that follows the daemon's
// contract: arguments, `tandemd ready` logged on stderr, counters file, exit 0 on SIGTERM.
// ---------------------------------------------------------------------------

/// Writes an executable script and an empty profile into `dir`.
fn fake_daemon(dir: &std::path::Path, body: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("fake-tandemd");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = dir.join("lab.ron");
    std::fs::write(&profile, "()\n").unwrap();
    (script, profile)
}

const CONTRACT_FOLLOWER: &str = r#"
while [ $# -gt 0 ]; do
    case "$1" in
        --counters-file) counters="$2"; shift ;;
        --config) config="$2"; shift ;;
        --profile|--file-prefix|--control|--rules|--state-dir|--prometheus-file) shift ;;
        *) echo "unexpected argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -f "$config" ] || { echo "no config" >&2; exit 2; }
# It must run in the unit's namespace, where data0, data1, ha0 and ha1 exist.
for i in data0 data1 ha0 ha1; do ip -o link show $i >/dev/null || exit 3; done
rx=0
write() { printf 'worker0.rx_packets %s\nworker0.tx_packets %s\nworker0.drop.ttl_expired 0\n' "$rx" "$rx" > "$counters.tmp" && mv "$counters.tmp" "$counters"; }
trap 'rx=$((rx + 1)); write; exit 0' TERM
echo "tandemd ready" >&2
while :; do rx=$((rx + 1)); write; sleep 0.1; done
"#;

#[test]
fn the_tandemd_path_starts_counts_and_stops_a_daemon() {
    let tools = tempfile::tempdir().unwrap();
    let (script, profile) = fake_daemon(tools.path(), CONTRACT_FOLLOWER);
    let mut lab = Lab::builder()
        .tandemd(&script)
        .profile(&profile)
        .build()
        .expect("lab with the stand-in daemon");
    assert!(lab.is_tandemd());
    // The unit owns the addresses: Linux has none on the data ports.
    for port in ["data0", "data1"] {
        let out = lab
            .unit()
            .ip(&["-o", "-4", "addr", "show", "dev", port])
            .unwrap();
        assert!(
            out.stdout.trim().is_empty(),
            "Linux has an address on {port}:\n{out}"
        );
    }
    let out = lab
        .unit()
        .exec_ok(["sysctl", "-n", "net.ipv4.ip_forward"])
        .unwrap();
    assert_eq!(
        out.stdout.trim(),
        "0",
        "the kernel must not route in a tandemd lab"
    );
    let seen = lab
        .wait_counters("rx > 2", Duration::from_secs(20), |c| {
            c.sum("rx_packets") > 2
        })
        .unwrap();
    assert!(seen.contains_key("worker0.drop.ttl_expired"), "{seen}");
    let config = std::fs::read_to_string(lab.config_path()).unwrap();
    assert_eq!(config, plan::unit_config());

    let status = lab.stop_unit().expect("stopping the daemon");
    assert!(status.success(), "{status}\n{}", lab.unit_logs());
    let last = lab.counters().unwrap();
    assert!(last.sum("tx_packets") >= seen.sum("tx_packets"), "{last}");
}

#[test]
fn a_daemon_that_exits_at_boot_is_reported_with_its_stderr() {
    let tools = tempfile::tempdir().unwrap();
    let (script, profile) = fake_daemon(
        tools.path(),
        "echo 'EAL: cannot attach data0' >&2\nexit 7\n",
    );
    let err = match Lab::builder().tandemd(&script).profile(&profile).build() {
        Ok(_) => panic!("a daemon that exits at boot made a lab"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, Error::TandemdExited { .. }), "{text}");
    assert!(
        text.contains("cannot attach data0") && text.contains("7"),
        "{text}"
    );
}

#[test]
fn a_daemon_that_never_gets_ready_is_killed_after_the_limit() {
    let tools = tempfile::tempdir().unwrap();
    let pidfile = tools.path().join("pid");
    let body = format!(
        "echo $$ > {}\necho booting\nexec sleep 600\n",
        pidfile.display()
    );
    let (script, profile) = fake_daemon(tools.path(), &body);
    let err = match Lab::builder()
        .tandemd(&script)
        .profile(&profile)
        .ready_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(_) => panic!("a silent daemon made a lab"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, Error::TandemdNotReady { .. }), "{text}");
    assert!(text.contains("booting"), "{text}");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the daemon {pid} survived"
    );
}
