//! Established flows: every flow's ACK recirculates through the unit, pass after pass.
//!
//! Setup (untimed, on the main lcore): each worker learns its neighbours through ARP,
//! every flow is opened with a real handshake through `Router::handle` of the worker
//! RSS gives it, and that worker's ring is filled with one ACK per flow (TTL 255), in a
//! random flow order. Then every worker lcore runs the measured loop
//! (`Worker::poll_once`) in epochs, all at once: each pass over a ring takes one from
//! every frame's TTL, so an epoch stops after at most [`EPOCH_PASSES`] passes (or
//! [`EPOCH_MAX_NS`]), the core puts the TTLs back (untimed, ring order kept),
//! re-confirms the neighbours (ARP entries go stale after 30 s of the unit's clock) and
//! goes again. Only the time inside epochs counts, and each epoch's counters must add
//! up: every packet received was forwarded and sent by the same worker, none dropped,
//! and with the firewall every one was passed by its connection's entry.

use crate::cpu::{Interval, ThreadStat};
use crate::figure::{Counts, Epoch, Figure};
use crate::frames::{self, Flow, Size, RECIRC_TTL};
use crate::hotloop::{self, Clock, Stop};
use crate::topo::{self, Topology};
use crate::unit::{self, Unit};
use dpdk_sys::{lcore, Burst, LcoreId, Mempool, Ring};
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;
use workers::{Handoff, WorkerLinks, WorkerPort};

/// Most passes per epoch: TTL 255 allows 254 forwards.
pub const EPOCH_PASSES: u64 = 250;
/// Longest epoch: short enough for a median over many (the machine may be shared).
pub const EPOCH_MAX_NS: u64 = 250_000_000;
/// The name of the `Worker::run` scenario.
pub const WORKER_SCENARIO: &str = "route + firewall (Worker::run)";

/// Fewest flows for the `Worker::run` check: 230 passes must take well over the 1 ms
/// sampling period.
pub const MIN_WORKER_FLOWS: u32 = 10_000;

/// What the unit does to each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// rx → tx, nothing touched.
    Io,
    /// `Router::handle` without a firewall.
    Route,
    /// `Router::handle` with the stateful firewall.
    Firewall,
}

impl Layer {
    /// The name in the results table.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Io => "ring I/O only (no packet touched)",
            Layer::Route => "route (no firewall)",
            Layer::Firewall => "route + firewall",
        }
    }
}

/// A scenario's size.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Established flows (= frames in the ring).
    pub flows: u32,
    /// Connection table capacity.
    pub capacity: usize,
    /// Wall seconds to measure.
    pub seconds: f64,
    /// Frame size.
    pub size: Size,
}

/// The flows RSS gives each of `workers` workers (`Handoff::owner`, the worker's own
/// choice), each list in ring order: shuffled, since entries were created in flow order
/// and a sorted ring would let the hardware prefetcher walk the table.
fn partition(flows: u32, workers: usize) -> Vec<Vec<u32>> {
    let rss = Handoff::new(workers);
    let mut parts = vec![Vec::new(); workers];
    for f in frames::shuffled(flows, 0x0dd_f10e) {
        parts[rss.owner(&Flow::nth(f).ack(64), 0)].push(f);
    }
    parts
}

/// Fills queue `w`'s loop ring with one ACK per flow of `flows`.
fn fill_ring(
    pool: &Mempool,
    topo: &Topology,
    w: usize,
    flows: &[u32],
    size: Size,
) -> Result<(), String> {
    let frames = flows
        .iter()
        .map(|&f| unit::mbuf_with(pool, &Flow::nth(f).ack_sized(RECIRC_TTL, size.wire_len(f))));
    topo::fill(&topo.a_rx[w], frames.collect::<Result<Vec<_>, String>>()?)?;
    Ok(())
}

/// Worker `w` with `flows` open (with the firewall) and its ring filled.
fn prepare(
    layer: Layer,
    p: &Params,
    pool: &Mempool,
    topo: &Topology,
    w: usize,
    links: WorkerLinks,
    flows: &[u32],
) -> Result<Unit, String> {
    let ports = topo.worker_ports(queue(w)?)?;
    let firewall = (layer == Layer::Firewall).then_some(p.capacity);
    let mut unit = Unit::new(pool, firewall, w, ports, links);
    unit.teach_neighbours(0)?;
    if layer == Layer::Firewall {
        eprintln!(
            "    worker {w}: opening {} connections (3-way handshakes through Router::handle)",
            flows.len()
        );
        unit.establish(flows, 0)?;
        if unit.connections() != flows.len() {
            return Err(format!(
                "worker {w}: {} connections in the table after {} handshakes",
                unit.connections(),
                flows.len()
            ));
        }
    }
    fill_ring(pool, topo, w, flows, p.size)?;
    Ok(unit)
}

fn queue(w: usize) -> Result<u16, String> {
    u16::try_from(w).map_err(|_| format!("worker {w}: too many queues"))
}

/// Runs each job on its lcore, all at once, and returns their results in order.
pub fn on_workers<T, F>(lcores: &[LcoreId], jobs: Vec<F>) -> Vec<Result<T, String>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let mut running = Vec::new();
    for (&wl, job) in lcores.iter().zip(jobs) {
        let (tx, rx) = mpsc::channel();
        let h = lcore::launch(wl, move || {
            let _ = tx.send(job());
            0
        });
        running.push(h.map(|h| (h, rx)).map_err(|e| e.to_string()));
    }
    // Sleep rather than spin while they run: the main lcore's CPU may be a worker's.
    while running.iter().flatten().any(|(h, _)| h.is_running()) {
        std::thread::sleep(Duration::from_millis(1));
    }
    running
        .into_iter()
        .map(|r| {
            let (h, rx) = r?;
            if h.wait() == lcore::PANICKED {
                return Err("the worker lcore panicked".into());
            }
            rx.recv()
                .map_err(|_| "the worker lcore sent nothing".to_string())?
        })
        .collect()
}

/// What an epoch loop measures and how it puts things back in between.
trait Measured {
    /// Runs until `stop`; returns the packets received.
    fn run(&mut self, clock: &Clock, stop: Stop) -> u64;
    /// After an epoch of `n` packets: its check (`Ok(Err)` = the figures are wrong),
    /// then the frames' TTLs put back (`Err` = cannot go on).
    fn after(&mut self, n: u64, clock: &Clock) -> Result<Result<(), String>, String>;
    /// Time in the loop, if recorded.
    fn latency(&self) -> Option<Histogram<u64>> {
        None
    }
}

/// A worker polling its queues: `Worker::poll_once`.
struct WorkerLoop {
    unit: Unit,
    layer: Layer,
    ring: Ring,
    flows: u64,
    before: Counts,
    latency: Histogram<u64>,
}

impl Measured for WorkerLoop {
    fn run(&mut self, clock: &Clock, stop: Stop) -> u64 {
        self.before = Counts::of(&self.unit.counters);
        hotloop::run_worker(&mut self.unit.worker, clock, stop, Some(&mut self.latency))
    }

    fn after(&mut self, n: u64, clock: &Clock) -> Result<Result<(), String>, String> {
        let check = verify(
            self.layer,
            &Counts::of(&self.unit.counters).since(&self.before),
            n,
            &self.unit,
        );
        let (back, bad) = topo::rotate(&self.ring, |m| frames::restore_ttl(m.data_mut()))?;
        if back != self.flows || bad != 0 {
            return Err(format!(
                "{back} frames back in the ring ({bad} unreadable), {} expected; counters: {}",
                self.flows,
                unit::nonzero(&self.unit.counters)
            ));
        }
        self.unit.teach_neighbours(clock.now_ns())?;
        Ok(check)
    }

    fn latency(&self) -> Option<Histogram<u64>> {
        Some(self.latency.clone())
    }
}

/// The ring PMD alone.
struct IoLoop {
    ports: Vec<WorkerPort>,
    rx: Burst,
    ring: Ring,
    flows: u64,
}

impl Measured for IoLoop {
    fn run(&mut self, clock: &Clock, stop: Stop) -> u64 {
        hotloop::run_io(&mut self.ports, clock, &mut self.rx, stop)
    }

    fn after(&mut self, _: u64, _: &Clock) -> Result<Result<(), String>, String> {
        let back = self.ring.count() as u64;
        if back != self.flows {
            return Err(format!(
                "{back} frames back in the ring, {} expected",
                self.flows
            ));
        }
        Ok(Ok(()))
    }
}

/// One untimed warm-up pass, then epochs for `seconds` of wall time.
fn epochs(
    m: &mut dyn Measured,
    flows: u64,
    seconds: f64,
) -> Result<(Vec<Epoch>, Result<(), String>), String> {
    let hz = lcore::tsc_hz();
    let clock = Clock::new();
    let stat = ThreadStat::current();
    let warm = m.run(
        &clock,
        Stop {
            packets: flows,
            deadline_ns: u64::MAX,
        },
    );
    let _ = m.after(warm, &clock)?;
    let budget = crate::cpu::cycles(seconds, hz);
    let mut wall = 0u64;
    let mut epochs = Vec::new();
    let mut check = Ok(());
    while wall < budget {
        let left_ns = u128::from(budget - wall) * 1_000_000_000 / u128::from(hz);
        let left_ns = u64::try_from(left_ns).unwrap_or(u64::MAX).min(EPOCH_MAX_NS);
        let stop = Stop {
            packets: EPOCH_PASSES * flows,
            deadline_ns: clock.now_ns().saturating_add(left_ns),
        };
        let s0 = stat.start();
        let n = m.run(&clock, stop);
        let s1 = stat.end();
        let interval = Interval::between(s0, s1, hz);
        wall += interval.wall_cycles;
        epochs.push(Epoch {
            packets: n,
            interval,
        });
        let c = m.after(n, &clock)?;
        if check.is_ok() {
            check = c;
        }
    }
    Ok((epochs, check))
}

/// The established-flow loop on `lcores.len()` workers at once, each on its own
/// queue pair with the flows RSS gives it; one figure per worker.
pub fn bench_loop(
    layer: Layer,
    p: Params,
    pool: &Mempool,
    lcores: &[LcoreId],
) -> Result<Vec<Figure>, String> {
    let parts = partition(p.flows, lcores.len());
    if parts.iter().any(Vec::is_empty) {
        return Err(format!(
            "{} flows leave a worker of {} without any",
            p.flows,
            lcores.len()
        ));
    }
    let capacity: Vec<u32> = parts
        .iter()
        .map(|f| {
            u32::try_from(f.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1024)
        })
        .collect();
    let topo = Topology::recirculating(pool, &capacity).map_err(|e| e.to_string())?;
    let mut jobs = Vec::new();
    for (w, (links, flows)) in WorkerLinks::for_workers(lcores.len(), workers::Clock::new())
        .into_iter()
        .zip(&parts)
        .enumerate()
    {
        let n = flows.len() as u64;
        let ring = topo.a_rx[w].clone();
        let m: Box<dyn Measured + Send> = if layer == Layer::Io {
            fill_ring(pool, &topo, w, flows, p.size)?;
            Box::new(IoLoop {
                ports: topo.worker_ports(queue(w)?)?,
                rx: Burst::new(),
                ring,
                flows: n,
            })
        } else {
            Box::new(WorkerLoop {
                unit: prepare(layer, &p, pool, &topo, w, links, flows)?,
                layer,
                ring,
                flows: n,
                before: Counts::default(),
                latency: Histogram::new(3).map_err(|e| e.to_string())?,
            })
        };
        jobs.push(move || {
            let mut m = m;
            let (epochs, check) = epochs(m.as_mut(), n, p.seconds)?;
            Ok((epochs, check, m.latency()))
        });
    }
    let on: Vec<String> = lcores.iter().map(ToString::to_string).collect();
    eprintln!("    measuring on {} ({:.1} s)", on.join(", "), p.seconds);
    let results = on_workers(lcores, jobs);
    let mut figs = Vec::new();
    for (w, r) in results.into_iter().enumerate() {
        let (epochs, check, latency) = r?;
        let fig = Figure {
            scenario: layer.name().to_string(),
            measured_loop: if layer == Layer::Io {
                "bench io loop"
            } else {
                "Worker::poll_once"
            },
            flows: parts[w].len() as u64,
            epochs,
            check,
            ipc: Vec::new(),
            size: p.size,
            latency,
        };
        figs.push(sink_empty(fig, &topo, w));
    }
    drop(topo);
    Ok(figs)
}

/// Nothing may go back out of data0 (towards the clients) in steady state.
fn sink_empty(mut fig: Figure, topo: &Topology, w: usize) -> Figure {
    let back = topo.a_tx[w].count();
    if back != 0 && fig.check.is_ok() {
        fig.check = Err(format!("{back} frames sent out of data0 queue {w}"));
    }
    fig
}

/// Every packet of an epoch went through: forwarded, sent, none dropped, none handed
/// to another worker; passed by its connection's entry when the firewall is on.
fn verify(layer: Layer, d: &Counts, n: u64, unit: &Unit) -> Result<(), String> {
    let fw_ok = layer != Layer::Firewall || d.accepted_state == n;
    if d.rx == n && d.forwarded == n && d.tx == n && d.dropped == 0 && d.handed_off == 0 && fw_ok {
        return Ok(());
    }
    Err(format!(
        "epoch of {n} packets: {d:?}; counters: {}",
        unit::nonzero(&unit.counters)
    ))
}

/// The real `workers::Worker::run`, unmodified, measured from the main lcore:
/// it reads the worker's counters every millisecond and takes a (TSC, packets, the
/// worker thread's run-queue wait) sample once the flows are warm and another before
/// the frames' TTL runs out, then sets the stop flag. One epoch, at most
/// [`EPOCH_PASSES`] − 20 passes.
pub fn real_worker(p: Params, pool: &Mempool, wl: LcoreId) -> Result<Figure, String> {
    let flows: Vec<u32> = partition(p.flows, 1).remove(0);
    let topo = Topology::recirculating(pool, &[p.flows + 1024]).map_err(|e| e.to_string())?;
    let links = WorkerLinks::for_workers(1, workers::Clock::new()).remove(0);
    let Unit {
        worker,
        counters,
        stop,
        ..
    } = prepare(Layer::Firewall, &p, pool, &topo, 0, links, &flows)?;
    let base = Counts::of(&counters);
    let (tid_tx, tid_rx) = mpsc::channel();
    eprintln!("    measuring Worker::run on {wl}");
    let handle = lcore::launch(wl, move || {
        let _ = tid_tx.send(ThreadStat::current_tid());
        worker.run()
    })
    .map_err(|e| e.to_string())?;
    let tid = tid_rx.recv().unwrap_or(0);
    let stat = ThreadStat::of(std::process::id(), tid);
    let hz = lcore::tsc_hz();
    let flows = u64::from(p.flows);
    if p.flows < MIN_WORKER_FLOWS {
        return Err(format!("needs at least {MIN_WORKER_FLOWS} flows (sampled every ms, it must not overrun the TTL)"));
    }
    let warm = base.rx + (2 * flows).max(100_000).min(20 * flows);
    let last = base.rx + (EPOCH_PASSES - 20) * flows;
    let budget = crate::cpu::cycles(p.seconds, hz);
    let give_up = lcore::tsc() + crate::cpu::cycles(p.seconds + 120.0, hz);
    let sample = || {
        let tsc = lcore::tsc();
        let rx = counters.rx_packets.get();
        (tsc, rx, stat.wait_ns())
    };
    let epoch_cycles = EPOCH_MAX_NS * hz / 1_000_000_000;
    let mut marks = Vec::new();
    let mut perf = None;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let s = sample();
        match marks.first() {
            None if s.1 >= warm => {
                marks.push(s);
                perf = crate::perf::Ipc::start(tid);
            }
            Some(a) if s.1 >= last || s.0.saturating_sub(a.0) >= budget => {
                marks.push(s);
                break;
            }
            Some(_) if s.0.saturating_sub(marks.last().map_or(0, |m| m.0)) >= epoch_cycles => {
                marks.push(s);
            }
            _ => {}
        }
        if !handle.is_running() {
            return Err("Worker::run returned before it was stopped".into());
        }
        if s.0 > give_up {
            stop.store(true, Ordering::Relaxed);
            handle.wait();
            return Err(format!(
                "no progress: {} packets after setup",
                s.1 - base.rx
            ));
        }
    }
    let ipc = perf.and_then(crate::perf::Ipc::finish);
    stop.store(true, Ordering::Relaxed);
    handle.wait();
    let d = Counts::of(&counters).since(&base);
    let check = if d.rx == d.forwarded && d.rx == d.tx && d.dropped == 0 && d.accepted_state == d.rx
    {
        Ok(())
    } else {
        Err(format!(
            "over the run: {d:?}; counters: {}",
            unit::nonzero(&counters)
        ))
    };
    let to_sample = |(tsc, _, wait_ns): (u64, u64, u64)| crate::cpu::Sample {
        tsc,
        wait_ns,
        slices: 0,
    };
    let epochs = marks
        .windows(2)
        .map(|w| Epoch {
            packets: w[1].1 - w[0].1,
            interval: Interval::between(to_sample(w[0]), to_sample(w[1]), hz),
        })
        .collect();
    let fig = Figure {
        scenario: WORKER_SCENARIO.to_string(),
        measured_loop: "workers::Worker::run, unmodified",
        flows,
        epochs,
        check,
        ipc: ipc.into_iter().collect(),
        size: Size::Bytes(64),
        latency: None,
    };
    let fig = sink_empty(fig, &topo, 0);
    drop(topo);
    Ok(fig)
}
