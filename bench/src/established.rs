//! Established flows: every flow's ACK recirculates through the unit, pass after pass.
//!
//! Setup (untimed, on the main lcore): the unit learns its neighbours through ARP, every
//! flow is opened with a real handshake through `Router::handle`, and the data0 ring is
//! filled with one 60-byte ACK per flow (TTL 255), in a random flow order. Then the worker lcore
//! runs the measured loop in epochs: each pass over the ring takes one from every
//! frame's TTL, so an epoch stops after at most [`EPOCH_PASSES`] passes (or
//! [`EPOCH_MAX_NS`]), the core puts the TTLs back (untimed, ring order kept), re-confirms
//! the neighbours (ARP entries go stale after 30 s of the unit's clock) and goes again.
//! Only the time inside epochs counts, and each epoch's counters must add up: every
//! packet received was forwarded and sent, none dropped, and with the firewall every
//! one was passed by its connection's entry.

use crate::cpu::{Interval, ThreadStat};
use crate::figure::{Counts, Epoch, Figure};
use crate::frames::{self, Flow, Size, RECIRC_TTL};
use crate::hotloop::{self, Clock, LoopState, Stop};
use crate::topo::{self, Topology};
use crate::unit::{self, Unit};
use dataplane::control::WorkerInbox;
use dataplane::worker::{Handoff, IdlePolicy, NeighborMesh, Worker, WorkerLinks};
use dpdk_sys::{lcore, Burst, LcoreId, Mempool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

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

/// A unit with `flows` open connections (or none without the firewall), and the ring
/// filled with one ACK per flow.
fn prepare(layer: Layer, p: &Params, pool: &Mempool, topo: &Topology) -> Result<Unit, String> {
    let mut unit = Unit::new(pool, (layer == Layer::Firewall).then_some(p.capacity));
    unit.teach_neighbours(0)?;
    if layer == Layer::Firewall {
        eprintln!(
            "    opening {} connections (3-way handshakes through Router::handle)",
            p.flows
        );
        unit.establish(p.flows, 0)?;
        if unit.connections() != p.flows as usize {
            return Err(format!(
                "{} connections in the table after {} handshakes",
                unit.connections(),
                p.flows
            ));
        }
    }
    let order = frames::shuffled(p.flows, 0x0dd_f10e);
    let frames = order.into_iter().map(|f| {
        unit::mbuf_with(
            pool,
            &Flow::nth(f).ack_sized(RECIRC_TTL, p.size.wire_len(f)),
        )
    });
    let frames: Result<Vec<_>, String> = frames.collect();
    topo::fill(&topo.a_rx, frames?)?;
    Ok(unit)
}

/// Runs `f` on worker lcore `wl` and returns its result.
pub fn on_worker<T, F>(wl: LcoreId, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let h = lcore::launch(wl, move || {
        let _ = tx.send(f());
        0
    })
    .map_err(|e| e.to_string())?;
    // Sleep rather than spin while it runs: the main lcore's CPU is shared.
    while h.is_running() {
        std::thread::sleep(Duration::from_millis(1));
    }
    if h.wait() == lcore::PANICKED {
        return Err("the worker lcore panicked".into());
    }
    rx.recv()
        .map_err(|_| "the worker lcore sent nothing".to_string())?
}

/// The bench loop ([`hotloop`]) in epochs.
pub fn bench_loop(layer: Layer, p: Params, pool: &Mempool, wl: LcoreId) -> Result<Figure, String> {
    let topo = Topology::recirculating(pool, p.flows + 1024).map_err(|e| e.to_string())?;
    let mut unit = prepare(layer, &p, pool, &topo)?;
    let mut ports = topo.worker_ports()?;
    let ring = topo.a_rx.clone();
    eprintln!("    measuring on {wl} ({:.1} s)", p.seconds);
    let fig = on_worker(wl, move || {
        let hz = lcore::tsc_hz();
        let flows = u64::from(p.flows);
        let clock = Clock::new();
        let stat = ThreadStat::current();
        let mut st = LoopState::new(ports.len());
        let mut rx = Burst::new();
        let mut run = |unit: &mut Unit, stop: Stop| match layer {
            Layer::Io => hotloop::run_io(&mut ports, &clock, &mut rx, stop),
            Layer::Route | Layer::Firewall => {
                hotloop::run_unit(&mut ports, unit, &clock, &mut st, stop)
            }
        };
        let restore = |unit: &mut Unit, now: u64| -> Result<(), String> {
            let (n, bad) = if layer == Layer::Io {
                (ring.count() as u64, 0)
            } else {
                topo::rotate(&ring, |m| frames::restore_ttl(m.data_mut()))?
            };
            if n != flows || bad != 0 {
                return Err(format!(
                    "{n} frames back in the ring ({bad} unreadable), {flows} expected; counters: {}",
                    unit::nonzero(&unit.counters)
                ));
            }
            if layer != Layer::Io {
                unit.teach_neighbours(now)?;
            }
            Ok(())
        };
        // Warm-up: one pass, untimed.
        run(
            &mut unit,
            Stop {
                packets: flows,
                deadline_ns: u64::MAX,
                latency: false,
            },
        );
        restore(&mut unit, clock.now_ns())?;

        let budget = crate::cpu::cycles(p.seconds, hz);
        let mut wall = 0u64;
        let mut epochs = Vec::new();
        let mut check = Ok(());
        while wall < budget {
            let left_ns = u128::from(budget - wall) * 1_000_000_000 / u128::from(hz);
            let left_ns = u64::try_from(left_ns).unwrap_or(u64::MAX).min(EPOCH_MAX_NS);
            let before = Counts::of(&unit.counters);
            let stop = Stop {
                packets: EPOCH_PASSES * flows,
                deadline_ns: clock.now_ns().saturating_add(left_ns),
                latency: layer != Layer::Io,
            };
            let s0 = stat.start();
            let n = run(&mut unit, stop);
            let s1 = stat.end();
            let interval = Interval::between(s0, s1, hz);
            wall += interval.wall_cycles;
            epochs.push(Epoch {
                packets: n,
                interval,
            });
            if layer != Layer::Io && check.is_ok() {
                check = verify(layer, &Counts::of(&unit.counters).since(&before), n, &unit);
            }
            restore(&mut unit, clock.now_ns())?;
        }
        Ok(Figure {
            scenario: layer.name().to_string(),
            measured_loop: if layer == Layer::Io {
                "bench io loop"
            } else {
                "bench copy of Worker::run"
            },
            flows,
            epochs,
            check,
            ipc: Vec::new(),
            size: p.size,
            latency: (layer != Layer::Io).then(|| st.latency.clone()),
        })
    })?;
    let fig = sink_empty(fig, &topo);
    drop(topo);
    Ok(fig)
}

/// Nothing may go back out of data0 (towards the clients) in steady state.
fn sink_empty(mut fig: Figure, topo: &Topology) -> Figure {
    let back = topo.a_tx.count();
    if back != 0 && fig.check.is_ok() {
        fig.check = Err(format!("{back} frames sent out of data0"));
    }
    fig
}

/// Every packet of an epoch went through: forwarded, sent, none dropped; passed by its
/// connection's entry when the firewall is on.
fn verify(layer: Layer, d: &Counts, n: u64, unit: &Unit) -> Result<(), String> {
    let fw_ok = layer != Layer::Firewall || d.accepted_state == n;
    if d.rx == n && d.forwarded == n && d.tx == n && d.dropped == 0 && fw_ok {
        return Ok(());
    }
    Err(format!(
        "epoch of {n} packets: {d:?}; counters: {}",
        unit::nonzero(&unit.counters)
    ))
}

/// The real `dataplane::worker::Worker::run`, unmodified, measured from the main lcore:
/// it reads the worker's counters every millisecond and takes a (TSC, packets, the
/// worker thread's run-queue wait) sample once the flows are warm and another before
/// the frames' TTL runs out, then sets the stop flag. One epoch, at most
/// [`EPOCH_PASSES`] − 20 passes.
pub fn real_worker(p: Params, pool: &Mempool, wl: LcoreId) -> Result<Figure, String> {
    let topo = Topology::recirculating(pool, p.flows + 1024).map_err(|e| e.to_string())?;
    let unit = prepare(Layer::Firewall, &p, pool, &topo)?;
    let ports = topo.worker_ports()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::clone(&unit.counters);
    let base = Counts::of(&counters);
    let (tid_tx, tid_rx) = mpsc::channel();
    let worker = Worker::new(
        0,
        ports,
        unit.router,
        pool.clone(),
        IdlePolicy::BusyPoll,
        Arc::clone(&stop),
        WorkerLinks {
            mesh: NeighborMesh::new(1),
            handoff: Handoff::new(1),
            inbox: Arc::new(WorkerInbox::default()),
        },
    );
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
        measured_loop: "dataplane::worker::Worker::run, unmodified",
        flows,
        epochs,
        check,
        ipc: ipc.into_iter().collect(),
        size: Size::Bytes(64),
        latency: None,
    };
    let fig = sink_empty(fig, &topo);
    drop(topo);
    Ok(fig)
}
