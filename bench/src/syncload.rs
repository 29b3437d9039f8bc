//! The worker with synchronisation on and off (goal 5): whole TCP connections through
//! the worker lcore, their events taken off its queue on the main lcore either by a
//! loop that drops them ([`Mode::Drop`]) or by a real `syncd::engine::Engine` that
//! packs and seals them for the partner ([`Mode::Engine`]).
//!
//! Setup (untimed): the unit learns its neighbours and opens one *pad* connection;
//! data0's ring is filled with the clients' packets, data1's with the server's, in
//! blocks of 32 connections so that each `Worker::poll_once` (a burst of 64 from data0,
//! then 64 from data1) takes, on data0, the SYNs of block `k` and the ACKs of block
//! `k − 1`, and on data1 the SYN/ACKs of block `k` and the server's RSTs of block
//! `k − 1`: every connection is created, answered, established and reset, 4 packets
//! and 4 events (created, SYN_RECV, ESTABLISHED, CLOSE) — the pad connection's ACKs
//! fill the first and last bursts. Both ports send into sink rings.
//!
//! The engine's partner is an [`Acker`]: the partner's session alone, which reads
//! the sequence numbers from the datagrams' plaintext headers and acknowledges every
//! 32 (as the receiving engine does) with a sealed control datagram, so that the
//! main lcore does the sending unit's sync work only.

use crate::cpu::{Interval, ThreadStat};
use crate::established::Params;
use crate::figure::Counts;
use crate::frames::{self, Flow, SERVER, SERVER_MAC, SERVER_PORT, VMAC1};
use crate::hotloop::{self, Clock, Stop};
use crate::sync::{self, EPOCH_B};
use crate::topo::{self, Topology};
use crate::unit::{self, Unit};
use dataplane::wire::TcpFlags;
use dpdk_sys::{lcore, LcoreId, Mempool};
use std::sync::mpsc;
use syncd::seal::Party;
use syncd::session::Session;
use syncd::wire::{BodyWriter, Heartbeat, Kind, Message};

/// Connections per block (half a burst).
const BLOCK: u32 = 32;
/// Ack after this many data datagrams (the channel's `ack_every`).
const ACK_EVERY: u64 = 32;

/// Who takes the worker's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A loop on the main lcore pops and drops them every 200 µs (spinning
    /// in between, off the queue).
    Drop,
    /// Engine A on the main lcore packs and seals them.
    Engine,
}

impl Mode {
    /// For the table.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Drop => "sync off (events popped every 200 µs and dropped)",
            Mode::Engine => "sync on (engine packs and seals)",
        }
    }
}

/// What the main lcore's engine did.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineSide {
    /// Records it took (inserts, updates, deletes, digests).
    pub records: u64,
    /// Updates folded into an earlier one of the same datagram.
    pub folded: u64,
    /// Data datagrams and their frame bytes.
    pub data: (u64, u64),
    /// Its thread's on-CPU share while the worker ran.
    pub share: f64,
}

/// One run of the worker.
#[derive(Debug, Clone)]
pub struct WorkerRun {
    /// Who took the events.
    pub mode: Mode,
    /// Bench round.
    pub round: u32,
    /// Connections.
    pub conns: u64,
    /// Packets received by the worker.
    pub packets: u64,
    /// The worker's measured interval.
    pub interval: Interval,
    /// Events accepted by the queue, refused by it (full).
    pub events: (u64, u64),
    /// The engine's side.
    pub engine: Option<EngineSide>,
    /// Checks.
    pub check: Result<(), String>,
}

impl WorkerRun {
    /// On-CPU seconds of the worker.
    fn secs(&self, hz: u64) -> f64 {
        self.interval.on_cpu_cycles() as f64 / hz as f64
    }

    /// New connections per second of the worker's on-CPU time.
    pub fn conns_per_sec(&self, hz: u64) -> f64 {
        self.conns as f64 / self.secs(hz).max(1e-12)
    }

    /// Million packets per second.
    pub fn mpps(&self, hz: u64) -> f64 {
        self.packets as f64 / self.secs(hz).max(1e-12) / 1e6
    }
}

/// Counts a data datagram in `data` (datagrams, bytes with frame overhead).
fn count_data(data: &std::cell::Cell<(u64, u64)>, d: &[u8]) {
    if sync::kind(d) == Some(Kind::Data) {
        let (n, b) = data.get();
        data.set((n + 1, b + (d.len() + sync::FRAME_OVERHEAD) as u64));
    }
}

/// The partner's session alone: acknowledges what engine A sends without opening it.
pub struct Acker {
    session: Session,
    scratch: Vec<u8>,
    copy: Vec<u8>,
    highest: u64,
    acked: u64,
    last_ns: u64,
}

impl Acker {
    /// B's session with A.
    pub fn new(now: u64) -> Acker {
        let me = Party {
            serial: sync::serial("TNDM-B"),
            epoch: EPOCH_B,
        };
        Acker {
            session: Session::new(sync::psk(), me, sync::serial("TNDM-A"), now),
            scratch: vec![0; 512],
            copy: vec![0; 9216],
            highest: 0,
            acked: 0,
            last_ns: 0,
        }
    }

    /// `out` of engine A: notes a data datagram's sequence; opens A's control
    /// datagrams until A's epoch is known (the handshake).
    #[inline]
    pub fn take(&mut self, now: u64, d: &[u8]) {
        match sync::header(d) {
            Some(h) if h.kind == Kind::Data => self.highest = self.highest.max(h.sequence),
            Some(_) if self.session.peer_epoch().is_none() && d.len() <= self.copy.len() => {
                let c = &mut self.copy[..d.len()];
                c.copy_from_slice(d);
                let _ = self.session.open(now, c);
            }
            _ => {}
        }
    }

    /// One round with engine `a` at `now`: its poll (every datagram it sends
    /// goes to `sent`, then is taken here), then the ack due, if any.
    pub fn exchange(
        &mut self,
        a: &mut syncd::engine::Engine,
        now: u64,
        mut sent: impl FnMut(&[u8]),
    ) {
        a.poll(now, &mut |_, d| {
            sent(d);
            self.take(now, d);
        });
        if let Some(d) = self.due(now) {
            a.receive(now, 0, d);
        }
    }

    /// The ack (with a heartbeat) engine A should receive now: after every
    /// [`ACK_EVERY`] data datagrams, or 50 ms.
    pub fn due(&mut self, now: u64) -> Option<&mut [u8]> {
        self.session.peer_epoch()?;
        if self.highest - self.acked < ACK_EVERY && now.saturating_sub(self.last_ns) < 50_000_000 {
            return None;
        }
        let mut body = BodyWriter::new(128);
        let _ = body.push(&Message::Ack {
            cumulative: self.highest,
            first_held: 1,
        });
        let _ = body.push(&Message::Heartbeat(Heartbeat {
            workers: 1,
            interfaces: 2,
            links_heard: 1,
            ..Heartbeat::default()
        }));
        let n = self.session.seal(
            now,
            Kind::Control,
            0,
            self.highest,
            body.as_bytes(),
            &mut self.scratch,
        )?;
        self.acked = self.highest;
        self.last_ns = now;
        Some(&mut self.scratch[..n])
    }
}

/// The server's segment of flow `f` (as it arrives on data1).
fn server_frame(f: &Flow, flags: u8) -> [u8; frames::FRAME_LEN] {
    frames::tcp_frame(
        VMAC1,
        SERVER_MAC,
        (SERVER, SERVER_PORT),
        (f.client, f.port),
        flags,
        f.server_isn.wrapping_add(1),
        f.client_isn.wrapping_add(1),
        64,
    )
}

/// Connections a run opens with `p.flows` mbufs to spare: four packets each.
pub fn conns_for(mbufs: u32) -> u32 {
    (mbufs / 4 / BLOCK).max(2) * BLOCK - BLOCK
}

/// Opens, establishes and resets `conns_for(p.flows)` connections through the worker
/// lcore `wl`, the main lcore taking the events as `mode` says.
pub fn run(
    p: Params,
    pool: &Mempool,
    wl: LcoreId,
    mode: Mode,
    round: u32,
) -> Result<WorkerRun, String> {
    let conns = conns_for(p.flows);
    let blocks = conns / BLOCK;
    let per_ring = (blocks + 1) * 2 * BLOCK;
    let topo = Topology::both_ways(pool, per_ring + 1024).map_err(|e| e.to_string())?;
    let mut unit = Unit::single(pool, Some(p.capacity), topo.worker_ports(0)?);
    unit.teach_neighbours(0)?;
    let pad = Flow::nth(conns);
    unit.establish(&[conns], 0)?;
    let (mut client, mut server) = (Vec::new(), Vec::new());
    let ack = TcpFlags::ACK.bits();
    let rst = TcpFlags::RST.bits() | ack;
    for k in 0..=blocks {
        for j in 0..BLOCK {
            client.push(if k < blocks {
                Flow::nth(k * BLOCK + j).syn(64)
            } else {
                pad.ack(64)
            });
        }
        for j in 0..BLOCK {
            client.push(if k > 0 {
                Flow::nth((k - 1) * BLOCK + j).ack(64)
            } else {
                pad.ack(64)
            });
        }
        for j in 0..BLOCK {
            server.push(if k < blocks {
                Flow::nth(k * BLOCK + j).syn_ack(64)
            } else {
                server_frame(&pad, ack)
            });
        }
        for j in 0..BLOCK {
            server.push(if k > 0 {
                server_frame(&Flow::nth((k - 1) * BLOCK + j), rst)
            } else {
                server_frame(&pad, ack)
            });
        }
    }
    let total = (client.len() + server.len()) as u64;
    let mbufs = |v: &[[u8; frames::FRAME_LEN]]| -> Result<Vec<_>, String> {
        v.iter().map(|fr| unit::mbuf_with(pool, fr)).collect()
    };
    topo::fill(&topo.a_rx[0], mbufs(&client)?)?;
    topo::fill(&topo.b_rx[0], mbufs(&server)?)?;
    drop((client, server));
    unit.drain_events();
    let events = unit.events.clone();
    let inbound = unit.inbound.clone();
    let sinks = (topo.a_tx[0].clone(), topo.b_tx[0].clone());
    let clock = Clock::new();
    // The engine and its partner, connected before the worker starts.
    let mut engine = match mode {
        Mode::Drop => None,
        Mode::Engine => {
            let now = clock.now_ns();
            let mut a = sync::engine(
                "TNDM-A",
                "TNDM-B",
                sync::EPOCH_A,
                1500,
                vec![events.clone()],
                vec![inbound],
                now,
            )?;
            let mut acker = Acker::new(now);
            let deadline = now + 5 * sync::SEC;
            loop {
                let now = clock.now_ns();
                acker.exchange(&mut a, now, |_| {});
                if a.status(now).peer_epoch.is_some() {
                    break;
                }
                if now > deadline {
                    return Err("engine A and its acker did not connect in 5 s".into());
                }
            }
            Some((a, acker))
        }
    };
    let data = std::cell::Cell::new((0u64, 0u64));
    let (tx, rx) = mpsc::channel();
    let handle = lcore::launch(wl, move || {
        let hz = lcore::tsc_hz();
        let clock = Clock::new();
        let stat = ThreadStat::current();
        if let Some(fw) = unit.worker.router().firewall() {
            fw.publish(&unit.counters);
        }
        let before = Counts::of(&unit.counters);
        let created = unit.created();
        let (sent0, over0) = (
            unit.counters.events_sent.get(),
            unit.counters.events_overflow.get(),
        );
        let marked0 = unit.counters.conn_resent.get() + unit.counters.resend_pending.get();
        let stop = Stop {
            packets: total,
            deadline_ns: 600_000_000_000,
        };
        let s0 = stat.start();
        let n = hotloop::run_worker(&mut unit.worker, &clock, stop, None);
        let s1 = stat.end();
        if let Some(fw) = unit.worker.router().firewall() {
            fw.publish(&unit.counters);
        }
        let d = Counts::of(&unit.counters).since(&before);
        let made = unit.created() - created;
        let c = &unit.counters;
        let ev = (c.events_sent.get() - sent0, c.events_overflow.get() - over0);
        let m = u64::from(conns);
        // Every event offered, or, when the queue refused some (this machine
        // stalls a thread for milliseconds now and then), every refusal's
        // entry sent again in full or waiting to be (and its later events
        // folded into that).
        let resent = (c.conn_resent.get() + c.resend_pending.get()).saturating_sub(marked0);
        let told = if ev.1 == 0 {
            ev.0 >= 4 * m
        } else {
            resent == ev.1
        };
        let check = if n == total
            && made == m
            && d.forwarded == total
            && d.tx == total
            && d.dropped == 0
            && (sinks.0.count() + sinks.1.count()) as u64 == total
            && told
        {
            Ok(())
        } else {
            Err(format!(
                "{n} of {total} received, {made} of {m} created, {} in the sinks, {} events for {m} connections, {d:?}; counters: {}",
                sinks.0.count() + sinks.1.count(),
                ev.0 + ev.1,
                unit::nonzero(&unit.counters)
            ))
        };
        let _ = tx.send((n, Interval::between(s0, s1, hz), ev, check));
        drop(unit);
        0
    })
    .map_err(|e| e.to_string())?;
    let stat = ThreadStat::current();
    let s0 = stat.start();
    let mut dropped = 0u64;
    match engine.as_mut() {
        None => {
            // Every 200 µs, as the new-connection run drains them, so that the
            // worker has the queue's cache lines to itself in between; busy
            // meanwhile (not touching the queue), so that the main lcore's CPU
            // is as taken as with the engine, and a shared host's other work
            // lands on it alike in both runs.
            while handle.is_running() {
                while events.pop().is_some() {
                    dropped += 1;
                }
                let until = clock.now_ns() + 200_000;
                while clock.now_ns() < until {
                    std::hint::spin_loop();
                }
            }
        }
        Some((a, acker)) => {
            while handle.is_running() {
                acker.exchange(a, clock.now_ns(), |d| count_data(&data, d));
            }
        }
    }
    let s1 = stat.end();
    handle.wait();
    let (n, interval, ev, mut check) = rx
        .recv()
        .map_err(|_| "the worker lcore sent nothing".to_string())?;
    let hz = lcore::tsc_hz();
    let engine = match engine.as_mut() {
        None => {
            while events.pop().is_some() {
                dropped += 1;
            }
            if check.is_ok() && dropped != ev.0 {
                check = Err(format!("{dropped} events dropped of {} queued", ev.0));
            }
            None
        }
        Some((a, acker)) => {
            // What is left in the queue, and the last datagram's flush delay.
            let until = clock.now_ns() + 5_000_000;
            loop {
                let now = clock.now_ns();
                acker.exchange(a, now, |d| count_data(&data, d));
                if now > until && events.is_empty() {
                    break;
                }
            }
            let s = a.stats();
            let records = s.inserts_sent + s.updates_sent + s.deletes_sent + s.digests_sent;
            if check.is_ok() && (records != ev.0 || s.retransmitted != 0) {
                check = Err(format!(
                    "the engine took {records} of {} events queued; {} datagrams retransmitted",
                    ev.0, s.retransmitted
                ));
            }
            Some(EngineSide {
                records,
                folded: s.updates_coalesced,
                data: data.get(),
                share: Interval::between(s0, s1, hz).share(),
            })
        }
    };
    drop(topo);
    Ok(WorkerRun {
        mode,
        round,
        conns: u64::from(conns),
        packets: n,
        interval,
        events: ev,
        engine,
        check,
    })
}
