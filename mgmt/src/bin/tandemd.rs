//! `tandemd`: boots one tandem unit from a hardware profile and a
//! configuration file, runs until SIGTERM or SIGINT, and shuts down cleanly.

use clap::Parser;
use mgmt::config::UnitConfig;
use mgmt::counters_file;
use mgmt::unit::Unit;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Boot one tandem unit on DPDK.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Hardware profile of the appliance model (RON), e.g. hw-profiles/profiles/lab.ron.
    #[arg(long)]
    profile: PathBuf,
    /// Unit configuration (RON): interfaces, virtual IPs, routes.
    #[arg(long)]
    config: PathBuf,
    /// EAL runtime file prefix; unique per unit on one host.
    #[arg(long)]
    file_prefix: Option<String>,
    /// Rewrite the counters into this file every second and at exit.
    #[arg(long)]
    counters_file: Option<PathBuf>,
    /// Check the profile and the configuration, then exit without booting.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let profile = match hw_profiles::Profile::load(&args.profile) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let config = match UnitConfig::load(&args.config, &profile) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if args.check {
        println!(
            "{}: ok; {}: ok",
            args.profile.display(),
            args.config.display()
        );
        return ExitCode::SUCCESS;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(&e);
        }
    }
    let prefix = args
        .file_prefix
        .unwrap_or_else(|| format!("tandem-{}", std::process::id()));
    let unit = match Unit::boot(&profile, &config, &prefix, Arc::clone(&stop)) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    println!(
        "tandemd ready: model {}, {} data interface(s), {} worker(s)",
        profile.model,
        config.router.interfaces.len(),
        profile.cores.workers.len()
    );

    let mut last_write = Instant::now() - Duration::from_secs(2);
    while !stop.load(Ordering::Relaxed) {
        if let Some(path) = &args.counters_file {
            if last_write.elapsed() >= Duration::from_secs(1) {
                if let Err(e) = counters_file::write(path, &unit.counters()) {
                    eprintln!("tandemd: counters file {}: {e}", path.display());
                }
                last_write = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    match unit.shutdown() {
        Ok(counters) => {
            if let Some(path) = &args.counters_file {
                if let Err(e) = counters_file::write(path, &counters) {
                    eprintln!("tandemd: counters file {}: {e}", path.display());
                }
            }
            print!(
                "tandemd stopped; counters:\n{}",
                counters_file::render_nonzero(&counters)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tandemd: {e}");
    ExitCode::from(2)
}
