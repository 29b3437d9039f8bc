//! `bench`: cycles/packet, Mpps and new connections/s of one tandem worker core on
//! ring-backed DPDK ports, against `dpdk-testpmd` io forwarding as the machine's ceiling.
//!
//! ```text
//! bench [--quick] [--cores 1] [--flows 10000,1000000] [--new-conns N] [--seconds S] [--rounds N]
//!       [--only io,route,firewall,worker,newconns,testpmd] [--out DIR]
//! ```
//!
//! Every run prints a markdown table and writes it to `DIR/<date>-<commit>.md` and
//! `DIR/latest.md`, stamped with machine, TSC, commit, DPDK version and load. How each
//! figure is obtained is written at the end of that page ([`report`]); the lab it runs
//! is drawn in [`frames`] and [`topo`].
//!
//! Layout (one concern per module, so the later harness — more cores, latency with
//! hdrhistogram, failover — grows beside it): [`cpu`] (on-CPU time of a thread),
//! [`machine`] (the stamp), [`frames`] (addresses and frames), [`unit`] (the router and
//! firewall as `tandemd` builds them), [`topo`] (ring ports), [`hotloop`] (the measured
//! loops), [`established`], [`newconns`], [`testpmd`], [`perf`] (IPC of a thread),
//! [`figure`] (what a scenario measured), [`report`].

mod cpu;
mod established;
mod figure;
mod frames;
mod hotloop;
mod machine;
mod newconns;
mod perf;
mod report;
mod testpmd;
mod topo;
mod unit;

use clap::Parser;
use dpdk_sys::{lcore, Eal, Mempool, SocketId};
use established::{Layer, Params};
use std::path::PathBuf;
use std::time::Instant;

/// Headroom (128) + room for a 60-byte frame, rounded: small buffers so 1M+ fit.
const DATA_ROOM: u16 = 256;
/// Per-lcore mempool cache.
const POOL_CACHE: u32 = 256;
/// Bytes of DPDK memory per mbuf (mbuf header, data room, mempool header, rounding).
const MBUF_FOOTPRINT: u64 = 512;

#[derive(Parser, Debug)]
#[command(about = "tandem throughput bench: one worker core on ring-backed DPDK ports")]
struct Args {
    /// CI smoke run: 10k flows, 100k new connections, ~1 s per scenario.
    #[arg(long)]
    quick: bool,
    /// Worker cores (only 1 for now; more is the multi-core harness, a later issue).
    #[arg(long, default_value_t = 1)]
    cores: u32,
    /// Established-flow counts, comma-separated [default: 10000,1000000; quick: 10000].
    #[arg(long, value_delimiter = ',')]
    flows: Option<Vec<u32>>,
    /// New connections to open [default: 1000000; quick: 100000].
    #[arg(long)]
    new_conns: Option<u32>,
    /// Measured wall seconds per scenario and round [default: 2; quick: 1].
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds over all scenarios, pooled [default: 3; quick: 1].
    #[arg(long)]
    rounds: Option<u32>,
    /// Run only these: io, route, firewall, worker, newconns, testpmd.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Where the results go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Do not write result files (print only).
    #[arg(long)]
    no_write: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    if args.cores != 1 {
        return Err(
            "only --cores 1 is implemented (the multi-core harness is a later issue)".into(),
        );
    }
    let flows = args.flows.clone().unwrap_or_else(|| {
        if args.quick {
            vec![10_000]
        } else {
            vec![10_000, 1_000_000]
        }
    });
    if let Some(f) = flows.iter().find(|&&f| f == 0 || f > 1_900_000) {
        return Err(format!("--flows {f}: 1..=1900000"));
    }
    let new_conns = args
        .new_conns
        .unwrap_or(if args.quick { 100_000 } else { 1_000_000 })
        .clamp(1, 1_900_000);
    let seconds = args.seconds.unwrap_or(if args.quick { 1.0 } else { 2.0 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    const SCENARIOS: [&str; 6] = ["io", "route", "firewall", "worker", "newconns", "testpmd"];
    if let Some(bad) = args
        .only
        .iter()
        .flatten()
        .find(|s| !SCENARIOS.contains(&s.as_str()))
    {
        return Err(format!("--only {bad}: one of {}", SCENARIOS.join(", ")));
    }
    let wants = |s: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    let command = std::env::args().collect::<Vec<_>>().join(" ");

    let stamp = machine::Stamp::collect();
    let steal0 = machine::steal_secs(1);
    eprintln!(
        "bench: {} ({} CPUs), commit {}, {}",
        stamp.cpu, stamp.cores, stamp.commit, stamp.dpdk
    );
    eprintln!("bench: load average {}", stamp.load_before);

    let max_flows = flows.iter().copied().max().unwrap_or(0);
    let capacity = max_flows.max(new_conns) as usize;
    let n_mbufs = max_flows.max(new_conns) + 16_384;
    let ring_bytes = (u64::from(n_mbufs) + 1024).next_power_of_two() * 8;
    let mem_mb = (u64::from(n_mbufs) * MBUF_FOOTPRINT + 3 * ring_bytes) / (1 << 20) + 128;
    let eal_args = [
        "--no-huge".to_string(),
        "--no-shconf".into(),
        "-m".into(),
        mem_mb.to_string(),
        "--no-pci".into(),
        "-l".into(),
        format!("0-{}", args.cores),
        format!("--file-prefix=bench-{}", std::process::id()),
        "--no-telemetry".into(),
        "--log-level=lib.eal:warning".into(),
    ];
    eprintln!("bench: EAL {}", eal_args.join(" "));
    let eal = Eal::init(&eal_args).map_err(|e| e.to_string())?;
    let hz = lcore::tsc_hz();
    let wl = lcore::workers().next().ok_or("no worker lcore")?;
    let pool = Mempool::new("bench_pool", n_mbufs, POOL_CACHE, DATA_ROOM, SocketId::ANY)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "bench: TSC {:.3} GHz; {} mbufs of {} bytes; worker {wl}; {rounds} round(s)",
        hz as f64 / 1e9,
        n_mbufs,
        DATA_ROOM
    );

    // Rounds: every scenario once per round, so that a slow spell of a shared host
    // touches all of them alike; epochs of the same scenario are pooled across rounds.
    let mut figures: Vec<Result<figure::Figure, (String, u64, String)>> = Vec::new();
    let mut conns: Vec<Result<figure::NewConns, String>> = Vec::new();
    let mut ceilings: Vec<Result<testpmd::Ceiling, (String, String)>> = Vec::new();
    for round in 1..=rounds {
        eprintln!("bench: round {round} of {rounds}");
        if wants("testpmd") {
            let vdevs: &[&'static str] = if round == 1 {
                &["net_null", "net_ring"]
            } else {
                &["net_null"]
            };
            for &vdev in vdevs {
                let tp_secs = if args.quick { 3.0 } else { 4.0 };
                eprintln!("bench: dpdk-testpmd io forwarding on two {vdev} ports ({tp_secs:.0} s)");
                let c = testpmd::measure(vdev, tp_secs);
                match &c {
                    Ok(c) => eprintln!(
                        "    {:.2} Mpps on-CPU ({:.0} % CPU share)",
                        c.mpps(),
                        100.0 * c.share()
                    ),
                    Err(e) => eprintln!("    not measured: {e}"),
                }
                merge_ceiling(&mut ceilings, vdev, c);
            }
        }
        for &f in &flows {
            let p = Params {
                flows: f,
                capacity,
                seconds,
            };
            let mut scenario =
                |name: &str, key: &str, r: &dyn Fn() -> Result<figure::Figure, String>| {
                    if !wants(key) {
                        return;
                    }
                    eprintln!("bench: {name}, {f} flows");
                    let r = r();
                    match &r {
                    Ok(fig) => eprintln!(
                        "    {:.2} Mpps, {:.1} cycles/packet (median of {} epochs; best {:.1}, worst {:.1}; {} packets; {:.0} % CPU share){}{}",
                        fig.mpps(hz),
                        fig.cycles_per_packet(),
                        fig.epochs.len(),
                        fig.best_cycles_per_packet(),
                        fig.worst_cycles_per_packet(),
                        fig.total().packets,
                        100.0 * fig.share(),
                        fig.mean_ipc().map_or(String::new(), |i| format!(", IPC {i:.2}")),
                        match &fig.check {
                            Ok(()) => String::new(),
                            Err(e) => format!("\n    CHECK FAILED: {e}"),
                        }
                    ),
                    Err(e) => eprintln!("    ERROR: {e}"),
                }
                    if pool.in_use() != 0 {
                        eprintln!(
                            "    warning: {} mbufs still in use after the scenario",
                            pool.in_use()
                        );
                    }
                    merge_figure(&mut figures, name, u64::from(f), r);
                };
            scenario(Layer::Io.name(), "io", &|| {
                established::bench_loop(Layer::Io, p, &pool, wl)
            });
            scenario(Layer::Route.name(), "route", &|| {
                established::bench_loop(Layer::Route, p, &pool, wl)
            });
            scenario(Layer::Firewall.name(), "firewall", &|| {
                established::bench_loop(Layer::Firewall, p, &pool, wl)
            });
            if f >= established::MIN_WORKER_FLOWS {
                scenario(established::WORKER_SCENARIO, "worker", &|| {
                    established::real_worker(p, &pool, wl)
                });
            }
        }
        if wants("newconns") {
            eprintln!("bench: new connections, {new_conns}");
            let r = newconns::run(
                Params {
                    flows: new_conns,
                    capacity,
                    seconds,
                },
                &pool,
                wl,
            );
            match &r {
                Ok(n) => eprintln!(
                    "    {:.0} conns/s, {:.0} cycles/connection{}",
                    n.per_second(hz),
                    n.cycles_per_conn(),
                    match &n.check {
                        Ok(()) => String::new(),
                        Err(e) => format!("\n    CHECK FAILED: {e}"),
                    }
                ),
                Err(e) => eprintln!("    ERROR: {e}"),
            }
            conns.push(r);
        }
    }

    let run = report::Run {
        stamp,
        hz,
        capacity,
        quick: args.quick,
        rounds,
        command,
        figures,
        new_conns: conns,
        ceilings,
        load_after: machine::load(),
        steal: (machine::steal_secs(1) - steal0) / started.elapsed().as_secs_f64().max(1e-9),
        took_secs: started.elapsed().as_secs_f64(),
    };
    let page = run.markdown();
    println!("{page}");
    if !args.no_write {
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let name = format!("{}-{}.md", run.stamp.day, run.stamp.short_commit());
        for file in [name.as_str(), "latest.md"] {
            let path = args.out.join(file);
            std::fs::write(&path, &page).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("bench: wrote {}", path.display());
        }
    }
    drop(pool);
    if let Err(e) = eal.cleanup() {
        eprintln!("bench: {e}");
    }
    // EAL leaves its (empty, with --no-shconf) runtime directory behind.
    let prefix = format!("bench-{}", std::process::id());
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        let _ = std::fs::remove_dir_all(std::path::Path::new(&xdg).join("dpdk").join(prefix));
    }
    Ok(())
}

/// Adds a round's figure to the same scenario's earlier rounds (epochs pooled; the
/// first failed check or error is kept).
fn merge_figure(
    all: &mut Vec<Result<figure::Figure, (String, u64, String)>>,
    name: &str,
    flows: u64,
    r: Result<figure::Figure, String>,
) {
    let same = |x: &Result<figure::Figure, (String, u64, String)>| match x {
        Ok(f) => f.scenario == name && f.flows == flows,
        Err((n, f, _)) => n == name && *f == flows,
    };
    let r = r.map_err(|e| (name.to_string(), flows, e));
    match (all.iter_mut().find(|x| same(x)), r) {
        (None, r) => all.push(r),
        (Some(Ok(old)), Ok(new)) => {
            old.epochs.extend(new.epochs);
            if old.check.is_ok() {
                old.check = new.check;
            }
            old.ipc.extend(new.ipc);
        }
        (Some(slot @ Ok(_)), Err(e)) => *slot = Err(e),
        (Some(Err(_)), _) => {}
    }
}

/// Pools testpmd's statistics periods across rounds.
fn merge_ceiling(
    all: &mut Vec<Result<testpmd::Ceiling, (String, String)>>,
    vdev: &'static str,
    c: Result<testpmd::Ceiling, String>,
) {
    let pos = all.iter().position(|x| match x {
        Ok(c) => c.vdev == vdev,
        Err((v, _)) => v == vdev,
    });
    match (pos, c) {
        (None, c) => all.push(c.map_err(|e| (vdev.to_string(), e))),
        (Some(i), Ok(new)) => match &mut all[i] {
            Ok(old) => old.periods.extend(new.periods),
            slot @ Err(_) => *slot = Ok(new),
        },
        (Some(_), Err(_)) => {}
    }
}
