//! The shard: entries, timeouts, and the events a test reads off the queue.

use super::conn::{flag, L4State, Pseudo, Timeouts};
use super::event::{EventKind, EventQueue};
use super::key::FlowKey;
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

fn events(s: &Shard) -> Vec<EventKind> {
    std::iter::from_fn(|| s.events().pop())
        .map(|e| e.kind)
        .collect()
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
    );

    // TIME_WAIT lasts 120 s from the last ACK at t=3
    assert_eq!(s.expire(122), 0);
    assert_eq!(s.expire(123), 1);
    let e = s.events().pop().unwrap();
    assert_eq!(
        (e.kind, e.conn.l4.tcp_state()),
        (Deleted, Some(TcpState::TimeWait))
    );
    assert_eq!(s.stats().expired, 1);
    assert_eq!(s.table().len(), 0);
}

#[test]
fn events_carry_the_full_state_and_remaining_life() {
    let mut s = shard(16, 64);
    let syn = tcp(true, 40001, SYN, 1000, 0);
    s.create(&syn, adm(true), 10).unwrap();
    let e = s.events().pop().unwrap();
    assert_eq!(e.kind, EventKind::Created);
    assert_eq!(e.key, syn.key);
    assert_eq!(e.conn.orig_side, syn.side);
    assert_eq!(
        (
            e.conn.rule,
            e.conn.in_iface,
            e.conn.out_iface,
            e.conn.created
        ),
        (3, 0, 1, 10)
    );
    assert_eq!(e.timeout, 120, "SYN_SENT");
    assert!(e.conn.flags & flag::SYNC != 0);
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
    assert_eq!(events(&s), [EventKind::Created, EventKind::Deleted]);
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
    assert_eq!(events(&s), [EventKind::Created, EventKind::Established]);
    assert_eq!(s.expire(6 + 119), 0);
    assert_eq!(s.expire(6 + 120), 1);
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
    assert_eq!(events(&s), [EventKind::Created, EventKind::Established]);
    // UDP replied: timeout 120 s, refreshed every 60 s while packets flow
    for t in 2..61 {
        s.track(&udp(true, 34000), t);
    }
    assert!(s.events().is_empty(), "nothing to say within the interval");
    s.track(&udp(true, 34000), 61);
    let e = s.events().pop().unwrap();
    assert_eq!((e.kind, e.timeout), (EventKind::Refresh, 120));
    s.track(&udp(true, 34000), 62);
    assert!(s.events().is_empty(), "once per interval");
}
