//! `tandemd`: boots one tandem unit from a hardware profile, a configuration
//! file and (optionally) a rules file, runs until SIGTERM or SIGINT, and
//! shuts down cleanly. SIGHUP reloads the rules: a bad file is refused with
//! its error and the rules in force stay; existing connections are kept.
//!
//! This file only wires the parts together (see the `mgmt` crate docs for
//! the threads and what each owns). Everything the unit says goes to its log
//! (`mgmt::log`), whose write errors never stop it; `--check` prints its
//! verdict on stdout.

use clap::Parser;
use mgmt::config::HaConfig;
use mgmt::config::UnitConfig;
use mgmt::control::ControlServer;
use mgmt::election_task::{ForceCell, HaParams};
use mgmt::health::{self, Watched, WatchedLink};
use mgmt::main_lcore::MainLoop;
use mgmt::prometheus::UnitLabels;
use mgmt::supervisor::{
    Command, CounterSource, HaControl, Identity, Origin, Settings, Supervisor, SupervisorHandle,
};
use mgmt::sync_task::{ElectionInputs, Placed, SyncTask};
use mgmt::unit::Unit;
use mgmt::{counters_file, lock, rules};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// The part of the configuration both units of a pair share (RON:
    /// virtual addresses, routes, timeouts, election weights, sync tuning),
    /// which `hasync` sends to the partner; the rest stays in --config.
    #[arg(long)]
    shared: Option<PathBuf>,
    /// Control socket for `tandemctl` (a unix socket, root only).
    #[arg(long, default_value = mgmt::control::DEFAULT_SOCKET)]
    control: PathBuf,
    /// EAL runtime file prefix; unique per unit on one host (a second unit
    /// with the same prefix is refused).
    #[arg(long)]
    file_prefix: Option<String>,
    /// Rewrite the counters into this file every second and at exit.
    #[arg(long)]
    counters_file: Option<PathBuf>,
    /// Rewrite the counters into this file every second in Prometheus' text
    /// format, for node_exporter's textfile collector: name it `*.prom`, in
    /// the directory of the collector's `--collector.textfile.directory`.
    /// Metrics are named `tandem_*`, labelled with the unit's `serial` (from
    /// the `ha` section) and the worker, port, link or drop reason. Removed
    /// when the unit stops, so a stopped unit's values do not look live.
    #[arg(long)]
    prometheus_file: Option<PathBuf>,
    /// Append the HA event log (role changes and their reasons, partner and
    /// links lost and back, bulks, quality, forced mode) to this file too.
    #[arg(long)]
    ha_log: Option<PathBuf>,
    /// Where the unit keeps its state between boots (the configuration
    /// sync record, `confsync.json`).
    #[arg(long, default_value = "/var/lib/tandem")]
    state_dir: PathBuf,
    /// Check the profile (also against this machine: CPUs online, ports present),
    /// the configuration and the rules, then exit without booting.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let log = mgmt::log::init(args.ha_log.as_deref());
    let profile = match hw_profiles::Profile::load_for_host(&args.profile) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let loaded = match &args.shared {
        Some(shared) => UnitConfig::load_with_shared(&args.config, shared, &profile),
        None => UnitConfig::load(&args.config, &profile),
    };
    let config = match loaded {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let ruleset = match &args.rules {
        Some(path) => match rules::load(path, &rules::interface_names(&config)) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    if args.check {
        // A closed stdout is the asker's business, not a failed check.
        let _ = writeln!(std::io::stdout(), "configuration ok");
        return ExitCode::SUCCESS;
    }
    if ruleset.is_none() {
        tracing::info!("no --rules: routing without filtering");
    }

    // Handlers before anything runs: a SIGTERM during boot stops the unit
    // right after it, instead of killing it half-way.
    let mut signals = match Signals::new([SIGHUP, SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // Bound before EAL starts: a unit that cannot be controlled must not run.
    let control = match ControlServer::bind(&args.control) {
        Ok(c) => c,
        Err(e) => return fail(&format!("control socket {}: {e}", args.control.display())),
    };
    let epoch = mgmt::unit::boot_epoch();
    let prefix = args
        .file_prefix
        .clone()
        .unwrap_or_else(|| format!("tandem-{}", std::process::id()));
    let stop = Arc::new(AtomicBool::new(false));
    let lock_dir = std::path::Path::new(lock::LOCK_DIR);
    let unit = match Unit::boot(
        &profile,
        &config,
        ruleset.clone(),
        &prefix,
        lock_dir,
        epoch,
        Arc::clone(&stop),
    ) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };

    let cpus = profile.cores.control_cpus();
    let handle = unit.handle().clone();
    let force = ForceCell::new(config.ha.as_ref().and_then(|ha| ha.election.forced));
    let params = HaParams::new(config.ha.as_ref().map_or(0, |ha| ha.election.priority), 0);
    // The partner's questions reach the supervisor once it runs.
    let supervisor_cell: Arc<OnceLock<SupervisorHandle>> = Arc::default();
    let (peer, relay) = mgmt::peer::relay(Arc::clone(&supervisor_cell));
    let mut health_thread = None;
    let mut health = None;
    let ha_inputs = HaInputs {
        force: Arc::clone(&force),
        params: Arc::clone(&params),
        relay,
    };
    let sync = match &config.ha {
        Some(ha) => {
            match start_sync(ha, &profile, &config, &unit, epoch, ha_inputs, &cpus, &stop) {
                Ok((placed, thread, h)) => {
                    health_thread = Some(thread);
                    health = Some(h);
                    Some(placed)
                }
                Err(e) => {
                    drop(handle);
                    stop.store(true, Ordering::Relaxed);
                    let _ = unit.shutdown();
                    return fail(&e);
                }
            }
        }
        None => None,
    };
    let published = sync.as_ref().map(|s| Arc::clone(&s.published));
    let (on_main, sync_lcore) = sync.map_or((None, None), |s| (s.on_main, s.on_lcore));
    // Wherever synchronisation runs, it drains the workers' events.
    let events = if sync_lcore.is_some() {
        Vec::new()
    } else {
        handle.event_queues()
    };
    let mut main_loop = MainLoop::new(events, on_main, handle.clock());
    drop(handle);
    let (control_stats, log) = (control.stats(), Arc::new(log));
    let main_counters = main_loop.counters();
    // The rest of the control plane's counters, beside the dataplane's.
    let extra_counters = || -> Vec<CounterSource> {
        let (control_stats, log) = (Arc::clone(&control_stats), Arc::clone(&log));
        let mut sources: Vec<CounterSource> = vec![
            Box::new(main_counters.clone()),
            Box::new(move |out| control_stats.snapshot(out)),
            Box::new(move |out| log.counters(out)),
        ];
        if let Some(p) = &published {
            let p = Arc::clone(p);
            sources.push(Box::new(move |out| {
                if let Ok(p) = p.lock() {
                    out.extend(p.counters.iter().cloned());
                }
            }));
        }
        sources
    };
    let settings = Settings {
        unit: unit.handle().clone(),
        rules_path: args.rules.clone(),
        rules: ruleset.clone(),
        counters_file: args.counters_file.clone(),
        prometheus_file: args.prometheus_file.clone(),
        unit_labels: UnitLabels {
            serial: config
                .ha
                .as_ref()
                .map(|ha| ha.serial_str().to_string())
                .filter(|s| !s.is_empty()),
        },
        extra_counters: extra_counters(),
        force: config.ha.is_some().then(|| Arc::clone(&force)),
        ha_log: args.ha_log.clone(),
        sync_status: published.as_ref().map(|p| {
            let p = Arc::clone(p);
            Box::new(move || p.lock().map(|p| p.status.clone()).unwrap_or_default())
                as mgmt::supervisor::StatusSource
        }),
        ha_mode: published.as_ref().map(|p| {
            let p = Arc::clone(p);
            Box::new(move || p.lock().map(|p| p.mode.clone()).unwrap_or_default())
                as mgmt::supervisor::StatusSource
        }),
        identity: Identity {
            serial: config
                .ha
                .as_ref()
                .map_or_else(String::new, |ha| ha.serial_str().to_owned()),
            model: profile.model.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            boot: mgmt::node::unix_now(),
        },
        ha: config.ha.as_ref().zip(published.as_ref()).map(|(ha, p)| {
            let p = Arc::clone(p);
            HaControl {
                peer,
                snapshot: Box::new(move || p.lock().ok().and_then(|p| p.ha.clone())),
                params: Arc::clone(&params),
                health: health.clone(),
                running: ha.clone(),
            }
        }),
        // Only a member of a pair has configuration syncs to record.
        state_dir: config.ha.is_some().then(|| args.state_dir.clone()),
        files: Some(mgmt::supervisor::UnitFiles {
            unit: args.config.clone(),
            shared: args.shared.clone(),
            profile: profile.clone(),
        }),
    };
    let (supervisor, control) = match start_control_plane(settings, control, &cpus) {
        Ok(started) => started,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            let _ = unit.shutdown();
            return fail(&e);
        }
    };
    let _ = supervisor_cell.set(supervisor.handle());
    let signal_handle = signals.handle();
    let signal_thread = {
        let (supervisor, stop) = (supervisor.handle(), Arc::clone(&stop));
        mgmt::thread::spawn("tandem-signals", &cpus, move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    // The supervisor logs what came of it.
                    drop(supervisor.submit(Command::Reload {
                        origin: Origin::Signal,
                    }));
                } else {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
    };

    tracing::info!(
        "tandemd ready: model {}, {} data interface(s), {} worker(s), {}; log to {}",
        profile.model,
        config.router.interfaces.len(),
        profile.cores.workers.len(),
        if ruleset.is_some() {
            "filtering"
        } else {
            "routing only"
        },
        log.sink
    );
    main_loop.run(&stop);

    signal_handle.close();
    if let Ok(t) = signal_thread {
        let _ = t.join();
    }
    control.stop();
    supervisor.stop();
    let last_counters = extra_counters();
    main_loop.close();
    if let Some(h) = sync_lcore {
        h.wait();
    }
    if let Some(t) = health_thread {
        let _ = t.join();
    }
    match unit.shutdown() {
        Ok(mut counters) => {
            for source in &last_counters {
                source(&mut counters);
            }
            if let Some(path) = &args.counters_file {
                if let Err(e) = counters_file::write(path, &counters) {
                    tracing::warn!("counters file {}: {e}", path.display());
                }
            }
            tracing::info!(
                "tandemd stopped; counters:\n{}",
                counters_file::render_nonzero(&counters)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// What the console hands the HA side at start.
struct HaInputs {
    force: Arc<ForceCell>,
    params: Arc<HaParams>,
    relay: mgmt::peer::PeerRelay,
}

/// The health probes, then synchronisation and the election, placed where
/// the profile says.
#[allow(clippy::too_many_arguments)]
fn start_sync(
    ha: &HaConfig,
    profile: &hw_profiles::Profile,
    config: &UnitConfig,
    unit: &Unit,
    epoch: u64,
    inputs: HaInputs,
    cpus: &[u32],
    stop: &Arc<AtomicBool>,
) -> Result<(Placed, std::thread::JoinHandle<()>, Arc<health::Health>), String> {
    let handle = unit.handle().clone();
    let links = config
        .router
        .interfaces
        .iter()
        .zip(&ha.election.weights)
        .map(|(ifc, &weight)| WatchedLink {
            name: ifc.port.clone(),
            weight,
            kernel_iface: profile
                .port(&ifc.port)
                .and_then(|p| health::af_packet_iface(&p.device)),
        })
        .collect();
    let link_handle = handle.clone();
    let watched = Watched::of(profile, links, Box::new(move |i| link_handle.link_up(i)));
    let (health, thread) = health::start(watched, cpus, Arc::clone(stop))
        .map_err(|e| format!("health thread: {e}"))?;
    let inputs = ElectionInputs {
        signals: handle.ha_signals(),
        health: Arc::clone(&health),
        force: inputs.force,
        params: inputs.params,
        relay: inputs.relay,
    };
    let placed = SyncTask::start(
        ha,
        profile,
        unit.pool(),
        config.router.interfaces.len(),
        epoch,
        handle.event_queues(),
        handle.inbound_queues(),
        inputs,
        handle.clock().now_ns(),
    )
    .and_then(|task| task.place(profile, handle.clock(), stop))
    .map_err(|e| e.to_string())?;
    Ok((placed, thread, health))
}

/// The supervisor, then the control socket's thread handing it requests.
fn start_control_plane(
    settings: Settings<mgmt::unit::UnitHandle>,
    control: ControlServer,
    cpus: &[u32],
) -> std::io::Result<(Supervisor, mgmt::control::ControlThread)> {
    let supervisor = Supervisor::start(settings, cpus)?;
    match control.spawn(supervisor.handle(), cpus) {
        Ok(thread) => Ok((supervisor, thread)),
        Err(e) => {
            supervisor.stop();
            Err(e)
        }
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{e}");
    ExitCode::from(2)
}
