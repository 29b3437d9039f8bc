//! `bench`: cycles/packet, Mpps and new connections/s of tandem worker cores on
//! ring-backed DPDK ports, against `dpdk-testpmd` io forwarding as the machine's ceiling.
//!
//! ```text
//! bench [--quick] [--cores LIST] [--flows 1000,10000,100000,1000000]
//!       [--sizes 64,512,1500,imix] [--new-conns N] [--seconds S] [--rounds N]
//!       [--only io,route,firewall,worker,scaling,newconns,sync,testpmd] [--out DIR]
//! ```
//!
//! Every run prints a markdown table and writes it to `DIR/<date>-<commit>.md` and
//! `DIR/latest.md` (and the plot, `DIR/<date>-<commit>.svg` and `DIR/latest.svg`), stamped with machine, TSC, commit, DPDK version and load. How each
//! figure is obtained is written at the end of that page ([`report`]); the lab it runs
//! is drawn in [`frames`] and [`topo`].
//!
//! Layout (one concern per module): [`cores`] (which CPUs), [`cpu`] (on-CPU time of a
//! thread), [`machine`] (the stamp), [`frames`] (addresses and frames), [`unit`] (a
//! worker as `tandemd` builds it), [`topo`] (ring ports), [`hotloop`] (the measured
//! loops), [`established`] (one or several workers), [`newconns`], [`sync`] (the sync
//! engines of a unit pair: records/s, bytes on the HA link, bulks) and [`syncload`]
//! (the worker with sync on and off), [`testpmd`], [`perf`] (IPC of a thread),
//! [`figure`] (what a scenario measured), [`report`], [`plot`].

mod cores;
mod cpu;
mod established;
mod figure;
mod frames;
mod hotloop;
mod machine;
mod newconns;
mod perf;
mod plot;
mod report;
mod sync;
mod syncload;
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
/// Data room of the pool for frames above 64 bytes: headroom + 2048, as NIC setups use.
const BIG_DATA_ROOM: u16 = 2176;
/// Bytes of DPDK memory per mbuf of that pool: without hugepages an object may not
/// cross a 4 KiB page, so each takes a page of its own.
const BIG_MBUF_FOOTPRINT: u64 = 4096 + 256;

#[derive(Parser, Debug)]
#[command(about = "tandem throughput bench: worker cores on ring-backed DPDK ports")]
struct Args {
    /// CI smoke run: 10k flows, 100k new connections, ~1 s per scenario, the sync
    /// scenario reduced (20k records of each kind, a 50k-entry bulk, 25k connections).
    #[arg(long)]
    quick: bool,
    /// CPUs for the worker lcores, e.g. `1-15` or `1,0`: one-worker scenarios run on
    /// the first; the scaling scenario runs 1, 2, 4, … and all of them at once
    /// [default: every online CPU but the first, and the first too when that leaves
    /// fewer than two].
    #[arg(long)]
    cores: Option<String>,
    /// Established-flow counts, comma-separated [default: 1000,10000,100000,1000000;
    /// quick: 10000].
    #[arg(long, value_delimiter = ',')]
    flows: Option<Vec<u32>>,
    /// Frame sizes for the route and firewall scenarios, wire bytes or `imix`
    /// (7:4:1 of 64/576/1500) [default: 64,512,1500,imix; quick: 64].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<String>>,
    /// New connections to open [default: 1000000; quick: 100000].
    #[arg(long)]
    new_conns: Option<u32>,
    /// Measured wall seconds per scenario and round [default: 1; quick: 1].
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds over all scenarios, pooled [default: 3; quick: 1].
    #[arg(long)]
    rounds: Option<u32>,
    /// Run only these: io, route, firewall, worker, scaling, newconns, sync, testpmd.
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
    let result = run(&args);
    remove_runtime_dir();
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// EAL leaves its (empty, with --no-shconf) runtime directory behind; it goes
/// however the run ended.
fn remove_runtime_dir() {
    let prefix = format!("bench-{}", std::process::id());
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        let _ = std::fs::remove_dir_all(std::path::Path::new(&xdg).join("dpdk").join(prefix));
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let online = cores::online();
    let cpus = match &args.cores {
        Some(list) => cores::parse_list(list).map_err(|e| format!("--cores: {e}"))?,
        None => cores::default_workers(&online),
    };
    if let Some(c) = cpus.iter().find(|c| !online.contains(c)) {
        return Err(format!("--cores: CPU {c} is not online ({online:?})"));
    }
    let main_cpu = cores::main_cpu(&online, &cpus);
    let flows = args.flows.clone().unwrap_or_else(|| {
        if args.quick {
            vec![10_000]
        } else {
            vec![1_000, 10_000, 100_000, 1_000_000]
        }
    });
    if let Some(f) = flows.iter().find(|&&f| f == 0 || f > 1_900_000) {
        return Err(format!("--flows {f}: 1..=1900000"));
    }
    let sizes = match &args.sizes {
        Some(v) => v
            .iter()
            .map(|s| frames::Size::parse(s))
            .collect::<Result<Vec<_>, _>>()?,
        None if args.quick => vec![frames::Size::Bytes(64)],
        None => vec![
            frames::Size::Bytes(64),
            frames::Size::Bytes(512),
            frames::Size::Bytes(1500),
            frames::Size::Imix,
        ],
    };
    let new_conns = args
        .new_conns
        .unwrap_or(if args.quick { 100_000 } else { 1_000_000 })
        .clamp(1, 1_900_000);
    let seconds = args.seconds.unwrap_or(1.0);
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    const SCENARIOS: [&str; 8] = [
        "io", "route", "firewall", "worker", "scaling", "newconns", "sync", "testpmd",
    ];
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
    let steal_cpu = cpus[0] as usize;
    let steal0 = machine::steal_secs(steal_cpu);
    eprintln!(
        "bench: {} ({} CPUs), commit {}, {}",
        stamp.cpu, stamp.cores, stamp.commit, stamp.dpdk
    );
    eprintln!("bench: load average {}", stamp.load_before);

    let max_flows = flows.iter().copied().max().unwrap_or(0);
    let capacity = max_flows.max(new_conns) as usize;
    let n_mbufs = max_flows.max(new_conns) + 16_384;
    let ring_bytes = (u64::from(n_mbufs) + 1024).next_power_of_two() * 8;
    let n_big = if sizes.iter().any(|s| s.max_wire_len() > 64) {
        max_flows + 16_384
    } else {
        0
    };
    let mem_mb = (u64::from(n_mbufs) * MBUF_FOOTPRINT
        + u64::from(n_big) * BIG_MBUF_FOOTPRINT
        + 3 * ring_bytes)
        / (1 << 20)
        + 256;
    let eal_args = [
        "--no-huge".to_string(),
        "--no-shconf".into(),
        "-m".into(),
        mem_mb.to_string(),
        "--no-pci".into(),
        cores::eal_lcores(main_cpu, &cpus),
        format!("--file-prefix=bench-{}", std::process::id()),
        "--no-telemetry".into(),
        "--log-level=lib.eal:warning".into(),
    ];
    eprintln!("bench: EAL {}", eal_args.join(" "));
    let eal = Eal::init(&eal_args).map_err(|e| e.to_string())?;
    let hz = lcore::tsc_hz();
    let lcores: Vec<_> = lcore::workers().collect();
    let wl = *lcores.first().ok_or("no worker lcore")?;
    let steps: Vec<usize> = cores::steps(lcores.len())
        .into_iter()
        .filter(|&k| k > 1)
        .collect();
    let pool = Mempool::new("bench_pool", n_mbufs, POOL_CACHE, DATA_ROOM, SocketId::ANY)
        .map_err(|e| e.to_string())?;
    let big_pool = if n_big > 0 {
        Some(
            Mempool::new("bench_big", n_big, POOL_CACHE, BIG_DATA_ROOM, SocketId::ANY)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    eprintln!(
        "bench: TSC {:.3} GHz; {} mbufs of {} bytes, {} of {}; main lcore on CPU {main_cpu}, workers on CPUs {cpus:?}; {rounds} round(s)",
        hz as f64 / 1e9,
        n_mbufs,
        DATA_ROOM,
        n_big,
        BIG_DATA_ROOM
    );
    // Progress: scenario i of n, elapsed.
    let per_flow = |f: u32| {
        usize::from(wants("io"))
            + sizes.len() * (usize::from(wants("route")) + usize::from(wants("firewall")))
            + usize::from(wants("worker") && f >= established::MIN_WORKER_FLOWS)
            + if wants("scaling") { steps.len() } else { 0 }
    };
    let per_round = flows.iter().map(|&f| per_flow(f)).sum::<usize>()
        + usize::from(wants("newconns"))
        + 3 * usize::from(wants("sync"))
        + usize::from(wants("testpmd"));
    let extra_ceilings = 1 + if wants("scaling") { steps.len() } else { 0 };
    let total = per_round * rounds as usize
        + usize::from(wants("testpmd")) * extra_ceilings
        + usize::from(wants("sync"));
    let done = std::cell::Cell::new(0usize);
    let progress = |what: &str| {
        done.set(done.get() + 1);
        eprintln!(
            "bench: [{}/{total}, {:.0} s] {what}",
            done.get(),
            started.elapsed().as_secs_f64()
        );
    };

    // Rounds: every scenario once per round, so that a slow spell of a shared host
    // touches all of them alike; epochs of the same scenario are pooled across rounds.
    let mut figures: Vec<Result<figure::Figure, (String, u64, String)>> = Vec::new();
    let mut conns: Vec<Result<figure::NewConns, String>> = Vec::new();
    let mut ceilings: Vec<Result<testpmd::Ceiling, (String, usize, String)>> = Vec::new();
    let mut scaling: Vec<Result<figure::Scaling, (usize, u64, String)>> = Vec::new();
    let mut synced = sync::Results::default();
    for round in 1..=rounds {
        eprintln!("bench: round {round} of {rounds}");
        if wants("testpmd") {
            // One core every round; the ring PMD and more cores (the scaling rows'
            // ceilings) once.
            let mut runs: Vec<(&'static str, usize)> = vec![("net_null", 1)];
            if round == 1 {
                runs.push(("net_ring", 1));
                if wants("scaling") {
                    runs.extend(steps.iter().map(|&k| ("net_null", k)));
                }
            }
            for (vdev, k) in runs {
                let tp_secs = if args.quick { 3.0 } else { 4.0 };
                progress(&format!(
                    "dpdk-testpmd io forwarding on two {vdev} ports, {k} core(s) ({tp_secs:.0} s)"
                ));
                let c = testpmd::measure(vdev, tp_secs, main_cpu, &cpus[..k]);
                match &c {
                    Ok(c) => eprintln!(
                        "    {:.2} Mpps on-CPU ({:.0} % CPU share)",
                        c.mpps(),
                        100.0 * c.share()
                    ),
                    Err(e) => eprintln!("    not measured: {e}"),
                }
                merge_ceiling(&mut ceilings, vdev, k, c);
            }
        }
        for &f in &flows {
            let p64 = Params {
                flows: f,
                capacity,
                seconds,
                size: frames::Size::Bytes(64),
            };
            let mut scenario =
                |name: &str,
                 key: &str,
                 size: frames::Size,
                 r: &dyn Fn() -> Result<figure::Figure, String>| {
                    if !wants(key) {
                        return;
                    }
                    progress(&format!("{name}, {f} flows, {}", size.label()));
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
                    if let Ok(fig) = &r {
                        if let Some([p50, p99, p999, max]) = fig.latency_ns(hz) {
                            eprintln!("    in the loop (rx burst to its tx burst): p50 {p50:.0} ns, p99 {p99:.0} ns, p99.9 {p999:.0} ns, max {max:.0} ns");
                        }
                    }
                    for p in std::iter::once(&pool).chain(big_pool.as_ref()) {
                        if p.in_use() != 0 {
                            eprintln!(
                                "    warning: {} mbufs of {} still in use after the scenario",
                                p.in_use(),
                                p.name()
                            );
                        }
                    }
                    merge_figure(&mut figures, name, u64::from(f), size, r);
                };
            let one = |layer, p, pl| {
                established::bench_loop(layer, p, pl, &[wl]).map(|mut v| v.remove(0))
            };
            scenario(Layer::Io.name(), "io", p64.size, &|| {
                one(Layer::Io, p64, &pool)
            });
            for &size in &sizes {
                let p = Params { size, ..p64 };
                let pl = if size.max_wire_len() > 64 {
                    big_pool.as_ref().unwrap_or(&pool)
                } else {
                    &pool
                };
                scenario(Layer::Route.name(), "route", size, &|| {
                    one(Layer::Route, p, pl)
                });
                scenario(Layer::Firewall.name(), "firewall", size, &|| {
                    one(Layer::Firewall, p, pl)
                });
            }
            if f >= established::MIN_WORKER_FLOWS {
                scenario(established::WORKER_SCENARIO, "worker", p64.size, &|| {
                    established::real_worker(p64, &pool, wl)
                });
            }
        }
        if wants("scaling") {
            for &f in &flows {
                for &k in &steps {
                    progress(&format!(
                        "{}, {f} flows, 64 B, {k} workers on CPUs {:?}",
                        Layer::Firewall.name(),
                        &cpus[..k]
                    ));
                    let p = Params {
                        flows: f,
                        capacity,
                        seconds,
                        size: frames::Size::Bytes(64),
                    };
                    let r = established::bench_loop(Layer::Firewall, p, &pool, &lcores[..k]).map(
                        |per_worker| figure::Scaling {
                            cpus: cpus[..k].to_vec(),
                            flows: u64::from(f),
                            per_worker,
                        },
                    );
                    match &r {
                        Ok(s) => eprintln!(
                            "    {:.2} Mpps on-CPU together ({:.2} over wall time); cycles/packet per worker {:?}{}",
                            s.mpps(hz),
                            s.wall_mpps(hz),
                            s.cycles_per_packet().iter().map(|c| c.round()).collect::<Vec<_>>(),
                            match s.check() {
                                Ok(()) => String::new(),
                                Err(e) => format!("\n    CHECK FAILED: {e}"),
                            }
                        ),
                        Err(e) => eprintln!("    ERROR: {e}"),
                    }
                    merge_scaling(&mut scaling, k, u64::from(f), r);
                }
            }
        }
        if wants("newconns") {
            progress(&format!("new connections, {new_conns}"));
            let r = newconns::run(
                Params {
                    flows: new_conns,
                    capacity,
                    seconds,
                    size: frames::Size::Bytes(64),
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
        if wants("sync") {
            sync_round(
                &mut synced,
                &progress,
                SyncSizes::new(args.quick, new_conns, capacity),
                round,
                &pool,
                wl,
                hz,
            );
        }
    }

    // One worker is the firewall scenario at 64 B: the same loop on the first CPU.
    for f in figures.iter().flatten() {
        if wants("scaling")
            && f.scenario == Layer::Firewall.name()
            && f.size == frames::Size::Bytes(64)
        {
            scaling.push(Ok(figure::Scaling {
                cpus: vec![cpus[0]],
                flows: f.flows,
                per_worker: vec![f.clone()],
            }));
        }
    }
    let key = |s: &Result<figure::Scaling, (usize, u64, String)>| match s {
        Ok(s) => (s.flows, s.workers()),
        Err((w, f, _)) => (*f, *w),
    };
    scaling.sort_by_key(key);
    let run = report::Run {
        stamp,
        cpus: cpus.clone(),
        main_cpu,
        scaling,
        hz,
        capacity,
        quick: args.quick,
        rounds,
        command,
        figures,
        new_conns: conns,
        sync: wants("sync").then_some(synced),
        ceilings,
        load_after: machine::load(),
        steal: (machine::steal_secs(steal_cpu) - steal0)
            / started.elapsed().as_secs_f64().max(1e-9),
        took_secs: started.elapsed().as_secs_f64(),
    };
    let ok: Vec<&figure::Figure> = run.figures.iter().flatten().collect();
    let title = format!(
        "tandem bench {} ({})",
        run.stamp.date,
        run.stamp.short_commit()
    );
    let scaled: Vec<&figure::Scaling> = run.scaling.iter().flatten().collect();
    let svg = match plot::svg(&ok, &scaled, hz, &title) {
        Ok(svg) => svg,
        Err(e) => {
            eprintln!("bench: plot not drawn: {e}");
            None
        }
    };
    let plotted = svg.is_some() && !args.no_write;
    println!("{}", run.markdown(plotted.then_some("latest.svg")));
    if !args.no_write {
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let stem = format!("{}-{}", run.stamp.day, run.stamp.short_commit());
        for name in [stem.as_str(), "latest"] {
            let svg_name = format!("{name}.svg");
            let page = run.markdown(plotted.then_some(svg_name.as_str()));
            let mut files = vec![(format!("{name}.md"), page)];
            if let Some(svg) = &svg {
                files.push((svg_name.clone(), svg.clone()));
            }
            for (file, text) in files {
                let path = args.out.join(file);
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
                eprintln!("bench: wrote {}", path.display());
            }
        }
    }
    drop(big_pool);
    drop(pool);
    if let Err(e) = eal.cleanup() {
        eprintln!("bench: {e}");
    }
    match run.failures() {
        0 => Ok(()),
        n => Err(format!(
            "{n} scenario(s) failed or did not add up (see the table): the figures are written but not to be trusted"
        )),
    }
}

/// Adds a round's figure to the same scenario's earlier rounds (epochs pooled; the
/// first failed check or error is kept).
fn merge_figure(
    all: &mut Vec<Result<figure::Figure, (String, u64, String)>>,
    name: &str,
    flows: u64,
    size: frames::Size,
    r: Result<figure::Figure, String>,
) {
    let err_name = format!("{name} ({})", size.label());
    let same = |x: &Result<figure::Figure, (String, u64, String)>| match x {
        Ok(f) => f.scenario == name && f.flows == flows && f.size == size,
        Err((n, f, _)) => *n == err_name && *f == flows,
    };
    let r = r.map_err(|e| (err_name.clone(), flows, e));
    pool_round(all, same, r, figure::Figure::merge, Later::ErrorWins);
}

/// Adds a round's scaling run to the same (workers, flows) of earlier rounds.
fn merge_scaling(
    all: &mut Vec<Result<figure::Scaling, (usize, u64, String)>>,
    workers: usize,
    flows: u64,
    r: Result<figure::Scaling, String>,
) {
    let same = |x: &Result<figure::Scaling, (usize, u64, String)>| match x {
        Ok(s) => s.workers() == workers && s.flows == flows,
        Err((w, f, _)) => *w == workers && *f == flows,
    };
    let r = r.map_err(|e| (workers, flows, e));
    pool_round(all, same, r, figure::Scaling::merge, Later::ErrorWins);
}

/// Pools testpmd's statistics periods across rounds; one good measurement is enough
/// (the ceiling is optional), so a later failure does not undo an earlier one.
fn merge_ceiling(
    all: &mut Vec<Result<testpmd::Ceiling, (String, usize, String)>>,
    vdev: &'static str,
    cores: usize,
    c: Result<testpmd::Ceiling, String>,
) {
    let same = |x: &Result<testpmd::Ceiling, (String, usize, String)>| match x {
        Ok(c) => c.vdev == vdev && c.cores == cores,
        Err((v, k, _)) => v == vdev && *k == cores,
    };
    let c = c.map_err(|e| (vdev.to_string(), cores, e));
    let merge = |old: &mut testpmd::Ceiling, new: testpmd::Ceiling| {
        old.periods.extend(new.periods);
    };
    pool_round(all, same, c, merge, Later::SuccessWins);
}

/// Which outcome stands when rounds of one scenario disagree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Later {
    /// A failure in any round marks the scenario failed (its figures are suspect).
    ErrorWins,
    /// A success in any round stands.
    SuccessWins,
}

/// Adds a round's result `r` to the entry of `all` that `same` finds: two successes
/// are pooled by `merge`; a new scenario is appended.
fn pool_round<T, E>(
    all: &mut Vec<Result<T, E>>,
    same: impl Fn(&Result<T, E>) -> bool,
    r: Result<T, E>,
    merge: impl FnOnce(&mut T, T),
    later: Later,
) {
    match (all.iter_mut().find(|x| same(x)), r) {
        (None, r) => all.push(r),
        (Some(Ok(old)), Ok(new)) => merge(old, new),
        (Some(slot @ Ok(_)), Err(e)) if later == Later::ErrorWins => *slot = Err(e),
        (Some(slot @ Err(_)), Ok(new)) if later == Later::SuccessWins => *slot = Ok(new),
        (Some(_), _) => {}
    }
}

/// How much the sync scenario moves.
#[derive(Debug, Clone, Copy)]
struct SyncSizes {
    /// Connections of the stream runs (inserted, updated `rounds` times, deleted).
    entries: u32,
    /// Update rounds.
    updates: u32,
    /// Connections of the bulk.
    bulk: u32,
    /// Connections of the per-connection run (at 100k/s).
    per_conn: u32,
    /// Mbufs for the worker runs (4 per connection), and the table capacity.
    mbufs: u32,
    capacity: usize,
}

impl SyncSizes {
    fn new(quick: bool, new_conns: u32, capacity: usize) -> Self {
        if quick {
            SyncSizes {
                entries: 20_000,
                updates: 1,
                bulk: 50_000,
                per_conn: 5_000,
                mbufs: new_conns,
                capacity,
            }
        } else {
            SyncSizes {
                entries: 1_000_000,
                updates: 2,
                bulk: 1_000_000,
                per_conn: 100_000,
                mbufs: new_conns,
                capacity,
            }
        }
    }
}

/// Runs `f` on the worker lcore `wl` and waits for its result.
fn on_lcore<T: Send + 'static>(
    wl: dpdk_sys::LcoreId,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = lcore::launch(wl, move || {
        let _ = tx.send(f());
        0
    })
    .map_err(|e| e.to_string())?;
    h.wait();
    rx.recv()
        .map_err(|_| "the worker lcore sent nothing".to_string())
}

/// One round of the sync scenario: the stream (goals 1, 2) and the per-connection
/// bytes (goal 4, first round only) on the worker lcore, the bulk (goal 3) on both,
/// the worker with sync off and on (goal 5; the order alternates by round).
#[allow(clippy::too_many_arguments)]
fn sync_round(
    out: &mut sync::Results,
    progress: &dyn Fn(&str),
    z: SyncSizes,
    round: u32,
    pool: &Mempool,
    wl: dpdk_sys::LcoreId,
    hz: u64,
) {
    progress(&format!(
        "sync stream: {} connections inserted, updated {}×, deleted; HA MTU 1500 and 9000",
        z.entries, z.updates
    ));
    let r = on_lcore(wl, move || sync::stream(z.entries, z.updates, hz)).and_then(|r| r);
    match &r {
        Ok(rows) => {
            for x in rows {
                eprintln!(
                    "    MTU {}, {}: {} records, {:.1} per datagram, {:.1} B/record; send {:.0}, open {:.0}, install {:.0} cycles/record{}",
                    x.mtu,
                    x.kind.name(),
                    x.records,
                    x.per_datagram(),
                    x.bytes_per_record(),
                    x.send_cycles(),
                    x.open_cycles(),
                    x.install_cycles(),
                    match &x.check {
                        Ok(()) => String::new(),
                        Err(e) => format!("\n    CHECK FAILED: {e}"),
                    }
                );
            }
        }
        Err(e) => eprintln!("    ERROR: {e}"),
    }
    out.add_stream(r);
    progress(&format!(
        "sync bulk: {} connections, worker lcore + main lcore",
        z.bulk
    ));
    let b = sync::bulk(z.bulk, wl, hz);
    match &b {
        Ok(b) => eprintln!(
            "    {:.3} s, {:.2} M entries/s; {} retransmitted, {} backpressure; {} exported in {} bulk(s), {} resync(s) asked{}",
            b.seconds,
            b.rate() / 1e6,
            b.retransmitted,
            b.backpressure,
            b.exported.0,
            b.exported.1,
            b.exported.2,
            match &b.check {
                Ok(()) => String::new(),
                Err(e) => format!("\n    CHECK FAILED: {e}"),
            }
        ),
        Err(e) => eprintln!("    ERROR: {e}"),
    }
    out.bulk.push(b);
    if round == 1 {
        progress("sync bytes per connection (virtual clock)");
        for close in [sync::Close::Rst, sync::Close::Fin] {
            let runs = [
                (z.per_conn, 100_000.0, 500_000, 100_000_000),
                (1, 0.0, 10_000_000, 1_000_000_000),
            ];
            for (n, rate, rtt, life) in runs {
                let r = on_lcore(wl, move || sync::per_connection(n, rate, rtt, life, close))
                    .and_then(|r| r);
                match &r {
                    Ok(c) => eprintln!(
                        "    {} connection(s), {}: {:.1} bytes, {:.2} records, {:.2} datagrams per connection{}",
                        c.conns,
                        close.name(),
                        c.bytes_per_conn(),
                        c.records_per_conn(),
                        c.datagrams_per_conn(),
                        match &c.check {
                            Ok(()) => String::new(),
                            Err(e) => format!("\n    CHECK FAILED: {e}"),
                        }
                    ),
                    Err(e) => eprintln!("    ERROR: {e}"),
                }
                out.per_conn.push(r);
            }
        }
    }
    progress("sync on the worker: connection life cycles with sync off and on");
    let p = Params {
        flows: z.mbufs,
        capacity: z.capacity,
        seconds: 0.0,
        size: frames::Size::Bytes(64),
    };
    // Twice each, in an order that evens out drift within the round.
    let (off, on) = (syncload::Mode::Drop, syncload::Mode::Engine);
    let order = if round % 2 == 1 {
        [off, on, on, off]
    } else {
        [on, off, off, on]
    };
    for mode in order {
        let r = syncload::run(p, pool, wl, mode, round);
        match &r {
            Ok(w) => eprintln!(
                "    {}: {} connections, {:.0} conns/s, {:.2} Mpps; events {} queued, {} refused{}{}",
                mode.name(),
                w.conns,
                w.conns_per_sec(hz),
                w.mpps(hz),
                w.events.0,
                w.events.1,
                w.engine.map_or(String::new(), |e| format!(
                    "; engine: {} records in {} datagrams, main lcore {:.0} % on-CPU",
                    e.records,
                    e.data.0,
                    100.0 * e.share
                )),
                match &w.check {
                    Ok(()) => String::new(),
                    Err(e) => format!("\n    CHECK FAILED: {e}"),
                }
            ),
            Err(e) => eprintln!("    ERROR: {e}"),
        }
        out.worker.push(r);
    }
}
