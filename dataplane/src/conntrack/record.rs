//! A connection as the two units of a pair tell each other about it: the
//! transport-independent *record* (a small `Copy` repr, like the wire module's
//! `Repr`s), separate from the in-memory entry ([`Conn`]) on purpose. The entry
//! may change shape with every release; the record is the contract syncd puts
//! on the wire (its byte layout lives in `syncd::wire`).
//!
//! * [`SyncId`] names a connection between the two units for its whole life,
//!   so a compact update or a delete needs no key.
//! * [`RuleRef`] names a rule *together with the rule set it indexes*: a rule
//!   index means nothing without it (pfsync carries the rule set's checksum
//!   and trusts rule numbers only when it matches; so do we).
//! * [`Progress`] is what changes during a connection's life: the compact
//!   update carries only that.
//! * [`Digest`] summarises a set of synchronised entries, order-independent,
//!   so the two units can check that their tables agree.

use super::conn::{flag, Conn, L4State, Pseudo};
use super::key::{FlowKey, Side};
use super::tcp::{before, Peer, TcpConn, TcpState};

/// A connection's name between the two units:
///
/// ```text
///  63            40 39      32 31                              0
/// ┌────────────────┬──────────┬─────────────────────────────────┐
/// │ creator (24)   │ worker(8)│ entry slot in its shard (32)    │
/// └────────────────┴──────────┴─────────────────────────────────┘
/// ```
///
/// `creator` is the low 24 bits of the creating unit's boot epoch, so the
/// names two units (or two boots of one unit) give never meet; `worker` and
/// `slot` say where the creator keeps it, so the creator finds its own
/// entries without an index. A slot is reused only after its entry is gone,
/// and the delete travels before the next insert on the same ordered channel.
/// An entry adopted from the partner keeps the partner's name for life, also
/// after a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SyncId(pub u64);

impl SyncId {
    /// The name of entry `slot` of `worker`'s shard on the unit whose boot
    /// epoch has these low 24 bits.
    pub fn new(creator: u32, worker: u8, slot: u32) -> SyncId {
        SyncId(u64::from(creator & 0xff_ffff) << 40 | u64::from(worker) << 32 | u64::from(slot))
    }

    /// The creator's 24 bits.
    pub fn creator(self) -> u32 {
        u32::try_from(self.0 >> 40).unwrap_or(0)
    }

    /// The creating worker.
    pub fn worker(self) -> u8 {
        (self.0 >> 32).to_le_bytes()[0]
    }

    /// The entry slot on the creator.
    pub fn slot(self) -> u32 {
        u32::try_from(self.0 & 0xffff_ffff).unwrap_or(0)
    }
}

/// The rule index for a connection admitted by the default policy.
pub const DEFAULT_RULE: u16 = u16::MAX;
/// The rule index for a connection whose rule is not in the rules in force:
/// removed by a reload, or named by a partner running other rules.
pub const NO_RULE: u16 = u16::MAX - 1;

/// A rule of a particular rule set: `index` into the set whose content hash
/// (`filter::Revision`) is `revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RuleRef {
    /// The rule set's content hash.
    pub revision: u64,
    /// Index into it, or [`DEFAULT_RULE`] / [`NO_RULE`].
    pub index: u16,
}

impl RuleRef {
    /// The index this unit may use, running rules with `revision`: the same
    /// index when the sets match, [`NO_RULE`] when they do not (never a
    /// misread rule number).
    pub fn resolve(self, revision: u64) -> u16 {
        if self.index == DEFAULT_RULE || self.revision == revision {
            self.index
        } else {
            NO_RULE
        }
    }
}

/// The protocol of a connection, as records say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum L4Kind {
    /// Full TCP tracking.
    Tcp = 0,
    /// UDP.
    Udp = 1,
    /// ICMP echo.
    IcmpEcho = 2,
    /// Any other protocol.
    Other = 3,
}

impl L4Kind {
    /// From its byte; `None` for a value no version defines.
    pub fn from_u8(v: u8) -> Option<L4Kind> {
        [L4Kind::Tcp, L4Kind::Udp, L4Kind::IcmpEcho, L4Kind::Other]
            .get(usize::from(v))
            .copied()
    }
}

/// The value of a pseudo-state in [`Progress::state`].
const UNREPLIED: u8 = 0;
const REPLIED: u8 = 1;

/// Where one direction's sequence space stands: the fields a compact update
/// carries (`td_end`, `td_maxend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Edge {
    /// Highest sequence end sent.
    pub end: u32,
    /// Highest sequence end the other side's window allows (its ack + window).
    pub maxend: u32,
}

/// What changes during a connection's life: the compact update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// TCP: the [`TcpState`] value; others: 0 unreplied, 1 replied.
    pub state: u8,
    /// TCP: the tracker's connection flags (seen reply, assured, ...); 0 otherwise.
    pub tcp_flags: u8,
    /// TCP: per direction, original first; zero otherwise.
    pub edges: [Edge; 2],
    /// Seconds of life left when it was sent.
    pub timeout: u32,
}

/// A connection's full state: what the partner needs to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Its name between the units.
    pub id: SyncId,
    /// Its key.
    pub key: FlowKey,
    /// Which side of the key opened it.
    pub orig_side: Side,
    /// Protocol.
    pub kind: L4Kind,
    /// State, connection flags, edges and remaining life.
    pub progress: Progress,
    /// TCP: what the tracker knows of each direction (original first).
    pub peers: [Peer; 2],
    /// The rule that admitted it.
    pub rule: RuleRef,
    /// The rule asked to log it.
    pub log: bool,
    /// Ingress interface of the original direction.
    pub in_iface: u8,
    /// Egress interface of the original direction.
    pub out_iface: u8,
}

/// A record the receiver cannot turn into an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRecord {
    /// state value out of range for its protocol
    #[error("state value out of range for its protocol")]
    State,
}

/// Why an update was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotApplied {
    /// older than what the entry holds (state or sequence edge going back)
    #[error("older than what the entry holds")]
    Stale,
    /// state value out of range for its protocol
    #[error("state value out of range for its protocol")]
    Bad,
}

impl Record {
    /// The record of an entry: `rule` is the entry's rule with the revision of
    /// the set its index refers to; `timeout` its seconds of life left.
    pub fn of(id: SyncId, key: &FlowKey, conn: &Conn, rule: RuleRef, timeout: u32) -> Record {
        let (kind, progress, peers) = match &conn.l4 {
            L4State::Tcp(t) => {
                let (state, tcp_flags, peers) = t.sync_view();
                let edges = peers.map(|p| Edge {
                    end: p.end,
                    maxend: p.maxend,
                });
                let progress = Progress {
                    state: state as u8,
                    tcp_flags,
                    edges,
                    timeout,
                };
                (L4Kind::Tcp, progress, peers)
            }
            L4State::Udp(p) => (
                L4Kind::Udp,
                pseudo_progress(*p, timeout),
                [Peer::default(); 2],
            ),
            L4State::IcmpEcho(p) => (
                L4Kind::IcmpEcho,
                pseudo_progress(*p, timeout),
                [Peer::default(); 2],
            ),
            L4State::Other(p) => (
                L4Kind::Other,
                pseudo_progress(*p, timeout),
                [Peer::default(); 2],
            ),
        };
        Record {
            id,
            key: *key,
            orig_side: conn.orig_side,
            kind,
            progress,
            peers,
            rule,
            log: conn.flags & flag::LOG != 0,
            in_iface: conn.in_iface,
            out_iface: conn.out_iface,
        }
    }

    /// The protocol state this record describes.
    pub fn l4(&self) -> Result<L4State, BadRecord> {
        let p = &self.progress;
        let pseudo = || match p.state {
            UNREPLIED => Ok(Pseudo::Unreplied),
            REPLIED => Ok(Pseudo::Replied),
            _ => Err(BadRecord::State),
        };
        Ok(match self.kind {
            L4Kind::Tcp => {
                let state = TcpState::from_u8(p.state).ok_or(BadRecord::State)?;
                let mut peers = self.peers;
                for (peer, edge) in peers.iter_mut().zip(p.edges) {
                    peer.end = edge.end;
                    peer.maxend = edge.maxend;
                }
                L4State::Tcp(TcpConn::from_sync(state, p.tcp_flags, peers))
            }
            L4Kind::Udp => L4State::Udp(pseudo()?),
            L4Kind::IcmpEcho => L4State::IcmpEcho(pseudo()?),
            L4Kind::Other => L4State::Other(pseudo()?),
        })
    }

    /// The larval entry this record describes, created at `now` (seconds),
    /// running rules with `revision`. Its flags say: synchronised, adopted
    /// (named by the partner), larval (not forwarding until the unit takes over).
    pub fn larval(&self, revision: u64, now: u32) -> Result<Conn, BadRecord> {
        let mut flags = flag::SYNC | flag::ADOPTED | flag::LARVAL;
        if self.log {
            flags |= flag::LOG;
        }
        Ok(Conn {
            l4: self.l4()?,
            created: now,
            rule: self.rule.resolve(revision),
            in_iface: self.in_iface,
            out_iface: self.out_iface,
            orig_side: self.orig_side,
            flags,
            synced_at: 0,
        })
    }
}

fn pseudo_value(p: Pseudo) -> u8 {
    match p {
        Pseudo::Unreplied => UNREPLIED,
        Pseudo::Replied => REPLIED,
    }
}

/// The state value [`Progress::state`] gives this protocol state.
pub fn state_value(l4: &L4State) -> u8 {
    match l4 {
        L4State::Tcp(t) => t.state() as u8,
        L4State::Udp(p) | L4State::IcmpEcho(p) | L4State::Other(p) => pseudo_value(*p),
    }
}

fn pseudo_progress(p: Pseudo, timeout: u32) -> Progress {
    Progress {
        state: pseudo_value(p),
        timeout,
        ..Progress::default()
    }
}

/// How far along its life a TCP state is: updates may only move forward.
/// Linux's numbering puts SYN_SENT2 (9) last; in a connection's life it comes
/// right after SYN_SENT.
fn tcp_rank(s: TcpState) -> u8 {
    match s {
        TcpState::None => 0,
        TcpState::SynSent => 1,
        TcpState::SynSent2 => 2,
        TcpState::SynRecv => 3,
        TcpState::Established => 4,
        TcpState::FinWait => 5,
        TcpState::CloseWait => 6,
        TcpState::LastAck => 7,
        TcpState::TimeWait => 8,
        TcpState::Close => 9,
    }
}

/// Applies a compact update to an entry's protocol state, unless it would
/// move it backwards (pfsync's stale check: an older TCP state, or either
/// direction's sequence edge sliding back). An equal update is applied (it
/// refreshes the timeout).
pub fn apply_progress(l4: &mut L4State, p: &Progress) -> Result<(), NotApplied> {
    match l4 {
        L4State::Tcp(t) => {
            let new = TcpState::from_u8(p.state).ok_or(NotApplied::Bad)?;
            let (old, _, peers) = t.sync_view();
            if tcp_rank(new) < tcp_rank(old) {
                return Err(NotApplied::Stale);
            }
            let back = peers.iter().zip(p.edges).any(|(held, e)| {
                held.maxwin != 0 && (before(e.end, held.end) || before(e.maxend, held.maxend))
            });
            if back {
                return Err(NotApplied::Stale);
            }
            t.apply_sync(new, p.tcp_flags, p.edges.map(|e| (e.end, e.maxend)));
            Ok(())
        }
        L4State::Udp(s) | L4State::IcmpEcho(s) | L4State::Other(s) => {
            let new = match p.state {
                UNREPLIED => Pseudo::Unreplied,
                REPLIED => Pseudo::Replied,
                _ => return Err(NotApplied::Bad),
            };
            if *s == Pseudo::Replied && new == Pseudo::Unreplied {
                return Err(NotApplied::Stale);
            }
            *s = new;
            Ok(())
        }
    }
}

/// An order-independent summary of a set of synchronised entries: how many,
/// and the wrapping sum of a hash of each one's key, protocol and state. It
/// leaves out what legitimately lags between the units (sequence edges,
/// timeouts), so two units that agree have equal digests whatever the order
/// they learnt things in; one entry missing, extra or in another state
/// changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digest {
    /// Entries.
    pub count: u32,
    /// Wrapping sum of [`Digest::term`] over them.
    pub sum: u64,
}

impl Digest {
    /// The term of one entry: a fixed hash (the same on every unit and
    /// version of this record format) of its key, protocol and state.
    pub fn term(key: &FlowKey, l4: &L4State) -> u64 {
        Self::term_of(key, l4, state_value(l4))
    }

    /// The term the entry had in state value `state` (as [`Progress::state`]
    /// counts it), for taking an old state out of the sum.
    pub fn term_of(key: &FlowKey, l4: &L4State, state: u8) -> u64 {
        let kind = match l4 {
            L4State::Tcp(_) => L4Kind::Tcp,
            L4State::Udp(_) => L4Kind::Udp,
            L4State::IcmpEcho(_) => L4Kind::IcmpEcho,
            L4State::Other(_) => L4Kind::Other,
        };
        // FNV-1a over the fields, then splitmix64's finaliser to spread it
        // (fixed: both units and every version must compute the same).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(&key.lo_addr);
        eat(&key.hi_addr);
        eat(&key.lo_port.to_be_bytes());
        eat(&key.hi_port.to_be_bytes());
        eat(&[key.proto, key.family, kind as u8, state]);
        super::table::splitmix_finish(h)
    }

    /// Counts an entry in.
    pub fn add(&mut self, key: &FlowKey, l4: &L4State) {
        self.count = self.count.wrapping_add(1);
        self.sum = self.sum.wrapping_add(Self::term(key, l4));
    }

    /// Counts an entry out.
    pub fn remove(&mut self, key: &FlowKey, l4: &L4State) {
        self.count = self.count.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(Self::term(key, l4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tcp::{flags, Segment, TcpTimeouts};
    use std::net::{IpAddr, Ipv4Addr};

    fn key() -> (FlowKey, Side) {
        FlowKey::from_packet(
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            40000,
            IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2)),
            443,
            6,
        )
    }

    fn established() -> TcpConn {
        let t = TcpTimeouts::default();
        let seg = |flags, seq, ack| Segment {
            seq,
            ack,
            window: 64240,
            flags,
            wscale: Some(7),
            ..Segment::default()
        };
        let (mut c, _) = TcpConn::new(&seg(flags::SYN, 1000, 0), &t).unwrap();
        c.track(
            crate::conntrack::tcp::Dir::Reply,
            &seg(flags::SYN | flags::ACK, 5000, 1001),
            &t,
        );
        c.track(
            crate::conntrack::tcp::Dir::Original,
            &seg(flags::ACK, 1001, 5001),
            &t,
        );
        assert_eq!(c.state(), TcpState::Established);
        c
    }

    fn conn(l4: L4State) -> Conn {
        Conn {
            l4,
            created: 7,
            rule: 2,
            in_iface: 0,
            out_iface: 1,
            orig_side: key().1,
            flags: flag::SYNC | flag::LOG,
            synced_at: 0,
        }
    }

    #[test]
    fn a_sync_id_keeps_its_three_parts() {
        let id = SyncId::new(0x1234_5678, 3, 0xdead_beef);
        assert_eq!(
            (id.creator(), id.worker(), id.slot()),
            (0x34_5678, 3, 0xdead_beef)
        );
    }

    #[test]
    fn a_rule_index_is_trusted_only_with_its_rule_set() {
        let r = RuleRef {
            revision: 7,
            index: 2,
        };
        assert_eq!(r.resolve(7), 2);
        assert_eq!(r.resolve(8), NO_RULE);
        let d = RuleRef {
            revision: 7,
            index: DEFAULT_RULE,
        };
        assert_eq!(d.resolve(8), DEFAULT_RULE, "the default policy is no index");
    }

    #[test]
    fn a_record_round_trips_into_a_larval_entry() {
        let c = conn(L4State::Tcp(established()));
        let rule = RuleRef {
            revision: 9,
            index: 2,
        };
        let r = Record::of(SyncId(5), &key().0, &c, rule, 300);
        let larval = r.larval(9, 100).unwrap();
        let view = |l4: &L4State| match l4 {
            L4State::Tcp(t) => t.sync_view(),
            _ => unreachable!(),
        };
        assert_eq!(
            view(&larval.l4),
            view(&c.l4),
            "state, flags and both peers survive"
        );
        assert_eq!(
            larval.flags,
            flag::SYNC | flag::ADOPTED | flag::LARVAL | flag::LOG
        );
        assert_eq!((larval.rule, larval.in_iface, larval.out_iface), (2, 0, 1));
        assert_eq!(r.larval(10, 100).unwrap().rule, NO_RULE);
        let udp = Record::of(
            SyncId(6),
            &key().0,
            &conn(L4State::Udp(Pseudo::Replied)),
            rule,
            9,
        );
        assert_eq!(udp.larval(9, 0).unwrap().l4, L4State::Udp(Pseudo::Replied));
    }

    #[test]
    fn an_out_of_range_state_is_refused_not_guessed() {
        let c = conn(L4State::Udp(Pseudo::Replied));
        let mut r = Record::of(SyncId(1), &key().0, &c, RuleRef::default(), 1);
        r.progress.state = 2;
        assert_eq!(r.l4(), Err(BadRecord::State));
        r.kind = L4Kind::Tcp;
        r.progress.state = 10;
        assert_eq!(r.l4(), Err(BadRecord::State));
        assert_eq!(L4Kind::from_u8(4), None);
    }

    #[test]
    fn updates_move_forward_only() {
        let t = established();
        let c = conn(L4State::Tcp(t));
        let r = Record::of(SyncId(1), &key().0, &c, RuleRef::default(), 1);
        let mut l4 = c.l4;
        let mut p = r.progress;
        p.edges[0].end = p.edges[0].end.wrapping_add(1000);
        assert_eq!(apply_progress(&mut l4, &p), Ok(()));
        assert_eq!(
            apply_progress(&mut l4, &p),
            Ok(()),
            "the same update again is fine"
        );
        let mut back = p;
        back.edges[0].end = back.edges[0].end.wrapping_sub(1);
        assert_eq!(apply_progress(&mut l4, &back), Err(NotApplied::Stale));
        let mut back = p;
        back.edges[1].maxend = back.edges[1].maxend.wrapping_sub(1);
        assert_eq!(apply_progress(&mut l4, &back), Err(NotApplied::Stale));
        let mut older = p;
        older.state = TcpState::SynRecv as u8;
        assert_eq!(apply_progress(&mut l4, &older), Err(NotApplied::Stale));
        let mut closing = p;
        closing.state = TcpState::FinWait as u8;
        assert_eq!(apply_progress(&mut l4, &closing), Ok(()));
        assert_eq!(l4.tcp_state(), Some(TcpState::FinWait));
        let mut bad = p;
        bad.state = 200;
        assert_eq!(apply_progress(&mut l4, &bad), Err(NotApplied::Bad));

        let mut udp = L4State::Udp(Pseudo::Replied);
        let unreplied = Progress::default();
        assert_eq!(apply_progress(&mut udp, &unreplied), Err(NotApplied::Stale));
    }

    #[test]
    fn a_digest_does_not_care_about_order_but_does_about_state() {
        let (k1, _) = key();
        let (k2, _) = FlowKey::from_packet(
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3)),
            1,
            IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2)),
            53,
            17,
        );
        let (a, b) = (L4State::Tcp(established()), L4State::Udp(Pseudo::Replied));
        let (mut d1, mut d2) = (Digest::default(), Digest::default());
        d1.add(&k1, &a);
        d1.add(&k2, &b);
        d2.add(&k2, &b);
        d2.add(&k1, &a);
        assert_eq!(d1, d2);
        d2.remove(&k2, &b);
        d2.add(&k2, &L4State::Udp(Pseudo::Unreplied));
        assert_ne!(d1, d2);
        d2.remove(&k2, &L4State::Udp(Pseudo::Unreplied));
        d2.remove(&k1, &a);
        assert_eq!(d2, Digest { count: 0, sum: 0 });
    }
}
