//! The firewall on whole IPv4 datagrams: the one flow-key builder, and ICMP
//! errors related (or not) to a tracked connection, for every error type and
//! every kind of quote.

use super::packet::{flow_key_of_frame, Datagram};
use super::related::{check, Quote, Unrelated};
use super::Firewall;
use crate::conntrack::conn::Timeouts;
use crate::conntrack::event::EventQueue;
use crate::conntrack::shard::Shard;
use crate::conntrack::FlowKey;
use crate::counters::{DropReason, WorkerCounters};
use crate::filter::{Action, Rule, RuleSet};
use crate::wire::{checksum, IpProtocol, Ipv4Packet, UdpPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 100);
/// A router on the path between the unit and the server.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const NOW: u32 = 100;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// ICMP (type, code) of the errors the filter relates.
const DST_UNREACHABLE_FRAG_NEEDED: (u8, u8) = (3, 4);
const DST_UNREACHABLE_PORT: (u8, u8) = (3, 3);
const REDIRECT_HOST: (u8, u8) = (5, 1);
const TIME_EXCEEDED_TTL: (u8, u8) = (11, 0);
const PARAMETER_PROBLEM: (u8, u8) = (12, 0);
const ERRORS: [(u8, u8); 5] = [
    DST_UNREACHABLE_FRAG_NEEDED,
    DST_UNREACHABLE_PORT,
    REDIRECT_HOST,
    TIME_EXCEEDED_TTL,
    PARAMETER_PROBLEM,
];

/// "pass new from data0" (interface 0), keep state; default block.
fn firewall() -> Firewall {
    let mut from_data0 = Rule::new(Action::Pass);
    from_data0.in_iface = Some(0);
    let rules = RuleSet::new(vec![from_data0], Action::Block).unwrap();
    let shard = Shard::new(1024, 7, Timeouts::default(), EventQueue::new(64));
    Firewall::new(shard, Arc::new(rules))
}

/// A datagram with TTL 64.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    crate::test_packets::ipv4(src, dst, 64, proto, payload)
}

use crate::test_packets::tcp;

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut dgram = vec![0u8; 8 + 4];
    let mut u = UdpPacket::new_unchecked(&mut dgram[..]);
    u.set_src_port(sport);
    u.set_dst_port(dport);
    u.set_len(12);
    u.fill_checksum(&IpAddr::V4(src), &IpAddr::V4(dst));
    ipv4(src, dst, IpProtocol::Udp, &dgram)
}

fn icmp(src: Ipv4Addr, dst: Ipv4Addr, (ty, code): (u8, u8), rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let sum = !checksum::data(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, IpProtocol::Icmp, &m)
}

fn echo(src: Ipv4Addr, dst: Ipv4Addr, request: bool, ident: u16) -> Vec<u8> {
    let ty = if request { 8 } else { 0 };
    let id = ident.to_be_bytes();
    icmp(src, dst, (ty, 0), [id[0], id[1], 0, 1], b"ping")
}

/// An ICMP error from `src` to `dst` quoting the first 28 bytes of `quoted`
/// (an IPv4 header and 8 bytes: what every router quotes at least).
fn error(src: Ipv4Addr, dst: Ipv4Addr, kind: (u8, u8), quoted: &[u8]) -> Vec<u8> {
    error_quoting(src, dst, kind, &quoted[..28.min(quoted.len())])
}

fn error_quoting(src: Ipv4Addr, dst: Ipv4Addr, kind: (u8, u8), quote: &[u8]) -> Vec<u8> {
    icmp(src, dst, kind, [0, 0, 0x05, 0xdc], quote)
}

struct Lab {
    fw: Firewall,
    counters: WorkerCounters,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            fw: firewall(),
            counters: WorkerCounters::default(),
        }
    }

    /// The verdict on a datagram arriving on `in_iface` (0: the client's side).
    fn filter(&mut self, in_iface: usize, datagram: &[u8]) -> Result<(), DropReason> {
        let ip = Ipv4Packet::new_checked(datagram).unwrap();
        self.fw
            .filter(&ip, in_iface, 1 - in_iface, NOW, &self.counters)
    }

    /// The handshake and first data: client 41025 -> server 80,
    /// SYN 4000, SYN/ACK 8000, 100 bytes of data, acked.
    fn connect(&mut self, cport: u16) {
        let steps = [
            (0, tcp(CLIENT, cport, SERVER, 80, SYN, 4000, 0, 0)),
            (1, tcp(SERVER, 80, CLIENT, cport, SYN | ACK, 8000, 4001, 0)),
            (0, tcp(CLIENT, cport, SERVER, 80, ACK, 4001, 8001, 0)),
            (
                0,
                tcp(CLIENT, cport, SERVER, 80, PSH | ACK, 4001, 8001, 100),
            ),
            (1, tcp(SERVER, 80, CLIENT, cport, ACK, 8001, 4101, 0)),
        ];
        for (i, (iface, d)) in steps.iter().enumerate() {
            assert_eq!(self.filter(*iface, d), Ok(()), "handshake step {i}");
        }
    }
}

// ------------------------------------------------------- one key builder

/// The key the filter tracks a datagram under is the key the worker's
/// prefetch and handoff compute from the frame, and the key of an ICMP error
/// quoting that datagram, for TCP, UDP, ICMP echo (by identifier) and other
/// protocols, in both directions.
#[test]
fn the_filter_the_prefetch_the_handoff_and_quotes_share_one_key() {
    let datagrams = [
        tcp(CLIENT, 41025, SERVER, 80, SYN, 4000, 0, 0),
        tcp(SERVER, 80, CLIENT, 41025, SYN | ACK, 8000, 4001, 0),
        udp(CLIENT, 5353, SERVER, 53),
        udp(SERVER, 53, CLIENT, 5353),
        echo(CLIENT, SERVER, true, 0x1234),
        echo(SERVER, CLIENT, false, 0x1234),
        ipv4(CLIENT, SERVER, IpProtocol::Gre, &[0; 12]),
    ];
    for d in &datagrams {
        let ip = Ipv4Packet::new_checked(&d[..]).unwrap();
        let filter_key = Datagram::parse(&ip).unwrap().key().0;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(d);
        assert_eq!(flow_key_of_frame(&frame), Some(filter_key), "{d:02x?}");
        let err = error(ROUTER, ip.src_addr(), DST_UNREACHABLE_PORT, d);
        let mut err_frame = frame[..14].to_vec();
        err_frame.extend_from_slice(&err);
        assert_eq!(
            flow_key_of_frame(&err_frame),
            Some(filter_key),
            "error about {d:02x?}"
        );
    }
    let key = |d: &[u8]| {
        let ip = Ipv4Packet::new_checked(d).unwrap();
        Datagram::parse(&ip).unwrap().key().0
    };
    assert_eq!(key(&datagrams[0]), key(&datagrams[1]), "both directions");
    assert_eq!(key(&datagrams[4]), key(&datagrams[5]), "echo and its reply");
    let echo_key = key(&datagrams[4]);
    assert_eq!((echo_key.lo_port, echo_key.hi_port), (0x1234, 0x1234));
}

// ------------------------------------------------ the forged error

/// Item 2 of the hardening issue: after the handshake 41025 -> 80, the client
/// sends the server a fragmentation-needed quoting one of its own segments.
/// An error travels to the source of what it quotes: this one is forged, and
/// Linux drops it. The same error from a router to the client passes.
#[test]
fn an_error_sent_the_way_its_quote_went_is_forged() {
    let mut lab = Lab::new();
    lab.connect(41025);
    let segment = tcp(CLIENT, 41025, SERVER, 80, PSH | ACK, 4101, 8001, 100);
    let forged = error(CLIENT, SERVER, DST_UNREACHABLE_FRAG_NEEDED, &segment);
    assert_eq!(
        lab.filter(0, &forged),
        Err(DropReason::IcmpErrorWrongDirection)
    );
    let real = error(ROUTER, CLIENT, DST_UNREACHABLE_FRAG_NEEDED, &segment);
    assert_eq!(lab.filter(1, &real), Ok(()));
    assert_eq!(lab.counters.accepted_related.get(), 1);
}

/// Every error type, about segments of either direction: to the quoted
/// source it passes, anywhere else it is forged.
#[test]
fn every_error_type_must_travel_back_to_the_quoted_source() {
    let mut lab = Lab::new();
    lab.connect(41026);
    let from_client = tcp(CLIENT, 41026, SERVER, 80, ACK, 4101, 8001, 0);
    let from_server = tcp(SERVER, 80, CLIENT, 41026, ACK, 8001, 4101, 0);
    for kind in ERRORS {
        assert_eq!(
            lab.filter(1, &error(ROUTER, CLIENT, kind, &from_client)),
            Ok(()),
            "{kind:?}"
        );
        assert_eq!(
            lab.filter(0, &error(CLIENT, SERVER, kind, &from_client)),
            Err(DropReason::IcmpErrorWrongDirection),
            "{kind:?}"
        );
        assert_eq!(
            lab.filter(1, &error(ROUTER, SERVER, kind, &from_client)),
            Err(DropReason::IcmpErrorWrongDirection),
            "{kind:?}"
        );
        // The client's own stack answering the server (e.g. port unreachable).
        assert_eq!(
            lab.filter(0, &error(CLIENT, SERVER, kind, &from_server)),
            Ok(()),
            "{kind:?}"
        );
        assert_eq!(
            lab.filter(1, &error(SERVER, CLIENT, kind, &from_server)),
            Err(DropReason::IcmpErrorWrongDirection),
            "{kind:?}"
        );
    }
    assert_eq!(lab.counters.accepted_related.get(), 2 * ERRORS.len() as u64);
}

// ------------------------------------------------------- kinds of quotes

#[test]
fn quotes_of_udp_icmp_echo_and_other_protocols_relate_by_their_key() {
    let mut lab = Lab::new();
    let out = udp(CLIENT, 5353, SERVER, 53);
    let ping = echo(CLIENT, SERVER, true, 0x4242);
    let gre = ipv4(CLIENT, SERVER, IpProtocol::Gre, &[0; 12]);
    for d in [&out, &ping, &gre] {
        assert_eq!(lab.filter(0, d), Ok(()), "the flow is created");
        assert_eq!(
            lab.filter(1, &error(ROUTER, CLIENT, DST_UNREACHABLE_PORT, d)),
            Ok(())
        );
        assert_eq!(
            lab.filter(0, &error(CLIENT, SERVER, DST_UNREACHABLE_PORT, d)),
            Err(DropReason::IcmpErrorWrongDirection)
        );
    }
    // Another UDP port, another echo identifier: no connection.
    let other_udp = udp(CLIENT, 5354, SERVER, 53);
    let other_echo = echo(CLIENT, SERVER, true, 0x4243);
    for d in [&other_udp, &other_echo] {
        assert_eq!(
            lab.filter(1, &error(ROUTER, CLIENT, DST_UNREACHABLE_PORT, d)),
            Err(DropReason::IcmpErrorNoConnection)
        );
    }
}

#[test]
fn truncated_malformed_fragment_and_error_quotes_are_bad_quotes() {
    let mut lab = Lab::new();
    lab.connect(41027);
    let segment = tcp(CLIENT, 41027, SERVER, 80, ACK, 4101, 8001, 0);
    let bad = |lab: &mut Lab, quote: &[u8], what: &str| {
        let e = error_quoting(ROUTER, CLIENT, TIME_EXCEEDED_TTL, quote);
        assert_eq!(
            lab.filter(1, &e),
            Err(DropReason::IcmpErrorBadQuote),
            "{what}"
        );
    };
    bad(&mut lab, &[], "empty");
    bad(&mut lab, &segment[..20], "IP header only");
    bad(&mut lab, &segment[..27], "7 bytes of TCP");
    let mut ihl4 = segment[..28].to_vec();
    ihl4[0] = 0x44;
    bad(&mut lab, &ihl4, "header length below 20");
    let mut ihl6 = segment[..28].to_vec();
    ihl6[0] = 0x46;
    bad(&mut lab, &ihl6, "header length past the quote");
    let mut v6 = segment[..28].to_vec();
    v6[0] = 0x65;
    bad(&mut lab, &v6, "not IPv4");
    let mut later_fragment = segment[..28].to_vec();
    later_fragment[6..8].copy_from_slice(&[0x00, 0x10]);
    bad(
        &mut lab,
        &later_fragment,
        "a later fragment has no transport header",
    );
    let about_an_error = error(ROUTER, CLIENT, TIME_EXCEEDED_TTL, &segment);
    bad(
        &mut lab,
        &about_an_error[..28],
        "an error about an error (RFC 1122 3.2.2)",
    );
    // The same quote, whole, is related: only the quote's shape was wrong.
    assert_eq!(
        lab.filter(1, &error(ROUTER, CLIENT, TIME_EXCEEDED_TTL, &segment)),
        Ok(())
    );
    // A first fragment (MF, offset 0) carries the ports: usable.
    let mut first_fragment = segment[..28].to_vec();
    first_fragment[6] |= 0x20;
    assert_eq!(
        lab.filter(
            1,
            &error_quoting(ROUTER, CLIENT, TIME_EXCEEDED_TTL, &first_fragment)
        ),
        Ok(())
    );
}

// ------------------------------------------------------- TCP sequence space

#[test]
fn a_quoted_tcp_segment_must_lie_in_what_its_sender_could_send() {
    let mut lab = Lab::new();
    lab.connect(41028);
    let at = |seq: u32| tcp(CLIENT, 41028, SERVER, 80, ACK, seq, 8001, 0);
    let verdict = |lab: &mut Lab, seq: u32| {
        lab.filter(
            1,
            &error(ROUTER, CLIENT, DST_UNREACHABLE_FRAG_NEEDED, &at(seq)),
        )
    };
    assert_eq!(verdict(&mut lab, 4101), Ok(()), "the next byte");
    assert_eq!(
        verdict(&mut lab, 4001),
        Ok(()),
        "data already sent, within a window"
    );
    assert_eq!(
        verdict(&mut lab, 4101 + 1_000_000),
        Err(DropReason::IcmpErrorOutOfWindow),
        "far beyond what the server's window allowed"
    );
    assert_eq!(
        verdict(&mut lab, 4101u32.wrapping_sub(1_000_000)),
        Err(DropReason::IcmpErrorOutOfWindow),
        "far below anything still in flight"
    );
    assert_eq!(lab.counters.accepted_related.get(), 2);
}

/// The commonest error of all: a SYN that cannot be delivered, before the
/// server ever answered (no window learnt from it yet).
#[test]
fn an_unreachable_for_an_unanswered_syn_passes() {
    let mut lab = Lab::new();
    let syn = tcp(CLIENT, 41029, SERVER, 80, SYN, 4000, 0, 0);
    assert_eq!(lab.filter(0, &syn), Ok(()));
    let host_unreachable = (3, 1);
    assert_eq!(
        lab.filter(1, &error(ROUTER, CLIENT, host_unreachable, &syn)),
        Ok(())
    );
    let elsewhere = tcp(CLIENT, 41029, SERVER, 80, SYN, 4000 + 70_000, 0, 0);
    assert_eq!(
        lab.filter(1, &error(ROUTER, CLIENT, host_unreachable, &elsewhere)),
        Err(DropReason::IcmpErrorOutOfWindow)
    );
}

// ------------------------------------------------------------- ICMPv6 quotes

/// An IPv6 packet from `src` to `dst`: fixed header, then `ext` (extension
/// headers, already chained, the first one's type in `first`), then `l4`.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, first: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    let len = u16::try_from(ext.len() + l4.len()).unwrap();
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(ext);
    p.extend_from_slice(l4);
    p
}

#[test]
fn icmpv6_quotes_are_walked_to_their_transport_header() {
    let (a, b): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().unwrap(),
        "2001:db8::b".parse().unwrap(),
    );
    let tcp_head = [0xa0, 0x41, 0x00, 0x50, 0, 0, 0x0f, 0xa0, 0, 0, 0, 0];
    // Hop-by-Hop (8 bytes) -> Destination Options (8 bytes) -> TCP.
    let ext = [60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
    let packet = ipv6(a, b, 0, &ext, &tcp_head);
    let quote = Quote::parse_v6(&packet).unwrap();
    let expected = FlowKey::from_packet(IpAddr::V6(a), 41025, IpAddr::V6(b), 80, 6);
    assert_eq!(quote.key(), expected);
    assert_eq!(quote.src, IpAddr::V6(a));

    let echo_request = [128, 0, 0, 0, 0x12, 0x34, 0, 1];
    let ping = Quote::parse_v6(&ipv6(a, b, 58, &[], &echo_request)).unwrap();
    assert_eq!(
        (ping.key().0.lo_port, ping.key().0.hi_port),
        (0x1234, 0x1234)
    );

    let packet_too_big = [2, 0, 0, 0, 0, 0, 5, 0xdc];
    assert_eq!(
        Quote::parse_v6(&ipv6(a, b, 58, &[], &packet_too_big)),
        Err(Unrelated::BadQuote),
        "an error about an error"
    );
    assert_eq!(
        Quote::parse_v6(&packet[..40 + 16 + 7]),
        Err(Unrelated::BadQuote),
        "7 bytes of TCP"
    );
    assert_eq!(
        Quote::parse_v6(&packet[..39]),
        Err(Unrelated::BadQuote),
        "no fixed header"
    );
    let mut v4 = packet.clone();
    v4[0] = 0x40;
    assert_eq!(Quote::parse_v6(&v4), Err(Unrelated::BadQuote), "not IPv6");
    // Fragment header, offset 8: a later fragment.
    let later = [6, 0, 0x00, 0x08, 0, 0, 0, 1];
    assert_eq!(
        Quote::parse_v6(&ipv6(a, b, 44, &later, &tcp_head)),
        Err(Unrelated::BadQuote)
    );
    // Offset 0, more fragments: the first fragment carries the header.
    let first = [6, 0, 0x00, 0x01, 0, 0, 0, 1];
    assert_eq!(
        Quote::parse_v6(&ipv6(a, b, 44, &first, &tcp_head)).map(|q| q.key()),
        Ok(expected)
    );
}

/// The relation rules do not depend on the family: an IPv6 quote relates
/// to an IPv6 entry by the same checks.
#[test]
fn the_relation_rules_are_the_same_for_icmpv6() {
    let (a, b): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().unwrap(),
        "2001:db8::b".parse().unwrap(),
    );
    let udp_head = [0x14, 0xe9, 0x00, 0x35, 0, 8, 0, 0];
    let quote = Quote::parse_v6(&ipv6(a, b, 17, &[], &udp_head)).unwrap();
    let side = quote.key().1;
    let conn = crate::conntrack::conn::Conn {
        orig_side: side,
        ..Default::default()
    };
    assert_eq!(check(IpAddr::V6(a), &quote, side, Some(&conn)), Ok(()));
    assert_eq!(
        check(IpAddr::V6(b), &quote, side, Some(&conn)),
        Err(Unrelated::WrongDirection)
    );
    assert_eq!(
        check(IpAddr::V6(a), &quote, side, None),
        Err(Unrelated::NoConnection)
    );
}
