//! `tandemd`: boots one tandem unit from a hardware profile, a configuration
//! file and (optionally) a rules file, runs until SIGTERM or SIGINT, and
//! shuts down cleanly. SIGHUP reloads the rules: a bad file is refused with
//! its error and the rules in force stay; existing connections are kept.

use clap::Parser;
use dataplane::filter::RuleSet;
use mgmt::config::UnitConfig;
use mgmt::control::ControlServer;
use mgmt::counters_file;
use mgmt::rules;
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
    /// Unit configuration (RON): interfaces, virtual IPs, routes, timeouts.
    #[arg(long)]
    config: PathBuf,
    /// Firewall rules (RON). Without it the unit routes without filtering.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Control socket for `tandemctl` (a unix socket, root only).
    #[arg(long, default_value = mgmt::control::DEFAULT_SOCKET)]
    control: PathBuf,
    /// EAL runtime file prefix; unique per unit on one host.
    #[arg(long)]
    file_prefix: Option<String>,
    /// Rewrite the counters into this file every second and at exit.
    #[arg(long)]
    counters_file: Option<PathBuf>,
    /// Check the profile, the configuration and the rules, then exit without booting.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let profile = match hw_profiles::Profile::load_for_host(&args.profile) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let config = match UnitConfig::load(&args.config, &profile) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let interfaces = rules::interface_names(&config);
    let load_rules = || -> Result<Option<Arc<RuleSet>>, rules::RulesError> {
        match &args.rules {
            Some(path) => rules::load(path, &interfaces).map(|r| Some(Arc::new(r))),
            None => Ok(None),
        }
    };
    let ruleset = match load_rules() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if args.check {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    if ruleset.is_none() {
        eprintln!("tandemd: no --rules: routing without filtering");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(&e);
        }
    }
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload)) {
        return fail(&e);
    }
    // Bound before EAL starts: a unit that cannot be controlled must not run.
    let control = match ControlServer::bind(&args.control) {
        Ok(c) => c,
        Err(e) => return fail(&format!("control socket {}: {e}", args.control.display())),
    };
    let prefix = args
        .file_prefix
        .clone()
        .unwrap_or_else(|| format!("tandem-{}", std::process::id()));
    let filtering = ruleset.is_some();
    let unit = match Unit::boot(&profile, &config, ruleset, &prefix, Arc::clone(&stop)) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    println!(
        "tandemd ready: model {}, {} data interface(s), {} worker(s), {}",
        profile.model,
        config.router.interfaces.len(),
        profile.cores.workers.len(),
        if filtering {
            "filtering"
        } else {
            "routing only"
        }
    );

    let reload_rules = || -> Result<String, String> {
        if !filtering {
            return Err("the unit was started without --rules".into());
        }
        match load_rules() {
            Ok(Some(r)) => {
                let n = r.rules().len();
                unit.set_rules(&r);
                Ok(format!(
                    "rules reloaded: {n} rule(s), revision {}",
                    r.revision().0
                ))
            }
            Ok(None) => Err("the unit was started without --rules".into()),
            Err(e) => Err(format!("rules refused, the rules in force stay: {e}")),
        }
    };

    let mut last_write = Instant::now() - Duration::from_secs(2);
    while !stop.load(Ordering::Relaxed) {
        if reload.swap(false, Ordering::Relaxed) {
            match reload_rules() {
                Ok(msg) => println!("tandemd: {msg}"),
                Err(msg) => eprintln!("tandemd: {msg}"),
            }
        }
        // syncd (a later issue) is the consumer of the events; until then a
        // standalone unit has nobody to tell.
        unit.drain_events(|_, _| {});
        control.serve(&unit, &reload_rules);
        if let Some(path) = &args.counters_file {
            if last_write.elapsed() >= Duration::from_secs(1) {
                if let Err(e) = counters_file::write(path, &unit.counters()) {
                    eprintln!("tandemd: counters file {}: {e}", path.display());
                }
                last_write = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    drop(control);
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
