//! The sync protocol on the wire, version 1: what one unit sends its partner
//! in the payload of a UDP datagram (IPv4, the HA link addresses, the
//! configured port). Every integer is big-endian; every field is read by its
//! offset (never by casting a buffer to a packed struct).
//!
//! ```text
//!  0       4   5   6       8                          24              32              40
//!  ├───────┼───┼───┼───────┼──────────────────────────┼───────────────┼───────────────┤
//!  │ magic │ver│knd│length │ sender serial (ASCII,    │ sender epoch  │receiver epoch │
//!  │ TDSY  │ 1 │   │       │ NUL-padded to 16)        │               │(0: not known) │
//!  ├───────┴───┴───┴───────┴───────┬──────────────────┴──────┬────────┴──────┬────────┤
//! 40 sequence (0: not in the        48 ack: every sequence    56 key id     60 psk id
//!  │ reliable stream)               │ ≤ it of the other       │              │
//!  │                                │ direction was received  │              │
//!  ├────────────────────────────────┴─────────────────────────┴──────────────┴────────┤
//! 64 nonce counter (8)                                         72 = HEADER_LEN
//!  ├──────────────────────────────────────────────────────────────────────────────────┤
//! 72 body, AES-256-GCM ciphertext (the 72 header bytes are the AAD; the nonce is key id
//!  │ ‖ counter, see `seal`): sections, each a 12-byte sub-header then `count` records
//!  │  ┌────────┬──────────┬─────────┬──────────────────────┐
//!  │  │ action │record len│  count  │ rule set revision    │ then count × record len bytes
//!  │  │   (1)  │   (1)    │   (2)   │ (8; inserts only)    │
//!  │  └────────┴──────────┴─────────┴──────────────────────┘
//!  ├──────────────────────────────────────────────────────────────────────────────────┤
//!    tag (16)                                                  length = 72 + body + 16
//! ```
//!
//! * `kind` 1, *data*: part of the sender's reliable stream (`sequence` ≥ 1;
//!   retransmitted until acknowledged, delivered in order); `kind` 2,
//!   *control*: acks, nacks and heartbeats, never retransmitted (`sequence` 0).
//! * `psk id` is the fingerprint of the sender's pre-shared key
//!   ([`crate::psk::Psk::id`]): a receiver with another key says so
//!   (`wrong_key`) instead of calling every datagram forged.
//! * A datagram of another `version` is refused whole and loudly, never
//!   half-parsed: the version is checked before anything after it is read.
//!
//! Records, by action (sizes in bytes; the record length in each sub-header
//! must be exactly this, so nothing is ever guessed):
//!
//! | action | name          | size | record                                                     |
//! |-------:|---------------|-----:|------------------------------------------------------------|
//! |      1 | insert        |   96 | a connection's full state ([`INSERT_LEN`] layout below)    |
//! |      2 | update        |   32 | id 8, rss 2, state 1, tcp flags 1, timeout 4, then `end`, `maxend` of the original and of the reply direction, 4 each |
//! |      3 | delete        |   12 | id 8, rss 2, reserved 2                                    |
//! |      4 | digest        |   16 | shard 1, reserved 3, count 4, sum 8                        |
//! |      5 | bulk start    |   16 | bulk id 4, reserved 4, shards 8 (bit n = shard n; all ones: the whole table) |
//! |      6 | bulk end      |   16 | the same as its bulk start                                 |
//! |      7 | bulk done     |   16 | the same (the receiver's: the bulk was installed)          |
//! |      8 | bulk request  |    8 | reserved 8                                                 |
//! |      9 | request       |   12 | id 8, rss 2, reserved 2: send me this entry's full state   |
//! |     10 | resync        |    8 | bitmap of shards (bit n = shard n) to send again           |
//! |     11 | ack           |   16 | cumulative 8 (every sequence ≤ it delivered), first held 8 (the lowest sequence the sender of this datagram still holds) |
//! |     12 | nack          |   16 | first 8, last 8: sequences missing                         |
//! |     13 | heartbeat     |   24 | who the sender is and how it stands ([`HEARTBEAT_LEN`] layout below) |
//! |     14 | management    |  240 | a piece of a message between the daemons ([`crate::mgmt`]): message id 4, total bytes 4, offset 4, length 2 (1..=224; 0 only when total is 0), reserved 2, data 224 (zero past length) |
//!
//! The insert record (`id` is [`SyncId`]; `rss` in other records is the low 16
//! bits of the connection's symmetric RSS hash, which picks the worker that
//! owns it on the receiving unit whatever its worker count):
//!
//! ```text
//!  0 id (8)          8 family (1: 4 or 6)   9 protocol (1)
//! 10 lower address (16, IPv4-mapped for IPv4)   26 higher address (16)
//! 42 lower port (2)  44 higher port (2)     46 l4 kind (1: 0 tcp, 1 udp, 2 icmp echo, 3 other)
//! 47 state (1: TCP state, else 0 unreplied / 1 replied)
//! 48 flags (1: bit 0 the higher side opened it, bit 1 log)   49 tcp flags (1)
//! 50 in interface (1)   51 out interface (1)   52 rule index (2)   54 reserved (2)
//! 56 timeout (4, seconds left)
//! 60 original direction: end 4, maxend 4, maxwin 4, maxack 4, window scale 1, flags 1
//! 78 reply direction: the same 18 bytes                                   96
//! ```
//!
//! The heartbeat record: every unit sends one on every HA link every
//! heartbeat interval (10 ms by default), in a control datagram with its ack;
//! it is what the election hears of the partner. Who sent it, in which
//! protocol version and from which boot is the datagram header's: `sender
//! serial`, `ver` (the sync protocol version) and `sender epoch` (the boot
//! epoch); the datagram is sealed like any other, so a heartbeat that opens
//! is authenticated with the cluster key.
//!
//! ```text
//!  0 workers (1)   1 interfaces (1)
//!  2 flags (1: bit 0 active, bit 1 wants a bulk, bit 2 bulk done: the sender
//!    holds the receiver's table; bits 3-7 are 0)
//!  3 links heard (1: bit n, the sender hears the receiver on HA link n)
//!  4 firmware (4: major << 16 | minor << 8 | patch)
//!  8 rule set revision (8)
//! 16 quality (2: hundredths of a percent, 0..=10000)   18 priority (1)
//! 19 forced (1: 0 none, 1 active, 2 passive)
//! 20 configuration revision (4)                                           24
//! ```
//!
//! Sizes on the wire per record, sub-headers shared: insert 96 B, compact
//! update 32 B, delete 12 B (pfsync: 242 / 84 / 12 B; VPP NAT HA: 44 B per event).
//!
//! Rules a receiver applies (a datagram breaking one is refused whole, as
//! `bad_record`, before any of it is used):
//!
//! * an insert's family is 4 or 6, its l4 kind one of the four, and the kind
//!   agrees with the protocol (tcp: 6, udp: 17, icmp echo: 1 or 58, other:
//!   anything else); its state is a TCP state (0..=9) for tcp, 0 or 1 for the
//!   others; an update's state is at most 9 (it names no protocol);
//! * an insert's direction blocks carry each direction's `end` and `maxend`
//!   once: the record's compact part (`Progress::edges`) is read from them;
//! * reserved bytes, and the revision of a sub-header other than an insert's,
//!   are written as 0 and ignored on reading; a section may hold no record,
//!   and a body no section (a control datagram with nothing to say);
//! * an IPv4 connection's addresses are IPv4-mapped (`::ffff:a.b.c.d`);
//!   the record is taken as it is (an address that is not never matches a
//!   packet of the unit, which is harmless);
//! * a heartbeat's quality is at most 10000, its forced byte at most 2, and
//!   bits 3 to 7 of its flags are 0 (a later version that needs them speaks
//!   another protocol version);
//! * a management record's piece lies inside its message (offset + length
//!   ≤ total), its total is at most [`crate::mgmt::MAX_MESSAGE`], and only an
//!   empty message has an empty piece.

use dataplane::conntrack::key::{FlowKey, Side};
use dataplane::conntrack::record::{Digest, Edge, L4Kind, Progress, Record, RuleRef, SyncId};
use dataplane::conntrack::tcp::Peer;

use crate::mgmt::{Chunk, CHUNK_DATA, MGMT_LEN};

/// The first four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"TDSY";
/// The protocol version this code speaks.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 72;
/// Bytes of the AEAD tag after the body.
pub const TAG_LEN: usize = crate::seal::TAG_LEN;
/// Bytes of a sub-header.
pub const SECTION_LEN: usize = 12;
/// Bytes of an insert record.
pub const INSERT_LEN: usize = 96;
/// Bytes of an update record.
pub const UPDATE_LEN: usize = 32;
/// Bytes of a delete record.
pub const DELETE_LEN: usize = 12;
/// Bytes of a heartbeat record.
pub const HEARTBEAT_LEN: usize = 24;
/// The highest quality a heartbeat carries: 100 %, in hundredths of a percent.
pub const MAX_QUALITY: u16 = 10_000;
/// The highest state value (TCP's SYN_SENT2).
const MAX_STATE: u8 = 9;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const KIND: usize = 5;
    pub const LENGTH: Range<usize> = 6..8;
    pub const SERIAL: Range<usize> = 8..24;
    pub const SENDER_EPOCH: usize = 24;
    pub const RECEIVER_EPOCH: usize = 32;
    pub const SEQUENCE: usize = 40;
    pub const ACK: usize = 48;
    pub const KEY_ID: usize = 56;
    pub const PSK_ID: usize = 60;
    pub const COUNTER: usize = 64;
}

/// Why a datagram was refused. Each reason has its own counter ([`Error::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// shorter than a header and a tag
    #[error("shorter than a header and a tag")]
    Truncated,
    /// not a tandem sync datagram (magic)
    #[error("not a tandem sync datagram")]
    BadMagic,
    /// another protocol version
    #[error("protocol version {0}, this unit speaks {VERSION}")]
    Version(u8),
    /// unknown datagram kind
    #[error("unknown datagram kind")]
    BadKind,
    /// the length field disagrees with the datagram
    #[error("the length field disagrees with the datagram")]
    BadLength,
    /// a data datagram without a sequence number, or a control one with one
    #[error("sequence number wrong for the datagram kind")]
    BadSequence,
    /// a sub-header names an action this version does not have
    #[error("unknown action")]
    UnknownAction,
    /// a sub-header's record length is not its action's
    #[error("record length wrong for its action")]
    BadRecordLen,
    /// a section runs past the body, or bytes follow the last one
    #[error("section runs past the body")]
    SectionTruncated,
    /// a record holds a value out of range (family, protocol kind and
    /// protocol, state; a heartbeat's quality, forced mode or flags)
    #[error("record value out of range")]
    BadRecord,
    /// the action does not belong in this kind of datagram
    #[error("action out of place for the datagram kind")]
    OutOfPlace,
}

impl Error {
    /// The stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadMagic => "bad_magic",
            Error::Version(_) => "wrong_version",
            Error::BadKind => "bad_kind",
            Error::BadLength => "bad_length",
            Error::BadSequence => "bad_sequence",
            Error::UnknownAction => "unknown_action",
            Error::BadRecordLen => "bad_record_len",
            Error::SectionTruncated => "section_truncated",
            Error::BadRecord => "bad_record",
            Error::OutOfPlace => "out_of_place",
        }
    }
}

fn get<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(get(b, at))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(get(b, at))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(get(b, at))
}
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(at..at + v.len()) {
        s.copy_from_slice(v);
    }
}

/// Reliable (data) or not (control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Part of the sender's reliable stream.
    Data = 1,
    /// Acks, nacks, heartbeats.
    Control = 2,
}

/// A datagram's header, read in place. See the module docs for the contract:
/// once [`Datagram::new_checked`] succeeded, no accessor panics.
#[derive(Debug, Clone)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps a buffer without looking at it.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer that holds a whole datagram of this version: long
    /// enough, the magic, the version (before anything else is trusted), and
    /// a length field equal to the buffer's.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = Self::new_unchecked(buffer);
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN + TAG_LEN {
            return Err(Error::Truncated);
        }
        if b[field::MAGIC] != MAGIC {
            return Err(Error::BadMagic);
        }
        if b[field::VERSION] != VERSION {
            return Err(Error::Version(b[field::VERSION]));
        }
        if usize::from(u16_at(b, field::LENGTH.start)) != b.len() {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The 72 header bytes (the AAD).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    /// The sealed body.
    pub fn body(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN..b.len() - TAG_LEN]
    }

    /// The tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let b = self.buffer.as_ref();
        get(b, b.len() - TAG_LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    /// The header and the body, apart, to open the body in place.
    pub fn split_mut(&mut self) -> (&[u8], &mut [u8]) {
        let b = self.buffer.as_mut();
        let end = b.len() - TAG_LEN;
        let (header, rest) = b.split_at_mut(HEADER_LEN);
        (header, &mut rest[..end - HEADER_LEN])
    }
}

/// The header's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Data or control.
    pub kind: Kind,
    /// The sender's serial (ASCII, NUL-padded).
    pub serial: [u8; 16],
    /// The sender's boot epoch.
    pub sender_epoch: u64,
    /// The receiver's boot epoch as the sender knows it (0: not yet).
    pub receiver_epoch: u64,
    /// The datagram's place in the sender's reliable stream (data), or 0.
    pub sequence: u64,
    /// Every sequence of the other direction up to this one was delivered.
    pub ack: u64,
    /// The key id (the nonce's first part).
    pub key_id: u32,
    /// The sender's pre-shared key's fingerprint.
    pub psk_id: u32,
    /// The nonce's counter.
    pub counter: u64,
}

impl Header {
    /// Reads the header of a checked datagram.
    pub fn parse<T: AsRef<[u8]>>(d: &Datagram<T>) -> Result<Header, Error> {
        let b = d.header();
        let kind = match b[field::KIND] {
            1 => Kind::Data,
            2 => Kind::Control,
            _ => return Err(Error::BadKind),
        };
        let sequence = u64_at(b, field::SEQUENCE);
        if (kind == Kind::Data) != (sequence != 0) {
            return Err(Error::BadSequence);
        }
        Ok(Header {
            kind,
            serial: get(b, field::SERIAL.start),
            sender_epoch: u64_at(b, field::SENDER_EPOCH),
            receiver_epoch: u64_at(b, field::RECEIVER_EPOCH),
            sequence,
            ack: u64_at(b, field::ACK),
            key_id: u32_at(b, field::KEY_ID),
            psk_id: u32_at(b, field::PSK_ID),
            counter: u64_at(b, field::COUNTER),
        })
    }

    /// Writes the header of a datagram `len` bytes long (header, body, tag)
    /// into the first [`HEADER_LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8], len: u16) {
        put(b, 0, &MAGIC);
        put(b, field::VERSION, &[VERSION, self.kind as u8]);
        put(b, field::LENGTH.start, &len.to_be_bytes());
        put(b, field::SERIAL.start, &self.serial);
        put(b, field::SENDER_EPOCH, &self.sender_epoch.to_be_bytes());
        put(b, field::RECEIVER_EPOCH, &self.receiver_epoch.to_be_bytes());
        put(b, field::SEQUENCE, &self.sequence.to_be_bytes());
        put(b, field::ACK, &self.ack.to_be_bytes());
        put(b, field::KEY_ID, &self.key_id.to_be_bytes());
        put(b, field::PSK_ID, &self.psk_id.to_be_bytes());
        put(b, field::COUNTER, &self.counter.to_be_bytes());
    }
}

/// Whether a unit is forced into a role (`haactive`, `hapassive`), as a
/// heartbeat says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Forced {
    /// Not forced: the election decides.
    #[default]
    No = 0,
    /// Forced active.
    Active = 1,
    /// Forced passive.
    Passive = 2,
}

impl Forced {
    fn from_u8(v: u8) -> Option<Forced> {
        [Forced::No, Forced::Active, Forced::Passive]
            .get(usize::from(v))
            .copied()
    }
}

/// What a unit tells its partner about itself, on every HA link every
/// heartbeat interval (the module docs draw it). The sender's serial, protocol
/// version and boot epoch are the datagram header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// Worker cores (shards).
    pub workers: u8,
    /// Data interfaces.
    pub interfaces: u8,
    /// Forwarding (active) now.
    pub active: bool,
    /// Wants the partner's whole table (it just joined or restarted, and the
    /// bulk it asked for has not ended yet).
    pub wants_bulk: bool,
    /// Holds the partner's table: its bulk was received and installed.
    pub bulk_done: bool,
    /// Bit n: the sender hears the receiver on HA link n (so the receiver
    /// learns of a link that works one way only).
    pub links_heard: u8,
    /// Firmware version, `major << 16 | minor << 8 | patch`.
    pub firmware: u32,
    /// The rule set it runs (content hash).
    pub rules: u64,
    /// Its quality factor, hundredths of a percent (0..=[`MAX_QUALITY`]).
    pub quality: u16,
    /// Its configured priority (higher: active when the quality is equal).
    pub priority: u8,
    /// Forced into a role, or not.
    pub forced: Forced,
    /// The revision of its configuration.
    pub config_revision: u32,
}

/// Which bulk: its number, and the shards it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bulk {
    /// The sender's number for it.
    pub id: u32,
    /// Bit n: shard n is sent again; all ones: the whole table.
    pub shards: u64,
}

/// One record's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A connection's full state.
    Insert(Record),
    /// What changed in a connection.
    Update {
        /// Its name.
        id: SyncId,
        /// Low 16 bits of its RSS hash.
        rss: u16,
        /// The change.
        progress: Progress,
    },
    /// A connection is gone.
    Delete {
        /// Its name.
        id: SyncId,
        /// Low 16 bits of its RSS hash.
        rss: u16,
    },
    /// One shard's digest at this point of the stream.
    Digest {
        /// The sender's shard.
        shard: u8,
        /// Its synchronised entries.
        digest: Digest,
    },
    /// A bulk begins.
    BulkStart(Bulk),
    /// A bulk ends: what it did not refresh is stale.
    BulkEnd(Bulk),
    /// The bulk was received and installed.
    BulkDone(Bulk),
    /// Send me everything.
    BulkRequest,
    /// Send me this entry's full state.
    Request {
        /// Its name.
        id: SyncId,
        /// Low 16 bits of its RSS hash.
        rss: u16,
    },
    /// Send these shards again (bit n = shard n).
    Resync(u64),
    /// Reliable-stream feedback.
    Ack {
        /// Every sequence up to it was delivered.
        cumulative: u64,
        /// The lowest sequence the sender of this datagram still holds.
        first_held: u64,
    },
    /// Sequences missing.
    Nack {
        /// First missing.
        first: u64,
        /// Last missing.
        last: u64,
    },
    /// Who the sender is and how it stands.
    Heartbeat(Heartbeat),
    /// A piece of a message between the daemons.
    Mgmt(Chunk),
}

/// The actions' numbers and record sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Action {
    Insert = 1,
    Update = 2,
    Delete = 3,
    Digest = 4,
    BulkStart = 5,
    BulkEnd = 6,
    BulkDone = 7,
    BulkRequest = 8,
    Request = 9,
    Resync = 10,
    Ack = 11,
    Nack = 12,
    Heartbeat = 13,
    Mgmt = 14,
}

impl Action {
    const ALL: [Action; 14] = [
        Action::Insert,
        Action::Update,
        Action::Delete,
        Action::Digest,
        Action::BulkStart,
        Action::BulkEnd,
        Action::BulkDone,
        Action::BulkRequest,
        Action::Request,
        Action::Resync,
        Action::Ack,
        Action::Nack,
        Action::Heartbeat,
        Action::Mgmt,
    ];

    fn from_u8(v: u8) -> Option<Action> {
        Self::ALL.get(usize::from(v).wrapping_sub(1)).copied()
    }

    fn len(self) -> usize {
        match self {
            Action::Insert => INSERT_LEN,
            Action::Update => UPDATE_LEN,
            Action::Delete | Action::Request => DELETE_LEN,
            Action::Heartbeat => HEARTBEAT_LEN,
            Action::Mgmt => MGMT_LEN,
            Action::Digest
            | Action::Ack
            | Action::Nack
            | Action::BulkStart
            | Action::BulkEnd
            | Action::BulkDone => 16,
            Action::BulkRequest | Action::Resync => 8,
        }
    }

    /// Only acks, nacks and heartbeats travel outside the reliable stream.
    fn control(self) -> bool {
        matches!(self, Action::Ack | Action::Nack | Action::Heartbeat)
    }
}

impl Message {
    fn action(&self) -> Action {
        match self {
            Message::Insert(_) => Action::Insert,
            Message::Update { .. } => Action::Update,
            Message::Delete { .. } => Action::Delete,
            Message::Digest { .. } => Action::Digest,
            Message::BulkStart(_) => Action::BulkStart,
            Message::BulkEnd(_) => Action::BulkEnd,
            Message::BulkDone(_) => Action::BulkDone,
            Message::BulkRequest => Action::BulkRequest,
            Message::Request { .. } => Action::Request,
            Message::Resync(_) => Action::Resync,
            Message::Ack { .. } => Action::Ack,
            Message::Nack { .. } => Action::Nack,
            Message::Heartbeat(_) => Action::Heartbeat,
            Message::Mgmt(_) => Action::Mgmt,
        }
    }

    /// The datagram kind it travels in.
    pub fn kind(&self) -> Kind {
        if self.action().control() {
            Kind::Control
        } else {
            Kind::Data
        }
    }

    /// Bytes of its record.
    pub fn record_len(&self) -> usize {
        self.action().len()
    }

    /// The rule set revision its sub-header carries (inserts only).
    fn revision(&self) -> u64 {
        match self {
            Message::Insert(r) => r.rule.revision,
            _ => 0,
        }
    }

    /// Writes the record into `b` (exactly [`Message::record_len`] bytes).
    fn emit(&self, b: &mut [u8]) {
        b.fill(0);
        match *self {
            Message::Insert(r) => emit_insert(&r, b),
            Message::Update { id, rss, progress } => {
                put(b, 0, &id.0.to_be_bytes());
                put(b, 8, &rss.to_be_bytes());
                put(b, 10, &[progress.state, progress.tcp_flags]);
                put(b, 12, &progress.timeout.to_be_bytes());
                for (i, e) in progress.edges.iter().enumerate() {
                    put(b, 16 + 8 * i, &e.end.to_be_bytes());
                    put(b, 20 + 8 * i, &e.maxend.to_be_bytes());
                }
            }
            Message::Delete { id, rss } | Message::Request { id, rss } => {
                put(b, 0, &id.0.to_be_bytes());
                put(b, 8, &rss.to_be_bytes());
            }
            Message::Digest { shard, digest } => {
                put(b, 0, &[shard]);
                put(b, 4, &digest.count.to_be_bytes());
                put(b, 8, &digest.sum.to_be_bytes());
            }
            Message::BulkStart(bulk) | Message::BulkEnd(bulk) | Message::BulkDone(bulk) => {
                put(b, 0, &bulk.id.to_be_bytes());
                put(b, 8, &bulk.shards.to_be_bytes());
            }
            Message::BulkRequest => {}
            Message::Resync(shards) => put(b, 0, &shards.to_be_bytes()),
            Message::Ack {
                cumulative,
                first_held,
            } => {
                put(b, 0, &cumulative.to_be_bytes());
                put(b, 8, &first_held.to_be_bytes());
            }
            Message::Nack { first, last } => {
                put(b, 0, &first.to_be_bytes());
                put(b, 8, &last.to_be_bytes());
            }
            Message::Heartbeat(h) => emit_heartbeat(&h, b),
            Message::Mgmt(c) => {
                put(b, 0, &c.message.to_be_bytes());
                put(b, 4, &c.total.to_be_bytes());
                put(b, 8, &c.offset.to_be_bytes());
                put(b, 12, &c.len.to_be_bytes());
                put(b, 16, &c.data);
            }
        }
    }

    fn parse(action: Action, revision: u64, b: &[u8]) -> Result<Message, Error> {
        Ok(match action {
            Action::Insert => Message::Insert(parse_insert(b, revision)?),
            Action::Update if b[10] > MAX_STATE => return Err(Error::BadRecord),
            Action::Update => Message::Update {
                id: SyncId(u64_at(b, 0)),
                rss: u16_at(b, 8),
                progress: Progress {
                    state: b[10],
                    tcp_flags: b[11],
                    timeout: u32_at(b, 12),
                    edges: [0, 1].map(|i| Edge {
                        end: u32_at(b, 16 + 8 * i),
                        maxend: u32_at(b, 20 + 8 * i),
                    }),
                },
            },
            Action::Delete => Message::Delete {
                id: SyncId(u64_at(b, 0)),
                rss: u16_at(b, 8),
            },
            Action::Request => Message::Request {
                id: SyncId(u64_at(b, 0)),
                rss: u16_at(b, 8),
            },
            Action::Digest => Message::Digest {
                shard: b[0],
                digest: Digest {
                    count: u32_at(b, 4),
                    sum: u64_at(b, 8),
                },
            },
            Action::BulkStart => Message::BulkStart(bulk_at(b)),
            Action::BulkEnd => Message::BulkEnd(bulk_at(b)),
            Action::BulkDone => Message::BulkDone(bulk_at(b)),
            Action::BulkRequest => Message::BulkRequest,
            Action::Resync => Message::Resync(u64_at(b, 0)),
            Action::Ack => Message::Ack {
                cumulative: u64_at(b, 0),
                first_held: u64_at(b, 8),
            },
            Action::Nack => Message::Nack {
                first: u64_at(b, 0),
                last: u64_at(b, 8),
            },
            Action::Heartbeat => Message::Heartbeat(parse_heartbeat(b)?),
            Action::Mgmt => {
                let mut data = [0; CHUNK_DATA];
                data.copy_from_slice(&b[16..MGMT_LEN]);
                let c = Chunk {
                    message: u32_at(b, 0),
                    total: u32_at(b, 4),
                    offset: u32_at(b, 8),
                    len: u16_at(b, 12),
                    data,
                };
                if !c.valid() {
                    return Err(Error::BadRecord);
                }
                Message::Mgmt(c)
            }
        })
    }
}

fn bulk_at(b: &[u8]) -> Bulk {
    Bulk {
        id: u32_at(b, 0),
        shards: u64_at(b, 8),
    }
}

/// Heartbeat flags: the bits a receiver knows (the others must be 0).
mod heartbeat_flag {
    pub const ACTIVE: u8 = 1;
    pub const WANTS_BULK: u8 = 1 << 1;
    pub const BULK_DONE: u8 = 1 << 2;
    pub const KNOWN: u8 = ACTIVE | WANTS_BULK | BULK_DONE;
}

fn emit_heartbeat(h: &Heartbeat, b: &mut [u8]) {
    use heartbeat_flag::*;
    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
    let flags =
        flag(h.active, ACTIVE) | flag(h.wants_bulk, WANTS_BULK) | flag(h.bulk_done, BULK_DONE);
    put(b, 0, &[h.workers, h.interfaces, flags, h.links_heard]);
    put(b, 4, &h.firmware.to_be_bytes());
    put(b, 8, &h.rules.to_be_bytes());
    put(b, 16, &h.quality.to_be_bytes());
    put(b, 18, &[h.priority, h.forced as u8]);
    put(b, 20, &h.config_revision.to_be_bytes());
}

fn parse_heartbeat(b: &[u8]) -> Result<Heartbeat, Error> {
    use heartbeat_flag::*;
    let flags = b[2];
    let quality = u16_at(b, 16);
    if flags & !KNOWN != 0 || quality > MAX_QUALITY {
        return Err(Error::BadRecord);
    }
    Ok(Heartbeat {
        workers: b[0],
        interfaces: b[1],
        active: flags & ACTIVE != 0,
        wants_bulk: flags & WANTS_BULK != 0,
        bulk_done: flags & BULK_DONE != 0,
        links_heard: b[3],
        firmware: u32_at(b, 4),
        rules: u64_at(b, 8),
        quality,
        priority: b[18],
        forced: Forced::from_u8(b[19]).ok_or(Error::BadRecord)?,
        config_revision: u32_at(b, 20),
    })
}

fn emit_peer(b: &mut [u8], at: usize, p: &Peer) {
    put(b, at, &p.end.to_be_bytes());
    put(b, at + 4, &p.maxend.to_be_bytes());
    put(b, at + 8, &p.maxwin.to_be_bytes());
    put(b, at + 12, &p.maxack.to_be_bytes());
    put(b, at + 16, &[p.scale, p.flags]);
}

fn parse_peer(b: &[u8], at: usize) -> Peer {
    Peer {
        end: u32_at(b, at),
        maxend: u32_at(b, at + 4),
        maxwin: u32_at(b, at + 8),
        maxack: u32_at(b, at + 12),
        scale: get::<1>(b, at + 16)[0],
        flags: get::<1>(b, at + 17)[0],
    }
}

fn emit_insert(r: &Record, b: &mut [u8]) {
    let k = &r.key;
    put(b, 0, &r.id.0.to_be_bytes());
    put(b, 8, &[k.family, k.proto]);
    put(b, 10, &k.lo_addr);
    put(b, 26, &k.hi_addr);
    put(b, 42, &k.lo_port.to_be_bytes());
    put(b, 44, &k.hi_port.to_be_bytes());
    let flags = u8::from(r.orig_side == Side::Hi) | u8::from(r.log) << 1;
    put(
        b,
        46,
        &[
            r.kind as u8,
            r.progress.state,
            flags,
            r.progress.tcp_flags,
            r.in_iface,
            r.out_iface,
        ],
    );
    put(b, 52, &r.rule.index.to_be_bytes());
    put(b, 56, &r.progress.timeout.to_be_bytes());
    emit_peer(b, 60, &r.peers[0]);
    emit_peer(b, 78, &r.peers[1]);
}

fn parse_insert(b: &[u8], revision: u64) -> Result<Record, Error> {
    let family = b[8];
    if family != 4 && family != 6 {
        return Err(Error::BadRecord);
    }
    let kind = L4Kind::from_u8(b[46]).ok_or(Error::BadRecord)?;
    let proto = b[9];
    let fits = match kind {
        L4Kind::Tcp => proto == 6 && b[47] <= MAX_STATE,
        L4Kind::Udp => proto == 17 && b[47] <= 1,
        L4Kind::IcmpEcho => matches!(proto, 1 | 58) && b[47] <= 1,
        L4Kind::Other => !matches!(proto, 1 | 6 | 17 | 58) && b[47] <= 1,
    };
    if !fits {
        return Err(Error::BadRecord);
    }
    let flags = b[48];
    let peers = [parse_peer(b, 60), parse_peer(b, 78)];
    Ok(Record {
        id: SyncId(u64_at(b, 0)),
        key: FlowKey {
            lo_addr: get(b, 10),
            hi_addr: get(b, 26),
            lo_port: u16_at(b, 42),
            hi_port: u16_at(b, 44),
            proto: b[9],
            family,
        },
        orig_side: if flags & 1 != 0 { Side::Hi } else { Side::Lo },
        kind,
        progress: Progress {
            state: b[47],
            tcp_flags: b[49],
            edges: peers.map(|p| Edge {
                end: p.end,
                maxend: p.maxend,
            }),
            timeout: u32_at(b, 56),
        },
        peers,
        rule: RuleRef {
            revision,
            index: u16_at(b, 52),
        },
        log: flags & 2 != 0,
        in_iface: b[50],
        out_iface: b[51],
    })
}

/// Walks an opened body of a datagram of `kind`: every record, in order.
/// Stops at the first error (the caller drops the whole datagram and counts
/// it: a datagram is taken whole or not at all — check with
/// [`validate`] before acting on any record).
pub fn records(kind: Kind, body: &[u8]) -> impl Iterator<Item = Result<Message, Error>> + '_ {
    let mut rest = body;
    let mut current: Option<(Action, u64, &[u8])> = None;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        loop {
            if let Some((action, revision, records)) = current.as_mut() {
                if let Some((one, more)) = records.split_at_checked(action.len()) {
                    *records = more;
                    let m = Message::parse(*action, *revision, one);
                    failed = m.is_err();
                    return Some(m);
                }
                current = None;
            }
            if rest.is_empty() {
                return None;
            }
            let section = (|| {
                let (head, after) = rest
                    .split_at_checked(SECTION_LEN)
                    .ok_or(Error::SectionTruncated)?;
                let action = Action::from_u8(head[0]).ok_or(Error::UnknownAction)?;
                if usize::from(head[1]) != action.len() {
                    return Err(Error::BadRecordLen);
                }
                if action.control() != (kind == Kind::Control) {
                    return Err(Error::OutOfPlace);
                }
                let bytes = usize::from(u16_at(head, 2)) * action.len();
                let (records, after) = after
                    .split_at_checked(bytes)
                    .ok_or(Error::SectionTruncated)?;
                Ok((action, u64_at(head, 4), records, after))
            })();
            match section {
                Ok((action, revision, records, after)) => {
                    rest = after;
                    current = Some((action, revision, records));
                }
                Err(e) => {
                    failed = true;
                    return Some(Err(e));
                }
            }
        }
    })
}

/// Checks a whole opened body before any of it is acted on; returns the
/// number of records.
pub fn validate(kind: Kind, body: &[u8]) -> Result<usize, Error> {
    let mut n = 0;
    for m in records(kind, body) {
        m?;
        n += 1;
    }
    Ok(n)
}

/// Builds the body of one datagram, at most `capacity` bytes (the HA link's
/// MTU minus the IPv4, UDP, header and tag bytes): consecutive records of one
/// action (and rule set) share a sub-header. Its buffer is allocated once;
/// [`BodyWriter::clear`] starts the next datagram.
#[derive(Debug)]
pub struct BodyWriter {
    buf: Vec<u8>,
    len: usize,
    /// Where the open section's sub-header is, with its action and revision.
    open: Option<(usize, u8, u64)>,
    records: usize,
}

/// The record does not fit in what is left of the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("datagram full")]
pub struct Full;

impl BodyWriter {
    /// A writer for bodies of at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            len: 0,
            open: None,
            records: 0,
        }
    }

    /// Starts an empty body.
    pub fn clear(&mut self) {
        self.len = 0;
        self.open = None;
        self.records = 0;
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records written.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The most bytes a body may take.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes `m` would take now (its record, and a sub-header if it opens one).
    pub fn cost(&self, m: &Message) -> usize {
        let action = m.action() as u8;
        let joins = matches!(self.open, Some((at, a, rev))
            if a == action && rev == m.revision() && u16_at(&self.buf, at + 2) < u16::MAX);
        m.record_len() + if joins { 0 } else { SECTION_LEN }
    }

    /// Appends `m` and returns where its record starts, or says it does not
    /// fit (nothing written).
    pub fn push(&mut self, m: &Message) -> Result<usize, Full> {
        let cost = self.cost(m);
        if self.len + cost > self.buf.len() {
            return Err(Full);
        }
        let len = u8::try_from(m.record_len()).map_err(|_| Full)?;
        if cost > m.record_len() {
            let at = self.len;
            let head = &mut self.buf[at..at + SECTION_LEN];
            head.fill(0);
            put(head, 0, &[m.action() as u8, len]);
            put(head, 4, &m.revision().to_be_bytes());
            self.open = Some((at, m.action() as u8, m.revision()));
            self.len += SECTION_LEN;
        }
        if let Some((at, _, _)) = self.open {
            let count = u16_at(&self.buf, at + 2).saturating_add(1);
            put(&mut self.buf, at + 2, &count.to_be_bytes());
        }
        let at = self.len;
        m.emit(&mut self.buf[at..at + m.record_len()]);
        self.len += m.record_len();
        self.records += 1;
        Ok(at)
    }

    /// Writes `m` over the record at `at` that [`BodyWriter::push`] wrote for
    /// a message of the same action (a newer update of the same entry).
    pub fn rewrite(&mut self, at: usize, m: &Message) {
        if let Some(record) = self.buf.get_mut(at..at + m.record_len()) {
            m.emit(record);
        }
    }

    /// The body written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests;
