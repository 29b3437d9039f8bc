//! The unit as a process on a shared machine: it never dies of its own
//! output, it refuses to share its EAL prefix or its ports with another unit
//! (and a start that fails or is refused touches nobody's files), and its
//! control socket cannot be stalled by its clients. A real `tandemd` in a
//! lab (`mgmt/examples/lab-rules.ron`), real Linux peers, real pipes.
//!
//! Needs root, iproute2 and ping. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_tests::{command, plan, tandemd, Counters, Lab, Output};

const WAIT: Duration = Duration::from_secs(30);

fn example_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mgmt/examples/lab-rules.ron")
}

fn lab() -> Lab {
    Lab::builder()
        .rules(example_rules())
        .build()
        .expect("building a lab with mgmt/examples/lab-rules.ron")
}

/// `tandemd` arguments for another unit in the lab's unit namespace, with
/// its own control socket and counters file in the lab directory.
fn unit_args(lab: &Lab, profile: &Path, prefix: &str) -> Vec<String> {
    let dir = lab.dir();
    [
        tandemd::locate().unwrap().display().to_string(),
        "--profile".into(),
        profile.display().to_string(),
        "--config".into(),
        lab.config_path().display().to_string(),
        "--rules".into(),
        lab.rules_path().unwrap().display().to_string(),
        "--file-prefix".into(),
        prefix.into(),
        "--control".into(),
        dir.join(format!("{prefix}.sock")).display().to_string(),
        "--counters-file".into(),
        dir.join(format!("{prefix}.counters")).display().to_string(),
    ]
    .to_vec()
}

fn dpdk_runtime(prefix: &str) -> PathBuf {
    Path::new(tandemd::DPDK_RUNTIME_DIR).join(prefix)
}

fn tandemctl(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(tandemd::locate_tandemctl().unwrap());
    cmd.arg("--socket").arg(socket).args(args);
    command::run(&mut cmd, WAIT).expect("running tandemctl")
}

fn ping_once(lab: &Lab) -> Output {
    lab.client()
        .exec([
            "ping",
            "-n",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            plan::SERVER_IP,
        ])
        .expect("running ping")
}

/// A daemon this test started itself, with its `--file-prefix`: killed and
/// reaped on drop, and its EAL runtime directory removed (a unit that dies
/// cannot remove it).
struct Daemon(Child, String);

impl Daemon {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn signal(&self, sig: &str) {
        let out = command::run(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.pid().to_string()),
            WAIT,
        )
        .unwrap();
        assert!(out.success(), "{out}");
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "tandemd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        let _ = std::fs::remove_dir_all(dpdk_runtime(&self.1));
    }
}

// ---------------------------------------------------------------------------
// Item 4: the unit never dies because a log line could not be written.

/// `tandemd` with its stdout and stderr on pipes that are closed once it is
/// ready (as `tandemd | head -n 1` does), then a valid SIGHUP: the reload
/// is logged into the closed pipe. The unit counts the lines it could not
/// write, and goes on forwarding and answering until SIGTERM, when it exits
/// 0. (It used to abort with status 134, "failed printing to stdout".)
#[test]
fn a_closed_stdout_and_stderr_cost_log_lines_never_the_unit() {
    let mut lab = lab();
    lab.stop_unit().unwrap();
    let prefix = format!("{}-piped", lab.unit().name());
    let args = unit_args(&lab, &tandemd::lab_profile().unwrap(), &prefix);
    // One pipe for both streams, as `tandemd 2>&1 | head` has.
    let (output, writer) = std::io::pipe().unwrap();
    let child = lab
        .unit()
        .command(&args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("starting tandemd");
    let mut unit = Daemon(child, prefix.clone());
    // Read until `ready`, then close the pipe's only read end.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut lines = BufReader::new(output).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("tandemd ready") {
                break;
            }
        }
        drop(lines); // the read end closes before anyone goes on
        let _ = tx.send(seen);
    });
    let seen = rx.recv_timeout(WAIT).expect("tandemd to log `ready`");
    assert!(seen.contains("tandemd ready"), "{seen}");

    let socket = lab.dir().join(format!("{prefix}.sock"));
    unit.signal("HUP");
    let out = tandemctl(&socket, &["reload"]);
    assert!(out.success(), "{out}");
    assert!(out.stdout.starts_with("rules reloaded"), "{out}");
    let ping = ping_once(&lab);
    assert!(ping.success(), "forwarding goes on:\n{ping}");
    let counters =
        Counters::parse(&tandemctl(&socket, &["counters", "log."]).stdout).expect("counters");
    assert!(
        counters.sum("log.write_errors") >= 2,
        "the reloads' log lines could not be written: {}",
        counters.nonzero()
    );
    assert!(unit.running(), "tandemd is still up");
    unit.signal("TERM");
    let status = unit.wait();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!dpdk_runtime(&prefix).exists());
}

/// `tandemctl` whose reader is gone ends quietly, as Unix tools do: no
/// message, the status a SIGPIPE death gives (141), for an answer on stdout
/// and for an error on stderr alike. (It used to panic: exit 101 or 134.)
#[test]
fn tandemctl_ends_quietly_on_a_closed_pipe() {
    let lab = lab();
    let socket = lab.tandemd().unwrap().control_path().to_path_buf();
    let ctl = tandemd::locate_tandemctl().unwrap();
    let closed_pipe = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let cases: [(&str, Vec<&str>, bool); 3] = [
        (
            "rules, stdout closed",
            vec!["--socket", socket.to_str().unwrap(), "rules"],
            true,
        ),
        ("--help, stdout closed", vec!["--help"], true),
        (
            "an unreachable unit, stderr closed",
            vec!["--socket", "/nonexistent/ctl.sock", "counters"],
            false,
        ),
    ];
    for (what, args, stdout_closed) in cases {
        let mut cmd = Command::new(&ctl);
        cmd.args(&args).stdin(Stdio::null());
        if stdout_closed {
            cmd.stdout(closed_pipe()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(closed_pipe());
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{what}: {out:?}");
        assert!(
            out.stderr.is_empty() && out.stdout.is_empty(),
            "{what}: quietly: {out:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Item 5: one unit per set of ports.

/// EAL runtime directories of prefixes a test made up, removed on drop.
struct RuntimeDirs(Vec<String>);

impl Drop for RuntimeDirs {
    fn drop(&mut self) {
        for prefix in &self.0 {
            let _ = std::fs::remove_dir_all(dpdk_runtime(prefix));
        }
    }
}

/// A second unit with the running unit's `--file-prefix` (another control
/// socket) is refused before EAL starts, naming the prefix and the first
/// unit's pid; one with its own prefix but the same ports is refused naming
/// the port. Neither touches the running unit: it forwards (no duplicate
/// replies, which two units on one port would give) and its EAL runtime
/// directory stays. A start that fails after EAL started (a port device that
/// cannot be created) leaves no runtime files of its own.
#[test]
fn a_second_unit_on_the_same_prefix_or_ports_is_refused_and_touches_nothing() {
    let lab = lab();
    let first_pid = lab.tandemd().unwrap().pid();
    let prefix = lab.unit().name().to_string();
    assert!(
        dpdk_runtime(&prefix).exists(),
        "the running unit's runtime directory"
    );
    let profile = tandemd::lab_profile().unwrap();
    // Whatever happens, the prefixes this test gives other units leave nothing.
    let _cleanup = RuntimeDirs(vec![format!("{prefix}-b"), format!("{prefix}-c")]);
    let run = |args: Vec<String>| {
        command::run(&mut lab.unit().command(&args), WAIT).expect("running a second tandemd")
    };

    let mut same_prefix = unit_args(&lab, &profile, &prefix);
    let at = same_prefix.iter().position(|a| a == "--control").unwrap();
    same_prefix[at + 1] = lab.dir().join("second.sock").display().to_string();
    let out = run(same_prefix);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "EAL file prefix `{prefix}` is in use by another unit (pid {first_pid})"
        )),
        "{out}"
    );

    let out = run(unit_args(&lab, &profile, &format!("{prefix}-b")));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .contains("port data0 (net_af_packet0) is in use by another unit"),
        "{out}"
    );
    assert!(!dpdk_runtime(&format!("{prefix}-b")).exists());
    let lock = Path::new("/run/tandem/locks").join(format!("prefix-{prefix}-b.lock"));
    assert!(
        !lock.exists(),
        "a refused start leaves no lock file: {}",
        lock.display()
    );

    // Spare interfaces, so that the failing start passes the locks.
    for i in 0..4 {
        lab.unit()
            .ip(&[
                "link",
                "add",
                &format!("spare{i}"),
                "type",
                "veth",
                "peer",
                "name",
                &format!("spare{i}p"),
            ])
            .unwrap();
    }
    let text = std::fs::read_to_string(&profile).unwrap();
    let failing = text
        .replace("iface=data0,qpairs=1", "iface=spare0,qpairs=1,framesz=7")
        .replace("iface=data1", "iface=spare1")
        .replace("iface=ha0", "iface=spare2")
        .replace("iface=ha1", "iface=spare3");
    assert_ne!(failing, text, "the lab profile changed shape");
    let failing_profile = lab.dir().join("failing.ron");
    std::fs::write(&failing_profile, failing).unwrap();
    let out = run(unit_args(&lab, &failing_profile, &format!("{prefix}-c")));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("port data0"), "{out}");
    assert!(
        !dpdk_runtime(&format!("{prefix}-c")).exists(),
        "no runtime files of its own left"
    );

    assert!(
        dpdk_runtime(&prefix).exists(),
        "the running unit's runtime directory stays"
    );
    let ping = ping_once(&lab);
    assert!(ping.success(), "{ping}");
    assert!(!ping.stdout.contains("DUP!"), "one unit forwards:\n{ping}");
    let out = lab.ctl(&["counters", "rx_packets"]).unwrap();
    assert!(out.success(), "the running unit answers:\n{out}");
}

// ---------------------------------------------------------------------------
// Item 6: the control socket cannot be stalled.

/// 40 clients that connect and say nothing, and 6 that ask for the listing
/// of 20,000 rules (about 1 MB each) and never read it: meanwhile a normal
/// `tandemctl counters` is answered, and the counters file keeps being
/// rewritten (it shows the stalled clients). When the six go away their
/// answers are dropped and counted. (Before, the silent ones made a request
/// wait 21 s and the six held the unit's main thread ~30 s.)
#[test]
fn silent_and_stalled_clients_hold_nobody_up() {
    let mut rules = String::from("(default: Block, rules: [\n");
    for i in 0..20_000u32 {
        rules.push_str(&format!(
            "  (action: Pass, in: Some(\"data0\"), proto: Some(Tcp), dst: Some(\"198.18.2.2\"), dst_ports: Some(\"{}\"), label: Some(\"r{i}\")),\n",
            1024 + i % 60_000
        ));
    }
    rules.push_str("])\n");
    let lab = Lab::builder()
        .rules(rules)
        .build()
        .expect("a lab with 20,000 rules");
    let socket = lab.tandemd().unwrap().control_path().to_path_buf();
    let silent: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    let stalled: Vec<UnixStream> = (0..6)
        .map(|_| {
            let mut s = UnixStream::connect(&socket).unwrap();
            s.write_all(b"rules\n").unwrap();
            s
        })
        .collect();

    let c = lab
        .wait_counters(
            "the counters file to show the six stalled clients",
            WAIT,
            |c| c.sum("control.clients_now") >= 6 && c.sum("control.clients_accepted") >= 46,
        )
        .unwrap();
    println!("while stalled: {}", c.nonzero());
    let out = lab.ctl(&["counters", "control."]).unwrap();
    assert!(out.success(), "{}", lab.context(&out));
    drop(silent);
    drop(stalled);
    let c = lab
        .wait_counters("the six abandoned answers to be counted", WAIT, |c| {
            c.sum("control.answers_abandoned") >= 6
        })
        .unwrap();
    println!("after: {}", c.nonzero());
}
