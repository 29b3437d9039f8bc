//! The operator's console against a running pair ([`PairLab`] on the
//! switch, roles forced: A active, B passive): golden output of the status commands (times,
//! versions and revisions normalised), with the partner reachable and not;
//! the commands through a real pty (tmux), as on a serial line; and
//! configuration sync end to end — a rules change on the active shown by
//! `hainfo`, `hasynctest` and `hadiff`, brought over by `hasync`, refused
//! whole when the partner finds the file invalid, and enforced by the
//! partner after it took over.
//!
//! Needs root, python3, curl and tmux.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tandem_tests::pair::{DataWiring, PAIR_RULES};
use tandem_tests::wait::poll_until_detail;
use tandem_tests::{plan, PairLab, Unit};

/// Bound on the pair settling after a change: a hang's limit, not a measure.
const SETTLE: Duration = Duration::from_secs(60);
/// The web port a rules change opens.
const NEW_PORT: u16 = 8080;
/// The TIME_WAIT timeout a shared configuration change sets, in seconds
/// (Linux's default: 120).
const TIME_WAIT_S: u64 = 77;

static ONE_LAB: Mutex<()> = Mutex::new(());

fn one_lab_at_a_time() -> MutexGuard<'static, ()> {
    ONE_LAB.lock().unwrap_or_else(|e| e.into_inner())
}

fn pair() -> PairLab {
    let lab = PairLab::builder()
        .data(DataWiring::Switched)
        .shared_file(true)
        .build()
        .unwrap_or_else(|e| panic!("building the pair lab: {e}"));
    lab.wait_roles(Unit::A, SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    lab
}

/// `text` with what changes from run to run replaced, columns kept: times
/// and configuration revisions.
fn normalised(text: &str) -> String {
    let time = regex_lite::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    let revision =
        regex_lite::Regex::new(r"(?m)^(Config revision +)[0-9a-f]{8}( +)[0-9a-f]{8}").unwrap();
    let text = time.replace_all(text, "<time>              ");
    revision
        .replace_all(&text, "${1}<rev>   ${2}<rev>")
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

fn ctl(lab: &PairLab, unit: Unit, args: &[&str]) -> String {
    lab.ctl_ok(unit, args)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()))
}

#[test]
fn hainfo_hamode_and_hasynctest_read_as_operators_expect_also_with_the_partner_gone() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let text = normalised(&ctl(&lab, Unit::A, &["hainfo"]));
    let version = format!(
        "{:<30}{}",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        text,
        format!(
            "\
Nodes status:
                  TNDM-LAB-A (local)            TNDM-LAB-B
Model             lab                           lab-sync
Version           {version}
Forced            active                        passive
Mode              active                        passive
Since             <time>                        <time>
Quality           100.00 %                      100.00 %
Priority          0                             0
File sync         never                         never
Is conf sync      yes                           yes
Last conf sync    never                         never
Boot              <time>                        <time>
State             ready                         ready
Syncid            0                             0
Main link         198.18.254.1: OK              198.18.254.2: OK
Main link since   <time>                        <time>
Backup link       198.18.254.5: OK              198.18.254.6: OK
Config revision   <rev>                         <rev>
"
        ),
        "hainfo on A"
    );
    let verbose = ctl(&lab, Unit::B, &["hainfo", "-v"]);
    assert!(
        verbose.starts_with("connecting to the local unit at ")
            && verbose.contains(
                "requesting node status\nrequesting sync stats\n2 node(s) connected\n\
                 got node status from TNDM-LAB-B\ngot node status from TNDM-LAB-A\n"
            ),
        "{verbose}"
    );
    assert!(verbose.contains("Sync status:\nRecords sent"), "{verbose}");
    assert!(
        verbose.contains("                  TNDM-LAB-B (local)            TNDM-LAB-A\n"),
        "{verbose}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ctl(&lab, Unit::A, &["hainfo", "--json"])).unwrap();
    assert_eq!(json["schema"], "tandem.hainfo/1");
    assert_eq!(json["nodes"][1]["ha"]["mode"], "passive");
    let since = regex_lite::Regex::new(r"since: \d+ s").unwrap();
    assert_eq!(
        since.replace(&ctl(&lab, Unit::A, &["hamode"]), "since: <n> s"),
        "mode: active\nforced: active\nreason: forced\nsince: <n> s\n"
    );
    let mode: serde_json::Value =
        serde_json::from_str(&ctl(&lab, Unit::B, &["hamode", "--json"])).unwrap();
    assert_eq!(
        (mode["mode"].as_str(), mode["forced"].as_str()),
        (Some("passive"), Some("passive"))
    );
    assert_eq!(
        ctl(&lab, Unit::A, &["hasynctest"]),
        "",
        "the same rules on both"
    );
    // enha: the priority re-read without a restart; a bad file changes nothing.
    let config = std::fs::read_to_string(lab.config_path(Unit::A)).unwrap();
    let raised = config.replace("forced: Some(Active)", "forced: Some(Active), priority: 7");
    assert_ne!(raised, config);
    std::fs::write(lab.config_path(Unit::A), &raised).unwrap();
    let enha = ctl(&lab, Unit::A, &["enha"]);
    assert!(
        enha.contains(": priority 0 → 7\n")
            && enha.ends_with("supervisor: running; unit TNDM-LAB-A: active (forced), quality 100.00 %, priority 7\n"),
        "{enha}"
    );
    std::fs::write(
        lab.config_path(Unit::A),
        raised.replace("priority: 7", "priority: 700"),
    )
    .unwrap();
    let refused = lab.ctl(Unit::A, &["enha"]).unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(
        refused.stderr.contains("nothing changed") && refused.stderr.contains("unit.ron:"),
        "{refused}"
    );
    std::fs::write(lab.config_path(Unit::A), &config).unwrap();

    lab.stop(Unit::B).unwrap();
    let mut last = String::new();
    poll_until_detail("hainfo to say the partner is unreachable", SETTLE, || {
        last = ctl(&lab, Unit::A, &["hainfo"]);
        Ok(last
            .contains("TNDM-LAB-B: partner unreachable: the partner is not heard on any HA link")
            .then_some(())
            .ok_or_else(|| last.clone()))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let text = normalised(&last);
    assert!(
        text.contains("Mode              active                        -\n")
            && text.contains("Main link         198.18.254.1: FAIL            -\n"),
        "{text}"
    );
    const GONE: &str = "partner unreachable: the partner is not heard on any HA link";
    for command in [&["hasynctest"][..], &["hadiff", "rules.ron"]] {
        let out = lab.ctl(Unit::A, command).unwrap();
        assert_eq!(out.status.code(), Some(1), "{out}");
        assert_eq!(out.stderr, format!("error: {GONE}\n"), "{command:?}");
    }
    let out = lab.ctl(Unit::A, &["hasync"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(
        out.stdout,
        format!(
            "\
Source       | Step                 | P | Info
TNDM-LAB-A   | pre-commands         | + | 2 file(s) valid: shared.ron, rules.ron
TNDM-LAB-A   | link evaluation      | ! | {GONE}
FAILED: {GONE}
"
        )
    );
}

/// A console command in a real terminal of 80 × 24 (tmux), as on a serial
/// line: the screen holds the answer, at most 80 columns, no escape
/// sequences; `help` fits on it.
#[test]
fn the_commands_read_well_in_a_real_80_column_terminal() {
    let _one = one_lab_at_a_time();
    let lab = pair();
    let tandemctl = tandem_tests::tandemd::locate_tandemctl().unwrap();
    let bin = lab.dir().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let installed = std::process::Command::new(&tandemctl)
        .arg("--install-links")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{installed:?}");
    for name in [
        "hainfo",
        "hamode",
        "hasync",
        "hasynctest",
        "hadiff",
        "enha",
        "halog",
        "haactive",
        "hapassive",
        "hareset",
    ] {
        assert!(bin.join(name).exists(), "{name} installed");
    }
    let hainfo = bin.join("hainfo");
    let socket = lab.tandemd(Unit::A).unwrap().control_path().to_path_buf();
    for (name, command) in [
        (
            "hainfo",
            format!("{} --socket {}", hainfo.display(), socket.display()),
        ),
        (
            "help",
            format!("{} --socket {} help", tandemctl.display(), socket.display()),
        ),
    ] {
        let screen = tmux_screen(lab.dir(), name, &format!("{command}; echo EXIT=$?"));
        assert!(screen.contains("EXIT=0"), "{name}:\n{screen}");
        assert!(!screen.contains('\u{1b}'), "{name}: no escape sequences");
        assert!(
            screen.lines().all(|l| l.chars().count() <= 80),
            "{name}:\n{screen}"
        );
        if name == "hainfo" {
            assert!(screen.contains("Nodes status:"), "{screen}");
            assert!(
                screen.contains("Main link         198.18.254.1: OK"),
                "{screen}"
            );
        } else {
            assert!(
                screen.contains("commands (") && screen.contains("enha"),
                "{screen}"
            );
        }
    }
}

/// Runs `command` in a detached tmux session of 80 × 24 (a tmux server of
/// its own, named after the lab and `name`) and returns its screen once the
/// command printed its `EXIT=` line.
fn tmux_screen(dir: &Path, name: &str, command: &str) -> String {
    let session = format!(
        "tandem-console-{}-{name}",
        dir.file_name().unwrap().to_string_lossy()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux: {e}"))
    };
    let shell = format!("{command}; sleep 60");
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "80",
        "-y",
        "24",
        &shell,
    ]);
    assert!(started.status.success(), "{started:?}");
    let mut screen = String::new();
    let done = poll_until_detail("the command to end in tmux", SETTLE, || {
        let out = tmux(&["capture-pane", "-p", "-t", &session]);
        screen = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(screen
            .contains("EXIT=")
            .then_some(())
            .ok_or_else(|| screen.clone()))
    });
    let _ = tmux(&["kill-server"]);
    done.unwrap_or_else(|e| panic!("{e}"));
    screen
}

/// PAIR_RULES with one more rule: the server's port 8080 from the client.
fn rules_with_new_port() -> String {
    PAIR_RULES.replace(
        "        (action: Pass, proto: Some(Icmp)",
        &format!(
            "        (action: Pass, in: Some(\"data0\"), proto: Some(Tcp), dst: Some(\"198.18.2.2\"),\n         dst_ports: Some(\"{NEW_PORT}\"), label: Some(\"new\")),\n        (action: Pass, proto: Some(Icmp)"
        ),
    )
}

/// Whether the client fetches a page from the server's port 8080.
fn fetches(lab: &PairLab) -> bool {
    let url = format!("http://{}:{NEW_PORT}/", plan::SERVER_IP);
    lab.client()
        .exec(["curl", "-s", "-o", "/dev/null", "--max-time", "3", &url])
        .is_ok_and(|o| o.success())
}

#[test]
fn a_rules_change_on_the_active_is_shown_synchronised_and_enforced_after_a_takeover() {
    let _one = one_lab_at_a_time();
    let mut lab = pair();
    let web = tandem_tests::services::http_server(
        lab.server(),
        lab.dir(),
        plan::SERVER_IP,
        NEW_PORT,
        &lab.dir().join("http"),
    )
    .unwrap();
    assert!(!fetches(&lab), "port 8080 is not in the rules yet");

    let new_rules = rules_with_new_port();
    std::fs::write(lab.rules_path(Unit::A), &new_rules).unwrap();
    let shared_path = lab.shared_path(Unit::A).unwrap().to_path_buf();
    let new_shared = std::fs::read_to_string(&shared_path).unwrap().replace(
        "    routes: [",
        &format!("    timeouts: (tcp_time_wait: {TIME_WAIT_S}),\n    routes: ["),
    );
    std::fs::write(&shared_path, &new_shared).unwrap();
    let reloaded = ctl(&lab, Unit::A, &["reload"]);
    assert!(
        reloaded.starts_with(
            "shared configuration reloaded: 2 virtual address(es), 1 route(s)\nrules reloaded: 8 rule(s)"
        ),
        "{reloaded}"
    );
    assert!(fetches(&lab), "the active enforces its new rules");
    // The connection's copy on the passive, by its sync state, in JSON.
    poll_until_detail("the fetch's connection larval on B", SETTLE, || {
        let listed = ctl(
            &lab,
            Unit::B,
            &["conns", "port", "8080", "sync", "larval", "--json"],
        );
        let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
        Ok((v["count"].as_u64() >= Some(1)).then_some(()).ok_or(listed))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let sync: serde_json::Value =
        serde_json::from_str(&ctl(&lab, Unit::A, &["sync", "--json"])).unwrap();
    assert_eq!(
        (sync["ha"]["mode"].as_str(), sync["serial"].as_str()),
        (Some("active"), Some("TNDM-LAB-A"))
    );
    assert!(sync["sync"]["records_sent"].is_u64(), "{sync}");
    let info = ctl(&lab, Unit::A, &["hainfo"]);
    assert!(info.contains("Is conf sync      no "), "{info}");
    assert!(
        info.contains(
            "Notice: TNDM-LAB-A has configuration changes not yet synchronised (hasync)\n"
        ),
        "{info}"
    );
    assert_eq!(
        ctl(&lab, Unit::A, &["hasynctest"]),
        "shared.ron: differs\nrules.ron: differs\n"
    );
    assert_eq!(
        ctl(&lab, Unit::A, &["hadiff", "rules.ron"]),
        format!(
            "\
--- TNDM-LAB-A:rules.ron
+++ TNDM-LAB-B:rules.ron
@@ -14,8 +14,6 @@
          dst_ports: Some(\"7001\"), label: Some(\"probe\")),
         (action: Pass, in: Some(\"data0\"), proto: Some(Tcp), dst: Some(\"198.18.2.2\"),
          dst_ports: Some(\"7002\"), label: Some(\"stream\")),
-        (action: Pass, in: Some(\"data0\"), proto: Some(Tcp), dst: Some(\"198.18.2.2\"),
-         dst_ports: Some(\"{NEW_PORT}\"), label: Some(\"new\")),
         (action: Pass, proto: Some(Icmp), icmp_type: Some(8), label: Some(\"ping\")),
     ],
 )
"
        ),
        "hadiff on A"
    );

    // A file that the partner finds invalid (here: spoiled on the active
    // between the steps): refused by name and place, nothing changed there.
    let b_rules_before = std::fs::read_to_string(lab.rules_path(Unit::B)).unwrap();
    let begin: serde_json::Value =
        serde_json::from_str(&ctl(&lab, Unit::A, &["hasync", "begin"])).unwrap();
    let transfer = begin["transfer"].as_u64().unwrap().to_string();
    std::fs::write(
        lab.rules_path(Unit::A),
        new_rules.replace(
            "in: Some(\"data0\"), proto: Some(Udp)",
            "in: Some(\"data9\"), proto: Some(Udp)",
        ),
    )
    .unwrap();
    ctl(&lab, Unit::A, &["hasync", "link"]);
    let refused = lab
        .ctl(Unit::A, &["hasync", "file", &transfer, "rules.ron"])
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .starts_with("error: rules.ron: refused by TNDM-LAB-B: ")
            && refused.stderr.contains("rules.ron:")
            && refused.stderr.contains("data9"),
        "{refused}"
    );
    let commit = lab
        .ctl(Unit::A, &["hasync", "commit", &transfer, "1"])
        .unwrap();
    assert_eq!(commit.status.code(), Some(1), "nothing staged: {commit}");
    assert_eq!(
        std::fs::read_to_string(lab.rules_path(Unit::B)).unwrap(),
        b_rules_before,
        "the partner's rules file is unchanged"
    );
    let whole = lab.ctl(Unit::A, &["hasync"]).unwrap();
    assert_eq!(whole.status.code(), Some(1), "{whole}");
    assert!(
        whole.stdout.contains("| pre-commands         | ! | "),
        "{whole}"
    );
    std::fs::write(lab.rules_path(Unit::A), &new_rules).unwrap();

    let synced = ctl(&lab, Unit::A, &["hasync"]);
    let sizes = regex_lite::Regex::new(r"\d+ bytes, sha256 [0-9a-f]{12}…").unwrap();
    let dir = regex_lite::Regex::new(r"from \S+/b/unit.ron").unwrap();
    let revision = regex_lite::Regex::new(r"revision \d+").unwrap();
    let golden = sizes.replace_all(&synced, "<n> bytes, sha256 <sha>");
    let golden = dir.replace_all(&golden, "from <dir>/b/unit.ron");
    assert_eq!(
        revision.replace_all(&golden, "revision <n>"),
        "\
Source       | Step                 | P | Info
TNDM-LAB-A   | pre-commands         | + | 2 file(s) valid: shared.ron, rules.ron
TNDM-LAB-A   | link evaluation      | + | TNDM-LAB-B reached over HA link ha0
TNDM-LAB-A   | link evaluation      | + | differ: shared.ron, rules.ron
TNDM-LAB-A   | file                 | + | shared.ron: <n> bytes, sha256 <sha>, valid on TNDM-LAB-B
TNDM-LAB-A   | file                 | + | rules.ron: <n> bytes, sha256 <sha>, valid on TNDM-LAB-B
TNDM-LAB-B   | service reactivation | + | shared.ron: shared configuration applied: 2 virtual address(es), 1 route(s)
TNDM-LAB-B   | service reactivation | + | HA parameters re-read from <dir>/b/unit.ron: nothing changed
TNDM-LAB-B   | service reactivation | + | rules.ron: rules applied: 8 rule(s), revision <n>
TNDM-LAB-A   | post-commands        | + | configuration sync 1 recorded
OK
",
        "hasync on A"
    );
    assert!(
        synced.contains("TNDM-LAB-B   | service reactivation | + | shared.ron: shared configuration applied: 2 virtual address(es), 1 route(s)\n")
            && synced.contains("TNDM-LAB-B   | service reactivation | + | rules.ron: rules applied: 8 rule(s)"),
        "the partner put both in force: {synced}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.rules_path(Unit::B)).unwrap(),
        new_rules
    );
    assert_eq!(
        std::fs::read_to_string(lab.shared_path(Unit::B).unwrap()).unwrap(),
        new_shared
    );
    assert_eq!(
        ctl(&lab, Unit::A, &["hasynctest"]),
        "",
        "nothing left to sync"
    );
    let info = ctl(&lab, Unit::B, &["hainfo"]);
    assert!(
        !info.contains("Notice:")
            && info.contains("Syncid            1                             1\n"),
        "{info}"
    );

    // Fail over: B no longer forced, A killed; B takes over with the rules A sent.
    ctl(&lab, Unit::B, &["hareset"]);
    lab.kill(Unit::A).unwrap();
    lab.wait_active(Unit::B, SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.context()));
    poll_until_detail("the client to fetch through B", SETTLE, || {
        Ok(fetches(&lab).then_some(()).ok_or_else(String::new))
    })
    .unwrap_or_else(|e| panic!("B does not pass port 8080: {e}\n{}", lab.context()));
    // B's own new connection closed with the timeouts A sent (shared.ron).
    poll_until_detail("B's connection in TIME_WAIT", SETTLE, || {
        let listed = ctl(
            &lab,
            Unit::B,
            &["conns", "port", "8080", "state", "time_wait", "--json"],
        );
        let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let fresh = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["sync"] == "live" && c["expires_s"].as_u64() <= Some(TIME_WAIT_S));
        Ok(fresh.then_some(()).ok_or(listed))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    drop(web);
}
