//! The Rust encoder against a second implementation of the protocol:
//! `tests/scripts/sync_decode.py`, written from the module docs of
//! `syncd::wire`, `syncd::seal`, `syncd::psk` and
//! `dataplane::conntrack::record`, not from this crate's code.
//!
//! Two sessions shake hands (heartbeats, control), then exchange data datagrams
//! carrying every data message and control datagrams carrying every control
//! message, each field set to a value that stands out (high bits set, no two
//! alike). The partner's session opens every one (so they are what the
//! firmware really accepts); the decoder reads them as hex lines and prints
//! JSON, which must equal, field for field and object for object, what the
//! Rust side put in. A datagram with a flipped tag byte must not open, one of
//! version 2 must be refused without a header field read, one sealed under
//! another pre-shared key must be told apart (`wrong_key`). The same
//! datagrams in a capture file give the same output through `--pcap`, which
//! skips other ports; a malformed capture fails the run.
//!
//! Needs Debian's `python3-scapy` and `python3-cryptography` under
//! `/usr/bin/python3` (`scripts/setup` installs them).

use dataplane::conntrack::key::{FlowKey, Side};
use dataplane::conntrack::record::{
    Digest, Edge, L4Kind, Progress, Record, RuleRef, SyncId, DEFAULT_RULE, NO_RULE,
};
use dataplane::conntrack::tcp::{Peer, TcpState};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use syncd::psk::Psk;
use syncd::seal::Party;
use syncd::session::Session;
use syncd::wire::{
    self, BodyWriter, Bulk, Forced, Header, Heartbeat, Kind, Message, HEADER_LEN, SECTION_LEN,
    TAG_LEN,
};

const SEC: u64 = 1_000_000_000;
const PYTHON: &str = "/usr/bin/python3";
const SERIAL_A: &str = "TDM-A-000017";
const SERIAL_B: &str = "TDM-B-0000042";
const EPOCH_A: u64 = 0x1122_3344_5566_7788;
const EPOCH_B: u64 = 0xF0E1_D2C3_B4A5_9687;
/// Two rule set revisions: inserts of each travel in sections of their own.
const RULES_1: u64 = 0x0123_4567_89AB_CDEF;
const RULES_2: u64 = 0xFEDC_BA98_7654_3211;

fn serial(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn psk_bytes() -> [u8; 32] {
    std::array::from_fn(|i| u8::try_from((i * 37 + 11) & 0xFF).unwrap())
}

fn psk_hex() -> String {
    psk_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// One datagram put on the wire, with what its sender put in it.
struct Sent {
    bytes: Vec<u8>,
    header: Header,
    messages: Vec<Message>,
}

/// The two units, talking.
struct Pair {
    a: Session,
    b: Session,
    now: u64,
    sent: Vec<Sent>,
}

impl Pair {
    fn new() -> Pair {
        let me = |s, epoch| Party {
            serial: serial(s),
            epoch,
        };
        let now = 1000 * SEC;
        Pair {
            a: Session::new(
                Psk::from_bytes(psk_bytes()),
                me(SERIAL_A, EPOCH_A),
                serial(SERIAL_B),
                now,
            ),
            b: Session::new(
                Psk::from_bytes(psk_bytes()),
                me(SERIAL_B, EPOCH_B),
                serial(SERIAL_A),
                now,
            ),
            now,
            sent: Vec::new(),
        }
    }

    /// Seals `messages` from A (`from_a`) or B, has the other unit open and
    /// read them, and keeps the datagram.
    fn send(&mut self, from_a: bool, kind: Kind, seq: u64, ack: u64, messages: &[Message]) {
        let mut w = BodyWriter::new(1400);
        for m in messages {
            w.push(m).expect("the body fits");
        }
        let (tx, rx) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let mut out = vec![0u8; HEADER_LEN + w.len() + TAG_LEN];
        let n = tx
            .seal(self.now, kind, seq, ack, w.as_bytes(), &mut out)
            .expect("sealed");
        out.truncate(n);
        let mut copy = out.clone();
        let opened = rx.open(self.now, &mut copy).expect("the partner opens it");
        let read: Vec<Message> = wire::records(kind, opened.body)
            .collect::<Result<_, _>>()
            .expect("the partner reads it");
        assert_eq!(read, messages, "the Rust side reads back what it wrote");
        self.sent.push(Sent {
            bytes: out,
            header: opened.header,
            messages: messages.to_vec(),
        });
        self.now += SEC / 100;
    }
}

fn id(creator: u32, worker: u8, slot: u32) -> SyncId {
    SyncId::new(creator, worker, slot)
}

/// The low 24 bits of a boot epoch: the creator in a [`SyncId`].
fn creator(epoch: u64) -> u32 {
    u32::try_from(epoch & 0xFF_FFFF).unwrap()
}

fn v4_key(lo: Ipv4Addr, lo_port: u16, hi: Ipv4Addr, hi_port: u16, proto: u8) -> FlowKey {
    FlowKey {
        lo_addr: lo.to_ipv6_mapped().octets(),
        hi_addr: hi.to_ipv6_mapped().octets(),
        lo_port,
        hi_port,
        proto,
        family: 4,
    }
}

/// An IPv4 TCP connection, established, both sides window-scaled.
fn tcp_insert() -> Record {
    let peers = [
        Peer {
            end: 0x8000_0010,
            maxend: 0x8001_F000,
            maxwin: 0x0003_FFC0,
            maxack: 0x4000_0001,
            scale: 7,
            flags: 0x23, // window scale, SACK permitted, maxack set
        },
        Peer {
            end: 0x4000_0001,
            maxend: 0x8004_0000,
            maxwin: 0x0010_0000,
            maxack: 0x8000_0010,
            scale: 9,
            flags: 0x21, // window scale, maxack set
        },
    ];
    Record {
        id: id(creator(EPOCH_A), 3, 0xC0FF_EE01),
        key: v4_key(
            Ipv4Addr::new(10, 1, 2, 3),
            51_234,
            Ipv4Addr::new(198, 51, 100, 200),
            443,
            6,
        ),
        orig_side: Side::Lo,
        kind: L4Kind::Tcp,
        progress: Progress {
            state: TcpState::Established as u8,
            tcp_flags: 0x03, // seen reply, assured
            // An insert carries the peers' edges (the wire docs say so only
            // through the layout): keep the two copies equal.
            edges: peers.map(|p| Edge {
                end: p.end,
                maxend: p.maxend,
            }),
            timeout: 431_999,
        },
        peers,
        rule: RuleRef {
            revision: RULES_1,
            index: 17,
        },
        log: true,
        in_iface: 2,
        out_iface: 5,
    }
}

/// An IPv4 ICMP echo, opened by the higher side, admitted by no rule in force.
fn icmp_insert() -> Record {
    Record {
        id: id(creator(EPOCH_A), 0, 7),
        key: v4_key(
            Ipv4Addr::new(192, 0, 2, 1),
            0x4242,
            Ipv4Addr::new(203, 0, 113, 99),
            0x4242,
            1,
        ),
        orig_side: Side::Hi,
        kind: L4Kind::IcmpEcho,
        progress: Progress {
            state: 1,
            timeout: 29,
            ..Progress::default()
        },
        peers: [Peer::default(); 2],
        rule: RuleRef {
            revision: RULES_1,
            index: NO_RULE,
        },
        log: false,
        in_iface: 0,
        out_iface: 1,
    }
}

/// An IPv6 UDP flow, unreplied, admitted by the default policy, under
/// another rule set (an adopted entry: named by B).
fn udp6_insert() -> Record {
    Record {
        id: id(creator(EPOCH_B), 0xFE, 0xFFFF_FFF0),
        key: FlowKey {
            lo_addr: "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
            hi_addr: "2001:db8:0:ff00::20:1"
                .parse::<Ipv6Addr>()
                .unwrap()
                .octets(),
            lo_port: 5353,
            hi_port: 65_000,
            proto: 17,
            family: 6,
        },
        orig_side: Side::Hi,
        kind: L4Kind::Udp,
        progress: Progress {
            state: 0,
            timeout: 180,
            ..Progress::default()
        },
        peers: [Peer::default(); 2],
        rule: RuleRef {
            revision: RULES_2,
            index: DEFAULT_RULE,
        },
        log: true,
        in_iface: 7,
        out_iface: 6,
    }
}

fn heartbeat_a() -> Heartbeat {
    Heartbeat {
        workers: 4,
        interfaces: 2,
        active: true,
        wants_bulk: false,
        bulk_done: true,
        links_heard: 0b10,
        firmware: 0x01_02_03,
        rules: RULES_1,
        quality: 6321,
        priority: 0xFE,
        forced: Forced::Active,
        config_revision: 0x8765_4321,
    }
}

fn heartbeat_b() -> Heartbeat {
    Heartbeat {
        workers: 12,
        interfaces: 6,
        active: false,
        wants_bulk: true,
        bulk_done: false,
        links_heard: 0b11,
        firmware: 0x0A_FF_00,
        rules: RULES_2,
        quality: 10_000,
        priority: 3,
        forced: Forced::Passive,
        config_revision: 0xFFFF_FFFE,
    }
}

/// A heartbeat that says neither forced mode nor a bulk, of quality 0.
fn heartbeat_plain() -> Heartbeat {
    Heartbeat {
        workers: 1,
        interfaces: 1,
        links_heard: 0b01,
        ..Heartbeat::default()
    }
}

/// The datagrams of a conversation carrying every message type.
fn conversation() -> Vec<Sent> {
    let mut p = Pair::new();
    // The handshake: A does not know B's epoch yet (its heartbeat is sealed
    // towards epoch 0), B answers towards A's.
    p.send(
        true,
        Kind::Control,
        0,
        0,
        &[Message::Heartbeat(heartbeat_a())],
    );
    p.send(
        false,
        Kind::Control,
        0,
        0,
        &[Message::Heartbeat(heartbeat_b())],
    );
    // A's stream.
    p.send(
        true,
        Kind::Data,
        1,
        0,
        &[
            Message::Insert(tcp_insert()),
            Message::Insert(icmp_insert()),
            Message::Insert(udp6_insert()),
        ],
    );
    p.send(
        true,
        Kind::Data,
        2,
        0,
        &[
            Message::Update {
                id: tcp_insert().id,
                rss: 0xBEEF,
                progress: Progress {
                    state: TcpState::FinWait as u8,
                    tcp_flags: 0x13,
                    edges: [
                        Edge {
                            end: 0x9000_0001,
                            maxend: 0x9100_0002,
                        },
                        Edge {
                            end: 0x4000_1003,
                            maxend: 0x9200_0004,
                        },
                    ],
                    timeout: 120,
                },
            },
            Message::Update {
                id: udp6_insert().id,
                rss: 0x0102,
                progress: Progress {
                    state: 1,
                    timeout: 175,
                    ..Progress::default()
                },
            },
            Message::Delete {
                id: icmp_insert().id,
                rss: 0x8001,
            },
            Message::Delete {
                id: id(0xABCDEF, 0x80, 0x1234_5678),
                rss: 0xFFFE,
            },
            Message::Digest {
                shard: 5,
                digest: Digest {
                    count: 0x8765_4321,
                    sum: 0xFEDC_BA98_7654_3210,
                },
            },
        ],
    );
    // A key rotation (60 s): the next datagrams are under key id 2.
    p.now += 61 * SEC;
    p.send(
        true,
        Kind::Data,
        3,
        1,
        &[
            Message::BulkStart(Bulk {
                id: 0xA1B2_C3D4,
                shards: u64::MAX,
            }),
            Message::Insert(tcp_insert()),
            Message::BulkEnd(Bulk {
                id: 0xA1B2_C3D4,
                shards: u64::MAX,
            }),
            Message::Resync(0x8000_0000_0000_0005),
        ],
    );
    // B's stream.
    p.send(
        false,
        Kind::Data,
        1,
        3,
        &[
            Message::BulkDone(Bulk {
                id: 0xA1B2_C3D4,
                shards: 0x0000_0000_0000_00A5,
            }),
            Message::BulkRequest,
            Message::Request {
                id: tcp_insert().id,
                rss: 0xFFFF,
            },
            Message::Resync(0x0000_0000_0000_0009),
            Message::Mgmt(mgmt_chunk()),
        ],
    );
    // Feedback.
    p.send(
        true,
        Kind::Control,
        0,
        1,
        &[Message::Ack {
            cumulative: 1,
            first_held: 0x0100_0000_0000_0001,
        }],
    );
    p.send(
        false,
        Kind::Control,
        0,
        3,
        &[
            Message::Ack {
                cumulative: 3,
                first_held: 2,
            },
            Message::Nack {
                first: 0x7FFF_FFFF_FFFF_FFF0,
                last: 0x8000_0000_0000_0010,
            },
            Message::Heartbeat(heartbeat_b()),
        ],
    );
    p.send(
        true,
        Kind::Control,
        0,
        1,
        &[
            Message::Ack {
                cumulative: 1,
                first_held: 4,
            },
            Message::Heartbeat(heartbeat_plain()),
        ],
    );
    p.sent
}

/// The last piece of a 300-byte management message.
fn mgmt_chunk() -> syncd::mgmt::Chunk {
    let mut data = [0; syncd::mgmt::CHUNK_DATA];
    data[..76].copy_from_slice(&[0x5A; 76]);
    syncd::mgmt::Chunk {
        message: 0x0102_0304,
        total: 300,
        offset: 224,
        len: 76,
        data,
    }
}

fn sync_id_json(id: SyncId) -> Value {
    json!({"creator": id.creator(), "worker": id.worker(), "slot": id.slot()})
}

fn peer_json(p: &Peer) -> Value {
    json!({"end": p.end, "maxend": p.maxend, "maxwin": p.maxwin, "maxack": p.maxack,
           "window_scale": p.scale, "flags": p.flags})
}

fn edge_json(e: &Edge) -> Value {
    json!({"end": e.end, "maxend": e.maxend})
}

fn bulk_json(action: &str, b: &Bulk) -> Value {
    json!({"action": action, "bulk_id": b.id, "shards": b.shards,
           "whole_table": b.shards == u64::MAX})
}

fn insert_json(r: &Record) -> Value {
    let (l4_kind, state_name) = match r.kind {
        L4Kind::Tcp => ("tcp", TcpState::from_u8(r.progress.state).unwrap().name()),
        other => (
            match other {
                L4Kind::Udp => "udp",
                L4Kind::IcmpEcho => "icmp_echo",
                _ => "other",
            },
            ["UNREPLIED", "REPLIED"][usize::from(r.progress.state)],
        ),
    };
    let rule = match r.rule.index {
        DEFAULT_RULE => "default",
        NO_RULE => "no_rule",
        _ => "rule",
    };
    json!({
        "action": "insert",
        "id": sync_id_json(r.id),
        "family": r.key.family,
        "protocol": r.key.proto,
        "lower_address": r.key.addr(Side::Lo).to_string(),
        "higher_address": r.key.addr(Side::Hi).to_string(),
        "lower_port": r.key.lo_port,
        "higher_port": r.key.hi_port,
        "l4_kind": l4_kind,
        "state": r.progress.state,
        "state_name": state_name,
        "flags": u8::from(r.orig_side == Side::Hi) | (u8::from(r.log) << 1),
        "opened_by": if r.orig_side == Side::Hi { "higher" } else { "lower" },
        "log": r.log,
        "tcp_flags": r.progress.tcp_flags,
        "in_interface": r.in_iface,
        "out_interface": r.out_iface,
        "rule_index": r.rule.index,
        "rule": rule,
        "rule_revision": r.rule.revision,
        "timeout": r.progress.timeout,
        "original": peer_json(&r.peers[0]),
        "reply": peer_json(&r.peers[1]),
    })
}

/// Everything the decoder must say about one message.
fn message_json(m: &Message) -> Value {
    match m {
        Message::Insert(r) => insert_json(r),
        Message::Update { id, rss, progress } => json!({
            "action": "update", "id": sync_id_json(*id), "rss": rss,
            "state": progress.state, "tcp_flags": progress.tcp_flags,
            "timeout": progress.timeout,
            "original": edge_json(&progress.edges[0]),
            "reply": edge_json(&progress.edges[1]),
        }),
        Message::Delete { id, rss } => {
            json!({"action": "delete", "id": sync_id_json(*id), "rss": rss})
        }
        Message::Request { id, rss } => {
            json!({"action": "request", "id": sync_id_json(*id), "rss": rss})
        }
        Message::Digest { shard, digest } => json!({
            "action": "digest", "shard": shard, "count": digest.count, "sum": digest.sum,
        }),
        Message::BulkStart(b) => bulk_json("bulk_start", b),
        Message::BulkEnd(b) => bulk_json("bulk_end", b),
        Message::BulkDone(b) => bulk_json("bulk_done", b),
        Message::BulkRequest => json!({"action": "bulk_request"}),
        Message::Resync(shards) => json!({"action": "resync", "shards": shards}),
        Message::Ack {
            cumulative,
            first_held,
        } => json!({"action": "ack", "cumulative": cumulative, "first_held": first_held}),
        Message::Nack { first, last } => json!({"action": "nack", "first": first, "last": last}),
        Message::Heartbeat(h) => json!({
            "action": "heartbeat",
            "workers": h.workers,
            "interfaces": h.interfaces,
            "flags": u8::from(h.active)
                | (u8::from(h.wants_bulk) << 1)
                | (u8::from(h.bulk_done) << 2),
            "active": h.active,
            "wants_bulk": h.wants_bulk,
            "bulk_done": h.bulk_done,
            "links_heard": h.links_heard,
            "firmware": h.firmware,
            "firmware_version": format!(
                "{}.{}.{}",
                h.firmware >> 16,
                (h.firmware >> 8) & 0xFF,
                h.firmware & 0xFF
            ),
            "rules": h.rules,
            "quality": h.quality,
            "quality_percent": f64::from(h.quality) / 100.0,
            "priority": h.priority,
            "forced": match h.forced {
                Forced::No => "none",
                Forced::Active => "active",
                Forced::Passive => "passive",
            },
            "config_revision": h.config_revision,
        }),
        Message::Mgmt(c) => json!({
            "action": "management", "message": c.message, "total": c.total,
            "offset": c.offset, "length": c.len, "data": hex(c.bytes()),
        }),
    }
}

/// Everything the decoder must say about one datagram.
fn datagram_json(s: &Sent) -> Value {
    let h = &s.header;
    let serial = String::from_utf8(h.serial.to_vec()).unwrap();
    json!({
        "kind": match h.kind { Kind::Data => "data", Kind::Control => "control" },
        "serial": serial.trim_end_matches('\0'),
        "sender_epoch": h.sender_epoch,
        "receiver_epoch": h.receiver_epoch,
        "sequence": h.sequence,
        "ack": h.ack,
        "key_id": h.key_id,
        "psk_id": Psk::from_bytes(psk_bytes()).id(),
        "counter": h.counter,
        "length": s.bytes.len(),
        "opened": true,
        "records": s.messages.iter().map(message_json).collect::<Vec<_>>(),
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scripts/sync_decode.py")
}

/// Fails with a clear message when the decoder's Python packages are missing.
fn require_python() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import scapy, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{PYTHON} cannot import scapy and cryptography: install Debian's \
         python3-scapy and python3-cryptography (scripts/setup does)"
    );
}

/// Runs the decoder with `args` after the key and serials.
fn decode(args: &[&str]) -> Output {
    require_python();
    let serials = format!("{SERIAL_A},{SERIAL_B}");
    let psk = psk_hex();
    Command::new(PYTHON)
        .arg(script())
        .args(["--psk", &psk, "--serials", &serials])
        .args(args)
        .output()
        .expect("running sync_decode.py")
}

/// Runs the decoder, which must succeed, and returns its JSON lines.
fn decode_lines(args: &[&str]) -> Vec<Value> {
    let out = decode(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "sync_decode.py {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The conversation, then the three datagrams that must not open.
fn all_datagrams(sent: &[Sent]) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = sent.iter().map(|s| s.bytes.clone()).collect();
    // A flipped tag byte.
    let mut forged = sent[2].bytes.clone();
    *forged.last_mut().unwrap() ^= 0x01;
    all.push(forged);
    // Version 2: refused before anything after the version is read.
    let mut v2 = sent[3].bytes.clone();
    v2[4] = 2;
    all.push(v2);
    // Sealed under another key.
    let mut other = Session::new(
        Psk::from_bytes([0x5A; 32]),
        Party {
            serial: serial(SERIAL_B),
            epoch: EPOCH_B,
        },
        serial(SERIAL_A),
        0,
    );
    let mut w = BodyWriter::new(100);
    w.push(&Message::Heartbeat(heartbeat_b())).unwrap();
    let mut out = vec![0u8; HEADER_LEN + w.len() + TAG_LEN];
    let n = other
        .seal(0, Kind::Control, 0, 0, w.as_bytes(), &mut out)
        .unwrap();
    out.truncate(n);
    all.push(out);
    all
}

/// Where `decoder` and `rust` differ, one line per field (`records[2].id.slot:
/// decoder 7, rust 8`), fields only one side has included.
fn differences(path: &str, decoder: &Value, rust: &Value, out: &mut Vec<String>) {
    match (decoder, rust) {
        (Value::Object(d), Value::Object(r)) => {
            for key in d.keys().chain(r.keys().filter(|k| !d.contains_key(*k))) {
                let (dv, rv) = (d.get(key), r.get(key));
                let path = format!("{path}.{key}");
                match (dv, rv) {
                    (Some(dv), Some(rv)) => differences(&path, dv, rv, out),
                    _ => out.push(format!("{path}: decoder {dv:?}, rust {rv:?}")),
                }
            }
        }
        (Value::Array(d), Value::Array(r)) if d.len() == r.len() => {
            for (i, (dv, rv)) in d.iter().zip(r).enumerate() {
                differences(&format!("{path}[{i}]"), dv, rv, out);
            }
        }
        _ if decoder != rust => out.push(format!("{path}: decoder {decoder}, rust {rust}")),
        _ => {}
    }
}

/// Checks the decoder's lines against the datagrams of [`all_datagrams`].
fn check_lines(sent: &[Sent], lines: &[Value]) {
    assert_eq!(lines.len(), sent.len() + 3, "one line per datagram");
    for (i, (s, line)) in sent.iter().zip(lines).enumerate() {
        let mut diffs = Vec::new();
        differences("", line, &datagram_json(s), &mut diffs);
        assert!(
            diffs.is_empty(),
            "datagram {i}: the decoder and the Rust side disagree:\n{}\ndecoder: {line}",
            diffs.join("\n")
        );
    }
    let forged = &lines[sent.len()];
    assert_eq!(forged["opened"], json!(false), "{forged}");
    assert!(
        forged["error"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{forged}"
    );
    assert_eq!(forged["sequence"], json!(1), "its header is still shown");
    assert_eq!(forged["records"], json!([]));

    let v2 = &lines[sent.len() + 1];
    let mut keys: Vec<&String> = v2.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["error", "opened", "records"],
        "version 2 is not half-parsed: {v2}"
    );
    assert_eq!(v2["opened"], json!(false));
    assert!(
        v2["error"].as_str().unwrap().contains("protocol version 2"),
        "{v2}"
    );

    let wrong = &lines[sent.len() + 2];
    assert_eq!(wrong["opened"], json!(false), "{wrong}");
    assert!(
        wrong["error"].as_str().unwrap().starts_with("wrong_key"),
        "{wrong}"
    );
    assert_eq!(
        wrong["psk_id"],
        json!(Psk::from_bytes([0x5A; 32]).id()),
        "{wrong}"
    );
}

#[test]
fn the_decoder_reads_every_field_the_encoder_writes() {
    let sent = conversation();
    // The conversation covers every action, in both kinds of datagram, both
    // ways, under two key ids.
    assert!(sent.iter().any(|s| s.header.key_id == 1));
    assert!(sent.iter().any(|s| s.header.key_id == 2));
    assert_eq!(sent[0].header.receiver_epoch, 0, "the first heartbeat");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("datagrams.hex");
    let text: String = all_datagrams(&sent).iter().map(|d| hex(d) + "\n").collect();
    std::fs::write(&file, text).unwrap();

    let lines = decode_lines(&["--hex", file.to_str().unwrap()]);
    check_lines(&sent, &lines);

    let summary = decode_lines(&["--hex", file.to_str().unwrap(), "--summary"]);
    assert_eq!(
        summary,
        [json!({
            "datagrams": sent.len() + 3,
            "opened": sent.len(),
            "not_opened": 3,
            "malformed_bodies": 0,
            "actions": {
                "ack": 3, "bulk_done": 1, "bulk_end": 1, "bulk_request": 1,
                "bulk_start": 1, "delete": 2, "digest": 1, "heartbeat": 4,
                "insert": 4, "management": 1, "nack": 1, "request": 1, "resync": 2,
                "update": 2,
            },
        })]
    );
}

/// A heartbeat out of range (quality past 100 %, a forced mode past passive,
/// a flag bit this version does not have) opens, then is refused whole: by
/// the partner's session and `wire::validate`, and by the decoder.
#[test]
fn a_heartbeat_out_of_range_is_refused_by_both_sides() {
    type Spoil = fn(&mut [u8]);
    let cases: [(Spoil, &str); 4] = [
        (
            |b| b[16..18].copy_from_slice(&10_001u16.to_be_bytes()),
            "heartbeat quality 10001",
        ),
        (|b| b[19] = 3, "heartbeat forced 3"),
        (|b| b[2] |= 1 << 3, "heartbeat flags 0x0a"),
        (|b| b[2] = 0x80, "heartbeat flags 0x80"),
    ];
    let mut p = Pair::new();
    let mut text = String::new();
    for (spoil, _) in &cases {
        let mut w = BodyWriter::new(100);
        w.push(&Message::Heartbeat(heartbeat_b())).unwrap();
        let mut body = w.as_bytes().to_vec();
        spoil(&mut body[SECTION_LEN..]);
        let mut out = vec![0u8; HEADER_LEN + body.len() + TAG_LEN];
        let n =
            p.b.seal(p.now, Kind::Control, 0, 0, &body, &mut out)
                .unwrap();
        out.truncate(n);
        let mut copy = out.clone();
        let opened = p.a.open(p.now, &mut copy).expect("it authenticates");
        assert_eq!(
            wire::validate(Kind::Control, opened.body),
            Err(wire::Error::BadRecord)
        );
        text += &(hex(&out) + "\n");
        p.now += SEC / 100;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.hex");
    std::fs::write(&file, text).unwrap();
    let lines = decode_lines(&["--hex", file.to_str().unwrap()]);
    assert_eq!(lines.len(), cases.len());
    for (line, (_, why)) in lines.iter().zip(&cases) {
        assert_eq!(line["opened"], json!(true), "{line}");
        assert_eq!(line["records"], json!([]), "{line}");
        let error = line["error"].as_str().unwrap();
        assert!(
            error.contains("out of range") && error.contains(why),
            "{why}: {line}"
        );
    }
}

/// A classic pcap file (microseconds, Ethernet) of `frames`.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, frame) in frames.iter().enumerate() {
        let len = u32::try_from(frame.len()).unwrap();
        f.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        f.extend_from_slice(&u32::try_from(i).unwrap().to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(frame);
    }
    f
}

/// An Ethernet frame carrying `payload` in IPv4/UDP from `sport` to `dport`
/// (checksums left to the reader, which does not check them).
fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let ip_len = u16::try_from(20 + 8 + payload.len()).unwrap();
    f.extend_from_slice(&[0x45, 0xC0]);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 255, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_capture_decodes_like_the_hex_lines_and_a_broken_one_fails() {
    let sent = conversation();
    let (a, b) = ([169, 254, 0, 1], [169, 254, 0, 2]);
    let mut frames = Vec::new();
    for (i, d) in all_datagrams(&sent).iter().enumerate() {
        // Datagrams from A go to B's port, B's come from B's port.
        let from_a = d.get(8..8 + SERIAL_A.len()) == Some(SERIAL_A.as_bytes());
        frames.push(if from_a {
            udp_frame(a, b, 40_000 + u16::try_from(i).unwrap(), 8421, d)
        } else {
            udp_frame(b, a, 8421, 8421, d)
        });
        // Something else on the link, on another port: skipped.
        frames.push(udp_frame(a, b, 53, 5353, b"not sync"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ha0.pcap");
    std::fs::write(&file, pcap(&frames)).unwrap();

    let mut lines = decode_lines(&["--pcap", file.to_str().unwrap()]);
    for (i, line) in lines.iter_mut().enumerate() {
        let o = line.as_object_mut().unwrap();
        assert_eq!(o.remove("packet"), Some(json!(2 * i + 1)), "{o:?}");
        let src = o.remove("src").unwrap();
        let dst = o.remove("dst").unwrap();
        assert!(
            src.as_str().unwrap().ends_with(":8421") || dst == json!("169.254.0.2:8421"),
            "{src} -> {dst}"
        );
    }
    check_lines(&sent, &lines);

    // Another port: nothing of it is sync.
    let other = decode_lines(&["--pcap", file.to_str().unwrap(), "--port", "5353"]);
    assert_eq!(other.len(), frames.len() / 2);
    assert!(other
        .iter()
        .all(|l| l["error"] == json!("shorter than a header and a tag")));

    // A capture cut in the middle of a packet, and one that is no capture.
    let whole = pcap(&frames);
    std::fs::write(&file, &whole[..whole.len() - 10]).unwrap();
    let cut = decode(&["--pcap", file.to_str().unwrap()]);
    std::fs::write(&file, b"this is not a capture file at all").unwrap();
    let junk = decode(&["--pcap", file.to_str().unwrap()]);
    for (what, out) in [("cut", cut), ("junk", junk)] {
        assert!(
            !out.status.success(),
            "a {what} capture must fail the run: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            !out.stderr.is_empty(),
            "a {what} capture is explained on stderr"
        );
    }
}
