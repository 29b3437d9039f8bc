//! Shows a person what the HA pair does: builds the lab (a client, a switch,
//! two tandem units, a switch, a server, two HA links between the units),
//! boots both units as stateful firewalls that elect who is active, starts a
//! large download and a long-lived TCP session through the active unit,
//! kills the active unit with `kill -9` mid-transfer, and shows the download
//! finishing intact through the other unit, what the client lost (the
//! outage), both units' status and the HA event log; then the killed unit
//! returns, takes the table and stays passive. Needs root.
//!
//! `tandemd` is found beside this binary (same cargo profile directory) or
//! through `$TANDEMD`.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tandem_tests::demo::{self, check_removed, step, DemoError};
use tandem_tests::failover::{Probe, ProbeServer};
use tandem_tests::pair::DataWiring;
use tandem_tests::{blob, plan, PairLab, Unit};

/// Builds an HA pair lab, fails it over under load and shows what happened.
#[derive(Parser, Debug)]
#[command(name = "pair-demo")]
struct Args {
    /// Size of the download, in MB.
    #[arg(long, default_value_t = 100)]
    size_mb: u64,
    /// The download's pace, in MB/s (so the kill lands mid-transfer).
    #[arg(long, default_value_t = 10)]
    rate_mb: u64,
    /// Seconds into the download when the active unit is killed.
    #[arg(long, default_value_t = 3.0)]
    kill_after: f64,
    /// The tandemd binary (default: beside this one, or $TANDEMD).
    #[arg(long)]
    tandemd: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    demo::exit("pair-demo", run(&args))
}

/// Both members side by side, as the console's `hainfo` on `unit` shows them.
fn status(lab: &PairLab, unit: Unit) {
    match lab.ctl(unit, &["hainfo"]) {
        Ok(out) if out.success() => {
            println!("-- hainfo on {unit}:");
            for line in out.stdout.lines() {
                println!("   {line}");
            }
        }
        _ => println!("-- {unit}: not running"),
    }
}

fn run(args: &Args) -> Result<(), DemoError> {
    step(
        1,
        "building the lab: client - switch - units A and B - switch - server",
    );
    let mut builder = PairLab::builder()
        .narrate(true)
        .data(DataWiring::Switched)
        .election("listen_ms: 500");
    if let Some(p) = &args.tandemd {
        builder = builder.tandemd(p);
    }
    let mut lab = builder.build()?;
    println!("rules: tandem_tests::pair::PAIR_RULES (pass HTTP, the probe's UDP 7001 and TCP 7002, ping, ...; block the rest)");
    println!("heartbeats every 10 ms on both HA links, dead after 30 ms of silence on both");
    let names = lab.namespaces();
    let settle = Duration::from_secs(60);
    let first = lab.active_unit(settle)?;
    let second = first.partner();
    lab.wait_roles(first, settle)?;
    println!(
        "elected: {first} active ({})",
        if first == Unit::A {
            "equal quality and priority: the lower serial took the role at the start"
        } else {
            "it held the other's table first"
        }
    );
    status(&lab, first);

    step(
        2,
        &format!(
            "a {} MB download at {} MB/s (curl, HTTP) and a long-lived TCP session with a 1 ms UDP probe, through {first}",
            args.size_mb, args.rate_mb
        ),
    );
    let (_http, blob) = demo::serve_blob(lab.server(), lab.dir(), args.size_mb)?;
    let _probe_server = ProbeServer::start(
        lab.server(),
        plan::SERVER_IP,
        &lab.dir().join("probe-server"),
    )?;
    let transfer_secs = args.size_mb.div_ceil(args.rate_mb.max(1));
    let probe = Probe::start(
        lab.client(),
        plan::SERVER_IP,
        Duration::from_secs(transfer_secs + 3),
        &lab.dir().join("probe"),
    )?;
    let got = lab.dir().join("got");
    let url = format!("http://{}:80/blob", plan::SERVER_IP);
    let limit = transfer_secs * 3 + 60;
    let mut curl = lab.client().spawn(
        [
            "curl".to_string(),
            "-sS".into(),
            "--limit-rate".into(),
            format!("{}M", args.rate_mb),
            "--max-time".into(),
            limit.to_string(),
            "-o".into(),
            got.display().to_string(),
            "-w".into(),
            "%{size_download} bytes in %{time_total} s".into(),
            url,
        ],
        Some(&lab.dir().join("curl")),
    )?;
    std::thread::sleep(Duration::from_secs_f64(args.kill_after));

    step(3, &format!("kill -9 the active one, {first}, mid-transfer"));
    let before = std::fs::metadata(&got).map(|m| m.len()).unwrap_or(0);
    lab.kill(first)?;
    println!(
        "{first} (tandemd) killed with SIGKILL after {:.1} MB of the download",
        before as f64 / 1e6
    );

    step(4, &format!("the download goes on through {second}"));
    let Some(exit) = curl.wait_timeout(Duration::from_secs(limit + 10)) else {
        curl.kill();
        return Err(format!("curl did not finish\n{}", curl.logs()).into());
    };
    println!("curl: {} ({exit})", curl.stdout().trim());
    match blob::compare(&blob, &got) {
        Ok(n) => println!("content verified: {n} bytes identical to the server's file"),
        Err(e) => {
            return Err(format!(
                "the download did not arrive whole: {e}\n{}\n{}\n{}",
                curl.logs(),
                lab.counters(second)
                    .map(|c| c.nonzero())
                    .unwrap_or_default(),
                lab.context()
            )
            .into())
        }
    }
    let seen = probe.finish()?;
    println!(
        "the long-lived TCP session: {} bytes, every byte in order: {}; longest stall {:.0} ms",
        seen.tcp_bytes,
        if seen.tcp_intact { "yes" } else { "NO" },
        seen.tcp_stall_ms
    );
    println!(
        "UDP probe every 1 ms: {} sent, {} answered; outage {:.0} ms",
        seen.udp_sent, seen.udp_answered, seen.udp_outage_ms
    );
    if !seen.tcp_intact {
        return Err(format!("the TCP session did not survive: {seen:?}").into());
    }

    step(5, "status after the takeover");
    status(&lab, second);
    println!("-- {second}'s HA event log:");
    for line in lab.ha_log(second).lines() {
        println!("   {line}");
    }

    step(
        6,
        &format!("{first} returns: it takes {second}'s table and stays passive (no failback)"),
    );
    lab.start(first)?;
    lab.wait_roles(second, settle)?;
    status(&lab, first);
    println!("-- {first}'s HA event log (both boots):");
    for line in lab.ha_log(first).lines() {
        println!("   {line}");
    }

    step(7, "tearing down");
    drop(lab);
    check_removed(&names)
}
