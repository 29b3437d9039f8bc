//! Two units' sync engines and shards, in one process, over a simulated HA
//! link with an explicit clock: loss, reordering, one-way cuts and restarts,
//! then the passive's table is compared with the active's, entry by entry.

use dataplane::conntrack::conn::{flag, Timeouts};
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::conntrack::key::FlowKey;
use dataplane::conntrack::rss::{self, Toeplitz};
use dataplane::conntrack::shard::{Admission, Flow, L4Packet, Shard};
use dataplane::conntrack::tcp::{flags::*, Segment};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use syncd::engine::{Engine, EngineConfig, Forced, Local, Notice};
use syncd::links::LinkState;
use syncd::psk::Psk;
use syncd::seal::Party;
use syncd::session::Session;
use syncd::wire::{self, Kind, Message};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn serial(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

struct Unit {
    engine: Engine,
    shards: Vec<Shard>,
    inbound: Vec<InboundQueue>,
    notices: Vec<Notice>,
}

impl Unit {
    fn new(me: &str, peer: &str, epoch: u64, workers: usize, psk: u8, now: u64) -> Unit {
        Self::with_interfaces(me, peer, epoch, workers, psk, 2, now)
    }

    fn with_interfaces(
        me: &str,
        peer: &str,
        epoch: u64,
        workers: usize,
        psk: u8,
        interfaces: u8,
        now: u64,
    ) -> Unit {
        let mut shards = Vec::new();
        let (mut events, mut inbound) = (Vec::new(), Vec::new());
        for w in 0..workers {
            let q = EventQueue::new(4096);
            let mut s = Shard::new(4096, 7 + w as u64, Timeouts::default(), q.clone());
            s.set_identity(epoch, u8::try_from(w).unwrap());
            shards.push(s);
            events.push(q);
            inbound.push(InboundQueue::new(4096));
        }
        let mut cfg = EngineConfig::new(serial(me), epoch, serial(peer), 2, 1500);
        cfg.interfaces = interfaces;
        let mut engine = Engine::new(
            cfg,
            Psk::from_bytes([psk; 32]),
            events,
            inbound.clone(),
            now,
        )
        .unwrap();
        // A forwards, B holds copies (as tandemd tells them from their roles).
        let active = me == "TNDM-A";
        engine.set_active(active);
        for s in &mut shards {
            s.go_live(active);
        }
        Unit {
            engine,
            shards,
            inbound,
            notices: Vec::new(),
        }
    }

    /// What the workers do between two polls.
    fn work(&mut self, now: u64) {
        let secs = u32::try_from(now / SEC).unwrap();
        for (s, q) in self.shards.iter_mut().zip(&self.inbound) {
            while let Some(item) = q.pop() {
                s.receive(item, secs);
            }
            s.service(secs);
            s.expire(secs);
        }
        while let Some(n) = self.engine.take_notice() {
            self.notices.push(n);
        }
    }

    /// Every entry: key → (state name, larval).
    fn table(&self) -> HashMap<FlowKey, (&'static str, bool)> {
        self.shards
            .iter()
            .flat_map(|s| s.table().iter())
            .map(|(_, k, c)| (*k, (c.l4.name(), c.flags & flag::LARVAL != 0)))
            .collect()
    }

    fn digests(&self) -> Vec<dataplane::conntrack::record::Digest> {
        self.shards.iter().map(Shard::digest).collect()
    }
}

/// A datagram on its way.
struct InFlight {
    at: u64,
    to_b: bool,
    link: usize,
    bytes: Vec<u8>,
}

/// The HA links: per direction and link, a loss rate in percent, and a
/// random extra delay (reordering).
struct Links {
    rng: u64,
    loss: u64,
    jitter_ns: u64,
    /// `cut[to_b as usize][link]`: nothing gets through.
    cut: [[bool; 2]; 2],
    flying: Vec<InFlight>,
    sent: u64,
    /// Applied to every datagram towards B.
    mangle_to_b: Option<fn(&mut Vec<u8>)>,
}

impl Links {
    fn new(loss: u64, jitter_ns: u64) -> Links {
        Links {
            rng: 0x9e37_79b9_7f4a_7c15,
            loss,
            jitter_ns,
            cut: [[false; 2]; 2],
            flying: Vec::new(),
            sent: 0,
            mangle_to_b: None,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn send(&mut self, now: u64, to_b: bool, link: usize, bytes: &[u8]) {
        self.sent += 1;
        if self.cut[usize::from(to_b)][link] || self.rand() % 100 < self.loss {
            return;
        }
        let delay = 100_000
            + if self.jitter_ns > 0 {
                self.rand() % self.jitter_ns
            } else {
                0
            };
        let mut bytes = bytes.to_vec();
        if let (true, Some(mangle)) = (to_b, self.mangle_to_b) {
            mangle(&mut bytes);
        }
        self.flying.push(InFlight {
            at: now + delay,
            to_b,
            link,
            bytes,
        });
    }
}

struct Pair {
    a: Unit,
    b: Unit,
    links: Links,
    now: u64,
    /// When set, what A sent at the last step, in order: (link, datagram).
    sent_by_a: Option<Vec<(usize, Vec<u8>)>>,
}

impl Pair {
    fn new(loss: u64, jitter_ns: u64) -> Pair {
        Pair {
            a: Unit::new("TNDM-A", "TNDM-B", 1 << 32 | 1, 2, 1, 0),
            b: Unit::new("TNDM-B", "TNDM-A", 1 << 32 | 2, 2, 1, 0),
            links: Links::new(loss, jitter_ns),
            now: 0,
            sent_by_a: None,
        }
    }

    fn step(&mut self) {
        self.now += 100_000;
        let now = self.now;
        self.a.work(now);
        self.b.work(now);
        let (links, sent_by_a) = (&mut self.links, &mut self.sent_by_a);
        if let Some(sent) = sent_by_a.as_mut() {
            sent.clear();
        }
        self.a.engine.poll(now, &mut |link, d| {
            if let Some(sent) = sent_by_a.as_mut() {
                sent.push((link, d.to_vec()));
            }
            links.send(now, true, link, d)
        });
        self.b
            .engine
            .poll(now, &mut |link, d| links.send(now, false, link, d));
        let (due, later): (Vec<_>, Vec<_>) = self.links.flying.drain(..).partition(|f| f.at <= now);
        self.links.flying = later;
        for mut f in due {
            let to = if f.to_b { &mut self.b } else { &mut self.a };
            to.engine.receive(now, f.link, &mut f.bytes);
        }
    }

    fn run(&mut self, ns: u64) {
        let end = self.now + ns;
        while self.now < end {
            self.step();
        }
    }
}

/// Opens `n` TCP connections (and `n / 4` UDP flows) through A, each on the
/// shard that owns it, at ports from `first`.
fn traffic(a: &mut Unit, first: u16, n: u16, now: u64) {
    let rss = Toeplitz::symmetric();
    let secs = u32::try_from(now / SEC).unwrap();
    let client = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    let server = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
    let adm = Admission {
        rule: 0,
        sync: true,
        log: false,
        in_iface: 0,
        out_iface: 1,
    };
    let seg = |flags, seq, ack| {
        L4Packet::Tcp(Segment {
            seq,
            ack,
            window: 64240,
            flags,
            wscale: Some(7),
            ..Segment::default()
        })
    };
    for p in first..first + n {
        let (key, side) = FlowKey::from_packet(client, p, server, 443, 6);
        let w = rss::owner(rss.hash_flow(&key), a.shards.len());
        let s = &mut a.shards[w];
        let flow = |side, l4| Flow { key, side, l4 };
        s.create(&flow(side, seg(SYN, 1000, 0)), adm, secs).unwrap();
        s.track(&flow(side.other(), seg(SYN | ACK, 5000, 1001)), secs);
        s.track(&flow(side, seg(ACK, 1001, 5001)), secs);
        if p % 4 == 0 {
            let (key, side) = FlowKey::from_packet(client, p, server, 53, 17);
            let w = rss::owner(rss.hash_flow(&key), a.shards.len());
            let f = Flow {
                key,
                side,
                l4: L4Packet::Udp,
            };
            a.shards[w].create(&f, adm, secs).unwrap();
            a.shards[w].track(
                &Flow {
                    side: side.other(),
                    ..f
                },
                secs,
            );
        }
    }
}

fn assert_same_tables(p: &Pair) {
    let (a, b) = (p.a.table(), p.b.table());
    assert_eq!(
        a.len(),
        b.len(),
        "entries: active {} passive {}",
        a.len(),
        b.len()
    );
    for (k, (state, larval)) in &a {
        assert!(!larval, "the active's own are live");
        assert_eq!(b.get(k), Some(&(*state, true)), "{k:?}");
    }
    assert_eq!(p.a.digests(), p.b.digests());
}

#[test]
fn the_passive_holds_every_connection_larval() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 10_000, 1000, p.now);
    p.run(2 * SEC);
    assert_same_tables(&p);
    assert_eq!(p.a.table().len(), 1250);
    let st = p.b.engine.status(p.now);
    assert!(st.in_sync(), "{st:?}");
    let a = p.a.engine.stats();
    assert_eq!(
        a.inserts_sent, 1250,
        "each once: nothing given up, nothing resent"
    );
    assert_eq!(
        (a.gave_up, a.retransmitted, p.b.engine.stats().lost),
        (0, 0, 0)
    );
    assert_eq!(p.b.engine.stats().dropped.iter().sum::<u64>(), 0);
}

#[test]
fn five_percent_loss_and_reordering_lose_nothing() {
    let mut p = Pair::new(5, 3 * MS);
    p.run(500 * MS);
    traffic(&mut p.a, 20_000, 1000, p.now);
    p.run(2 * SEC);
    traffic(&mut p.a, 30_000, 500, p.now);
    p.run(5 * SEC);
    assert_same_tables(&p);
    assert!(p.a.engine.stats().retransmitted > 0);
}

#[test]
fn a_restarted_passive_takes_a_bulk_with_the_idle_connections() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 40_000, 300, p.now);
    p.run(SEC);
    assert_same_tables(&p);
    // B restarts: a new boot, an empty table.
    p.b = Unit::new("TNDM-B", "TNDM-A", 1 << 32 | 3, 2, 1, p.now);
    p.run(3 * SEC);
    assert_same_tables(&p);
    assert!(p.a.notices.iter().any(|n| matches!(n, Notice::BulkSent)));
    assert!(p
        .b
        .notices
        .iter()
        .any(|n| matches!(n, Notice::BulkReceived)));
}

#[test]
fn an_active_restarted_without_takeover_is_followed_and_the_old_epoch_flushed() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 50_000, 200, p.now);
    p.run(SEC);
    assert_eq!(p.b.table().len(), 250);
    p.a = Unit::new("TNDM-A", "TNDM-B", 1 << 32 | 9, 2, 1, p.now);
    p.run(SEC);
    traffic(&mut p.a, 60_000, 40, p.now);
    p.run(2 * SEC);
    assert_same_tables(&p);
    assert_eq!(p.b.table().len(), 50);
}

#[test]
fn the_main_link_down_moves_the_stream_to_the_backup_and_loses_nothing() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    p.links.cut = [[true, false], [true, false]];
    traffic(&mut p.a, 1_000, 400, p.now);
    p.run(3 * SEC);
    assert_same_tables(&p);
    let st = p.a.engine.status(p.now);
    assert_eq!(
        (st.links[0].0, st.links[1].0, st.stream_link),
        (LinkState::Down, LinkState::Up, 1)
    );
    assert!(p
        .a
        .notices
        .contains(&Notice::StreamMoved { from: 0, to: 1 }));
}

#[test]
fn a_link_cut_one_way_shows_on_both_units() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    // A → B cut on the main link; B → A works.
    p.links.cut[1][0] = true;
    p.run(2 * SEC);
    let (a, b) = (p.a.engine.status(p.now), p.b.engine.status(p.now));
    assert_eq!(
        a.links[0].0,
        LinkState::OnlyHearing,
        "A: the partner does not hear us"
    );
    assert_eq!(
        b.links[0].0,
        LinkState::OnlyHeard,
        "B: we do not hear the partner"
    );
    assert_eq!((a.links[1].0, b.links[1].0), (LinkState::Up, LinkState::Up));
}

#[test]
fn a_lost_delete_is_found_by_the_digests_and_the_shard_resent() {
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 2_000, 100, p.now);
    p.run(SEC);
    assert_same_tables(&p);
    // A UDP flow expires on A and its delete is lost inside A.
    let secs = u32::try_from(p.now / SEC).unwrap() + 121;
    let mut lost = 0;
    for s in &mut p.a.shards {
        s.expire(secs);
        while s.events().pop().is_some() {
            lost += 1;
        }
    }
    assert!(lost > 0);
    p.now = u64::from(secs) * SEC;
    p.run(6 * SEC);
    assert_same_tables(&p);
    assert!(p
        .b
        .notices
        .iter()
        .any(|n| matches!(n, Notice::DigestMismatch { .. })));
}

#[test]
fn another_key_installs_nothing_and_is_counted() {
    let mut p = Pair::new(0, 0);
    p.b = Unit::new("TNDM-B", "TNDM-A", 1 << 32 | 2, 2, 99, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 3_000, 10, p.now);
    p.run(SEC);
    assert!(p.b.table().is_empty());
    let wrong_key = syncd::session::Drop::WrongKey.index();
    assert!(p.b.engine.stats().dropped[wrong_key] > 0);
    assert!(p.b.engine.status(p.now).peer_epoch.is_none());
}

#[test]
fn another_protocol_version_is_refused_whole_counted_and_logged_once() {
    let mut p = Pair::new(0, 0);
    p.links.mangle_to_b = Some(|d| d[4] = 2);
    p.run(500 * MS);
    traffic(&mut p.a, 4_000, 10, p.now);
    p.run(2 * SEC);
    assert!(p.b.table().is_empty());
    let wrong = syncd::session::Drop::Wire(syncd::wire::Error::Version(2)).index();
    assert!(p.b.engine.stats().dropped[wrong] > 10);
    let logged =
        p.b.notices
            .iter()
            .filter(|n| matches!(n, Notice::Version { version: 2, .. }));
    assert_eq!(logged.count(), 1);
}

#[test]
fn a_connection_on_an_interface_the_partner_lacks_is_counted_not_installed() {
    let mut p = Pair::new(0, 0);
    p.b = Unit::with_interfaces("TNDM-B", "TNDM-A", 1 << 32 | 2, 2, 1, 1, 0);
    p.run(500 * MS);
    traffic(&mut p.a, 5_000, 10, p.now);
    p.run(SEC);
    assert!(p.b.table().is_empty());
    // Refused once each; the digests then differ by what was refused, which
    // no resync would change, so none is asked for.
    p.run(6 * SEC);
    // 12 inserts refused, and again each full state that an update of a
    // refused name asked for: never installed, never a whole-shard resync.
    assert!(p.b.engine.stats().unknown_interface >= 12);
    assert!(p.b.table().is_empty());
    assert_eq!(p.b.engine.stats().resyncs_asked, 0);
    assert!(p
        .b
        .notices
        .iter()
        .any(|n| matches!(n, Notice::DigestMismatch { refused: true, .. })));
    let logged =
        p.b.notices
            .iter()
            .filter(|n| matches!(n, Notice::UnknownInterface { iface: 1 }));
    assert_eq!(logged.count(), 1);
}

#[test]
fn a_digest_that_crosses_the_bulk_does_not_start_it_over() {
    // A holds connections B never heard of (their events went to nobody), and
    // both start together: A's first digest (due at once) meets B's bulk request.
    let mut p = Pair::new(0, 0);
    traffic(&mut p.a, 5_000, 400, p.now);
    for s in &mut p.a.shards {
        while s.events().pop().is_some() {}
    }
    p.run(SEC);
    assert_same_tables(&p);
    let mut counters = Vec::new();
    p.a.engine.counters(p.now, &mut counters);
    let started = counters
        .iter()
        .find(|(n, _)| n == "sync.bulks_started")
        .map(|(_, v)| *v);
    assert_eq!(started, Some(1), "one bulk, not started over");
    assert_eq!(p.b.engine.stats().resyncs_asked, 0);
    let exported: u64 = p.a.shards.iter().map(|s| s.stats().exported).sum();
    assert_eq!(exported, 500, "each entry once");
}

#[test]
fn each_unit_hears_what_the_other_says_in_its_heartbeats() {
    let mut p = Pair::new(0, 0);
    p.run(100 * MS);
    let (h, _) = p.a.engine.partner().expect("B heard");
    assert_eq!((h.active, h.links_heard, h.workers), (false, 0b11, 2));
    // What B's daemon says of B is in its next heartbeat.
    p.b.engine.set_local(Local {
        quality: 6300,
        priority: 7,
        forced: Forced::Passive,
        config_revision: 42,
        bulk_done: true,
    });
    p.run(20 * MS);
    let (h, heard) = p.a.engine.partner().unwrap();
    assert_eq!(
        (
            h.quality,
            h.priority,
            h.forced,
            h.config_revision,
            h.bulk_done
        ),
        (6300, 7, Forced::Passive, 42, true)
    );
    assert!(
        p.now - heard < 11 * MS,
        "heard {} ms ago",
        (p.now - heard) / MS
    );
    let (h, _) = p.b.engine.partner().unwrap();
    assert_eq!((h.active, h.forced, h.quality), (true, Forced::No, 0));
    // A quality past 100 % goes as 100 %, never as a record B would refuse.
    p.a.engine.set_local(Local {
        quality: 20_000,
        ..Local::default()
    });
    p.run(20 * MS);
    assert_eq!(p.b.engine.partner().unwrap().0.quality, 10_000);
    assert_eq!(p.b.engine.stats().dropped.iter().sum::<u64>(), 0);

    // Every link cut: the last heartbeat stays, its time stops.
    p.links.cut = [[true; 2]; 2];
    let (_, before) = p.a.engine.partner().unwrap();
    p.run(100 * MS);
    assert_eq!(p.a.engine.partner().map(|(_, t)| t), Some(before));
    let st = p.a.engine.status(p.now);
    assert_eq!(
        (st.links[0].0, st.links[1].0),
        (LinkState::Down, LinkState::Down)
    );

    // B restarts: what its old boot said is not kept.
    p.links.cut = [[false; 2]; 2];
    p.b = Unit::new("TNDM-B", "TNDM-A", 1 << 32 | 3, 2, 1, p.now);
    p.run(20 * MS);
    let (h, heard) = p.a.engine.partner().unwrap();
    assert_eq!(
        (h.quality, h.priority, h.forced, h.bulk_done),
        (0, 0, Forced::No, false)
    );
    assert!(p.now - heard < 11 * MS);
}

/// What A sent at one step, as B reads it: per datagram, its link, whether
/// it is a control datagram and whether it carries a heartbeat.
fn read_sent(spy: &mut Session, now: u64, sent: &[(usize, Vec<u8>)]) -> Vec<(usize, Kind, bool)> {
    sent.iter()
        .map(|(link, d)| {
            let kind = if d[5] == Kind::Control as u8 {
                Kind::Control
            } else {
                Kind::Data
            };
            let mut d = d.clone();
            let heartbeat = kind == Kind::Control
                && spy.open(now, &mut d).is_ok_and(|o| {
                    wire::records(Kind::Control, o.body)
                        .any(|m| matches!(m, Ok(Message::Heartbeat(_))))
                });
            (*link, kind, heartbeat)
        })
        .collect()
}

/// Heartbeats never wait behind sync traffic: with thousands of events
/// queued by A's workers when its heartbeat is due, the first datagram of
/// that poll on every link is a control datagram carrying the heartbeat,
/// and the data follows.
#[test]
fn the_heartbeat_goes_first_whatever_the_backlog() {
    let mut p = Pair::new(0, 0);
    let interval = EngineConfig::new(serial("A"), 1, serial("B"), 2, 1500).heartbeat_interval_ns;
    // B's view of A's datagrams, apart from B's engine.
    let b = Party {
        serial: serial("TNDM-B"),
        epoch: 1 << 32 | 2,
    };
    let mut spy = Session::new(Psk::from_bytes([1; 32]), b, serial("TNDM-A"), 0);
    p.run(100 * MS);
    p.sent_by_a = Some(Vec::new());
    let mut heartbeat = |p: &mut Pair| {
        p.step();
        let sent = read_sent(&mut spy, p.now, p.sent_by_a.as_ref().unwrap());
        sent.iter().any(|&(_, _, h)| h)
    };
    while !heartbeat(&mut p) {}
    // The next heartbeat is due one interval later: up to then, nothing of it.
    let due = p.now + interval;
    while p.now + 100_000 < due {
        assert!(!heartbeat(&mut p), "a heartbeat before its time");
    }
    traffic(&mut p.a, 10_000, 2000, p.now);
    let backlog: usize = p.a.shards.iter().map(|s| s.events().len()).sum();
    assert!(backlog >= 4000, "a backlog of {backlog} events");
    p.step();
    assert_eq!(p.now, due);
    let sent = read_sent(&mut spy, p.now, p.sent_by_a.as_ref().unwrap());
    let head = &sent[..sent.len().min(4)];
    for link in 0..2 {
        let first = sent.iter().find(|&&(l, _, _)| l == link);
        assert_eq!(
            first,
            Some(&(link, Kind::Control, true)),
            "link {link}: {head:?}…"
        );
    }
    assert_eq!(
        sent[..2].iter().filter(|&&(_, _, h)| h).count(),
        2,
        "the poll's first two datagrams are the heartbeats: {head:?}…"
    );
    // The data follows, bounded by the stream's window (256 datagrams); what
    // is left waits in the workers' queues for the next polls.
    let data = sent.iter().filter(|&&(_, k, _)| k == Kind::Data).count();
    assert!((100..=256).contains(&data), "{data} data datagrams");
    let left: usize = p.a.shards.iter().map(|s| s.events().len()).sum();
    assert!(
        left > 0 && left < backlog,
        "{left} of {backlog} events left"
    );
    // And the backlog arrives whole.
    p.sent_by_a = None;
    p.run(SEC);
    assert_same_tables(&p);
    assert_eq!(p.a.table().len(), 2500);
}

/// Every HA link cut both ways for a while (the partner is silent, maybe
/// dead): what A sends meanwhile is given up, but its shards are not sent
/// again into the void, bulk after bulk; they go when B is heard again, and
/// nothing is lost.
#[test]
fn give_ups_while_the_partner_is_silent_wait_for_its_return() {
    let bulks = |p: &Pair| {
        let mut c = Vec::new();
        p.a.engine.counters(p.now, &mut c);
        c.into_iter()
            .find(|(n, _)| n == "sync.bulks_started")
            .map_or(0, |(_, v)| v)
    };
    let mut p = Pair::new(0, 0);
    p.run(500 * MS);
    let joined = bulks(&p);
    p.links.cut = [[true, true], [true, true]];
    traffic(&mut p.a, 2_000, 200, p.now);
    p.run(30 * SEC);
    let silent = p.a.engine.stats();
    assert!(
        silent.gave_up > 0,
        "the stream gave up on the silent partner"
    );
    assert_eq!(
        p.a.notices
            .iter()
            .filter(|n| matches!(n, Notice::GaveUp { .. }))
            .count(),
        1,
        "said once per silence"
    );
    assert_eq!(bulks(&p), joined, "no bulk into the void");
    p.links.cut = [[false, false], [false, false]];
    p.run(5 * SEC);
    assert!(bulks(&p) > joined, "the given-up shards went again");
    assert_same_tables(&p);
}

/// The daemons' messages (console questions, configuration files) cross in
/// the stream whole and in order, beside state traffic, over a lossy,
/// reordering link; before the partner is known they are refused at once.
#[test]
fn management_messages_cross_whole_and_in_order_despite_loss() {
    let mut p = Pair::new(5, 3 * MS);
    assert_eq!(
        p.a.engine.send_mgmt(b"too early".to_vec()),
        Err(syncd::mgmt::Refused::Unreachable)
    );
    p.run(500 * MS);
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 7).to_le_bytes()[0]).collect();
    p.a.engine.send_mgmt(b"hainfo?".to_vec()).unwrap();
    traffic(&mut p.a, 40_000, 500, p.now);
    p.a.engine.send_mgmt(file.clone()).unwrap();
    p.a.engine.send_mgmt(Vec::new()).unwrap();
    p.b.engine.send_mgmt(b"answer".to_vec()).unwrap();
    p.run(5 * SEC);
    assert_eq!(p.b.engine.take_mgmt().as_deref(), Some(&b"hainfo?"[..]));
    assert_eq!(p.b.engine.take_mgmt(), Some(file), "300 kB whole");
    assert_eq!(p.b.engine.take_mgmt(), Some(Vec::new()));
    assert_eq!(p.b.engine.take_mgmt(), None);
    assert_eq!(p.a.engine.take_mgmt().as_deref(), Some(&b"answer"[..]));
    assert_same_tables(&p);
    let mut counters = Vec::new();
    p.b.engine.counters(p.now, &mut counters);
    let get = |n: &str| counters.iter().find(|(k, _)| k == n).unwrap().1;
    assert_eq!((get("sync.mgmt_received"), get("sync.mgmt_broken")), (3, 0));
}
