//! Round trips, sizes, and one field at a time corrupted with its exact error.

use super::*;
use dataplane::conntrack::tcp::TcpState;
use std::net::{IpAddr, Ipv4Addr};

/// One way to spoil a datagram or a body.
type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;

fn record(rev: u64) -> Record {
    let (key, side) = FlowKey::from_packet(
        IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
        40000,
        IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2)),
        443,
        6,
    );
    let peer = |n: u32| Peer {
        end: n,
        maxend: n + 1,
        maxwin: n + 2,
        maxack: n + 3,
        scale: 7,
        flags: 0x21,
    };
    let peers = [peer(1000), peer(5000)];
    Record {
        id: SyncId::new(0xabcdef, 1, 77),
        key,
        orig_side: side,
        kind: L4Kind::Tcp,
        progress: Progress {
            state: TcpState::Established as u8,
            tcp_flags: 3,
            edges: peers.map(|p| Edge {
                end: p.end,
                maxend: p.maxend,
            }),
            timeout: 432_000,
        },
        peers,
        rule: RuleRef {
            revision: rev,
            index: 4,
        },
        log: true,
        in_iface: 0,
        out_iface: 1,
    }
}

fn every_data_message() -> Vec<Message> {
    let r = record(0x1122_3344_5566_7788);
    vec![
        Message::Insert(r),
        Message::Insert(record(9)),
        Message::Update {
            id: r.id,
            rss: 0xbeef,
            progress: r.progress,
        },
        Message::Delete { id: r.id, rss: 7 },
        Message::Digest {
            shard: 3,
            digest: Digest {
                count: 1000,
                sum: 0xdead_beef_0000_0001,
            },
        },
        Message::BulkStart(Bulk {
            id: 5,
            shards: u64::MAX,
        }),
        Message::BulkEnd(Bulk {
            id: 5,
            shards: 0b11,
        }),
        Message::BulkDone(Bulk { id: 5, shards: 1 }),
        Message::BulkRequest,
        Message::Request { id: r.id, rss: 9 },
        Message::Resync(0b1010),
        Message::Update {
            id: SyncId(2),
            rss: 1,
            progress: Progress::default(),
        },
    ]
}

fn control_messages() -> Vec<Message> {
    vec![
        Message::Ack {
            cumulative: 41,
            first_held: 30,
        },
        Message::Nack {
            first: 42,
            last: 44,
        },
        Message::Heartbeat(heartbeat()),
        Message::Heartbeat(Heartbeat::default()),
    ]
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        workers: 2,
        interfaces: 3,
        active: true,
        wants_bulk: true,
        bulk_done: true,
        links_heard: 0b10,
        firmware: 0x00_01_02,
        rules: 0x55,
        quality: MAX_QUALITY,
        priority: 200,
        forced: Forced::Passive,
        config_revision: 0x0102_0304,
    }
}

fn body(messages: &[Message]) -> Vec<u8> {
    let mut w = BodyWriter::new(4096);
    for m in messages {
        w.push(m).unwrap();
    }
    w.as_bytes().to_vec()
}

#[test]
fn every_record_round_trips() {
    for (kind, messages) in [
        (Kind::Data, every_data_message()),
        (Kind::Control, control_messages()),
    ] {
        let b = body(&messages);
        let back: Vec<_> = records(kind, &b).map(Result::unwrap).collect();
        assert_eq!(back, messages);
        assert_eq!(validate(kind, &b), Ok(messages.len()));
    }
}

#[test]
fn sizes_are_what_the_docs_say() {
    let r = record(1);
    let one = |m: Message| body(&[m]).len() - SECTION_LEN;
    assert_eq!(one(Message::Insert(r)), 96);
    let update = Message::Update {
        id: r.id,
        rss: 0,
        progress: r.progress,
    };
    assert_eq!(one(update), 32);
    assert_eq!(one(Message::Delete { id: r.id, rss: 0 }), 12);
    assert_eq!(one(Message::Heartbeat(heartbeat())), 24);
    // Records of one action share a sub-header; a new rule set opens another.
    assert_eq!(body(&[update, update, update]).len(), SECTION_LEN + 3 * 32);
    assert_eq!(
        body(&[Message::Insert(record(1)), Message::Insert(record(2))]).len(),
        2 * (SECTION_LEN + 96)
    );
}

/// An update record, byte by byte.
#[test]
fn an_update_record_reads_as_drawn() {
    #[rustfmt::skip]
    let bytes: [u8; SECTION_LEN + 32] = [
        2, 32, 0, 1,                 // action update, record length 32, count 1
        0, 0, 0, 0, 0, 0, 0, 0,      // revision (inserts only)
        0xab, 0xcd, 0xef, 1, 0, 0, 0, 77, // id: creator abcdef, worker 1, slot 77
        0xbe, 0xef,                  // rss
        3, 3,                        // state ESTABLISHED, tcp flags
        0, 0, 0, 60,                 // timeout 60 s
        0, 0, 3, 232, 0, 0, 3, 233,  // original end 1000, maxend 1001
        0, 0, 19, 136, 0, 0, 19, 137, // reply end 5000, maxend 5001
    ];
    let m: Vec<_> = records(Kind::Data, &bytes).collect();
    assert_eq!(
        m,
        [Ok(Message::Update {
            id: SyncId::new(0xabcdef, 1, 77),
            rss: 0xbeef,
            progress: Progress {
                state: 3,
                tcp_flags: 3,
                timeout: 60,
                edges: [
                    Edge {
                        end: 1000,
                        maxend: 1001
                    },
                    Edge {
                        end: 5000,
                        maxend: 5001
                    }
                ],
            },
        })]
    );
}

/// A heartbeat record, byte by byte.
#[test]
fn a_heartbeat_record_reads_as_drawn() {
    #[rustfmt::skip]
    let bytes: [u8; SECTION_LEN + 24] = [
        13, 24, 0, 1,                // action heartbeat, record length 24, count 1
        0, 0, 0, 0, 0, 0, 0, 0,      // revision (inserts only)
        4, 2,                        // workers, interfaces
        0b101,                       // flags: active, bulk done
        0b11,                        // links heard: 0 and 1
        0, 1, 2, 3,                  // firmware 1.2.3
        0, 0, 0, 0, 0, 0, 0x12, 0x34, // rule set revision
        0x18, 0x9c,                  // quality 6300 (63 %)
        7,                           // priority
        1,                           // forced active
        0, 0, 1, 0,                  // configuration revision 256
    ];
    let m: Vec<_> = records(Kind::Control, &bytes).collect();
    assert_eq!(
        m,
        [Ok(Message::Heartbeat(Heartbeat {
            workers: 4,
            interfaces: 2,
            active: true,
            wants_bulk: false,
            bulk_done: true,
            links_heard: 0b11,
            firmware: 0x01_02_03,
            rules: 0x1234,
            quality: 6300,
            priority: 7,
            forced: Forced::Active,
            config_revision: 256,
        }))]
    );
    assert_eq!(body(&[m[0].unwrap()]), bytes);
}

/// Quality past 100 %, a forced mode past passive, and each unknown flag are
/// refused, one field at a time; the highest valid values pass.
#[test]
fn a_heartbeat_out_of_range_is_refused() {
    let good = body(&[Message::Heartbeat(heartbeat())]);
    assert_eq!(validate(Kind::Control, &good), Ok(1));
    let at = SECTION_LEN;
    let mut cases: Vec<(Corrupt, Result<usize, Error>)> = vec![
        (
            Box::new(move |b| b[at + 16..at + 18].copy_from_slice(&10_001u16.to_be_bytes())),
            Err(Error::BadRecord),
        ),
        (
            Box::new(move |b| b[at + 16..at + 18].fill(0xff)),
            Err(Error::BadRecord),
        ),
        (Box::new(move |b| b[at + 16..at + 18].fill(0)), Ok(1)),
        (Box::new(move |b| b[at + 19] = 3), Err(Error::BadRecord)),
        (Box::new(move |b| b[at + 19] = 0xff), Err(Error::BadRecord)),
        (Box::new(move |b| b[at + 19] = 0), Ok(1)),
        (Box::new(move |b| b[at + 2] = 0b111), Ok(1)),
    ];
    for bit in 3..8 {
        cases.push((
            Box::new(move |b| b[at + 2] |= 1 << bit),
            Err(Error::BadRecord),
        ));
    }
    for (i, (corrupt, want)) in cases.into_iter().enumerate() {
        let mut b = good.clone();
        corrupt(&mut b);
        assert_eq!(validate(Kind::Control, &b), want, "case {i}");
    }
}

#[test]
fn the_writer_stops_at_its_capacity_and_writes_nothing_more() {
    let mut w = BodyWriter::new(SECTION_LEN + 2 * 32 + 31);
    let u = every_data_message()[2];
    assert_eq!(w.push(&u), Ok(SECTION_LEN));
    assert_eq!(w.push(&u), Ok(SECTION_LEN + 32));
    assert_eq!(w.push(&u), Err(Full));
    assert_eq!((w.len(), w.records()), (SECTION_LEN + 64, 2));
    assert_eq!(w.cost(&u), 32);
    assert_eq!(
        w.cost(&Message::Delete {
            id: SyncId(1),
            rss: 0
        }),
        SECTION_LEN + 12
    );
}

fn header(kind: Kind, sequence: u64) -> Header {
    Header {
        kind,
        serial: *b"TNDM-LAB-A\0\0\0\0\0\0",
        sender_epoch: 0x6000_0000_0000_0001,
        receiver_epoch: 0x6000_0000_0000_0002,
        sequence,
        ack: 41,
        key_id: 3,
        psk_id: 0x3510_6cb4,
        counter: 99,
    }
}

fn datagram(h: &Header, body_len: usize) -> Vec<u8> {
    let len = HEADER_LEN + body_len + TAG_LEN;
    let mut b = vec![0u8; len];
    h.emit(&mut b, u16::try_from(len).unwrap());
    b
}

#[test]
fn the_header_round_trips() {
    for h in [header(Kind::Data, 7), header(Kind::Control, 0)] {
        let b = datagram(&h, 20);
        let d = Datagram::new_checked(&b[..]).unwrap();
        assert_eq!(Header::parse(&d), Ok(h));
        assert_eq!(d.body().len(), 20);
        assert_eq!(&b[..4], b"TDSY");
    }
}

#[test]
fn one_header_field_at_a_time() {
    let good = datagram(&header(Kind::Data, 7), 12);
    let check = |b: &[u8]| Datagram::new_checked(b).and_then(|d| Header::parse(&d));
    assert!(check(&good).is_ok());
    let cases: Vec<(Corrupt, Error)> = vec![
        (
            Box::new(|b| b.truncate(HEADER_LEN + TAG_LEN - 1)),
            Error::Truncated,
        ),
        (Box::new(|b| b[0] = b'X'), Error::BadMagic),
        (Box::new(|b| b[4] = 2), Error::Version(2)),
        (Box::new(|b| b[4] = 0), Error::Version(0)),
        (Box::new(|b| b[5] = 3), Error::BadKind),
        (Box::new(|b| b[7] += 1), Error::BadLength),
        (Box::new(|b| b.push(0)), Error::BadLength),
        (Box::new(|b| b[40..48].fill(0)), Error::BadSequence),
        (Box::new(|b| b[5] = 2), Error::BadSequence),
    ];
    for (corrupt, want) in cases {
        let mut b = good.clone();
        corrupt(&mut b);
        assert_eq!(check(&b), Err(want), "{want:?}");
    }
    // A version mismatch is found before anything after the version is read.
    let mut b = good.clone();
    b[4] = 9;
    b[5] = 0xff;
    b[6..8].fill(0);
    assert_eq!(check(&b), Err(Error::Version(9)));
}

#[test]
fn one_body_field_at_a_time() {
    let good = body(&every_data_message()[..2]);
    assert!(validate(Kind::Data, &good).is_ok());
    let cases: Vec<(Corrupt, Kind, Error)> = vec![
        (Box::new(|b| b[0] = 0), Kind::Data, Error::UnknownAction),
        (Box::new(|b| b[0] = 15), Kind::Data, Error::UnknownAction),
        (Box::new(|b| b[1] = 95), Kind::Data, Error::BadRecordLen),
        (Box::new(|b| b[3] = 3), Kind::Data, Error::SectionTruncated),
        (
            Box::new(|b| b.truncate(b.len() - 1)),
            Kind::Data,
            Error::SectionTruncated,
        ),
        (
            Box::new(|b| b.extend([1, 96, 0])),
            Kind::Data,
            Error::SectionTruncated,
        ),
        (
            Box::new(|b| b[SECTION_LEN + 8] = 5),
            Kind::Data,
            Error::BadRecord,
        ),
        (
            Box::new(|b| b[SECTION_LEN + 46] = 4),
            Kind::Data,
            Error::BadRecord,
        ),
        (Box::new(|_| {}), Kind::Control, Error::OutOfPlace),
    ];
    for (corrupt, kind, want) in cases {
        let mut b = good.clone();
        corrupt(&mut b);
        assert_eq!(validate(kind, &b), Err(want), "{want:?}");
    }
    let ack = body(&control_messages()[..1]);
    assert_eq!(validate(Kind::Data, &ack), Err(Error::OutOfPlace));
}

#[test]
fn an_empty_body_is_an_empty_datagram() {
    assert_eq!(validate(Kind::Control, &[]), Ok(0));
}

#[test]
fn every_error_has_its_own_counter_name() {
    let all = [
        Error::Truncated,
        Error::BadMagic,
        Error::Version(0),
        Error::BadKind,
        Error::BadLength,
        Error::BadSequence,
        Error::UnknownAction,
        Error::BadRecordLen,
        Error::SectionTruncated,
        Error::BadRecord,
        Error::OutOfPlace,
    ];
    let mut names: Vec<_> = all.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
}

#[test]
fn an_update_past_every_state_is_refused() {
    let mut b = body(&[every_data_message()[2]]);
    b[SECTION_LEN + 10] = 10;
    assert_eq!(validate(Kind::Data, &b), Err(Error::BadRecord));
}
