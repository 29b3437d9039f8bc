//! Firewall + sync: what state synchronisation costs and carries. Two units'
//! `syncd::engine::Engine`s and shards in one process, as `syncd/tests/pair.rs`
//! drives them, with the HA link replaced by memory.
//!
//! * [`stream`] (goals 1 and 2): events pre-filled in the sending unit's worker event
//!   queues (inserts, compact updates, deletes; topped up between polls, untimed) are
//!   drained by engine A into datagrams of the HA link's MTU; each datagram is
//!   opened by engine B and its records installed into B's shards
//!   (`Shard::receive`). One thread; the TSC is read around each stage: A's
//!   `poll` and its receipt of B's acks (*pack, seal, send*), B's `receive` and
//!   `poll` (*open, parse, deliver*), the shards' `receive` (*install*).
//! * [`bulk`] (goal 3): a shard holding `N` synchronised connections exports
//!   them to a partner that has just appeared; wall time from the first heartbeat to
//!   the partner's shard having installed the last one (and the bulk's end).
//!   Two threads, as the units split the work: the worker lcore runs both units'
//!   workers (A's export walk, B's installs), the main lcore both engines.
//! * [`per_connection`] (goal 4): real TCP lifecycles through A's shards on a
//!   virtual clock, the bytes engine A puts on the HA link per connection.
//!
//! The worker-side cost (goal 5) is [`crate::syncload`].

use crate::cpu::{Interval, ThreadStat};
use dataplane::conntrack::conn::Timeouts;
use dataplane::conntrack::event::{Event, EventKind, EventQueue, Inbound, InboundQueue};
use dataplane::conntrack::key::{FlowKey, Side};
use dataplane::conntrack::record::{Record, SyncId};
use dataplane::conntrack::rss::{self, Toeplitz};
use dataplane::conntrack::shard::{Admission, Flow, L4Packet, Shard, Tracked};
use dataplane::conntrack::tcp::{flags, Segment};
use dpdk_sys::lcore::{self, tsc};
use dpdk_sys::LcoreId;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use syncd::engine::{Engine, EngineConfig, Notice};
use syncd::psk::Psk;
use syncd::wire::{Datagram, Header, Kind};
use workers::Clock;

/// Bytes around a sync datagram (the UDP payload) on the wire: UDP (8), IPv4 (20),
/// Ethernet header (14) and FCS (4). Preamble and inter-frame gap (20) not counted.
pub const FRAME_OVERHEAD: usize = 46;
/// The HA link MTUs measured.
pub const MTUS: [usize; 2] = [1500, 9000];
/// Nanoseconds per second.
pub const SEC: u64 = 1_000_000_000;
/// Shards per unit in the stream and per-connection runs.
const WORKERS: usize = 2;
/// The pair's pre-shared key.
const PSK: [u8; 32] = [0x5a; 32];
/// Boot epochs of the two units.
pub const EPOCH_A: u64 = 1 << 32 | 0x0a;
/// B's.
pub const EPOCH_B: u64 = 1 << 32 | 0x0b;
/// Datagrams one step may carry each way (the stream's window is 256).
const SLOTS: usize = 1024;

/// `s`, NUL-padded to a serial.
pub fn serial(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

/// The engine of unit `me` (A or B) with its partner `peer`, one HA link of `mtu`.
pub fn engine(
    me: &str,
    peer: &str,
    epoch: u64,
    mtu: usize,
    events: Vec<EventQueue>,
    inbound: Vec<InboundQueue>,
    now: u64,
) -> Result<Engine, String> {
    engine_with(me, peer, epoch, mtu, events, inbound, now, |_| {})
}

/// [`engine`], its configuration changed by `tweak` first.
#[allow(clippy::too_many_arguments)]
pub fn engine_with(
    me: &str,
    peer: &str,
    epoch: u64,
    mtu: usize,
    events: Vec<EventQueue>,
    inbound: Vec<InboundQueue>,
    now: u64,
    tweak: impl FnOnce(&mut EngineConfig),
) -> Result<Engine, String> {
    let mut cfg = EngineConfig::new(serial(me), epoch, serial(peer), 1, mtu);
    cfg.interfaces = 2;
    tweak(&mut cfg);
    Engine::new(cfg, Psk::from_bytes(PSK), events, inbound, now).map_err(|e| format!("{e:?}"))
}

/// The pre-shared key of the pair.
pub fn psk() -> Psk {
    Psk::from_bytes(PSK)
}

/// One queue pair per worker, of the sizes `tandemd` uses.
pub fn queues(workers: usize) -> (Vec<EventQueue>, Vec<InboundQueue>) {
    (
        (0..workers)
            .map(|_| EventQueue::new(workers::EVENT_QUEUE_LEN))
            .collect(),
        (0..workers)
            .map(|_| InboundQueue::new(workers::INBOUND_QUEUE_LEN))
            .collect(),
    )
}

/// Datagrams on their way across the (memory) HA link, and what crossed it.
pub struct Wire {
    buf: Vec<u8>,
    lens: Vec<usize>,
    slot: usize,
    /// Data datagrams, and their bytes as Ethernet frames.
    pub data: (u64, u64),
    /// Control datagrams (acks, nacks, heartbeats), and their frame bytes.
    pub control: (u64, u64),
    /// Datagrams that found no slot (a bench bug; checked).
    pub overflow: u64,
}

impl Wire {
    /// Room for `SLOTS` datagrams of up to `mtu` bytes.
    pub fn new(mtu: usize) -> Wire {
        Wire {
            buf: vec![0; SLOTS * mtu],
            lens: Vec::with_capacity(SLOTS),
            slot: mtu,
            data: (0, 0),
            control: (0, 0),
            overflow: 0,
        }
    }

    /// `out` for an engine: counts the datagram and keeps a copy (as a real
    /// transmit copies it into an mbuf).
    #[inline]
    pub fn put(&mut self, d: &[u8]) {
        let frame = (d.len() + FRAME_OVERHEAD) as u64;
        if kind(d) == Some(Kind::Data) {
            self.data.0 += 1;
            self.data.1 += frame;
        } else {
            self.control.0 += 1;
            self.control.1 += frame;
        }
        let i = self.lens.len();
        if i < SLOTS && d.len() <= self.slot {
            self.buf[i * self.slot..i * self.slot + d.len()].copy_from_slice(d);
            self.lens.push(d.len());
        } else {
            self.overflow += 1;
        }
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Datagram `i`, to be opened in place.
    pub fn get_mut(&mut self, i: usize) -> &mut [u8] {
        let at = i * self.slot;
        &mut self.buf[at..at + self.lens[i]]
    }

    /// Forgets the datagrams held (the counts stay).
    pub fn clear(&mut self) {
        self.lens.clear();
    }
}

/// A datagram's kind, read from its (plaintext) header.
pub fn kind(d: &[u8]) -> Option<Kind> {
    header(d).map(|h| h.kind)
}

/// A datagram's (plaintext, authenticated) header.
pub fn header(d: &[u8]) -> Option<Header> {
    Datagram::new_checked(d)
        .ok()
        .and_then(|x| Header::parse(&x).ok())
}

/// What the workers do with their inbound queues between two polls: install
/// (B's shards), or, for a unit without shards, answer a bulk request with an
/// empty export.
fn work(shards: &mut [Shard], inbound: &[InboundQueue], secs: u32) -> u64 {
    let mut n = 0;
    for (s, q) in shards.iter_mut().zip(inbound) {
        // As the worker does: bursts, their loads started together.
        n += s.receive_from(q, usize::MAX, secs) as u64;
        s.service(secs);
    }
    n
}

/// A unit without shards (the sender of the stream runs): an export ends at once.
fn no_workers(inbound: &[InboundQueue], events: &[EventQueue]) {
    for (q, e) in inbound.iter().zip(events) {
        while let Some(item) = q.pop() {
            if item == Inbound::Export {
                e.push(Event::BulkDone);
            }
        }
    }
}

/// The on-CPU share of each stage's cycles in one epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageEpoch {
    /// Records engine A took from the queues in it.
    pub records: u64,
    /// TSC cycles of A's `poll` and of A's `receive` of B's acks.
    pub send: u64,
    /// TSC cycles of B's `receive` and `poll`.
    pub open: u64,
    /// TSC cycles of B's shards' `receive`.
    pub install: u64,
    /// The epoch's wall and preempted cycles (scheduler's view).
    pub interval: Interval,
}

impl StageEpoch {
    /// On-CPU cycles per record of one stage (its TSC cycles less the epoch's
    /// preempted share).
    fn per_record(&self, cycles: u64) -> f64 {
        cycles as f64 * self.interval.share() / self.records.max(1) as f64
    }
}

/// Which records a stream run carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Full states (a new connection).
    Insert,
    /// Compact updates of connections the partner holds.
    Update,
    /// Deletes.
    Delete,
}

impl RecordKind {
    /// For the table.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Insert => "insert (96 B)",
            RecordKind::Update => "compact update (32 B)",
            RecordKind::Delete => "delete (12 B)",
        }
    }
}

/// One stream run: records of one kind on an HA link of one MTU.
#[derive(Debug, Clone)]
pub struct StreamRow {
    /// HA link IP MTU.
    pub mtu: usize,
    /// What the records were.
    pub kind: RecordKind,
    /// Records sent (and received, and installed: checked).
    pub records: u64,
    /// Data datagrams A → B.
    pub datagrams: u64,
    /// Their bytes as Ethernet frames.
    pub frame_bytes: u64,
    /// Control datagrams B → A (acks, heartbeats) and their frame bytes.
    pub acks: (u64, u64),
    /// Measured epochs.
    pub epochs: Vec<StageEpoch>,
    /// Datagrams A sent again (an ack 50 ms late: the thread was preempted).
    pub retransmitted: u64,
    /// Checks.
    pub check: Result<(), String>,
}

impl StreamRow {
    /// Cycles per record of `stage` in the median epoch (epochs with fewer than
    /// a tenth of the largest's records left out).
    fn median(&self, stage: impl Fn(&StageEpoch) -> f64) -> f64 {
        let most = self.epochs.iter().map(|e| e.records).max().unwrap_or(0);
        let mut v: Vec<f64> = self
            .epochs
            .iter()
            .filter(|e| e.records * 10 >= most && e.records > 0)
            .map(stage)
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// On-CPU cycles per record: pack, seal and send.
    pub fn send_cycles(&self) -> f64 {
        self.median(|e| e.per_record(e.send))
    }

    /// Open, parse, deliver.
    pub fn open_cycles(&self) -> f64 {
        self.median(|e| e.per_record(e.open))
    }

    /// Install into the shards.
    pub fn install_cycles(&self) -> f64 {
        self.median(|e| e.per_record(e.install))
    }

    /// Open + install, per epoch.
    pub fn receive_cycles(&self) -> f64 {
        self.median(|e| e.per_record(e.open + e.install))
    }

    /// Frame bytes per record.
    pub fn bytes_per_record(&self) -> f64 {
        self.frame_bytes as f64 / self.records.max(1) as f64
    }

    /// Records per data datagram.
    pub fn per_datagram(&self) -> f64 {
        self.records as f64 / self.datagrams.max(1) as f64
    }

    /// CPU share over the epochs.
    pub fn share(&self) -> f64 {
        self.epochs
            .iter()
            .fold(Interval::default(), |a, e| a.add(e.interval))
            .share()
    }

    /// Adds a later round's run of the same row.
    pub fn merge(&mut self, o: StreamRow) {
        self.records += o.records;
        self.datagrams += o.datagrams;
        self.frame_bytes += o.frame_bytes;
        self.acks.0 += o.acks.0;
        self.acks.1 += o.acks.1;
        self.epochs.extend(o.epochs);
        self.retransmitted += o.retransmitted;
        if self.check.is_ok() {
            self.check = o.check;
        }
    }
}

/// The `i`-th connection of the stream runs: 100.64/10 clients, ports from 1024,
/// to 198.19.0.2:443.
fn stream_key(i: u64) -> (FlowKey, Side) {
    let host = u32::try_from(i % 60_000).unwrap_or(0);
    let port = u16::try_from(1024 + i / 60_000).unwrap_or(u16::MAX);
    FlowKey::from_packet(
        IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(100, 64, 0, 1)) + host,
        )),
        port,
        IpAddr::V4(SERVER),
        443,
        6,
    )
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

fn tcp(flags: u8, seq: u32, ack: u32) -> L4Packet {
    L4Packet::Tcp(Segment {
        seq,
        ack,
        window: 64240,
        flags,
        wscale: Some(7),
        ..Segment::default()
    })
}

fn admission() -> Admission {
    Admission {
        rule: 0,
        sync: true,
        log: false,
        in_iface: 0,
        out_iface: 1,
    }
}

/// Opens `key` as a client's connection through `s` (SYN, SYN/ACK, ACK); every
/// packet must pass.
fn handshake(s: &mut Shard, key: FlowKey, side: Side, secs: u32) -> Result<(), String> {
    let f = |side, l4| Flow { key, side, l4 };
    s.create(&f(side, tcp(flags::SYN, 1000, 0)), admission(), secs)
        .map_err(|e| format!("create: {e:?}"))?;
    let a = s.track(
        &f(side.other(), tcp(flags::SYN | flags::ACK, 5000, 1001)),
        secs,
    );
    let b = s.track(&f(side, tcp(flags::ACK, 1001, 5001)), secs);
    if a != Tracked::Pass || b != Tracked::Pass {
        return Err(format!("handshake: {a:?}, {b:?}"));
    }
    Ok(())
}

/// A record of an ESTABLISHED connection, as a shard makes it, to copy with other
/// names and keys.
fn template() -> Result<Record, String> {
    let mut s = Shard::new(16, 1, Timeouts::default(), EventQueue::new(16));
    s.set_identity(EPOCH_A, 0);
    let (key, side) = stream_key(0);
    handshake(&mut s, key, side, 1)?;
    let (id, _, _) = s.table().iter().next().ok_or("no entry")?;
    Ok(s.record(id, 1))
}

/// One unit pair with B's shards, stepped by one thread.
struct Pipe {
    a: Engine,
    b: Engine,
    a_events: Vec<EventQueue>,
    a_inbound: Vec<InboundQueue>,
    b_inbound: Vec<InboundQueue>,
    b_shards: Vec<Shard>,
    wire: Wire,
    back: Wire,
    /// A's workers are shards of the caller's (else [`no_workers`] answers).
    a_shards: bool,
}

impl Pipe {
    /// A with `WORKERS` event queues and no shards; B with `WORKERS` shards of
    /// `capacity`.
    fn new(
        mtu: usize,
        capacity: usize,
        now: u64,
        tweak: impl Fn(&mut EngineConfig),
    ) -> Result<Pipe, String> {
        let (a_events, a_inbound) = queues(WORKERS);
        let (b_events, b_inbound) = queues(WORKERS);
        let b_shards = b_events
            .iter()
            .enumerate()
            .map(|(w, q)| {
                let mut s = Shard::new(capacity, 11 + w as u64, Timeouts::default(), q.clone());
                s.set_identity(EPOCH_B, u8::try_from(w).unwrap_or(0));
                s
            })
            .collect();
        Ok(Pipe {
            a: engine_with(
                "TNDM-A",
                "TNDM-B",
                EPOCH_A,
                mtu,
                a_events.clone(),
                a_inbound.clone(),
                now,
                &tweak,
            )?,
            b: engine_with(
                "TNDM-B",
                "TNDM-A",
                EPOCH_B,
                mtu,
                b_events,
                b_inbound.clone(),
                now,
                &tweak,
            )?,
            a_events,
            a_inbound,
            b_inbound,
            b_shards,
            wire: Wire::new(mtu),
            back: Wire::new(mtu),
            a_shards: false,
        })
    }

    /// One round: A polls, B takes each datagram (polling after each, as its
    /// lcore would, which acks every 32) and its shards install, A takes the
    /// acks. Adds each stage's TSC cycles to `t`; returns whether anything moved.
    fn step(&mut self, now: u64, t: &mut StageEpoch) -> bool {
        let secs = u32::try_from(now / SEC).unwrap_or(u32::MAX);
        let Pipe {
            a,
            b,
            wire,
            back,
            b_shards,
            b_inbound,
            a_inbound,
            a_events,
            a_shards,
        } = self;
        wire.clear();
        back.clear();
        let t0 = tsc();
        let polled = a.poll(now, &mut |_, d| wire.put(d));
        let t1 = tsc();
        let (mut open, mut install) = (0, 0);
        for i in 0..wire.len() {
            let t2 = tsc();
            b.receive(now, 0, wire.get_mut(i));
            b.poll(now, &mut |_, d| back.put(d));
            let t3 = tsc();
            work(b_shards, b_inbound, secs);
            open += t3 - t2;
            install += tsc() - t3;
        }
        let t4 = tsc();
        if wire.len() == 0 {
            b.poll(now, &mut |_, d| back.put(d));
        }
        let t5 = tsc();
        work(b_shards, b_inbound, secs);
        let t6 = tsc();
        for i in 0..back.len() {
            a.receive(now, 0, back.get_mut(i));
        }
        let t7 = tsc();
        if !*a_shards {
            no_workers(a_inbound, a_events);
        }
        let moved = polled > 0 || wire.len() > 0 || back.len() > 0;
        if moved {
            t.send += (t1 - t0) + (t7 - t6);
            t.open += open + (t5 - t4);
            t.install += install + (t6 - t5);
        }
        moved
    }

    /// Until both engines know each other and B's bulk (of A's empty table) is
    /// in: what `tandemd` does before traffic.
    fn connect(&mut self, clock: &Clock) -> Result<(), String> {
        let deadline = clock.now_ns() + 5 * SEC;
        let mut t = StageEpoch::default();
        loop {
            let now = clock.now_ns();
            self.step(now, &mut t);
            let (a, b) = (self.a.status(now), self.b.status(now));
            let done = |s: &syncd::engine::Status| {
                s.peer_epoch.is_some()
                    && matches!(s.bulk_in, syncd::bulk::IncomingState::Done { .. })
            };
            if done(&a) && done(&b) {
                return Ok(());
            }
            if now > deadline {
                return Err(format!("no handshake in 5 s: A {a:?}, B {b:?}"));
            }
        }
    }
}

/// Fills the queues with `make(next..)` while they take them (`pending`: the one
/// a full queue refused).
fn top_up(
    queues: &[EventQueue],
    next: &mut u64,
    total: u64,
    pending: &mut Option<(usize, Event)>,
    make: &dyn Fn(u64) -> (usize, Event),
) {
    loop {
        let (w, e) = match pending.take() {
            Some(p) => p,
            None if *next < total => {
                let p = make(*next);
                *next += 1;
                p
            }
            None => return,
        };
        if !queues[w].push(e) {
            *pending = Some((w, e));
            return;
        }
    }
}

/// Goals 1 and 2: `entries` connections inserted, updated `rounds` times, deleted,
/// on an HA link of each of [`MTUS`]; one row per MTU and kind. Runs on the
/// calling thread.
pub fn stream(entries: u32, rounds: u32, hz: u64) -> Result<Vec<StreamRow>, String> {
    let template = template()?;
    let rss = Toeplitz::symmetric();
    let n = u64::from(entries);
    let creator = u32::try_from(EPOCH_A & 0xff_ffff).unwrap_or(0);
    // Each connection's worker, as RSS gives it on both units.
    let owners: Vec<u8> = (0..n)
        .map(|i| {
            let w = rss::owner(rss.hash_flow(&stream_key(i).0), WORKERS);
            u8::try_from(w).unwrap_or(0)
        })
        .collect();
    let record = |i: u64| {
        let (key, side) = stream_key(i);
        let w = owners[usize::try_from(i).unwrap_or(0)];
        let mut r = template;
        r.id = SyncId::new(creator, w, u32::try_from(i).unwrap_or(u32::MAX));
        r.key = key;
        r.orig_side = side;
        (usize::from(w), r)
    };
    let stat = ThreadStat::current();
    let mut rows = Vec::new();
    for mtu in MTUS {
        let clock = Clock::new();
        let mut pipe = Pipe::new(mtu, entries as usize + 1024, clock.now_ns(), |_| {})?;
        pipe.connect(&clock)?;
        let insert = |i: u64| {
            let (w, record) = record(i);
            (
                w,
                Event::Conn {
                    kind: EventKind::Created,
                    record,
                },
            )
        };
        rows.push(phase(
            &mut pipe,
            &clock,
            &stat,
            hz,
            RecordKind::Insert,
            n,
            &insert,
        ));
        let update = |i: u64| {
            let round = u32::try_from(i / n + 1).unwrap_or(0);
            let (w, mut record) = record(i % n);
            for e in &mut record.progress.edges {
                e.end = e.end.wrapping_add(round * 1448);
                e.maxend = e.maxend.wrapping_add(round * 1448);
            }
            (
                w,
                Event::Conn {
                    kind: EventKind::Refresh,
                    record,
                },
            )
        };
        rows.push(phase(
            &mut pipe,
            &clock,
            &stat,
            hz,
            RecordKind::Update,
            n * u64::from(rounds),
            &update,
        ));
        let delete = |i: u64| {
            let (w, r) = record(i);
            (
                w,
                Event::Deleted {
                    id: r.id,
                    key: r.key,
                },
            )
        };
        rows.push(phase(
            &mut pipe,
            &clock,
            &stat,
            hz,
            RecordKind::Delete,
            n,
            &delete,
        ));
        // Everything the partner held is gone again.
        let left: usize = pipe.b_shards.iter().map(|s| s.table().len()).sum();
        if left != 0 {
            if let Some(r) = rows.last_mut() {
                r.check = Err(format!("{left} entries left on B after the deletes"));
            }
        }
    }
    Ok(rows)
}

/// Records A took from its queues so far.
fn taken(e: &Engine) -> u64 {
    let s = e.stats();
    s.inserts_sent + s.updates_sent + s.deletes_sent
}

/// What B's shards did so far: installed, updated, deleted, and what went wrong
/// (stale, unknown, bad, table full, unknown deletes).
fn received(shards: &[Shard]) -> (u64, u64, u64, u64) {
    shards.iter().fold((0, 0, 0, 0), |a, s| {
        let r = s.received();
        (
            a.0 + r.installed,
            a.1 + r.updated,
            a.2 + r.deleted,
            a.3 + r.stale + r.unknown + r.bad + r.table_full + r.unknown_deletes,
        )
    })
}

/// Records of one kind through the pipe, until every one is handled by B's shards.
#[allow(clippy::too_many_arguments)]
fn phase(
    pipe: &mut Pipe,
    clock: &Clock,
    stat: &ThreadStat,
    hz: u64,
    kind: RecordKind,
    total: u64,
    make: &dyn Fn(u64) -> (usize, Event),
) -> StreamRow {
    const EPOCH_RECORDS: u64 = 16_384;
    let mtu = pipe.wire.slot;
    let before = received(&pipe.b_shards);
    let taken0 = taken(&pipe.a);
    let (data0, acks0) = (pipe.wire.data, pipe.back.control);
    let a0 = pipe.a.stats();
    let b0 = pipe.b.stats();
    let done = |p: &Pipe| {
        let r = received(&p.b_shards);
        let got = match kind {
            RecordKind::Insert => r.0 - before.0,
            RecordKind::Update => r.1 - before.1,
            RecordKind::Delete => r.2 - before.2,
        };
        got + (r.3 - before.3) >= total
    };
    let (mut next, mut pending) = (0u64, None);
    let mut epochs = Vec::new();
    let mut cur = StageEpoch::default();
    let mut s0 = stat.start();
    let mut epoch_taken = taken0;
    let deadline = clock.now_ns() + 120 * SEC;
    let mut timed_out = false;
    loop {
        top_up(&pipe.a_events, &mut next, total, &mut pending, make);
        let now = clock.now_ns();
        pipe.step(now, &mut cur);
        let t = taken(&pipe.a);
        if t - epoch_taken >= EPOCH_RECORDS {
            let s1 = stat.end();
            cur.records = t - epoch_taken;
            cur.interval = Interval::between(s0, s1, hz);
            epochs.push(cur);
            cur = StageEpoch::default();
            epoch_taken = t;
            s0 = stat.start();
        }
        if next >= total && pending.is_none() && done(pipe) {
            break;
        }
        if now > deadline {
            timed_out = true;
            break;
        }
    }
    let t = taken(&pipe.a);
    if t > epoch_taken {
        let s1 = stat.end();
        cur.records = t - epoch_taken;
        cur.interval = Interval::between(s0, s1, hz);
        epochs.push(cur);
    }
    let r = received(&pipe.b_shards);
    let (a1, b1) = (pipe.a.stats(), pipe.b.stats());
    let records = t - taken0;
    let dropped: u64 = b1.dropped.iter().sum::<u64>() - b0.dropped.iter().sum::<u64>();
    let problems = r.3 - before.3;
    let check = if timed_out {
        Err(format!(
            "not done in 120 s: {} of {total} taken, B's shards {r:?}",
            records
        ))
    } else if records != total
        || problems != 0
        || dropped != 0
        || a1.gave_up != a0.gave_up
        || b1.receive_backpressure != b0.receive_backpressure
        || pipe.wire.overflow + pipe.back.overflow != 0
    {
        Err(format!(
            "{records} of {total} taken; B: {problems} stale/unknown/bad/full, {dropped} datagrams dropped, {} backpressure; A: {} given up; {} slots short",
            b1.receive_backpressure - b0.receive_backpressure,
            a1.gave_up - a0.gave_up,
            pipe.wire.overflow + pipe.back.overflow
        ))
    } else {
        Ok(())
    };
    StreamRow {
        mtu,
        kind,
        records,
        datagrams: pipe.wire.data.0 - data0.0,
        frame_bytes: pipe.wire.data.1 - data0.1,
        acks: (pipe.back.control.0 - acks0.0, pipe.back.control.1 - acks0.1),
        epochs,
        retransmitted: a1.retransmitted - a0.retransmitted,
        check,
    }
}

/// Goal 3: a bulk of `entries` connections.
#[derive(Debug, Clone)]
pub struct BulkRun {
    /// Connections A's shard held and B's installed.
    pub entries: u64,
    /// Wall seconds from the first heartbeat to B's worker handling the bulk's end.
    pub seconds: f64,
    /// Data datagrams and their frame bytes.
    pub data: (u64, u64),
    /// On-CPU share of the worker thread and of the main (engines) thread.
    pub shares: (f64, f64),
    /// Datagrams A sent again, and datagrams B left unacknowledged because its
    /// worker was behind.
    pub retransmitted: u64,
    /// B's backpressure events.
    pub backpressure: u64,
    /// Entries A's shard exported (more than `entries` when a bulk started over),
    /// bulks A started, shard resyncs B asked for.
    pub exported: (u64, u64, u64),
    /// Checks.
    pub check: Result<(), String>,
}

impl BulkRun {
    /// Entries per second.
    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.seconds.max(1e-9)
    }
}

/// The connection `i` of the bulk (and per-connection) runs.
fn conn_key(i: u32) -> (FlowKey, Side) {
    let host = i % 60_000;
    let port = u16::try_from(1024 + i / 60_000).unwrap_or(u16::MAX);
    FlowKey::from_packet(
        IpAddr::V4(Ipv4Addr::from(u32::from(CLIENT) + host)),
        port,
        IpAddr::V4(SERVER),
        443,
        6,
    )
}

/// Goal 3: A's one shard holds `entries` established connections; B (one shard,
/// empty) appears; A exports, packs and seals, B opens, B's shard installs. The
/// workers of both units on `wl` (worker lcore), both engines on the calling
/// thread (main lcore).
pub fn bulk(entries: u32, wl: LcoreId, hz: u64) -> Result<BulkRun, String> {
    let clock = Clock::new();
    let (a_events, a_inbound) = queues(1);
    let (b_events, b_inbound) = queues(1);
    let cap = entries as usize + 1024;
    let mut a_shard = Shard::new(cap, 21, Timeouts::default(), a_events[0].clone());
    a_shard.set_identity(EPOCH_A, 0);
    let mut b_shard = Shard::new(cap, 22, Timeouts::default(), b_events[0].clone());
    b_shard.set_identity(EPOCH_B, 0);
    for i in 0..entries {
        let (key, side) = conn_key(i);
        handshake(&mut a_shard, key, side, 1)?;
        if i % 1024 == 0 {
            while a_events[0].pop().is_some() {}
        }
    }
    while a_events[0].pop().is_some() {}
    let n = a_shard.table().len();
    if n != entries as usize {
        return Err(format!("A holds {n} of {entries}"));
    }
    let now = clock.now_ns();
    let mut a = engine(
        "TNDM-A",
        "TNDM-B",
        EPOCH_A,
        1500,
        a_events.clone(),
        a_inbound.clone(),
        now,
    )?;
    let mut b = engine(
        "TNDM-B",
        "TNDM-A",
        EPOCH_B,
        1500,
        b_events.clone(),
        b_inbound.clone(),
        now,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (stop_w, a_in, b_in) = (
        Arc::clone(&stop),
        a_inbound[0].clone(),
        b_inbound[0].clone(),
    );
    let go = Arc::new(AtomicBool::new(false));
    let go_w = Arc::clone(&go);
    let handle = lcore::launch(wl, move || {
        let stat = ThreadStat::current();
        while !go_w.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let s0 = stat.start();
        let mut end = None;
        // One poll of each unit's worker, as `Worker::poll_once` does it
        // without packets: up to `INBOUND_BUDGET` inbound items, then `service`.
        while end.is_none() && !stop_w.load(Ordering::Relaxed) {
            let secs = u32::try_from(clock.now_ns() / SEC).unwrap_or(u32::MAX);
            for _ in 0..workers::worker::INBOUND_BUDGET {
                let Some(item) = a_in.pop() else { break };
                a_shard.receive(item, secs);
            }
            a_shard.service(secs);
            for _ in 0..workers::worker::INBOUND_BUDGET {
                let Some(item) = b_in.pop() else { break };
                let last = matches!(item, Inbound::BulkEnd(_));
                b_shard.receive(item, secs);
                if last {
                    end = Some(Instant::now());
                    break;
                }
            }
            b_shard.service(secs);
        }
        let s1 = stat.end();
        let _ = tx.send((
            end,
            b_shard.table().len(),
            a_shard.stats().exported,
            b_shard.received(),
            Interval::between(s0, s1, hz).share(),
        ));
        0
    })
    .map_err(|e| e.to_string())?;
    let stat = ThreadStat::current();
    let mut wire = Wire::new(1500);
    let mut back = Wire::new(1500);
    let mut notices = Vec::new();
    let deadline = clock.now_ns() + 60 * SEC;
    go.store(true, Ordering::Release);
    let start = Instant::now();
    let s0 = stat.start();
    while handle.is_running() {
        let now = clock.now_ns();
        wire.clear();
        back.clear();
        a.poll(now, &mut |_, d| wire.put(d));
        for i in 0..wire.len() {
            b.receive(now, 0, wire.get_mut(i));
            b.poll(now, &mut |_, d| back.put(d));
        }
        if wire.len() == 0 {
            b.poll(now, &mut |_, d| back.put(d));
        }
        for i in 0..back.len() {
            a.receive(now, 0, back.get_mut(i));
        }
        while let Some(n) = b.take_notice() {
            notices.push(n);
        }
        if now > deadline {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let s1 = stat.end();
    handle.wait();
    let (end, installed, exported, got, worker_share) = rx
        .recv()
        .map_err(|_| "the worker lcore sent nothing".to_string())?;
    let (sa, sb) = (a.stats(), b.stats());
    let seconds = end.map_or(f64::NAN, |e| e.duration_since(start).as_secs_f64());
    let dropped: u64 = sb.dropped.iter().sum();
    let check = if end.is_none() {
        Err(format!(
            "no bulk end in 60 s: B installed {installed} of {entries}, A exported {exported}"
        ))
    } else if installed != entries as usize
        || got.installed != exported
        || dropped != 0
        || !notices.contains(&Notice::BulkReceived)
    {
        Err(format!(
            "A exported {exported}, B installed {} ({installed} in its table) of {entries}, {dropped} datagrams dropped, bulk received: {}",
            got.installed,
            notices.contains(&Notice::BulkReceived)
        ))
    } else {
        Ok(())
    };
    Ok(BulkRun {
        entries: u64::from(entries),
        seconds,
        data: wire.data,
        shares: (worker_share, Interval::between(s0, s1, hz).share()),
        retransmitted: sa.retransmitted,
        backpressure: sb.receive_backpressure,
        exported: (
            exported,
            counter(&a, "sync.bulks_started"),
            sb.resyncs_asked,
        ),
        check,
    })
}

/// One of the engine's counters (`sync.<name>`).
fn counter(e: &Engine, name: &str) -> u64 {
    let mut v = Vec::new();
    e.counters(0, &mut v);
    v.into_iter().find(|(n, _)| n == name).map_or(0, |(_, x)| x)
}

/// How the connections of the per-connection run end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Client FIN, server FIN/ACK, client ACK; TIME_WAIT, deleted at its expiry.
    Fin,
    /// Client RST; CLOSE, deleted at its expiry.
    Rst,
}

impl Close {
    /// For the table.
    pub fn name(self) -> &'static str {
        match self {
            Close::Fin => "FIN, FIN/ACK, ACK (TIME_WAIT 120 s)",
            Close::Rst => "RST (CLOSE 10 s)",
        }
    }
}

/// Goal 4: what the HA link carried for a number of whole connections.
#[derive(Debug, Clone)]
pub struct ConnBytes {
    /// How they ended.
    pub close: Close,
    /// Connections.
    pub conns: u64,
    /// New connections per second (0: one alone).
    pub rate: f64,
    /// Handshake round trip and life (ns).
    pub rtt_ns: u64,
    /// From the handshake's end to the close.
    pub life_ns: u64,
    /// Data datagrams and their frame bytes.
    pub data: (u64, u64),
    /// Inserts, updates (before folding), deletes sent; updates folded.
    pub records: [u64; 4],
    /// Checks.
    pub check: Result<(), String>,
}

impl ConnBytes {
    /// Frame bytes per connection.
    pub fn bytes_per_conn(&self) -> f64 {
        self.data.1 as f64 / self.conns.max(1) as f64
    }

    /// Records on the wire per connection (folded updates counted once).
    pub fn records_per_conn(&self) -> f64 {
        let [i, u, d, folded] = self.records;
        (i + u + d - folded) as f64 / self.conns.max(1) as f64
    }

    /// Data datagrams per connection.
    pub fn datagrams_per_conn(&self) -> f64 {
        self.data.0 as f64 / self.conns.max(1) as f64
    }
}

/// Goal 4: `conns` TCP connections opened at `rate` per second (one every
/// `1/rate` s) through A's shards on a virtual clock, handshake over `rtt_ns`,
/// closed `life_ns` later as `close` says, and left to expire; the bytes engine A
/// sent. One thread.
pub fn per_connection(
    conns: u32,
    rate: f64,
    rtt_ns: u64,
    life_ns: u64,
    close: Close,
) -> Result<ConnBytes, String> {
    let rss = Toeplitz::symmetric();
    let mut now = SEC;
    // No digests: theirs are bytes per second (a record per shard every 2 s), not
    // per connection.
    let mut pipe = Pipe::new(1500, conns as usize + 1024, now, |c| {
        c.digest_interval_ns = u64::MAX / 4;
    })?;
    let mut a_shards: Vec<Shard> = pipe
        .a_events
        .iter()
        .enumerate()
        .map(|(w, q)| {
            let mut s = Shard::new(
                conns as usize + 1024,
                31 + w as u64,
                Timeouts::default(),
                q.clone(),
            );
            s.set_identity(EPOCH_A, u8::try_from(w).unwrap_or(0));
            s
        })
        .collect();
    let a_inbound = pipe.a_inbound.clone();
    pipe.a_shards = true;
    let mut t = StageEpoch::default();
    // Connected first (heartbeats, the empty bulks), on the same virtual clock.
    let mut connected = false;
    for _ in 0..10_000 {
        now += 100_000;
        pipe.step(now, &mut t);
        let secs = u32::try_from(now / SEC).unwrap_or(u32::MAX);
        work(&mut a_shards, &a_inbound, secs);
        for s in &mut a_shards {
            s.service(secs);
        }
        let done = |s: syncd::engine::Status| {
            s.peer_epoch.is_some() && matches!(s.bulk_in, syncd::bulk::IncomingState::Done { .. })
        };
        if done(pipe.a.status(now)) && done(pipe.b.status(now)) {
            connected = true;
            break;
        }
    }
    if !connected {
        return Err("no handshake".into());
    }
    let (data0, a0) = (pipe.wire.data, pipe.a.stats());
    let start = now;
    let at = |i: u32| {
        start
            + if rate > 0.0 {
                crate::cpu::cycles(f64::from(i) / rate, SEC)
            } else {
                0
            }
    };
    // (offset, from the client?, flags, seq, ack) of each packet after the SYN.
    let (cs, ss) = (1001u32, 5001u32);
    let mut packets: Vec<(u64, bool, u8, u32, u32)> = vec![
        (rtt_ns / 2, false, flags::SYN | flags::ACK, 5000, 1001),
        (rtt_ns, true, flags::ACK, cs, ss),
    ];
    let closing = rtt_ns + life_ns;
    match close {
        Close::Rst => packets.push((closing, true, flags::RST | flags::ACK, cs, ss)),
        Close::Fin => {
            packets.push((closing, true, flags::FIN | flags::ACK, cs, ss));
            packets.push((
                closing + rtt_ns / 2,
                false,
                flags::FIN | flags::ACK,
                ss,
                cs + 1,
            ));
            packets.push((closing + rtt_ns, true, flags::ACK, cs + 1, ss + 1));
        }
    }
    let key = |i: u32| {
        let (k, side) = conn_key(i);
        (k, side, rss::owner(rss.hash_flow(&k), WORKERS))
    };
    let mut created = 0u32;
    let mut cursors = vec![0u32; packets.len()];
    let mut refused = Vec::new();
    let last = at(conns.saturating_sub(1)) + packets.last().map_or(0, |p| p.0);
    let end = last + 300 * SEC;
    let mut next_expiry = now;
    while now < end {
        let busy = created < conns || cursors.iter().any(|&c| c < conns);
        now += if busy { 100_000 } else { 10_000_000 };
        let secs = u32::try_from(now / SEC).unwrap_or(u32::MAX);
        while created < conns && at(created) <= now {
            let (k, side, w) = key(created);
            let f = Flow {
                key: k,
                side,
                l4: tcp(flags::SYN, 1000, 0),
            };
            if let Err(e) = a_shards[w].create(&f, admission(), secs) {
                refused.push(format!("create {created}: {e:?}"));
            }
            created += 1;
        }
        for (p, &(offset, client, fl, seq, ack)) in packets.iter().enumerate() {
            while cursors[p] < created && at(cursors[p]) + offset <= now {
                let (k, side, w) = key(cursors[p]);
                let f = Flow {
                    key: k,
                    side: if client { side } else { side.other() },
                    l4: tcp(fl, seq, ack),
                };
                let r = a_shards[w].track(&f, secs);
                if r != Tracked::Pass && refused.len() < 4 {
                    refused.push(format!("conn {} packet {p}: {r:?}", cursors[p]));
                }
                cursors[p] += 1;
            }
        }
        work(&mut a_shards, &a_inbound, secs);
        // Expiry as a worker runs it: one bounded call per 10-ms timer.
        if now >= next_expiry {
            next_expiry = now + 10_000_000;
            for s in a_shards.iter_mut().chain(&mut pipe.b_shards) {
                s.expire(secs);
            }
        }
        pipe.step(now, &mut t);
        let left_a: usize = a_shards.iter().map(|s| s.table().len()).sum();
        let left_b: usize = pipe.b_shards.iter().map(|s| s.table().len()).sum();
        if !busy && left_a == 0 && left_b == 0 && pipe.a.status(now).sender.unacked == 0 {
            break;
        }
    }
    let a1 = pipe.a.stats();
    let r = received(&pipe.b_shards);
    let left_a: usize = a_shards.iter().map(|s| s.table().len()).sum();
    let left_b: usize = pipe.b_shards.iter().map(|s| s.table().len()).sum();
    let n = u64::from(conns);
    let lost: u64 = a_shards
        .iter()
        .map(|s| s.stats().deletes_lost + s.events().overflow.get())
        .sum();
    let check = if !refused.is_empty() {
        Err(format!("refused: {}", refused.join("; ")))
    } else if lost != 0 {
        Err(format!("{lost} events refused by A's full queues"))
    } else if left_a != 0 || left_b != 0 || r.0 != n || r.2 != n || r.3 != 0 {
        Err(format!(
            "left: A {left_a}, B {left_b}; B installed {}, deleted {}, {} stale/unknown/bad",
            r.0, r.2, r.3
        ))
    } else if a1.retransmitted != a0.retransmitted {
        Err(format!(
            "{} retransmitted",
            a1.retransmitted - a0.retransmitted
        ))
    } else {
        Ok(())
    };
    Ok(ConnBytes {
        close,
        conns: n,
        rate,
        rtt_ns,
        life_ns,
        data: (pipe.wire.data.0 - data0.0, pipe.wire.data.1 - data0.1),
        records: [
            a1.inserts_sent - a0.inserts_sent,
            a1.updates_sent - a0.updates_sent,
            a1.deletes_sent - a0.deletes_sent,
            a1.updates_coalesced - a0.updates_coalesced,
        ],
        check,
    })
}

/// Everything the sync scenario found, over the rounds.
#[derive(Debug, Default)]
pub struct Results {
    /// Goals 1 and 2, one row per MTU and record kind (rounds pooled).
    pub stream: Vec<Result<StreamRow, String>>,
    /// Goal 3, one per round.
    pub bulk: Vec<Result<BulkRun, String>>,
    /// Goal 4 (round 1 only: the virtual clock makes it deterministic).
    pub per_conn: Vec<Result<ConnBytes, String>>,
    /// Goal 5, sync off and on, each round.
    pub worker: Vec<Result<crate::syncload::WorkerRun, String>>,
}

impl Results {
    /// Adds a round's stream rows to the earlier rounds'.
    pub fn add_stream(&mut self, r: Result<Vec<StreamRow>, String>) {
        match r {
            Err(e) => self.stream.push(Err(e)),
            Ok(rows) => {
                for row in rows {
                    let same = self
                        .stream
                        .iter_mut()
                        .flatten()
                        .find(|x| x.mtu == row.mtu && x.kind == row.kind);
                    match same {
                        Some(x) => x.merge(row),
                        None => self.stream.push(Ok(row)),
                    }
                }
            }
        }
    }

    /// Runs that failed or whose checks did not add up.
    pub fn failures(&self) -> usize {
        fn bad<T>(r: &Result<T, String>, check: impl Fn(&T) -> bool) -> bool {
            r.as_ref().map_or(true, |t| !check(t))
        }
        self.stream
            .iter()
            .filter(|r| bad(r, |x| x.check.is_ok()))
            .count()
            + self
                .bulk
                .iter()
                .filter(|r| bad(r, |x| x.check.is_ok()))
                .count()
            + self
                .per_conn
                .iter()
                .filter(|r| bad(r, |x| x.check.is_ok()))
                .count()
            + self
                .worker
                .iter()
                .filter(|r| bad(r, |x| x.check.is_ok()))
                .count()
    }

    /// The stream row of `mtu` and `kind`, if it ran and its checks passed.
    pub fn row(&self, mtu: usize, kind: RecordKind) -> Option<&StreamRow> {
        self.stream
            .iter()
            .flatten()
            .find(|r| r.mtu == mtu && r.kind == kind && r.check.is_ok())
    }

    /// The median bulk (checks passed), by wall time.
    pub fn median_bulk(&self) -> Option<&BulkRun> {
        let mut v: Vec<&BulkRun> = self
            .bulk
            .iter()
            .flatten()
            .filter(|b| b.check.is_ok())
            .collect();
        v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        v.get(v.len().saturating_sub(1) / 2).copied()
    }

    /// Median new connections/s of the worker in `mode` (checks passed).
    pub fn median_worker(&self, mode: crate::syncload::Mode, hz: u64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .worker
            .iter()
            .flatten()
            .filter(|w| w.mode == mode && w.check.is_ok())
            .map(|w| w.conns_per_sec(hz))
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }
}
