//! Shows a person what a unit does: builds the lab (client — unit — server
//! in network namespaces), boots `tandemd` as a stateful firewall with the
//! lab rules (`mgmt/examples/lab-rules.ron`), sends pings, a TCP transfer and
//! a TTL-expired ping through it, tries a port the rules block, lists the
//! unit's connections and counters, and tears it all down. Needs root.
//!
//! `tandemd` is found beside this binary (same cargo profile directory) or
//! through `$TANDEMD`; `--kernel` lets Linux route instead, to see the lab
//! without the firmware.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tandem_tests::demo::{self, check_removed, step, DemoError};
use tandem_tests::{blob, plan, services, Lab, RouterKind};

/// Builds a one-unit lab, sends traffic through it and shows what happened.
#[derive(Parser, Debug)]
#[command(name = "lab-demo")]
struct Args {
    /// Let the Linux kernel route instead of tandemd (checks the lab itself).
    #[arg(long)]
    kernel: bool,
    /// Route without filtering (no rules file).
    #[arg(long)]
    no_firewall: bool,
    /// Size of the TCP transfer, in MB.
    #[arg(long, default_value_t = 50)]
    size_mb: u64,
    /// The tandemd binary (default: beside this one, or $TANDEMD).
    #[arg(long)]
    tandemd: Option<std::path::PathBuf>,
    /// The hardware profile (default: hw-profiles/profiles/lab.ron, or
    /// $TANDEM_LAB_PROFILE).
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    demo::exit("lab-demo", run(&args))
}

fn run(args: &Args) -> Result<(), DemoError> {
    step(1, "building the lab");
    let mut builder = Lab::builder().narrate(true).router(if args.kernel {
        RouterKind::Kernel
    } else {
        RouterKind::Tandemd
    });
    if let Some(p) = &args.tandemd {
        builder = builder.tandemd(p);
    }
    if let Some(p) = &args.profile {
        builder = builder.profile(p);
    }
    let firewall = !args.kernel && !args.no_firewall;
    if firewall {
        let rules =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mgmt/examples/lab-rules.ron");
        println!(
            "rules: {} (pass TCP 80 and UDP 5353 to the server, ping; block the rest)",
            rules.display()
        );
        builder = builder.rules(rules);
    }
    let mut lab = builder.build()?;
    let names = lab.namespaces();

    step(
        2,
        &format!(
            "ping client {} -> server {}",
            plan::CLIENT_IP,
            plan::SERVER_IP
        ),
    );
    let out = lab
        .client()
        .exec(["ping", "-n", "-c", "3", "-W", "2", plan::SERVER_IP])?;
    print!("{}", out.stdout);
    out.ok()?;

    step(
        3,
        &format!(
            "TCP transfer: {} MB over HTTP, server -> client",
            args.size_mb
        ),
    );
    let (http, blob) = demo::serve_blob(lab.server(), lab.dir(), args.size_mb)?;
    let got = lab.dir().join("got");
    let got_arg = got.to_string_lossy().into_owned();
    let url = format!("http://{}:80/blob", plan::SERVER_IP);
    let out = lab.client().exec_timeout(
        [
            "curl",
            "-sS",
            "--max-time",
            "120",
            "-o",
            &got_arg,
            "-w",
            "%{size_download} %{time_total} %{speed_download}",
            &url,
        ],
        Duration::from_secs(150),
    )?;
    let out = out.ok()?;
    let fields: Vec<f64> = out
        .stdout
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    if let [bytes, secs, bytes_per_sec] = fields[..] {
        println!(
            "{:.1} MB in {secs:.2} s = {:.0} Mbit/s",
            bytes / 1e6,
            bytes_per_sec * 8.0 / 1e6
        );
    } else {
        println!("curl said: {}", out.stdout);
    }
    match blob::compare(&blob, &got) {
        Ok(n) => println!("content verified: {n} bytes identical"),
        Err(e) => return Err(format!("the transfer corrupted data: {e}").into()),
    }

    step(
        4,
        "TTL-expired ping (ping -t 1): the unit answers 'Time to live exceeded'",
    );
    let out = lab.client().exec([
        "ping",
        "-n",
        "-c",
        "1",
        "-t",
        "1",
        "-W",
        "2",
        plan::SERVER_IP,
    ])?;
    print!("{}", out.stdout);

    if firewall {
        step(5, "a port the rules block: the client tries TCP 8080");
        // The same directory on another port.
        let _blocked = services::http_server(
            lab.server(),
            blob.parent().unwrap_or(lab.dir()),
            plan::SERVER_IP,
            8080,
            &lab.dir().join("http-8080"),
        )?;
        let url = format!("http://{}:8080/blob", plan::SERVER_IP);
        let out = lab.client().exec_timeout(
            ["curl", "-sS", "--max-time", "3", "-o", "/dev/null", &url],
            Duration::from_secs(10),
        )?;
        if out.success() {
            return Err("port 8080 answered: the rules did not block it".into());
        }
        println!("{}", out.stderr.trim());
        println!("nothing got through: the unit dropped the SYNs (blocked_by_rule)");

        step(6, "the unit's connections (tandemctl conns)");
        let out = lab.ctl(&["conns"])?;
        print!("{}", out.stdout);
    }

    step(7, "the unit's counters (non-zero)");
    if lab.is_tandemd() {
        // The file is rewritten about once a second: wait for the TTL drop
        // to show, but print whatever is there if it does not.
        let counters = lab
            .wait_counters("the TTL drop to be counted", Duration::from_secs(5), |c| {
                c.sum_where(|n| n.contains("ttl")) > 0
            })
            .or_else(|_| lab.counters())?;
        print!("{}", counters.nonzero());
    } else {
        println!("(the kernel routes: no unit counters; here are data0's link statistics)");
        print!(
            "{}",
            lab.unit().ip(&["-s", "link", "show", "data0"])?.stdout
        );
    }

    step(8, "tearing down");
    if lab.is_tandemd() {
        let status = lab.stop_unit()?;
        println!("tandemd stopped on SIGTERM: {status}");
    }
    drop(http);
    drop(lab);
    check_removed(&names)
}
