//! `dpdk-testpmd --forward-mode=io` on one or more forwarding cores: the machine's
//! ceiling.
//!
//! Run as a child process (`stdbuf -oL` so its periodic statistics arrive line by line),
//! with `--stats-period 1`. Each time the cumulative `RX-packets` of both ports arrive,
//! the bench notes the time and the forwarding threads' (`rte-worker-N`) run-queue
//! wait; the figure is the packets between the first sample after warm-up and the
//! last, over the on-CPU time between them, as for tandem. With `k` forwarding cores
//! (`--nb-cores=k`, a queue pair per core on each port) it is the rate the `k` cores
//! reach together when each has its CPU all the time: packets × k / on-CPU seconds
//! summed over the threads. The child is stopped with SIGINT
//! (by its pid, through `kill`), and killed if it does not exit.
//!
//! Two vdev kinds, two meanings:
//! - `net_null`: rx allocates an mbuf per packet, tx frees it — the mbuf life cycle a
//!   NIC driver pays — with no packet data touched. The ceiling tandem is compared to.
//! - `net_ring` with `--tx-first`: one burst per port circulating by pointer; no mbuf
//!   allocated, nothing touched. Not a packet rate (see DPDK-NOTES.md): it is the cost of
//!   the ring PMD alone, reported for reference.

use crate::cpu::ThreadStat;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One testpmd measurement.
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// `net_null`, `net_ring`.
    pub vdev: &'static str,
    /// Forwarding cores.
    pub cores: usize,
    /// The command line, for the results.
    pub command: String,
    /// Per statistics period after warm-up: (packets received by the forwarding cores
    /// on both ports, wall seconds, seconds their threads waited on a run queue, summed).
    pub periods: Vec<(u64, f64, f64)>,
}

impl Ceiling {
    /// On-CPU Mpps of each period, ascending.
    fn rates(&self) -> Vec<f64> {
        let k = self.cores as f64;
        let mut v: Vec<f64> = self
            .periods
            .iter()
            .map(|&(p, wall, pre)| p as f64 * k / (k * wall - pre).max(1e-9) / 1e6)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Million packets per second of on-CPU time: the median period.
    pub fn mpps(&self) -> f64 {
        let v = self.rates();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The best period's Mpps.
    pub fn best_mpps(&self) -> f64 {
        self.rates().last().copied().unwrap_or(0.0)
    }

    /// On-CPU cycles per packet of one core at `hz`, at the median rate.
    pub fn cycles_per_packet(&self, hz: u64) -> f64 {
        hz as f64 * self.cores as f64 / (self.mpps() * 1e6).max(1e-9)
    }

    /// On-CPU share of the measured time, over the forwarding threads.
    pub fn share(&self) -> f64 {
        let wall: f64 = self.periods.iter().map(|p| p.1).sum::<f64>() * self.cores as f64;
        let pre: f64 = self.periods.iter().map(|p| p.2).sum();
        (wall - pre) / wall.max(1e-9)
    }
}

/// Where testpmd is.
pub const TESTPMD: &str = "/usr/bin/dpdk-testpmd";

/// Runs testpmd io forwarding on two `vdev` ports for about `seconds` after warm-up,
/// its main lcore on CPU `main` and a forwarding lcore on each CPU of `fwd` (the bench's
/// own main and worker CPUs).
pub fn measure(
    vdev: &'static str,
    seconds: f64,
    main: u32,
    fwd: &[u32],
) -> Result<Ceiling, String> {
    if !std::path::Path::new(TESTPMD).exists() {
        return Err(format!("{TESTPMD} not found (Debian package `dpdk`)"));
    }
    let cores = fwd.len().max(1);
    let prefix = format!("bench-tp{}-{vdev}-{cores}", std::process::id());
    let mut args: Vec<String> = [
        "-oL",
        TESTPMD,
        "--no-huge",
        "--no-shconf",
        "-m",
        "256",
        "--no-pci",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(crate::cores::eal_lcores(main, fwd));
    args.push(format!("--file-prefix={prefix}"));
    args.push(format!("--vdev={vdev}0"));
    args.push(format!("--vdev={vdev}1"));
    args.extend(
        [
            "--",
            "--forward-mode=io",
            "--stats-period",
            "1",
            "--total-num-mbufs=16384",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(format!("--nb-cores={cores}"));
    if cores > 1 {
        args.push(format!("--rxq={cores}"));
        args.push(format!("--txq={cores}"));
    }
    if vdev == "net_ring" {
        args.push("--tx-first".into());
    }
    let command = format!("dpdk-testpmd {}", args[2..].join(" "));
    // taskset: a child inherits this thread's CPU affinity (the main lcore's, after EAL
    // init); testpmd must be free to put its forwarding lcore on its CPU.
    let mut child = Command::new("taskset")
        .args(["-c", &cpu_list(main, fwd), "stdbuf"])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start testpmd: {e}"))?;
    let result = sample(&mut child, seconds, cores);
    stop(&mut child);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        let _ = std::fs::remove_dir_all(std::path::Path::new(&xdg).join("dpdk").join(&prefix));
    }
    Ok(Ceiling {
        vdev,
        cores,
        command,
        periods: result?,
    })
}

/// (packets, wall seconds, preempted seconds) of each statistics period after warm-up.
fn sample(child: &mut Child, seconds: f64, cores: usize) -> Result<Vec<(u64, f64, f64)>, String> {
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel::<(Instant, usize, u64)>();
    // Lines arrive as testpmd prints them; parse on a reader thread.
    std::thread::spawn(move || {
        let mut port = usize::MAX;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("NIC statistics for port ").nth(1) {
                port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(usize::MAX);
            } else if let Some(rest) = line.trim_start().strip_prefix("RX-packets:") {
                let n = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if tx.send((Instant::now(), port, n)).is_err() {
                    break;
                }
            }
        }
    });
    let started = Instant::now();
    let mut workers: Vec<ThreadStat> = Vec::new();
    let mut per_port = [0u64; 2];
    // (time, packets, wait ns) per statistics period with traffic.
    let mut samples: Vec<(Instant, u64, u64)> = Vec::new();
    let warm_up = 2;
    let periods = usize::try_from(crate::cpu::cycles(seconds.ceil(), 1)).unwrap_or(1);
    while samples.len() < warm_up + periods + 1 {
        let timeout = Duration::from_secs(20).saturating_sub(started.elapsed());
        let (at, port, n) = rx
            .recv_timeout(timeout)
            .map_err(|_| "testpmd printed no statistics (did it start?)".to_string())?;
        if port > 1 {
            continue;
        }
        per_port[port] = n;
        if port != 1 || per_port[0] + per_port[1] == 0 {
            continue;
        }
        if workers.is_empty() {
            workers = (1..=cores)
                .map(|n| {
                    forwarding_thread(pid, n).ok_or(format!("no rte-worker-{n} thread in testpmd"))
                })
                .collect::<Result<_, _>>()?;
        }
        let wait = workers.iter().map(ThreadStat::wait_ns).sum();
        samples.push((at, per_port[0] + per_port[1], wait));
    }
    Ok(samples[warm_up..]
        .windows(2)
        .map(|w| {
            let (t0, p0, w0) = w[0];
            let (t1, p1, w1) = w[1];
            let wall = t1.duration_since(t0).as_secs_f64();
            let pre = (w1.saturating_sub(w0)) as f64 / 1e9;
            (p1 - p0, wall, pre.min(wall * cores as f64))
        })
        .collect())
}

/// `taskset`'s list: the main CPU and the forwarding ones.
fn cpu_list(main: u32, fwd: &[u32]) -> String {
    let mut cpus = vec![main];
    cpus.extend(fwd.iter().filter(|&&c| c != main));
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// testpmd's forwarding lcore thread `n`.
fn forwarding_thread(pid: u32, n: usize) -> Option<ThreadStat> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let names = [format!("rte-worker-{n}"), format!("lcore-worker-{n}")];
    for e in dir.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if names.iter().any(|x| x == comm.trim()) {
            let tid = e.file_name().to_str()?.parse().ok()?;
            return Some(ThreadStat::of(pid, tid));
        }
    }
    None
}

/// SIGINT to the child's pid (testpmd cleans up), then SIGKILL if it lingers.
fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
