//! The sync lcore's work, as one pure state machine: the workers' queues on
//! one side, datagrams on the other, and the clock passed in.
//!
//! ```text
//!            poll(now, out)                                receive(now, link, datagram)
//!  worker event queues ──► batch ──► reliable stream ──► seal ──► out(link, bytes)
//!  worker inbound queues ◄── staging ◄── in-order delivery ◄── open ◄── datagram
//! ```
//!
//! * **Sending**: every poll drains the workers' event queues (a bounded
//!   amount, round-robin) into the [`Batch`]; a body leaves at the MTU, after
//!   the flush delay, or after `flush_updates` updates of one entry; it takes
//!   the next sequence number of the [`SendWindow`], is sealed and handed to
//!   `out` for the stream's link ([`crate::links::stream_link`]). A full
//!   window stops the draining (the workers' queues hold, then their entries
//!   are marked for re-send): never a silent drop.
//! * **Receiving**: a datagram passes the [`Session`]'s checks, its body is
//!   validated whole, then the [`ReceiveWindow`] delivers bodies in order;
//!   each record goes to the worker that owns its flow (the same flow hash as
//!   the handoff) through a staging queue drained into the workers' inbound
//!   queues. While [`STAGED_DATAGRAMS`] datagrams' worth waits there (the
//!   workers are behind), new data datagrams are left unacknowledged: the
//!   partner retransmits them later.
//! * **Feedback and heartbeats**: acks and nacks of the partner's stream go
//!   back at the channel's pace; every `heartbeat_interval` (10 ms by
//!   default) a [`Heartbeat`] (with an ack) goes out on every link, saying
//!   on which links this unit hears the partner, what the engine knows of
//!   this unit (workers, interfaces, active, wants a bulk, firmware) and what
//!   the daemon says of it ([`Local`]: quality, priority, forced mode,
//!   configuration revision, bulk done, set with [`Engine::set_local`]). What
//!   the partner last said, and when it was last heard on any link, is
//!   [`Engine::partner`]: the election's input.
//! * **Bulks, resyncs, digests**: see [`crate::bulk`]; a datagram the sender
//!   gives up on makes it resend the shards that datagram carried (when the
//!   partner is silent on every link, once it is heard again, not into the
//!   void bulk after bulk); every
//!   `digest_interval` the active unit's workers put their digests in the
//!   stream, and a passive shard that disagrees asks for that shard again
//!   (unless records it refused explain the difference).
//!
//! # Heartbeats never wait behind sync traffic
//!
//! The election declares the partner lost when every HA link has been
//! silent for its dead interval (a few heartbeat intervals): a heartbeat
//! held up by a burst of sync traffic would be a takeover without a failure.
//! So, on the sending side and the receiving side:
//!
//! * **The heartbeat is the first datagram a poll sends.** [`Engine::poll`]
//!   brings the links' states up to date, then sends the due heartbeat (with
//!   its ack, in one control datagram per link, on every link) before it
//!   hands staged records to the workers, drains their queues, retransmits
//!   or sends any data datagram.
//! * **A poll's data work is bounded.** It takes at most [`EVENT_BUDGET`]
//!   events from the workers' queues and sends at most `channel.window` data
//!   datagrams (256 by default): a retransmission only of a datagram the
//!   window holds, a new one only into a free slot of it; whatever more is
//!   queued waits for the next poll, and a full window stops the draining.
//!   So the next poll, and the next heartbeat, come after a bounded amount of
//!   work, whatever the backlog.
//! * **Received datagrams are opened in the order they arrive, and the
//!   ports are read every round before anything is sent**: the daemon's
//!   round (`mgmt`'s sync task) reads one burst from each HA port into
//!   [`Engine::receive`], then polls. A partner's heartbeat waits at most
//!   behind the datagrams of its own burst, and each of those is bounded: a
//!   data datagram is validated, delivered in order and staged (at most the
//!   reorder window's worth), never handed to a worker synchronously.
//! * **The workers never run this code** and share only lock-free,
//!   single-producer single-consumer queues with it (their event queues and
//!   inbound queues): a full queue makes the engine stop draining or keep
//!   records staged, never wait. A busy worker cannot delay a heartbeat.
//!
//! * **Management messages**: the daemon's own conversation with the
//!   partner's daemon (the console's questions, `hasync`'s files) goes in
//!   the same stream, in chunks ([`crate::mgmt`]), at most
//!   [`MGMT_CHUNKS_PER_POLL`] per poll ([`Engine::send_mgmt`],
//!   [`Engine::take_mgmt`]): sealed, retransmitted and in order like state
//!   records, and never ahead of a heartbeat.
//!
//! What the daemon must log comes out as [`Notice`]s ([`Engine::take_notice`]);
//! those, the counters and the [`Status`] live in `engine/status.rs`.

use crate::batch::Batch;
use crate::bulk::{workers_of, Incoming, IncomingAction, IncomingState, Outgoing, ALL_SHARDS};
use crate::channel::{ChannelConfig, ChannelError, ReceiveWindow, SendWindow};
use crate::links::{heard_bitmap, stream_link, Link, LinkState};
use crate::mgmt::{self, Reassembly};
use crate::psk::Psk;
use crate::seal::Party;
use crate::session::{Drop, Session};
use crate::wire::{self, Heartbeat, Kind, Message, HEADER_LEN, MAX_QUALITY, TAG_LEN};
use dataplane::conntrack::event::{Event, EventQueue, Inbound, InboundQueue};
use dataplane::conntrack::key::FlowKey;
use dataplane::conntrack::rss::{self, Toeplitz};
use std::collections::VecDeque;

mod status;

pub use crate::wire::Forced;
pub use status::{DigestState, EngineStats, Notice, Status};

/// Events taken from the workers' queues per poll, all workers together:
/// bounded, so a poll never runs long and the heartbeats keep their pace.
pub const EVENT_BUDGET: usize = 8192;

/// Datagrams' worth of records staged for slow workers before new data
/// datagrams are left for the partner to retransmit.
pub const STAGED_DATAGRAMS: usize = 64;

/// Chunks of the daemons' messages put in the stream per poll (about 7 KiB):
/// management traffic never crowds out state records for long.
pub const MGMT_CHUNKS_PER_POLL: usize = 32;

/// Notices kept for the daemon to log (the oldest go first when it is slow).
pub const NOTICES: usize = 256;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This unit's serial (ASCII, NUL-padded).
    pub serial: [u8; 16],
    /// This boot's epoch.
    pub epoch: u64,
    /// The partner's serial.
    pub peer_serial: [u8; 16],
    /// HA links (the first is the main link).
    pub links: usize,
    /// Bytes of a datagram's body: the HA link's IP MTU less the IPv4 (20),
    /// UDP (8), header and tag bytes.
    pub body_capacity: usize,
    /// Longest a change waits before its datagram leaves, in ns.
    pub flush_delay_ns: u64,
    /// A datagram leaves at once after this many updates of one entry.
    pub flush_updates: u32,
    /// The workers' event queues are looked at most this often, in ns
    /// (at once again when the last look stopped at [`EVENT_BUDGET`]). A sync
    /// lcore that polls them without pause takes each event's cache lines
    /// from the worker the moment it writes them, and the worker pays a
    /// cross-core miss per event (the bench measured a worker opening
    /// connections 20–35 % slower); in batches the lines move together. Adds
    /// at most this much to a record's wait before its datagram leaves.
    pub drain_interval_ns: u64,
    /// How often every shard's digest goes in the stream, in ns.
    pub digest_interval_ns: u64,
    /// A bulk not ended by then is asked for again, in ns.
    pub bulk_timeout_ns: u64,
    /// A heartbeat on every link every this many ns.
    pub heartbeat_interval_ns: u64,
    /// A link that heard nothing from the partner this long is down, in ns
    /// (more than 2 × `heartbeat_interval_ns`, so that one lost heartbeat
    /// never takes a link down).
    pub link_dead_ns: u64,
    /// Data interfaces of this unit (a record naming another is refused).
    pub interfaces: u8,
    /// Firmware version, `major << 16 | minor << 8 | patch`.
    pub firmware: u32,
    /// The reliable stream.
    pub channel: ChannelConfig,
}

/// The largest body for an HA link of IP MTU `mtu` bytes.
pub fn body_capacity(mtu: usize) -> usize {
    mtu.saturating_sub(20 + 8 + HEADER_LEN + TAG_LEN)
}

impl EngineConfig {
    /// The defaults for a unit and its partner on `links` HA links of IP MTU
    /// `mtu`: the workers' queues looked at every 50 µs, a datagram flushed
    /// within 1 ms or after 4 updates of one entry, digests every 2 s, bulks
    /// retried after 10 s, heartbeats every 10 ms, a link down after 30 ms
    /// (three heartbeat intervals).
    pub fn new(
        serial: [u8; 16],
        epoch: u64,
        peer_serial: [u8; 16],
        links: usize,
        mtu: usize,
    ) -> Self {
        let body = body_capacity(mtu);
        EngineConfig {
            serial,
            epoch,
            peer_serial,
            links: links.max(1),
            body_capacity: body,
            flush_delay_ns: 1_000_000,
            flush_updates: 4,
            drain_interval_ns: 50_000,
            digest_interval_ns: 2_000_000_000,
            bulk_timeout_ns: 10_000_000_000,
            heartbeat_interval_ns: 10_000_000,
            link_dead_ns: 30_000_000,
            interfaces: u8::MAX,
            firmware: 0,
            channel: ChannelConfig {
                window: 256,
                reorder: 256,
                max_body: body.max(1),
                ..ChannelConfig::default()
            },
        }
    }
}

/// What this unit says of itself in its heartbeats beyond what the engine
/// knows: the daemon's (the election's) view, set with [`Engine::set_local`];
/// every heartbeat carries the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Local {
    /// The quality factor, hundredths of a percent (0..=[`MAX_QUALITY`];
    /// more is sent as [`MAX_QUALITY`], which a partner would otherwise
    /// refuse with the whole datagram).
    pub quality: u16,
    /// The configured priority (higher: active when the quality is equal).
    pub priority: u8,
    /// Forced into a role (`haactive`, `hapassive`), or not.
    pub forced: Forced,
    /// The revision of this unit's configuration.
    pub config_revision: u32,
    /// This unit holds the partner's table: its bulk was received and
    /// installed by the workers.
    pub bulk_done: bool,
}

/// The stream's window is full: nothing more goes until the partner acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowFull;

/// Everything but the two windows (so a window's delivery callback can use it).
struct Core {
    cfg: EngineConfig,
    workers: usize,
    inbound: Vec<InboundQueue>,
    /// Records for the workers whose queues were full, in order.
    staging: VecDeque<(usize, Inbound)>,
    /// Above this many staged records, data datagrams wait (unacknowledged).
    staging_soft: usize,
    rss: Toeplitz,
    /// What the partner last said of itself (forgotten when it restarts).
    peer: Option<Heartbeat>,
    /// When an authenticated datagram of the partner last arrived, on any link.
    peer_heard_ns: u64,
    /// What the daemon says of this unit.
    local: Local,
    incoming: Incoming,
    outgoing: Outgoing,
    /// Shards whose datagrams were given up while the partner was silent on
    /// every link: sent again when a link hears it, not into the void.
    deferred_shards: u64,
    /// Data messages made while receiving, sent at the next poll.
    outbox: VecDeque<Message>,
    digests: Vec<DigestState>,
    stats: EngineStats,
    notices: VecDeque<Notice>,
    /// When a version, an unknown-interface and a digest notice were last given.
    repeat_at: [Option<u64>; 3],
    /// Per shard: records refused here before reaching it (unknown interface).
    refused_here: Vec<u64>,
    /// Per shard: refusals already accounted for at the last digest check.
    refused_seen: Vec<u64>,
    /// Per shard: its difference is explained by refusals (until it agrees).
    refusing: Vec<bool>,
    /// This unit forwards: it sends digests of its connections (said in the
    /// heartbeats too); a passive one compares them with its copies.
    active: bool,
    /// The partner daemon's messages, put back together.
    mgmt_in: Reassembly,
}

/// The sync lcore's state machine (see the module docs).
pub struct Engine {
    core: Core,
    session: Session,
    send: SendWindow,
    recv: ReceiveWindow,
    links: Vec<Link>,
    stream: usize,
    batch: Batch,
    events: Vec<EventQueue>,
    /// A message taken from a worker's queue that did not fit: sent first.
    carry: Option<(Message, Option<usize>)>,
    next_worker: usize,
    /// The workers' queues are not looked at before this.
    next_drain_ns: u64,
    next_heartbeat_ns: u64,
    next_digest_ns: u64,
    resync_asked_ns: Vec<Option<u64>>,
    scratch: Vec<u8>,
    /// The partner boot the streams belong to.
    peer_epoch: Option<u64>,
    /// The daemon's messages for the partner.
    mgmt_out: mgmt::Outgoing,
    /// Management messages queued, and dropped unsent by a partner restart.
    mgmt_stats: (u64, u64),
}

fn secs(now_ns: u64) -> u32 {
    u32::try_from(now_ns / 1_000_000_000).unwrap_or(u32::MAX)
}

/// A notice that may repeat for every datagram (another version, an unknown
/// interface) is logged at most once per this many ns; its counter counts all.
pub const REPEAT_NOTICE_NS: u64 = 60_000_000_000;

impl Core {
    /// A notice of a kind that may repeat for every datagram: at most one per
    /// [`REPEAT_NOTICE_NS`].
    fn notice_limited(&mut self, now_ns: u64, n: Notice) {
        let slot = match n {
            Notice::Version { .. } => 0,
            Notice::UnknownInterface { .. } => 1,
            _ => 2,
        };
        if self.repeat_at[slot].is_some_and(|t| now_ns.saturating_sub(t) < REPEAT_NOTICE_NS) {
            return;
        }
        self.repeat_at[slot] = Some(now_ns);
        self.notice(n);
    }

    fn notice(&mut self, n: Notice) {
        if self.notices.len() >= NOTICES {
            self.notices.pop_front();
            self.stats.notices_dropped += 1;
        }
        self.notices.push_back(n);
    }

    fn owner(&self, rss16: u16) -> usize {
        rss::owner(u32::from(rss16), self.workers.max(1))
    }

    fn stage(&mut self, worker: usize, item: Inbound) {
        self.staging.push_back((worker, item));
    }

    /// The partner's shard layout is ours: per-shard digests and resyncs mean
    /// the same shards on both units.
    fn same_shards(&self) -> bool {
        self.peer
            .is_some_and(|p| usize::from(p.workers) == self.workers)
    }

    fn start_bulk(&mut self, shards: u64) {
        let shards = if self.same_shards() {
            shards
        } else {
            ALL_SHARDS
        };
        let bulk = self.outgoing.start(shards, self.workers);
        self.outbox.push_back(Message::BulkStart(bulk));
        let mut ws = workers_of(bulk.shards, self.workers);
        while ws != 0 {
            let w = ws.trailing_zeros() as usize;
            ws &= ws - 1;
            self.stage(w, Inbound::Export);
        }
    }

    /// One in-order body of the partner's stream.
    fn deliver(&mut self, now_ns: u64, body: &[u8]) {
        for m in wire::records(Kind::Data, body).flatten() {
            self.stats.records_received += 1;
            match m {
                Message::Insert(r) => {
                    let w = rss::owner(self.rss.hash_flow(&r.key), self.workers.max(1));
                    if let Some(&bad) = [r.in_iface, r.out_iface]
                        .iter()
                        .find(|&&i| i >= self.cfg.interfaces)
                    {
                        self.stats.unknown_interface += 1;
                        if let Some(n) = self.refused_here.get_mut(w) {
                            *n += 1;
                        }
                        self.notice_limited(now_ns, Notice::UnknownInterface { iface: bad });
                        continue;
                    }
                    self.stage(w, Inbound::Install(r));
                }
                Message::Update { id, rss, progress } => {
                    self.stage(self.owner(rss), Inbound::Update { id, rss, progress });
                }
                Message::Delete { id, rss } => self.stage(self.owner(rss), Inbound::Delete(id)),
                Message::Request { id, rss } => self.stage(self.owner(rss), Inbound::Request(id)),
                Message::Digest { shard, digest } => {
                    let shard = usize::from(shard);
                    // Only a passive unit holds the partner's copies (two
                    // actives are a split brain, the election's to end), and
                    // until its bulk is in its shards cannot agree (a digest
                    // met before the partner saw the request would only ask
                    // for the bulk again, from the start).
                    let comparable = !self.active
                        && self.incoming.done()
                        && self.same_shards()
                        && shard < self.workers;
                    if comparable {
                        self.stage(shard, Inbound::Digest(digest));
                    } else {
                        self.stats.digests_skipped += 1;
                    }
                }
                Message::BulkStart(b) => self.incoming.started(now_ns, secs(now_ns), b),
                Message::BulkEnd(b) => {
                    if let Some(since) = self.incoming.ended(now_ns, b) {
                        let shards = if self.same_shards() {
                            b.shards
                        } else {
                            ALL_SHARDS
                        };
                        for w in 0..self.workers {
                            if workers_of(shards, self.workers) & (1 << w.min(63)) != 0 {
                                self.stage(w, Inbound::BulkEnd(since));
                            }
                        }
                        self.outbox.push_back(Message::BulkDone(b));
                        self.notice(Notice::BulkReceived);
                    }
                }
                Message::BulkDone(b) => {
                    if self.outgoing.peer_done(b) {
                        self.notice(Notice::BulkSent);
                    }
                }
                Message::Mgmt(c) => self.mgmt_in.push(&c),
                Message::BulkRequest => self.start_bulk(ALL_SHARDS),
                Message::Resync(shards) => self.start_bulk(shards),
                // Validated: control records never reach a data body.
                Message::Ack { .. } | Message::Nack { .. } | Message::Heartbeat(_) => {}
            }
        }
    }
}

impl Engine {
    /// An engine for this unit's `events` and `inbound` queues (one each per
    /// worker, in worker order), started at `now_ns`.
    pub fn new(
        cfg: EngineConfig,
        psk: Psk,
        events: Vec<EventQueue>,
        inbound: Vec<InboundQueue>,
        now_ns: u64,
    ) -> Result<Engine, ChannelError> {
        let me = Party {
            serial: cfg.serial,
            epoch: cfg.epoch,
        };
        let session = Session::new(psk, me, cfg.peer_serial, now_ns);
        let send = SendWindow::new(cfg.channel)?;
        let recv = ReceiveWindow::new(cfg.channel)?;
        // One delivery hands on at most the datagram and every one buffered
        // behind it; staging takes new datagrams only below `soft`, so it
        // never outgrows what is allocated here.
        let max_records = cfg.body_capacity / wire::DELETE_LEN + 1;
        let staging_soft = STAGED_DATAGRAMS * max_records;
        let staging =
            VecDeque::with_capacity(staging_soft + (cfg.channel.reorder + 1) * max_records);
        let workers = inbound.len();
        let mut incoming = Incoming::new(cfg.bulk_timeout_ns);
        incoming.want();
        Ok(Engine {
            links: (0..cfg.links).map(|_| Link::new(now_ns)).collect(),
            stream: 0,
            batch: Batch::new(cfg.body_capacity, cfg.flush_delay_ns, cfg.flush_updates),
            scratch: vec![0; HEADER_LEN + cfg.body_capacity.max(256) + TAG_LEN],
            core: Core {
                workers,
                inbound,
                staging,
                staging_soft,
                rss: Toeplitz::symmetric(),
                peer: None,
                peer_heard_ns: now_ns,
                local: Local::default(),
                incoming,
                outgoing: Outgoing::default(),
                deferred_shards: 0,
                outbox: VecDeque::with_capacity(64),
                digests: vec![DigestState::Unknown; workers],
                stats: EngineStats::default(),
                notices: VecDeque::with_capacity(NOTICES),
                repeat_at: [None; 3],
                refused_here: vec![0; workers],
                refused_seen: vec![0; workers],
                refusing: vec![false; workers],
                active: false,
                mgmt_in: Reassembly::default(),
                cfg,
            },
            session,
            send,
            recv,
            events,
            carry: None,
            next_worker: 0,
            next_drain_ns: now_ns,
            next_heartbeat_ns: now_ns,
            next_digest_ns: now_ns,
            resync_asked_ns: vec![None; workers],
            peer_epoch: None,
            mgmt_out: mgmt::Outgoing::default(),
            mgmt_stats: (0, 0),
        })
    }

    /// A datagram (the UDP payload) arrived on `link`; opened in place.
    pub fn receive(&mut self, now_ns: u64, link: usize, datagram: &mut [u8]) {
        let link = link.min(self.links.len().saturating_sub(1));
        let len = datagram.len() as u64;
        let opened = match self.session.open(now_ns, datagram) {
            Ok(o) => o,
            Err(d) => {
                self.core.stats.dropped[d.index()] += 1;
                self.links[link].stats.dropped[d.index()] += 1;
                if let Drop::Wire(wire::Error::Version(version)) = d {
                    self.core
                        .notice_limited(now_ns, Notice::Version { link, version });
                }
                return;
            }
        };
        let (h, body) = (opened.header, opened.body);
        // The session already follows the new boot: so must the streams, even
        // if this datagram's body turns out malformed.
        if opened.new_peer_epoch {
            self.peer_restarted(h.sender_epoch);
        }
        // It authenticated: the partner is alive, whatever the body holds.
        self.core.peer_heard_ns = now_ns;
        let records = match wire::validate(h.kind, body) {
            Ok(n) => n,
            Err(e) => {
                let d = Drop::Wire(e);
                self.core.stats.dropped[d.index()] += 1;
                self.links[link].stats.dropped[d.index()] += 1;
                return;
            }
        };
        let l = &mut self.links[link];
        l.heard(now_ns);
        l.stats.datagrams_received += 1;
        l.stats.bytes_received += len;
        if h.ack > 0 {
            let _ = self.send.on_ack(now_ns, h.ack);
        }
        match h.kind {
            Kind::Control => {
                for m in wire::records(Kind::Control, body).flatten() {
                    self.control(now_ns, m);
                }
            }
            Kind::Data => {
                self.drain_staging();
                if self.core.staging.len() > self.core.staging_soft {
                    self.core.stats.receive_backpressure += 1;
                    return;
                }
                let core = &mut self.core;
                let _ = self
                    .recv
                    .on_datagram(now_ns, h.sequence, body, &mut |_, b| {
                        core.deliver(now_ns, b)
                    });
                self.links[link].stats.records_received += records as u64;
            }
        }
    }

    fn control(&mut self, now_ns: u64, m: Message) {
        match m {
            Message::Ack {
                cumulative,
                first_held,
            } => {
                if cumulative > 0 {
                    let _ = self.send.on_ack(now_ns, cumulative);
                }
                let core = &mut self.core;
                if let Ok(s) = self
                    .recv
                    .on_first_held(now_ns, first_held, &mut |_, b| core.deliver(now_ns, b))
                {
                    if s.lost > 0 {
                        core.stats.lost += s.lost;
                        core.notice(Notice::Lost { datagrams: s.lost });
                    }
                }
                // The sender resends the shards it gave up on; the digests
                // check that it did.
                let _ = self.recv.take_resync_needed();
            }
            Message::Nack { first, last } => {
                let _ = self.send.on_nack(now_ns, first, last);
            }
            Message::Heartbeat(h) => {
                let before = self.core.peer;
                self.core.peer = Some(h);
                for (i, l) in self.links.iter_mut().enumerate() {
                    l.peer_says(now_ns, i < 8 && h.links_heard & (1 << i) != 0);
                }
                if usize::from(h.workers) != self.core.workers
                    && before.is_none_or(|b| b.workers != h.workers)
                {
                    self.core.notice(Notice::WorkersDiffer {
                        ours: self.core.workers,
                        theirs: h.workers,
                    });
                }
            }
            _ => {}
        }
    }

    /// The partner appeared or restarted: both streams start over, what it
    /// said before is void (a shard that has not taken over drops it), and
    /// its whole table is asked for.
    fn peer_restarted(&mut self, new: u64) {
        let old = self.peer_epoch.replace(new);
        self.core.notice(Notice::PeerEpoch { old, new });
        if let Ok(s) = SendWindow::new(self.core.cfg.channel) {
            self.send = s;
        }
        self.recv.reset(1);
        self.batch.clear();
        self.carry = None;
        self.core.outbox.clear();
        self.core.outgoing.reset();
        // A new boot asks for the whole table anyway.
        self.core.deferred_shards = 0;
        self.core.peer = None;
        for w in 0..self.core.workers {
            self.core.stage(w, Inbound::Flush);
        }
        self.core.incoming.want();
        self.core.digests.fill(DigestState::Unknown);
        // The daemons' conversation was with the old boot: its askers time out.
        self.mgmt_stats.1 += self.mgmt_out.clear() as u64;
        self.core.mgmt_in.reset();
    }

    /// One round: keep the links' states, send the heartbeat if it is due
    /// (first: see the module docs), hand staged records to the workers,
    /// send the stream's due datagrams. `out(link, datagram)` puts a datagram
    /// on a link. Returns how much work it found.
    pub fn poll(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> usize {
        self.update_links(now_ns);
        // Before anything of the stream: the heartbeat never waits behind it.
        let mut work = self.feedback(now_ns, out);
        work += self.drain_staging();
        // A bulk is asked for on the stream, so only once the partner is known.
        let ask = if self.session.peer_epoch().is_some() {
            self.core.incoming.poll(now_ns)
        } else {
            None
        };
        match ask {
            Some(IncomingAction::Request) => {
                self.core.outbox.push_back(Message::BulkRequest);
                self.core.notice(Notice::BulkRequested { retry: false });
            }
            Some(IncomingAction::Retry) => {
                self.core.outbox.push_back(Message::BulkRequest);
                self.core.notice(Notice::BulkRequested { retry: true });
            }
            None => {}
        }
        if self.session.peer_epoch().is_some() {
            work += self.send_stream(now_ns, out);
        }
        work
    }

    fn drain_staging(&mut self) -> usize {
        let mut n = 0;
        while let Some(&(w, item)) = self.core.staging.front() {
            let Some(q) = self.core.inbound.get(w) else {
                self.core.staging.pop_front();
                continue;
            };
            if !q.push(item) {
                break;
            }
            self.core.staging.pop_front();
            n += 1;
        }
        n
    }

    fn update_links(&mut self, now_ns: u64) {
        let dead = self.core.cfg.link_dead_ns;
        for (i, l) in self.links.iter_mut().enumerate() {
            if let Some(from) = l.update(now_ns, dead) {
                let to = l.state();
                self.core.notice(Notice::Link { link: i, from, to });
            }
        }
        let stream = stream_link(&self.links);
        if stream != self.stream {
            self.core.notice(Notice::StreamMoved {
                from: self.stream,
                to: stream,
            });
            self.stream = stream;
        }
    }

    /// Retransmissions, the outbox, the workers' events, the batch, digests.
    fn send_stream(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> usize {
        let mut work = 0;
        let ack = self.recv.next_expected().saturating_sub(1);
        let (session, scratch, links, stream) = (
            &mut self.session,
            &mut self.scratch,
            &mut self.links,
            self.stream,
        );
        let retransmitted = self.send.poll(now_ns, &mut |seq, body| {
            if let Some(n) = session.seal(now_ns, Kind::Data, seq, ack, body, scratch) {
                out(stream, &scratch[..n]);
                let s = &mut links[stream].stats;
                s.retransmitted += 1;
                s.datagrams_sent += 1;
                s.bytes_sent += n as u64;
            }
        });
        self.core.stats.retransmitted += retransmitted as u64;
        work += retransmitted;
        let partner_silent = self.links.iter().all(|l| l.state() == LinkState::Down);
        while let Some((_, shards)) = self.send.take_lost() {
            self.core.stats.gave_up += 1;
            if partner_silent {
                // Counted, said once per silence, resent on its return.
                if self.core.deferred_shards == 0 {
                    self.core.notice(Notice::GaveUp { shards });
                }
                self.core.deferred_shards |= shards;
            } else {
                self.core.notice(Notice::GaveUp { shards });
                self.core.start_bulk(shards);
            }
        }
        if !partner_silent && self.core.deferred_shards != 0 {
            let shards = std::mem::take(&mut self.core.deferred_shards);
            self.core.start_bulk(shards);
        }
        while let Some(m) = self.core.outbox.pop_front() {
            if self.add(now_ns, m, None, out).is_err() {
                break;
            }
        }
        work += self.send_mgmt_chunks(now_ns, out);
        work += self.drain_events(now_ns, out);
        if self.batch.due(now_ns) {
            let _ = self.flush(now_ns, out);
        }
        if now_ns >= self.next_digest_ns {
            self.next_digest_ns = now_ns.saturating_add(self.core.cfg.digest_interval_ns);
            let receiving = matches!(self.core.incoming.state(), IncomingState::Receiving { .. });
            // Digests go from the unit whose connections they are (the
            // active) to the one holding copies.
            if self.core.active && !self.core.outgoing.in_progress() && !receiving {
                for w in 0..self.core.workers {
                    self.core.stage(w, Inbound::SendDigest);
                }
            }
        }
        work
    }

    /// At most [`MGMT_CHUNKS_PER_POLL`] chunks of the daemon's messages into
    /// the stream (unless the window is full: a carried record goes first).
    fn send_mgmt_chunks(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> usize {
        let mut sent = 0;
        while sent < MGMT_CHUNKS_PER_POLL && self.carry.is_none() {
            let Some(c) = self.mgmt_out.next_chunk() else {
                break;
            };
            sent += 1;
            // A full window carries the chunk: it goes first next time.
            if self.add(now_ns, Message::Mgmt(c), None, out).is_err() {
                break;
            }
        }
        sent
    }

    /// Adds a message to the batch, flushing first when it is full; when the
    /// stream's window is full, keeps it to send first next time and says so.
    fn add(
        &mut self,
        now_ns: u64,
        m: Message,
        shard: Option<usize>,
        out: &mut impl FnMut(usize, &[u8]),
    ) -> Result<(), WindowFull> {
        if self.batch.push(now_ns, &m, shard).is_ok() {
            return Ok(());
        }
        if self.flush(now_ns, out).is_err() {
            self.carry = Some((m, shard));
            return Err(WindowFull);
        }
        if self.batch.push(now_ns, &m, shard).is_err() {
            // Larger than an empty body: cannot happen with the sizes checked
            // at configuration; never loop on it.
            return Ok(());
        }
        Ok(())
    }

    /// Sends the batch as the next datagram of the stream.
    fn flush(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> Result<(), WindowFull> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let seq = match self
            .send
            .send(now_ns, self.batch.body(), self.batch.shards())
        {
            Ok(seq) => seq,
            Err(_) => {
                self.core.stats.send_window_full += 1;
                return Err(WindowFull);
            }
        };
        let ack = self.recv.next_expected().saturating_sub(1);
        if let Some(n) = self.session.seal(
            now_ns,
            Kind::Data,
            seq,
            ack,
            self.batch.body(),
            &mut self.scratch,
        ) {
            out(self.stream, &self.scratch[..n]);
            let s = &mut self.links[self.stream].stats;
            s.datagrams_sent += 1;
            s.bytes_sent += n as u64;
            s.records_sent += self.batch.records() as u64;
        }
        self.core.stats.data_sent += 1;
        self.core.stats.updates_coalesced = self.batch.coalesced();
        self.batch.clear();
        Ok(())
    }

    fn rss16(&self, key: &FlowKey) -> u16 {
        u16::try_from(self.core.rss.hash_flow(key) & 0xffff).unwrap_or(0)
    }

    /// Takes the workers' events, round-robin, into the batch.
    fn drain_events(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> usize {
        if let Some((m, shard)) = self.carry.take() {
            if self.add(now_ns, m, shard, out).is_err() {
                return 0;
            }
        }
        if now_ns < self.next_drain_ns {
            return 0;
        }
        let n = self.events.len();
        let mut taken = 0;
        let mut idle = 0;
        while taken < EVENT_BUDGET && idle < n && n > 0 {
            let w = self.next_worker % n;
            self.next_worker = self.next_worker.wrapping_add(1);
            let Some(e) = self.events[w].pop() else {
                idle += 1;
                continue;
            };
            idle = 0;
            taken += 1;
            let Some(m) = self.message(now_ns, w, e) else {
                continue;
            };
            if self.add(now_ns, m, Some(w), out).is_err() {
                break;
            }
        }
        // Every queue empty: look again after the interval; stopped by the
        // budget or a full window: at once.
        self.next_drain_ns = if idle >= n {
            now_ns.saturating_add(self.core.cfg.drain_interval_ns)
        } else {
            now_ns
        };
        taken
    }

    /// What a worker's event becomes on the wire, if anything.
    fn message(&mut self, now_ns: u64, w: usize, e: Event) -> Option<Message> {
        let s = &mut self.core.stats;
        Some(match e {
            Event::Conn { kind, record } if kind.full() => {
                s.inserts_sent += 1;
                Message::Insert(record)
            }
            Event::Conn { record, .. } => {
                s.updates_sent += 1;
                Message::Update {
                    id: record.id,
                    rss: self.rss16(&record.key),
                    progress: record.progress,
                }
            }
            Event::Deleted { id, key } => {
                s.deletes_sent += 1;
                Message::Delete {
                    id,
                    rss: self.rss16(&key),
                }
            }
            Event::Digest(digest) => {
                s.digests_sent += 1;
                Message::Digest {
                    shard: u8::try_from(w).ok()?,
                    digest,
                }
            }
            Event::BulkDone => Message::BulkEnd(self.core.outgoing.worker_done(w)?),
            Event::DigestChecked { theirs, ours, .. } if theirs == ours => {
                if let Some(d) = self.core.digests.get_mut(w) {
                    *d = DigestState::Match;
                }
                if let Some(r) = self.core.refusing.get_mut(w) {
                    *r = false;
                }
                return None;
            }
            Event::DigestChecked {
                theirs,
                ours,
                refused,
            } => {
                if let Some(d) = self.core.digests.get_mut(w) {
                    *d = DigestState::Mismatch;
                }
                // Records this unit refused (its table full, an interface it
                // lacks) explain a difference that sending the shard again
                // would only repeat: once refusals are seen, the shard is not
                // asked for again until its digests agree (the operator has
                // the log line and the counters to fix the cause).
                let refused = refused + self.core.refused_here.get(w).copied().unwrap_or(0);
                let seen = self.core.refused_seen.get_mut(w)?;
                let refusing = self.core.refusing.get_mut(w)?;
                *refusing |= refused > *seen;
                *seen = refused;
                let explained = *refusing;
                self.core.notice_limited(
                    now_ns,
                    Notice::DigestMismatch {
                        shard: w,
                        theirs,
                        ours,
                        refused: explained,
                    },
                );
                if explained {
                    return None;
                }
                let interval = self.core.cfg.digest_interval_ns;
                let asked = self.resync_asked_ns.get_mut(w)?;
                if asked.is_some_and(|t| now_ns.saturating_sub(t) < interval) {
                    return None;
                }
                *asked = Some(now_ns);
                self.core.stats.resyncs_asked += 1;
                Message::Resync(if w < 64 { 1 << w } else { ALL_SHARDS })
            }
            Event::Unknown { id, rss } => {
                s.requests_sent += 1;
                Message::Request { id, rss }
            }
        })
    }

    /// Acks and nacks of the partner's stream, and the heartbeats.
    fn feedback(&mut self, now_ns: u64, out: &mut impl FnMut(usize, &[u8])) -> usize {
        let fb = self.recv.poll(now_ns);
        let heartbeat_due = now_ns >= self.next_heartbeat_ns;
        if fb.ack.is_none() && fb.nack.is_none() && !heartbeat_due {
            return 0;
        }
        let mut body = wire::BodyWriter::new(3 * wire::SECTION_LEN + 2 * 16 + wire::HEARTBEAT_LEN);
        let cumulative = self.recv.next_expected().saturating_sub(1);
        let _ = body.push(&Message::Ack {
            cumulative,
            first_held: self.send.first_held(),
        });
        if let Some((first, last)) = fb.nack {
            let _ = body.push(&Message::Nack { first, last });
        }
        let targets = if heartbeat_due {
            self.next_heartbeat_ns = now_ns.saturating_add(self.core.cfg.heartbeat_interval_ns);
            let _ = body.push(&Message::Heartbeat(self.heartbeat(now_ns)));
            0..self.links.len()
        } else {
            self.stream..self.stream + 1
        };
        let mut sent = 0;
        for link in targets {
            if let Some(n) = self.session.seal(
                now_ns,
                Kind::Control,
                0,
                cumulative,
                body.as_bytes(),
                &mut self.scratch,
            ) {
                out(link, &self.scratch[..n]);
                let s = &mut self.links[link].stats;
                s.datagrams_sent += 1;
                s.bytes_sent += n as u64;
                self.core.stats.control_sent += 1;
                sent += 1;
            }
        }
        sent
    }

    /// What this unit's heartbeat says now.
    fn heartbeat(&self, now_ns: u64) -> Heartbeat {
        let (core, local) = (&self.core, &self.core.local);
        Heartbeat {
            workers: u8::try_from(core.workers).unwrap_or(u8::MAX),
            interfaces: core.cfg.interfaces,
            active: core.active,
            wants_bulk: !core.incoming.done(),
            bulk_done: local.bulk_done,
            links_heard: heard_bitmap(&self.links, now_ns, core.cfg.link_dead_ns),
            firmware: core.cfg.firmware,
            // No caller gives the engine the rule set revision yet.
            rules: 0,
            quality: local.quality.min(MAX_QUALITY),
            priority: local.priority,
            forced: local.forced,
            config_revision: local.config_revision,
        }
    }

    /// Says in the heartbeats whether this unit forwards.
    pub fn set_active(&mut self, active: bool) {
        self.core.active = active;
    }

    /// What the heartbeats say of this unit beyond what the engine knows;
    /// the next heartbeat carries it.
    pub fn set_local(&mut self, local: Local) {
        self.core.local = local;
    }

    /// Whether this unit holds the partner's table: the last bulk it asked
    /// for ended (what a joining unit waits for before it may be active).
    pub fn bulk_done(&self) -> bool {
        self.core.incoming.done()
    }

    /// What the partner last said of itself, and when (ns) an authenticated
    /// datagram of it (a heartbeat, an ack, data) last arrived on any link;
    /// `None` until a heartbeat of its current boot arrived (a restart
    /// forgets the last one).
    pub fn partner(&self) -> Option<(Heartbeat, u64)> {
        self.core.peer.map(|h| (h, self.core.peer_heard_ns))
    }

    /// Queues a message for the partner's daemon (see [`crate::mgmt`]); it
    /// goes in the stream, a few chunks per poll. Refused at once when the
    /// partner is not heard on any link (or never was): the asker says the
    /// partner is unreachable instead of waiting for nothing.
    pub fn send_mgmt(&mut self, bytes: Vec<u8>) -> Result<u32, mgmt::Refused> {
        let heard = self.links.iter().any(|l| l.state() != LinkState::Down);
        if self.session.peer_epoch().is_none() || !heard {
            return Err(mgmt::Refused::Unreachable);
        }
        let id = self.mgmt_out.push(bytes)?;
        self.mgmt_stats.0 += 1;
        Ok(id)
    }

    /// The next message of the partner's daemon received whole.
    pub fn take_mgmt(&mut self) -> Option<Vec<u8>> {
        self.core.mgmt_in.take()
    }

    /// The next notice for the log.
    pub fn take_notice(&mut self) -> Option<Notice> {
        self.core.notices.pop_front()
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.core.stats
    }

    /// One link's counters.
    pub fn link_stats(&self, link: usize) -> Option<crate::links::LinkStats> {
        self.links.get(link).map(|l| l.stats)
    }

    /// Where synchronisation stands.
    pub fn status(&self, now_ns: u64) -> Status {
        Status {
            peer_epoch: self.session.peer_epoch(),
            peer: self.core.peer,
            links: self
                .links
                .iter()
                .map(|l| (l.state(), l.since_ns()))
                .collect(),
            stream_link: self.stream,
            bulk_in: self.core.incoming.state(),
            bulk_out: self.core.outgoing.in_progress(),
            digests: self.core.digests.clone(),
            sender: self.send.health(now_ns),
            receiver: self.recv.health(now_ns),
            key_age_ns: self.session.key_age_ns(now_ns),
        }
    }

    /// Every counter as `sync.<name>` and `sync.link<n>.<name>`.
    pub fn counters(&self, now_ns: u64, out: &mut Vec<(String, u64)>) {
        let s = &self.core.stats;
        for (name, v) in [
            ("inserts_sent", s.inserts_sent),
            ("updates_sent", s.updates_sent),
            ("deletes_sent", s.deletes_sent),
            ("updates_coalesced", s.updates_coalesced),
            ("data_sent", s.data_sent),
            ("retransmitted", s.retransmitted),
            ("control_sent", s.control_sent),
            ("records_received", s.records_received),
            ("unknown_interface", s.unknown_interface),
            ("digests_sent", s.digests_sent),
            ("digests_skipped", s.digests_skipped),
            ("resyncs_asked", s.resyncs_asked),
            ("requests_sent", s.requests_sent),
            ("receive_backpressure", s.receive_backpressure),
            ("send_window_full", s.send_window_full),
            ("gave_up", s.gave_up),
            ("lost", s.lost),
            ("notices_dropped", s.notices_dropped),
            ("mgmt_sent", self.mgmt_stats.0),
            ("mgmt_unsent", self.mgmt_stats.1),
            ("mgmt_received", self.core.mgmt_in.received),
            ("mgmt_broken", self.core.mgmt_in.broken),
            ("bulks_requested", self.core.incoming.requested),
            ("bulks_received", self.core.incoming.completed),
            ("bulk_timeouts", self.core.incoming.timeouts),
            ("bulks_started", self.core.outgoing.started),
            ("bulks_sent", self.core.outgoing.completed),
            ("unacked", self.send.unacked() as u64),
            ("staged", self.core.staging.len() as u64),
            ("key_age_ms", self.session.key_age_ns(now_ns) / 1_000_000),
            ("peer_known", u64::from(self.session.peer_epoch().is_some())),
            ("in_sync", u64::from(self.status(now_ns).in_sync())),
        ] {
            out.push((format!("sync.{name}"), v));
        }
        for (i, name) in Drop::NAMES.iter().enumerate() {
            out.push((format!("sync.drop.{name}"), s.dropped[i]));
        }
        for (n, l) in self.links.iter().enumerate() {
            let ls = &l.stats;
            for (name, v) in [
                ("up", u64::from(l.state() == LinkState::Up)),
                (
                    "hearing",
                    u64::from(matches!(l.state(), LinkState::Up | LinkState::OnlyHearing)),
                ),
                (
                    "heard",
                    u64::from(matches!(l.state(), LinkState::Up | LinkState::OnlyHeard)),
                ),
                ("datagrams_sent", ls.datagrams_sent),
                ("bytes_sent", ls.bytes_sent),
                ("records_sent", ls.records_sent),
                ("retransmitted", ls.retransmitted),
                ("datagrams_received", ls.datagrams_received),
                ("bytes_received", ls.bytes_received),
                ("records_received", ls.records_received),
            ] {
                out.push((format!("sync.link{n}.{name}"), v));
            }
            for (i, name) in Drop::NAMES.iter().enumerate() {
                out.push((format!("sync.link{n}.drop.{name}"), ls.dropped[i]));
            }
        }
    }
}
