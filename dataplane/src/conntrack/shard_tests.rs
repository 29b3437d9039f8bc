//! The shard: entries, timeouts, and the events a test reads off the queue.

use super::conn::{flag, L4State, Pseudo, Timeouts};
use super::event::{Event, EventKind, EventQueue, Inbound, InboundQueue};
use super::key::FlowKey;
use super::record::{Digest, Record, RuleRef, SyncId, NO_RULE};
use super::shard::{Admission, Flow, L4Packet, Refused, Shard, Tracked};
use super::tcp::{flags::*, Segment, TcpInvalid, TcpState};
use std::net::{IpAddr, Ipv4Addr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));

fn shard(capacity: usize, events: usize) -> Shard {
    Shard::new(capacity, 42, Timeouts::default(), EventQueue::new(events))
}

fn adm(sync: bool) -> Admission {
    Admission {
        rule: 3,
        sync,
        log: false,
        in_iface: 0,
        out_iface: 1,
    }
}

fn tcp(from_client: bool, sport: u16, f: u8, seq: u32, ack: u32) -> Flow {
    let (src, dst, sp, dp) = if from_client {
        (CLIENT, SERVER, sport, 80)
    } else {
        (SERVER, CLIENT, 80, sport)
    };
    let (key, side) = FlowKey::from_packet(src, sp, dst, dp, 6);
    let seg = Segment {
        seq,
        ack,
        window: 64240,
        flags: f,
        ..Segment::default()
    };
    Flow {
        key,
        side,
        l4: L4Packet::Tcp(seg),
    }
}

fn udp(from_client: bool, sport: u16) -> Flow {
    let (src, dst, sp, dp) = if from_client {
        (CLIENT, SERVER, sport, 5353)
    } else {
        (SERVER, CLIENT, 5353, sport)
    };
    let (key, side) = FlowKey::from_packet(src, sp, dst, dp, 17);
    Flow {
        key,
        side,
        l4: L4Packet::Udp,
    }
}

/// What a test sees of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Conn(EventKind),
    Deleted,
    Other,
}
use Seen::Deleted;

fn events(s: &Shard) -> Vec<Seen> {
    std::iter::from_fn(|| s.events().pop())
        .map(|e| match e {
            Event::Conn { kind, .. } => Seen::Conn(kind),
            Event::Deleted { .. } => Seen::Deleted,
            _ => Seen::Other,
        })
        .collect()
}

fn conn_event(s: &Shard) -> (EventKind, Record) {
    match s.events().pop() {
        Some(Event::Conn { kind, record }) => (kind, record),
        other => panic!("expected a connection event, got {other:?}"),
    }
}

#[test]
fn a_tcp_connection_emits_created_established_closing_deleted() {
    let mut s = shard(16, 64);
    let syn = tcp(true, 40000, SYN, 1000, 0);
    assert_eq!(s.track(&syn, 0), Tracked::New);
    s.create(&syn, adm(true), 0).unwrap();
    assert_eq!(
        s.track(&tcp(false, 40000, SYN | ACK, 5000, 1001), 0),
        Tracked::Pass
    );
    assert_eq!(
        s.track(&tcp(true, 40000, ACK, 1001, 5001), 1),
        Tracked::Pass
    );
    assert_eq!(
        s.track(&tcp(true, 40000, FIN | ACK, 1001, 5001), 2),
        Tracked::Pass
    );
    assert_eq!(
        s.track(&tcp(false, 40000, ACK, 5001, 1002), 2),
        Tracked::Pass
    );
    assert_eq!(
        s.track(&tcp(false, 40000, FIN | ACK, 5001, 1002), 3),
        Tracked::Pass
    );
    assert_eq!(
        s.track(&tcp(true, 40000, ACK, 1002, 5002), 3),
        Tracked::Pass
    );
    use EventKind::*;
    assert_eq!(
        events(&s),
        [
            Created,
            StateChanged,
            Established,
            Closing,
            StateChanged,
            StateChanged,
            StateChanged
        ]
        .map(Seen::Conn)
    );

    // TIME_WAIT lasts 120 s from the last ACK at t=3
    assert_eq!(s.expire(122), 0);
    assert_eq!(s.expire(123), 1);
    let e = s.events().pop().unwrap();
    assert_eq!(
        e,
        Event::Deleted {
            id: SyncId::new(0, 0, 0),
            key: tcp(true, 40000, SYN, 0, 0).key
        }
    );
    assert_eq!(s.stats().expired, 1);
    assert_eq!(s.table().len(), 0);
}

#[test]
fn events_carry_the_full_state_and_remaining_life() {
    let mut s = shard(16, 64);
    let syn = tcp(true, 40001, SYN, 1000, 0);
    s.create(&syn, adm(true), 10).unwrap();
    let (kind, r) = conn_event(&s);
    assert_eq!(kind, EventKind::Created);
    assert_eq!(r.key, syn.key);
    assert_eq!(r.orig_side, syn.side);
    assert_eq!(
        (r.rule, r.in_iface, r.out_iface),
        (
            RuleRef {
                revision: 0,
                index: 3
            },
            0,
            1
        )
    );
    assert_eq!(r.progress.timeout, 120, "SYN_SENT");
    assert_eq!(r.progress.state, TcpState::SynSent as u8);
}

#[test]
fn connections_of_rules_without_sync_emit_nothing() {
    let mut s = shard(16, 64);
    let syn = tcp(true, 40002, SYN, 1000, 0);
    s.create(&syn, adm(false), 0).unwrap();
    s.track(&tcp(false, 40002, SYN | ACK, 5000, 1001), 0);
    assert!(s.events().is_empty());
}

#[test]
fn a_full_queue_is_counted_and_the_entry_marked_for_resend() {
    let mut s = shard(16, 1);
    let syn = tcp(true, 40003, SYN, 1000, 0);
    s.create(&syn, adm(true), 0).unwrap();
    assert_eq!(
        s.track(&tcp(false, 40003, SYN | ACK, 5000, 1001), 0),
        Tracked::Pass,
        "never blocks"
    );
    assert_eq!((s.events().sent.get(), s.events().overflow.get()), (1, 1));
    let (_, _, conn) = s.table().iter().next().unwrap();
    assert!(conn.flags & flag::RESEND != 0);
}

#[test]
fn a_full_table_refuses_new_connections_and_keeps_the_old() {
    let mut s = shard(2, 64);
    for p in [1, 2] {
        s.create(&tcp(true, p, SYN, 1000, 0), adm(true), 0).unwrap();
    }
    assert_eq!(
        s.create(&tcp(true, 3, SYN, 1000, 0), adm(true), 0),
        Err(Refused::TableFull)
    );
    assert_eq!(
        s.track(&tcp(false, 1, SYN | ACK, 5000, 1001), 0),
        Tracked::Pass,
        "old ones still work"
    );
    assert_eq!(s.table().len(), 2);
}

#[test]
fn a_bare_ack_cannot_create_and_a_bad_segment_is_refused() {
    let mut s = shard(16, 64);
    let ack = tcp(true, 40004, ACK, 1000, 5000);
    assert_eq!(s.track(&ack, 0), Tracked::New);
    assert_eq!(
        s.create(&ack, adm(true), 0),
        Err(Refused::Tcp(TcpInvalid::NoConnection))
    );
    s.create(&tcp(true, 40004, SYN, 1000, 0), adm(true), 0)
        .unwrap();
    assert_eq!(
        s.track(&tcp(false, 40004, SYN | ACK, 5000, 999_999), 0),
        Tracked::Refused(Refused::Tcp(TcpInvalid::AckOverSent))
    );
}

#[test]
fn a_refused_connection_is_removed_at_once() {
    let mut s = shard(16, 64);
    s.create(&tcp(true, 40005, SYN, 1000, 0), adm(true), 0)
        .unwrap();
    assert_eq!(
        s.track(&tcp(false, 40005, RST | ACK, 0, 1001), 0),
        Tracked::Pass
    );
    assert_eq!(s.table().len(), 0);
    assert_eq!(events(&s), [Seen::Conn(EventKind::Created), Deleted]);
}

#[test]
fn a_syn_on_a_time_wait_tuple_starts_over() {
    let mut s = shard(16, 64);
    let p = 40006;
    s.create(&tcp(true, p, SYN, 1000, 0), adm(true), 0).unwrap();
    s.track(&tcp(false, p, SYN | ACK, 5000, 1001), 0);
    s.track(&tcp(true, p, ACK, 1001, 5001), 0);
    s.track(&tcp(true, p, FIN | ACK, 1001, 5001), 0);
    s.track(&tcp(false, p, FIN | ACK, 5001, 1002), 0);
    s.track(&tcp(true, p, ACK, 1002, 5002), 0);
    let reopen = tcp(true, p, SYN, 90_000, 0);
    assert_eq!(
        s.track(&reopen, 1),
        Tracked::New,
        "old entry gone, the rules decide again"
    );
    assert_eq!(s.table().len(), 0);
    s.create(&reopen, adm(true), 1).unwrap();
    assert_eq!(s.stats().closed, 1);
}

#[test]
fn udp_becomes_replied_with_the_longer_timeout() {
    let mut s = shard(16, 64);
    let out = udp(true, 33000);
    s.create(&out, adm(true), 0).unwrap();
    assert_eq!(s.track(&udp(true, 33000), 5), Tracked::Pass);
    assert_eq!(
        s.table().iter().next().unwrap().2.l4,
        L4State::Udp(Pseudo::Unreplied)
    );
    assert_eq!(s.track(&udp(false, 33000), 6), Tracked::Pass);
    assert_eq!(
        s.table().iter().next().unwrap().2.l4,
        L4State::Udp(Pseudo::Replied)
    );
    assert_eq!(
        events(&s),
        [EventKind::Created, EventKind::Established].map(Seen::Conn)
    );
    assert_eq!(s.expire(6 + 119), 0);
    assert_eq!(s.expire(6 + 120), 1);
}

/// The expiry of `flow`'s entry.
fn expiry_of(s: &Shard, flow: &Flow) -> u32 {
    let t = s.table();
    t.expiry(t.find(&flow.key, t.hash(&flow.key)).unwrap())
}

#[test]
fn new_timeouts_apply_to_new_entries_and_next_packets_not_at_once() {
    let mut s = shard(16, 64);
    let (old, new) = (udp(true, 33000), udp(true, 33001));
    s.create(&old, adm(true), 0).unwrap();
    s.create(&tcp(true, 40000, SYN, 1000, 0), adm(true), 0)
        .unwrap();
    let mut short = Timeouts {
        udp_unreplied: 5,
        udp_replied: 10,
        ..Timeouts::default()
    };
    short.tcp.syn_sent = 7;
    s.set_timeouts(short);
    assert_eq!(*s.timeouts(), short);
    assert_eq!(expiry_of(&s, &old), 30, "kept until its next packet");
    assert_eq!(expiry_of(&s, &tcp(true, 40000, SYN, 1000, 0)), 120);
    s.create(&new, adm(true), 1).unwrap();
    assert_eq!(expiry_of(&s, &new), 1 + 5);
    s.create(&tcp(true, 40001, SYN, 1000, 0), adm(true), 1)
        .unwrap();
    assert_eq!(expiry_of(&s, &tcp(true, 40001, SYN, 1000, 0)), 1 + 7);
    assert_eq!(s.track(&udp(false, 33000), 2), Tracked::Pass);
    assert_eq!(expiry_of(&s, &old), 2 + 10, "its reply took the new value");
    assert_eq!(s.expire(11), 2, "the new ones, at 6 and 8");
    assert_eq!(s.expire(119), 1, "the replied one, at 12");
    assert_eq!(s.expire(120), 1, "the old SYN_SENT, at 120");
}

#[test]
fn an_echo_reply_never_creates_a_connection() {
    let mut s = shard(16, 64);
    let (key, side) = FlowKey::from_packet(SERVER, 7, CLIENT, 7, 1);
    let reply = Flow {
        key,
        side,
        l4: L4Packet::IcmpEcho { request: false },
    };
    assert_eq!(s.create(&reply, adm(true), 0), Err(Refused::NoConnection));
}

#[test]
fn long_lived_entries_are_refreshed_while_they_live() {
    let mut s = shard(16, 64);
    let out = udp(true, 34000);
    s.create(&out, adm(true), 0).unwrap();
    s.track(&udp(false, 34000), 1);
    assert_eq!(
        events(&s),
        [EventKind::Created, EventKind::Established].map(Seen::Conn)
    );
    // UDP replied: timeout 120 s, refreshed every 60 s while packets flow
    for t in 2..61 {
        s.track(&udp(true, 34000), t);
    }
    assert!(s.events().is_empty(), "nothing to say within the interval");
    s.track(&udp(true, 34000), 61);
    let (kind, r) = conn_event(&s);
    assert_eq!((kind, r.progress.timeout), (EventKind::Refresh, 120));
    s.track(&udp(true, 34000), 62);
    assert!(s.events().is_empty(), "once per interval");
}

// ---- the synchronisation contract ------------------------------------------

/// What the partner's shard receives for an event, as the two sync lcores
/// pass it on (`None`: nothing, or not for the partner's shard).
fn inbound(e: Event) -> Option<Inbound> {
    Some(match e {
        Event::Conn { kind, record } if kind.full() => Inbound::Install(record),
        Event::Conn { record, .. } => Inbound::Update {
            id: record.id,
            rss: 0,
            progress: record.progress,
        },
        Event::Deleted { id, .. } => Inbound::Delete(id),
        Event::Digest(d) => Inbound::Digest(d),
        _ => return None,
    })
}

/// Hands everything `from` says to `to`.
fn relay(from: &Shard, to: &mut Shard, now: u32) {
    while let Some(e) = from.events().pop() {
        if let Some(item) = inbound(e) {
            to.receive(item, now);
        }
    }
}

fn handshake(s: &mut Shard, port: u16, now: u32) {
    s.create(&tcp(true, port, SYN, 1000, 0), adm(true), now)
        .unwrap();
    s.track(&tcp(false, port, SYN | ACK, 5000, 1001), now);
    s.track(&tcp(true, port, ACK, 1001, 5001), now);
}

#[test]
fn a_delete_the_queue_refused_on_expiry_is_sent_later_in_order() {
    let mut s = shard(16, 2);
    s.create(&udp(true, 1), adm(true), 0).unwrap();
    s.create(&udp(true, 2), adm(true), 0).unwrap();
    assert_eq!(s.expire(30), 2, "both expire while the queue is full");
    assert_eq!(s.pending(), (0, 2));
    assert_eq!(events(&s).len(), 2, "the two Created");
    s.service(31);
    assert_eq!(events(&s), [Deleted, Deleted]);
    assert_eq!(s.pending(), (0, 0));
}

#[test]
fn a_reset_with_a_full_queue_keeps_the_delete_and_marks_nothing_freed() {
    let mut s = shard(16, 1);
    s.create(&tcp(true, 7, SYN, 1000, 0), adm(true), 0).unwrap();
    s.track(&tcp(false, 7, RST | ACK, 0, 1001), 0);
    assert_eq!(s.table().len(), 0);
    assert_eq!(s.pending(), (0, 1), "the delete is kept, no entry marked");
    assert_eq!(events(&s), [Seen::Conn(EventKind::Created)]);
    s.service(1);
    assert_eq!(events(&s), [Deleted]);
}

#[test]
fn refused_deletes_past_their_bound_are_counted() {
    let n = super::shard::LOST_DELETES + 3;
    let mut s = shard(n, 1);
    for p in 0..n {
        s.create(&udp(true, u16::try_from(p).unwrap()), adm(true), 0)
            .unwrap();
    }
    s.events().pop();
    s.events().push(Event::BulkDone);
    while s.expire(30) > 0 {}
    assert_eq!(s.pending().1, super::shard::LOST_DELETES);
    assert_eq!(s.stats().deletes_lost, 3);
}

#[test]
fn the_walker_sends_the_current_full_state_of_marked_entries() {
    let mut s = shard(16, 2);
    handshake(&mut s, 40010, 0);
    // Created and the SYN/ACK's event fit, ESTABLISHED did not.
    assert_eq!(s.pending(), (1, 0));
    assert_eq!(events(&s).len(), 2);
    s.track(&tcp(true, 40010, ACK, 1001, 5001), 1);
    assert!(
        s.events().is_empty(),
        "a marked entry waits for its full state"
    );
    s.service(2);
    let (kind, r) = conn_event(&s);
    assert_eq!(kind, EventKind::Resent);
    assert_eq!(r.progress.state, TcpState::Established as u8);
    assert_eq!((s.pending(), s.stats().resent), ((0, 0), 1));
    let (_, _, conn) = s.table().iter().next().unwrap();
    assert_eq!(conn.flags & flag::RESEND, 0);
}

#[test]
fn a_bulk_streams_every_synchronised_entry_paced_then_ends() {
    let mut s = shard(64, 8);
    for p in 0..10 {
        handshake(&mut s, 41000 + p, 0);
        while s.events().pop().is_some() {}
    }
    s.create(&udp(true, 9), adm(false), 0).unwrap();
    s.export();
    let mut exported = 0;
    let mut done = false;
    for _ in 0..100 {
        s.service(500);
        assert!(s.events().len() <= 5, "never past half the queue");
        for e in events(&s) {
            match e {
                Seen::Conn(EventKind::Exported) => exported += 1,
                Seen::Other => done = true,
                other => panic!("{other:?}"),
            }
        }
        if done {
            break;
        }
    }
    assert!(done && !s.exporting());
    assert_eq!(exported, 10, "idle ones included, unsynchronised ones not");
}

#[test]
fn the_partner_holds_what_the_active_holds_larval() {
    let (mut active, mut passive) = (shard(64, 256), shard(64, 256));
    active.set_identity(0xabc_def, 0);
    for p in 0..5 {
        handshake(&mut active, 42000 + p, 0);
    }
    active.create(&udp(true, 5000), adm(true), 0).unwrap();
    relay(&active, &mut passive, 0);
    assert_eq!(passive.table().len(), 6);
    assert_eq!(passive.digest(), active.digest());
    assert!(passive
        .table()
        .iter()
        .all(|(_, _, c)| c.flags & flag::LARVAL != 0 && c.flags & flag::ADOPTED != 0));
    assert_eq!(
        passive
            .get(&tcp(true, 42000, ACK, 0, 0).key)
            .unwrap()
            .l4
            .name(),
        "ESTABLISHED"
    );
    // Larval entries do not forward; a takeover makes them.
    let data = tcp(true, 42000, ACK, 1001, 5001);
    assert_eq!(passive.track(&data, 1), Tracked::Refused(Refused::Larval));
    passive.go_live(true);
    assert_eq!(passive.track(&data, 1), Tracked::Pass);
    assert_eq!(passive.stats().went_live, 1);
    // A close on the active reaches the partner; so does an expiry.
    active.track(&tcp(true, 42001, RST, 1001, 0), 2);
    active.expire(31);
    relay(&active, &mut passive, 31);
    assert_eq!(passive.table().len(), 4);
    assert_eq!(passive.received().deleted, 2);
    assert_eq!(passive.digest(), active.digest());
}

/// The active dies; the passive takes over with idle larval entries; the old
/// active returns with an empty table: it must get those entries in its
/// bulk, or an idle connection would not survive a second takeover (found by
/// the failover bench: 3 idle UDP flows missing on the returning unit).
#[test]
fn after_a_takeover_larval_entries_are_the_units_own_to_tell() {
    let (mut dead, mut survivor, mut returning) = (shard(64, 256), shard(64, 256), shard(64, 256));
    dead.set_identity(0xabc_def, 0);
    for p in 0..3 {
        handshake(&mut dead, 44000 + p, 0);
    }
    relay(&dead, &mut survivor, 0);
    // Passive: the partner's entries are not its to tell.
    survivor.export();
    survivor.service(1);
    assert_eq!(
        events(&survivor),
        [Seen::Other],
        "a passive shard's bulk holds none of the partner's entries"
    );
    survivor.go_live(true);
    // One goes live at a packet; two stay idle, larval.
    survivor.track(&tcp(true, 44000, ACK, 1001, 5001), 2);
    while survivor.events().pop().is_some() {}
    survivor.export();
    for _ in 0..10 {
        survivor.service(3);
    }
    relay(&survivor, &mut returning, 3);
    assert_eq!(returning.table().len(), 3, "idle ones included");
    assert_eq!(returning.digest(), survivor.digest());
    // Expiring on the survivor, the idle ones too, they are deleted on the
    // returning unit (established: 5 days, and the larval grace).
    let later = 432_000 + 60;
    assert_eq!(survivor.expire(later), 3);
    relay(&survivor, &mut returning, later);
    assert_eq!(returning.received().deleted, 3);
}

/// `f` carrying `len` bytes of payload.
fn with_payload(mut f: Flow, len: u32) -> Flow {
    if let L4Packet::Tcp(seg) = &mut f.l4 {
        seg.payload_len = len;
    }
    f
}

#[test]
fn an_adopted_tcp_entry_is_counted_once_when_strict_again() {
    let (mut active, mut passive) = (shard(64, 256), shard(64, 256));
    handshake(&mut active, 43000, 0);
    handshake(&mut active, 43001, 0);
    relay(&active, &mut passive, 0);
    passive.go_live(true);
    // The partner's copy is behind: the connection moved on meanwhile.
    let (c, s) = (1001 + 10_000_000, 5001 + 3_000_000);
    let relearnt = |p: &Shard| p.stats().windows_relearnt;
    let data = tcp(true, 43000, ACK | PSH, c, s);
    assert_eq!(passive.track(&with_payload(data, 100), 1), Tracked::Pass);
    assert_eq!(passive.stats().went_live, 1);
    assert_eq!(relearnt(&passive), 0, "still learning");
    let back = tcp(false, 43000, ACK, s, c + 100);
    assert_eq!(passive.track(&back, 1), Tracked::Pass);
    assert_eq!(relearnt(&passive), 1, "both windows learnt");
    // Strict from now on, and counted once.
    let far = tcp(true, 43000, ACK | PSH, c + 30_000_000, s);
    assert_eq!(
        passive.track(&with_payload(far, 100), 2),
        Tracked::Refused(Refused::Tcp(TcpInvalid::SeqOverWindow))
    );
    let later = tcp(true, 43000, ACK | PSH, c + 200, s);
    assert_eq!(passive.track(&with_payload(later, 100), 2), Tracked::Pass);
    assert_eq!(relearnt(&passive), 1);
    // An entry created here was never learning.
    handshake(&mut passive, 43002, 2);
    passive.track(&tcp(true, 43002, ACK, 1001, 5001), 2);
    assert_eq!(relearnt(&passive), 1);
}

#[test]
fn events_lost_to_a_full_queue_still_reach_the_partner() {
    let (mut active, mut passive) = (shard(64, 4), shard(64, 256));
    for p in 0..8 {
        handshake(&mut active, 43000 + p, 0);
    }
    assert!(active.events().overflow.get() > 0);
    for t in 1..40 {
        active.service(t);
        relay(&active, &mut passive, t);
    }
    assert_eq!(active.pending(), (0, 0));
    assert_eq!(passive.digest(), active.digest());
    assert_eq!(passive.table().len(), 8);
}

#[test]
fn updates_never_go_backwards_and_unknown_names_are_asked_for() {
    let (mut active, mut passive) = (shard(16, 64), shard(16, 64));
    handshake(&mut active, 44000, 0);
    let mut records = Vec::new();
    while let Some(Event::Conn { record, .. }) = active.events().pop() {
        records.push(record);
    }
    passive.receive(Inbound::Install(records[0]), 0);
    passive.receive(
        Inbound::Update {
            id: records[2].id,
            rss: 0,
            progress: records[2].progress,
        },
        0,
    );
    passive.receive(
        Inbound::Update {
            id: records[1].id,
            rss: 0,
            progress: records[1].progress,
        },
        0,
    );
    assert_eq!(passive.received().stale, 1, "SYN_RECV after ESTABLISHED");
    assert_eq!(
        passive.table().iter().next().unwrap().2.l4.name(),
        "ESTABLISHED"
    );
    let stranger = SyncId(77);
    passive.receive(
        Inbound::Update {
            id: stranger,
            rss: 5,
            progress: records[2].progress,
        },
        0,
    );
    assert_eq!(passive.received().unknown, 1);
    assert!(matches!(
        passive.events().pop(),
        Some(Event::Unknown { id, rss: 5 }) if id == stranger
    ));
    // The active answers a request for its own name with the full state.
    active.receive(Inbound::Request(records[0].id), 1);
    assert!(matches!(conn_event(&active), (EventKind::Requested, r) if r.id == records[0].id));
    active.receive(Inbound::Request(SyncId(77)), 1);
    assert!(active.events().is_empty());
}

#[test]
fn a_digest_difference_is_reported_and_a_flush_and_a_bulk_end_drop_the_stale() {
    let (mut active, mut passive) = (shard(16, 64), shard(16, 64));
    handshake(&mut active, 45000, 0);
    active.create(&udp(true, 45001), adm(true), 0).unwrap();
    relay(&active, &mut passive, 0);
    active.receive(Inbound::SendDigest, 0);
    relay(&active, &mut passive, 0);
    assert_eq!(passive.received().digest_matches, 1);
    assert!(
        matches!(passive.events().pop(), Some(Event::DigestChecked { theirs, ours, .. }) if theirs == ours)
    );
    // The partner misses a delete (as if lost for good).
    assert_eq!(active.expire(30), 1);
    assert!(matches!(active.events().pop(), Some(Event::Deleted { .. })));
    active.receive(Inbound::SendDigest, 30);
    relay(&active, &mut passive, 30);
    assert_eq!(passive.received().digest_mismatches, 1);
    assert!(matches!(
        passive.events().pop(),
        Some(Event::DigestChecked { theirs, ours, refused: 0 }) if theirs.count == 1 && ours.count == 2
    ));
    // The shard is sent again: the bulk refreshes 45000, 45001 is dropped at its end.
    active.export();
    for t in 0..4 {
        active.service(40 + t);
        relay(&active, &mut passive, 40);
    }
    passive.receive(Inbound::BulkEnd(40), 40);
    assert_eq!(passive.received().purged, 1);
    assert_eq!(passive.digest(), active.digest());
    passive.receive(Inbound::Flush, 41);
    assert_eq!((passive.table().len(), passive.received().flushed), (0, 1));
    assert_eq!(passive.digest(), Digest::default());
}

#[test]
fn a_full_table_refuses_the_partners_entries_and_evicts_none() {
    let (mut active, mut passive) = (shard(16, 64), shard(1, 64));
    passive.create(&udp(true, 1), adm(false), 0).unwrap();
    handshake(&mut active, 46000, 0);
    relay(&active, &mut passive, 0);
    assert_eq!(passive.received().table_full, 1);
    assert_eq!(passive.table().len(), 1);
}

#[test]
fn a_reload_renumbers_rule_indexes_and_records_say_which_set() {
    let mut s = shard(16, 64);
    assert!(s.renumber_rules(0xa, Vec::new()));
    s.service(0);
    s.create(&udp(true, 1), adm(true), 0).unwrap();
    s.create(&udp(true, 2), adm(true), 0).unwrap();
    while s.events().pop().is_some() {}
    // Rule 3 of set A is rule 0 of set B.
    let mut map = vec![NO_RULE; 4];
    map[3] = 0;
    assert!(s.renumber_rules(0xb, map));
    assert!(!s.renumber_rules(0xc, Vec::new()), "one reload at a time");
    let r = s.record(0, 1);
    assert_eq!(
        r.rule,
        RuleRef {
            revision: 0xa,
            index: 3
        },
        "not yet renumbered"
    );
    s.service(1);
    assert!(!s.renumbering());
    assert_eq!(
        s.record(0, 1).rule,
        RuleRef {
            revision: 0xb,
            index: 0
        }
    );
    assert_eq!(s.stats().renumbered, 2);
    s.create(&udp(true, 3), adm(true), 1).unwrap();
    let (_, r) = conn_event(&s);
    assert_eq!(r.rule.revision, 0xb);
}

#[test]
fn with_a_minimum_age_short_flows_are_never_told_and_long_ones_are_in_full() {
    let (mut active, mut passive) = (shard(16, 64), shard(16, 64));
    active.set_min_age(10);
    active.create(&udp(true, 1), adm(true), 0).unwrap();
    handshake(&mut active, 47000, 0);
    relay(&active, &mut passive, 0);
    assert_eq!(passive.table().len(), 0, "too young");
    assert_eq!(active.digest(), Digest::default());
    // The UDP flow dies young: nothing, not even its delete, is said.
    active.expire(30);
    // The TCP connection, idle, is told in full once it is old enough.
    active.service(31);
    relay(&active, &mut passive, 31);
    assert_eq!(passive.table().len(), 1);
    assert_eq!(passive.received().unknown_deletes, 0);
    assert_eq!(passive.digest(), active.digest());
    let (_, _, c) = passive.table().iter().next().unwrap();
    assert_eq!(c.l4.name(), "ESTABLISHED");
}

#[test]
fn a_burst_from_the_queue_is_handled_as_item_by_item_in_order() {
    let (mut active, mut one, mut burst) = (shard(64, 512), shard(64, 64), shard(64, 64));
    for p in 0..20 {
        handshake(&mut active, 48000 + p, 0);
    }
    active.track(&tcp(true, 48003, RST, 1001, 0), 1);
    let q = InboundQueue::new(512);
    while let Some(item) = active.events().pop().and_then(inbound) {
        one.receive(item, 1);
        assert!(q.push(item));
    }
    let mut handled = 0;
    while !q.is_empty() {
        handled += burst.receive_from(&q, 7, 1);
    }
    assert_eq!(handled, 20 + 2 * 20 + 1);
    assert_eq!(burst.received(), one.received());
    assert_eq!(burst.digest(), active.digest());
    assert_eq!(burst.table().len(), 20);
}
