//! TCP connection tracking: the state machine and per-direction sequence
//! windows, as strict as Linux conntrack with `nf_conntrack_tcp_loose=0`
//! and `nf_conntrack_tcp_be_liberal=0`.
//!
//! The window checks are Guido van Rooij's, from "Real Stateful TCP Packet
//! Filtering in IP Filter", as Linux and pf apply them. For each direction the
//! tracker keeps the highest sequence end seen (`end`), the highest
//! sequence the receiver's advertised window allows (`maxend`), the largest
//! window seen (`maxwin`) and the highest ack sent (`maxack`). A segment
//! `[seq, end)` carrying `ack` (or the highest SACK edge, `sack`) passes when
//!
//! ```text
//!  I   seq  <= sender.maxend                      data not beyond the receiver's window
//!  II  end  >  sender.end - receiver.maxwin       data not older than one window
//!  III sack <= receiver.end                       ack only for data that was sent
//!  IV  sack >  receiver.end - max(sender.maxwin, 66000)   ack not absurdly old
//! ```
//!
//! Like Linux 6.x, a segment failing I or III is *invalid* (dropped); one
//! failing only II or IV is an old retransmission or a late ack: it passes
//! but changes nothing (*ignored*). Window scaling applies only when both
//! SYNs carried the option (RFC 7323), and never to the window of a SYN.
//!
//! The state machine is Linux's table (`tcp_conntracks`), with its special
//! cases: SYN retransmits, simultaneous open (`SYN_SENT2`), a SYN that
//! reopens a TIME_WAIT or closed tuple, RST validation against the highest
//! ack seen, RFC 5961 challenge ACKs, and the resynchronisation after a SYN
//! the tracker had ignored. New connections start only with a SYN: a bare
//! ACK with no connection is invalid (no mid-stream pickup).
//!
//! # Answers to what the tracker let through
//!
//! Where it may be out of sync with the endpoints (a SYN in ESTABLISHED, an
//! ACK in SYN_SENT), the tracker lets a segment through untracked and notes
//! it. A segment answering it (a SYN/ACK, a RST, a challenge ACK) may then
//! skip the checks the tracker's stale windows would fail. An answer travels
//! the other way and is recognised in the sequence space of what it
//! answers; every such path checks both, so a segment from the noted one's
//! own sender answers nothing.
//!
//! # Deliberately stricter than Linux
//!
//! Linux 6.18 lets the segments below through; tandem drops them. Each is a
//! segment no endpoint sends as an answer, or one the receiving endpoint
//! discards, so dropping it cannot hurt a live connection. Each is shown by
//! a trace of the differential test (`tandem_tests::diff::DELIBERATE`, one
//! entry per packet, naming the item). Nowhere is tandem laxer than Linux.
//!
//! 1. **A RST in a closing state must be in the window.** Linux checks
//!    nothing of a RST in FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT or CLOSE
//!    (`tcp_can_early_drop`), to let a reused tuple's entry go at once. The
//!    endpoint discards a RST outside its window (RFC 9293 3.10.7.4,
//!    RFC 5961 3.2), and pf checks the window of a RST in every state; the
//!    entry of a reused tuple still goes at the new SYN or its timeout.
//! 2. **After an ignored SYN, a RST from its sender is still checked
//!    against the highest ack.** After a SYN it let through, Linux checks no
//!    RST against the other side's highest ack (invalid below it, closing
//!    only exactly at it), whichever side sends it ("td_maxack might be
//!    outdated"). That ack is outdated only for a RST answering the SYN, from
//!    its receiver; from the SYN's own sender, a RST below it is old and one
//!    beyond it gets the RFC 5961 (3.2) treatment, as without the SYN.
//! 3. **A RST answering an ACK of a half-open connection comes from the
//!    other side.** Before the connection is assured, Linux takes a RST
//!    acking the end of the last ACK, from either side, without the window
//!    checks. From that ACK's own sender, the ack is in the wrong sequence
//!    space: it answers nothing, and the window checks apply.
//! 4. **A RST answering a challenge ACK in SYN_SENT comes from the
//!    originator.** Linux (6.2) takes, without the window checks, a RST whose
//!    sequence is the ack of an ACK it let through in SYN_SENT, from either
//!    side. That ack is in the originator's sequence space: only the
//!    originator answers with it (RFC 9293 3.10.7.3).
//! 5. **A challenge ACK in LAST_ACK must pass the window checks.** After a
//!    SYN ignored in LAST_ACK, Linux lets the next ACK from the other side
//!    through unchecked, as the RFC 5961 (section 4) challenge ACK. A real
//!    one acks only what was sent; tandem checks it (learning nothing from
//!    it) and, when it fails, still expects the real one.
//!
//! Beyond this tracker, the firewall is stricter than Linux at two places,
//! not replayed by the differential test (it sends TCP segments only) and
//! tested where they live: IPv4 fragments are dropped and counted rather
//! than reassembled (`crate::firewall`, the `fragments` lab test), and an
//! ICMP error quoting a TCP segment must quote a sequence number its sender
//! could have sent, as pf checks (`crate::firewall::related`).
//!
//! Everything here is pure: the caller passes a parsed [`Segment`] and gets a
//! [`TcpVerdict`]; timeouts are returned, not armed.

use std::fmt;

/// `a` is before `b` in sequence space (RFC 9293 §3.4, modulo 2³²).
#[inline]
pub(crate) fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` is after `b` in sequence space.
#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// Linux's floor for the ack lower bound (IV).
const MAX_ACK_WINDOW_CONST: u32 = 66_000;
/// RFC 7323: the largest shift a window scale option may ask for.
const MAX_WSCALE: u8 = 14;

/// TCP flag bits as bytes, from the wire module's definitions.
pub mod flags {
    use crate::wire::TcpFlags;
    /// FIN.
    pub const FIN: u8 = TcpFlags::FIN.bits();
    /// SYN.
    pub const SYN: u8 = TcpFlags::SYN.bits();
    /// RST.
    pub const RST: u8 = TcpFlags::RST.bits();
    /// PSH.
    pub const PSH: u8 = TcpFlags::PSH.bits();
    /// ACK.
    pub const ACK: u8 = TcpFlags::ACK.bits();
    /// URG.
    pub const URG: u8 = TcpFlags::URG.bits();
    /// ECE.
    pub const ECE: u8 = TcpFlags::ECE.bits();
    /// CWR.
    pub const CWR: u8 = TcpFlags::CWR.bits();
}

/// Direction of a packet relative to the connection's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dir {
    /// The direction of the SYN that opened the connection.
    Original = 0,
    /// The other direction.
    Reply = 1,
}

impl Dir {
    fn idx(self) -> usize {
        self as usize
    }

    fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// The states of a tracked TCP connection (Linux's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum TcpState {
    /// No state yet.
    #[default]
    None = 0,
    /// SYN seen from the originator.
    SynSent = 1,
    /// SYN/ACK seen from the responder.
    SynRecv = 2,
    /// Handshake completed.
    Established = 3,
    /// One side sent FIN.
    FinWait = 4,
    /// The other side acked the first FIN.
    CloseWait = 5,
    /// Both sides sent FIN.
    LastAck = 6,
    /// The last FIN was acked.
    TimeWait = 7,
    /// Reset, or closed.
    Close = 8,
    /// Simultaneous open: SYN seen from both sides.
    SynSent2 = 9,
}

impl TcpState {
    /// Every state, in order.
    pub const ALL: [TcpState; 10] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];

    /// Linux's name, as `conntrack -L` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }

    /// From its `u8` value (as synchronised to the partner).
    pub fn from_u8(v: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(v)).copied()
    }

    /// After a FIN or a RST (Linux's `tcp_can_early_drop`).
    pub fn closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait
                | TcpState::CloseWait
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Close
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the state table says for a (direction, flags, state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    To(TcpState),
    /// Invalid transition.
    Iv,
    /// Possibly out of sync with the endpoints: pass, change nothing.
    Ig,
}

/// The flag class of a segment (Linux's `get_conntrack_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Index {
    Syn = 0,
    SynAck = 1,
    Fin = 2,
    Ack = 3,
    Rst = 4,
    None = 5,
}

impl Index {
    fn of(f: u8) -> Index {
        if f & flags::RST != 0 {
            Index::Rst
        } else if f & flags::SYN != 0 {
            if f & flags::ACK != 0 {
                Index::SynAck
            } else {
                Index::Syn
            }
        } else if f & flags::FIN != 0 {
            Index::Fin
        } else if f & flags::ACK != 0 {
            Index::Ack
        } else {
            Index::None
        }
    }

    fn from_u8(v: u8) -> Index {
        match v {
            0 => Index::Syn,
            1 => Index::SynAck,
            2 => Index::Fin,
            3 => Index::Ack,
            4 => Index::Rst,
            _ => Index::None,
        }
    }
}

/// The transition table: `[dir][index][state]`, states in `TcpState` order
/// (Linux's `tcp_conntracks`, one row per line as there).
#[rustfmt::skip]
const TABLE: [[[Next; 10]; 6]; 2] = {
    use Next::{Ig, Iv, To};
    use TcpState::{
        Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA,
        SynRecv as SR, SynSent as SS, SynSent2 as S2, TimeWait as TW,
    };
    [
        // Original direction. Columns: NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT
        // CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2.
        [
            /* syn    */ [To(SS), To(SS), Ig,     Ig,     Ig,     Ig,     Ig,     To(SS), To(SS), To(S2)],
            /* synack */ [Iv,     Iv,     To(SR), Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     To(SR)],
            /* fin    */ [Iv,     Iv,     To(FW), To(FW), To(LA), To(LA), To(LA), To(TW), To(CL), Iv],
            /* ack    */ [To(ES), Iv,     To(ES), To(ES), To(CW), To(CW), To(TW), To(TW), To(CL), Iv],
            /* rst    */ [Iv,     To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL)],
            /* none   */ [Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv],
        ],
        // Reply direction. Columns: NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT
        // CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2.
        [
            /* syn    */ [Iv,     To(S2), Iv,     Iv,     Iv,     Iv,     Iv,     To(SS), Iv,     To(S2)],
            /* synack */ [Iv,     To(SR), Ig,     Ig,     Ig,     Ig,     Ig,     Ig,     Ig,     To(SR)],
            /* fin    */ [Iv,     Iv,     To(FW), To(FW), To(LA), To(LA), To(LA), To(TW), To(CL), Iv],
            /* ack    */ [Iv,     Ig,     To(SR), To(ES), To(CW), To(CW), To(TW), To(TW), To(CL), Ig],
            /* rst    */ [Iv,     To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL), To(CL)],
            /* none   */ [Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv,     Iv],
        ],
    ]
};

/// Per-direction flags (`IP_CT_TCP_FLAG_*`).
mod pflag {
    pub const WINDOW_SCALE: u8 = 0x01;
    pub const SACK_PERM: u8 = 0x02;
    pub const CLOSE_INIT: u8 = 0x04;
    pub const BE_LIBERAL: u8 = 0x08;
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    pub const MAXACK_SET: u8 = 0x20;
}

/// Per-connection flags.
mod cflag {
    /// A packet in the reply direction passed (`IPS_SEEN_REPLY`).
    pub const SEEN_REPLY: u8 = 0x01;
    /// The handshake completed in order (`IPS_ASSURED`).
    pub const ASSURED: u8 = 0x02;
    /// Window scale option on the SYN we ignored.
    pub const LAST_WINDOW_SCALE: u8 = 0x04;
    /// SACK-permitted on the SYN we ignored.
    pub const LAST_SACK_PERM: u8 = 0x08;
    /// The ignored SYN came in LAST_ACK: the next ACK may be a challenge ACK.
    pub const EXP_CHALLENGE_ACK: u8 = 0x10;
    /// SYN seen from both sides (forgotten with a SYN ignored later, as in
    /// Linux's `last_flags`).
    pub const SIMULTANEOUS_OPEN: u8 = 0x20;
}

/// What the tracker knows of one direction (the sender of that direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// Highest sequence end sent (`td_end`).
    pub end: u32,
    /// Highest sequence end the other side's window allows (`td_maxend`).
    pub maxend: u32,
    /// Largest window seen, scaled (`td_maxwin`); 0 = nothing seen yet.
    pub maxwin: u32,
    /// Highest ack sent (`td_maxack`), valid with `MAXACK_SET`.
    pub maxack: u32,
    /// Window scale shift this side announced.
    pub scale: u8,
    /// `pflag` bits.
    pub flags: u8,
}

impl Peer {
    fn init_from_syn(&mut self, seg: &Segment) {
        *self = Peer {
            end: seg.end(),
            maxend: seg.end(),
            maxwin: u32::from(seg.window).max(1),
            ..Peer::default()
        };
        self.take_options(seg);
    }

    fn take_options(&mut self, seg: &Segment) {
        if let Some(s) = seg.wscale {
            self.scale = s.min(MAX_WSCALE);
            self.flags |= pflag::WINDOW_SCALE;
        }
        if seg.sack_permitted {
            self.flags |= pflag::SACK_PERM;
        }
    }
}

/// A TCP segment as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Window field as sent (unscaled).
    pub window: u16,
    /// Raw flags byte (see [`flags`]).
    pub flags: u8,
    /// Bytes of payload.
    pub payload_len: u32,
    /// Window scale option (SYNs only matter).
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// Highest right edge of the SACK blocks, if any.
    pub sack_right_edge: Option<u32>,
}

impl Segment {
    /// `seq + len + SYN + FIN`: the sequence number after this segment.
    pub fn end(&self) -> u32 {
        let syn_fin =
            u32::from(self.flags & flags::SYN != 0) + u32::from(self.flags & flags::FIN != 0);
        self.seq
            .wrapping_add(self.payload_len)
            .wrapping_add(syn_fin)
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Parses the fields the tracker uses from a TCP header and its length.
    pub fn from_packet<T: AsRef<[u8]>>(
        tcp: &crate::wire::TcpPacket<T>,
        payload_len: u32,
    ) -> Segment {
        use crate::wire::TcpOption;
        let mut seg = Segment {
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            window: tcp.window_len(),
            flags: tcp.flags().bits(),
            payload_len,
            ..Segment::default()
        };
        for opt in tcp.options_iter() {
            match opt {
                Ok(TcpOption::WindowScale(s)) => seg.wscale = Some(s),
                Ok(TcpOption::SackPermitted) => seg.sack_permitted = true,
                Ok(TcpOption::Sack(blocks)) => {
                    for (_, right) in blocks.iter().flatten() {
                        if seg.sack_right_edge.is_none_or(|e| after(*right, e)) {
                            seg.sack_right_edge = Some(*right);
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seg
    }
}

/// Why a segment was refused. Each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpInvalid {
    /// A flag combination no TCP sends (SYN+FIN, no flags, FIN without ACK, ...).
    BadFlags,
    /// No connection and not a SYN (no mid-stream pickup).
    NoConnection,
    /// The state machine has no transition for it.
    BadTransition,
    /// Sequence beyond the receiver's window (check I).
    SeqOverWindow,
    /// Ack for data never sent (check III).
    AckOverSent,
    /// RST with a sequence below the highest ack the peer sent.
    BadRst,
}

/// What to do with a segment of a tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpVerdict {
    /// Pass; the state was updated. Refresh the entry to `timeout` seconds,
    /// or leave its expiry alone when `None` (a retransmitted SYN).
    Accept {
        /// New lifetime of the entry, in seconds.
        timeout: Option<u32>,
    },
    /// Pass, change nothing (an old retransmission, a late ack, or a packet
    /// the tracker may be out of sync about).
    Ignore,
    /// Drop.
    Invalid(TcpInvalid),
    /// Pass, and delete the entry now: the connection was refused by a RST
    /// before anything came back.
    Close,
    /// Delete the entry and handle the segment again as if there were none
    /// (a SYN reopening a closed tuple creates a fresh entry; anything else
    /// is then invalid).
    Reopen,
}

/// Per-state timeouts in seconds (Linux's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimeouts {
    /// SYN_SENT and SYN_SENT2.
    pub syn_sent: u32,
    /// SYN_RECV.
    pub syn_recv: u32,
    /// ESTABLISHED.
    pub established: u32,
    /// FIN_WAIT.
    pub fin_wait: u32,
    /// CLOSE_WAIT.
    pub close_wait: u32,
    /// LAST_ACK.
    pub last_ack: u32,
    /// TIME_WAIT.
    pub time_wait: u32,
    /// CLOSE.
    pub close: u32,
    /// After repeated retransmissions or a zero window.
    pub retrans: u32,
    /// While data is unacknowledged.
    pub unacknowledged: u32,
    /// Identical retransmissions before `retrans` applies.
    pub max_retrans: u8,
}

impl Default for TcpTimeouts {
    fn default() -> Self {
        Self {
            syn_sent: 120,
            syn_recv: 60,
            established: 432_000,
            fin_wait: 120,
            close_wait: 60,
            last_ack: 30,
            time_wait: 120,
            close: 10,
            retrans: 300,
            unacknowledged: 300,
            max_retrans: 3,
        }
    }
}

impl TcpTimeouts {
    /// The timeout of a state.
    pub fn of(&self, s: TcpState) -> u32 {
        match s {
            TcpState::None | TcpState::SynSent | TcpState::SynSent2 => self.syn_sent,
            TcpState::SynRecv => self.syn_recv,
            TcpState::Established => self.established,
            TcpState::FinWait => self.fin_wait,
            TcpState::CloseWait => self.close_wait,
            TcpState::LastAck => self.last_ack,
            TcpState::TimeWait => self.time_wait,
            TcpState::Close => self.close,
        }
    }
}

/// Whether the flags are a combination a TCP sends (Linux's
/// `tcp_valid_flags`; PSH, ECE and CWR do not matter).
pub fn valid_flags(f: u8) -> bool {
    use flags::*;
    let f = f & !(PSH | ECE | CWR);
    matches!(
        f,
        x if x == SYN || x == SYN | URG || x == SYN | ACK || x == RST || x == RST | ACK
            || x == FIN | ACK || x == FIN | ACK | URG || x == ACK || x == ACK | URG
    )
}

/// The tracked state of one TCP connection: 60 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpConn {
    /// Per direction, indexed by [`Dir`].
    pub peers: [Peer; 2],
    state: TcpState,
    /// `cflag` bits.
    flags: u8,
    last_index: u8,
    last_dir: u8,
    last_wscale: u8,
    retrans: u8,
    last_win: u16,
    last_seq: u32,
    last_ack: u32,
    last_end: u32,
}

impl TcpConn {
    /// Opens a connection from a segment that found no entry, and tracks
    /// that segment (it is the first of the connection). Only a SYN opens
    /// one (`tcp_new` with `nf_conntrack_tcp_loose=0`). Returns the entry and
    /// its lifetime in seconds.
    pub fn new(seg: &Segment, timeouts: &TcpTimeouts) -> Result<(TcpConn, u32), TcpInvalid> {
        if !valid_flags(seg.flags) {
            return Err(TcpInvalid::BadFlags);
        }
        if Index::of(seg.flags) != Index::Syn {
            return Err(TcpInvalid::NoConnection);
        }
        let mut c = TcpConn {
            last_index: Index::None as u8,
            ..TcpConn::default()
        };
        c.peers[0].init_from_syn(seg);
        match c.track(Dir::Original, seg, timeouts) {
            TcpVerdict::Accept { timeout } => Ok((c, timeout.unwrap_or(timeouts.syn_sent))),
            TcpVerdict::Invalid(why) => Err(why),
            _ => Err(TcpInvalid::BadTransition),
        }
    }

    /// A connection installed from the partner's copy, trusting whatever
    /// sequence numbers come first in each direction until the windows are
    /// learnt again (the partner never has the very latest numbers).
    pub fn adopted(state: TcpState, peers: [Peer; 2]) -> TcpConn {
        let mut c = TcpConn {
            state,
            peers,
            flags: cflag::SEEN_REPLY | cflag::ASSURED,
            ..TcpConn::default()
        };
        for p in &mut c.peers {
            p.flags |= pflag::BE_LIBERAL;
        }
        c
    }

    /// Whether the connection is still learning its windows: adopted from the
    /// partner ([`TcpConn::adopted`]) and trusting whatever sequence numbers
    /// come, until both directions' windows are learnt and it is as strict
    /// as any other again.
    #[inline]
    pub fn learning(&self) -> bool {
        (self.peers[0].flags | self.peers[1].flags) & pflag::BE_LIBERAL != 0
    }

    /// What the partner needs of it: the state, the connection flags and
    /// both directions' windows.
    pub fn sync_view(&self) -> (TcpState, u8, [Peer; 2]) {
        (self.state, self.flags, self.peers)
    }

    /// A connection as the partner synchronised it: its state, connection
    /// flags and windows, nothing of its last packet (the partner's last
    /// packet is not this unit's).
    pub fn from_sync(state: TcpState, flags: u8, peers: [Peer; 2]) -> TcpConn {
        TcpConn {
            state,
            flags,
            peers,
            last_index: Index::None as u8,
            ..TcpConn::default()
        }
    }

    /// Takes the partner's newer state, connection flags and sequence edges
    /// (`(end, maxend)` per direction); the windows' other facts stay.
    pub fn apply_sync(&mut self, state: TcpState, flags: u8, edges: [(u32, u32); 2]) {
        self.state = state;
        self.flags = flags;
        for (p, (end, maxend)) in self.peers.iter_mut().zip(edges) {
            p.end = end;
            p.maxend = maxend;
        }
    }

    /// The current state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// Whether the handshake completed in order.
    pub fn assured(&self) -> bool {
        self.flags & cflag::ASSURED != 0
    }

    /// Whether anything passed in the reply direction.
    pub fn seen_reply(&self) -> bool {
        self.flags & cflag::SEEN_REPLY != 0
    }

    fn established(&self) -> bool {
        self.state == TcpState::Established && self.assured()
    }

    /// Tracks a segment of this connection in direction `dir`
    /// (`nf_conntrack_tcp_packet`).
    pub fn track(&mut self, dir: Dir, seg: &Segment, timeouts: &TcpTimeouts) -> TcpVerdict {
        if !valid_flags(seg.flags) {
            return TcpVerdict::Invalid(TcpInvalid::BadFlags);
        }
        let verdict = self.track_valid(dir, seg, timeouts);
        if dir == Dir::Reply && matches!(verdict, TcpVerdict::Accept { .. } | TcpVerdict::Ignore) {
            self.flags |= cflag::SEEN_REPLY;
        }
        verdict
    }

    fn track_valid(&mut self, dir: Dir, seg: &Segment, timeouts: &TcpTimeouts) -> TcpVerdict {
        let d = dir.idx();
        let old = self.state;
        let index = Index::of(seg.flags);
        let new = TABLE[d][index as usize][old as usize];

        match new {
            Next::To(TcpState::SynSent) | Next::Ig => {
                if new == Next::To(TcpState::SynSent) {
                    if old < TcpState::TimeWait {
                        return self.in_window(dir, index, old, TcpState::SynSent, seg, timeouts);
                    }
                    // RFC 1122 4.2.2.13: a new SYN may reopen a tuple in
                    // TIME_WAIT or CLOSE after an orderly close or a reset.
                    let closed =
                        (self.peers[0].flags | self.peers[1].flags) & pflag::CLOSE_INIT != 0;
                    if closed || (self.last_dir == dir as u8 && self.last_index == Index::Rst as u8)
                    {
                        return TcpVerdict::Reopen;
                    }
                }
                // Ignored: maybe the endpoints are in sync and we are not.
                if index == Index::SynAck
                    && self.last_from_other_side(dir, Index::Syn)
                    && seg.ack == self.last_end
                {
                    // This SYN/ACK answers a SYN we ignored: resynchronise on it.
                    let l = usize::from(self.last_dir);
                    let mut p = Peer {
                        end: self.last_end,
                        maxend: self.last_end,
                        maxwin: u32::from(self.last_win).max(1),
                        scale: self.last_wscale,
                        ..Peer::default()
                    };
                    if self.flags & cflag::LAST_WINDOW_SCALE != 0 {
                        p.flags |= pflag::WINDOW_SCALE;
                    }
                    if self.flags & cflag::LAST_SACK_PERM != 0 {
                        p.flags |= pflag::SACK_PERM;
                    }
                    self.peers[l] = p;
                    self.peers[d] = Peer::default();
                    self.flags &= !cflag::EXP_CHALLENGE_ACK;
                    return self.in_window(
                        dir,
                        index,
                        TcpState::SynSent,
                        TcpState::SynRecv,
                        seg,
                        timeouts,
                    );
                }
                self.last_index = index as u8;
                self.last_dir = dir as u8;
                self.last_seq = seg.seq;
                self.last_end = seg.end();
                self.last_win = seg.window;
                if index == Index::Syn && dir == Dir::Original {
                    // Linux keeps all four in `last_flags`, which this SYN
                    // resets: a simultaneous open is forgotten with it.
                    self.flags &= !(cflag::LAST_WINDOW_SCALE
                        | cflag::LAST_SACK_PERM
                        | cflag::EXP_CHALLENGE_ACK
                        | cflag::SIMULTANEOUS_OPEN);
                    self.last_wscale = 0;
                    if let Some(s) = seg.wscale {
                        self.flags |= cflag::LAST_WINDOW_SCALE;
                        self.last_wscale = s.min(MAX_WSCALE);
                    }
                    if seg.sack_permitted {
                        self.flags |= cflag::LAST_SACK_PERM;
                    }
                    if old == TcpState::LastAck {
                        self.flags |= cflag::EXP_CHALLENGE_ACK;
                    }
                }
                if old == TcpState::SynSent && index == Index::Ack && dir == Dir::Reply {
                    self.last_ack = seg.ack;
                }
                TcpVerdict::Ignore
            }
            Next::Iv => TcpVerdict::Invalid(TcpInvalid::BadTransition),
            Next::To(TcpState::TimeWait)
                if old == TcpState::LastAck
                    && index == Index::Ack
                    && self.last_from_other_side(dir, Index::Syn)
                    && self.flags & cflag::EXP_CHALLENGE_ACK != 0 =>
            {
                self.challenge_ack(dir, seg)
            }
            Next::To(TcpState::SynSent2) => {
                self.flags |= cflag::SIMULTANEOUS_OPEN;
                self.in_window(dir, index, old, TcpState::SynSent2, seg, timeouts)
            }
            Next::To(TcpState::SynRecv) => {
                // The table cannot express the end of a simultaneous open.
                let simultaneous = self.flags & cflag::SIMULTANEOUS_OPEN != 0;
                let n = if dir == Dir::Reply && index == Index::Ack && simultaneous {
                    TcpState::Established
                } else {
                    TcpState::SynRecv
                };
                self.in_window(dir, index, old, n, seg, timeouts)
            }
            Next::To(TcpState::Close) if index == Index::Rst => {
                self.track_rst(dir, old, seg, timeouts)
            }
            Next::To(n) => self.in_window(dir, index, old, n, seg, timeouts),
        }
    }

    /// Whether the last segment noted was of class `index` from the other
    /// side than `dir`. Only then can a segment in `dir` answer it: an answer
    /// travels the other way, and acks the sequence space of what it answers.
    fn last_from_other_side(&self, dir: Dir, index: Index) -> bool {
        self.last_index == index as u8 && self.last_dir != dir as u8
    }

    /// An ACK where an RFC 5961 (section 4) challenge ACK to a SYN ignored in
    /// LAST_ACK is expected: it passes without acking the last FIN (Linux's
    /// `TCP_CONNTRACK_TIME_WAIT` case). Stricter than Linux: the window checks
    /// apply, on a copy so that nothing of it is learnt; an ACK failing them
    /// is no challenge ACK, and the real one is still expected.
    fn challenge_ack(&mut self, dir: Dir, seg: &Segment) -> TcpVerdict {
        let mut probe = *self;
        if let Window::Invalid(why) = probe.check_window(dir, Index::Ack, seg) {
            return TcpVerdict::Invalid(why);
        }
        self.flags &= !cflag::EXP_CHALLENGE_ACK;
        TcpVerdict::Ignore
    }

    /// A RST the table lets close the connection (the `TCP_CONNTRACK_CLOSE`
    /// case of Linux 6.18's `nf_conntrack_tcp_packet`).
    fn track_rst(
        &mut self,
        dir: Dir,
        old: TcpState,
        seg: &Segment,
        timeouts: &TcpTimeouts,
    ) -> TcpVerdict {
        let close = TcpState::Close;
        if old.closing() {
            // Linux checks nothing here (`tcp_can_early_drop`); the window
            // still applies (stricter, item 1 above).
            return self.in_window(dir, Index::Rst, old, close, seg, timeouts);
        }
        let other = self.peers[dir.other().idx()];
        // After a SYN let through, the other side's highest ack says nothing
        // of a RST answering that SYN. Linux skips the check whichever side
        // sends the RST (stricter, item 2 above).
        if other.flags & pflag::MAXACK_SET != 0 && !self.last_from_other_side(dir, Index::Syn) {
            let new = if seg.seq == 0 && !self.established() {
                // Most likely answering a SYN let through, noted before
                // out-of-order ACKs: the window checks judge it.
                close
            } else if before(seg.seq, other.maxack) {
                return TcpVerdict::Invalid(TcpInvalid::BadRst);
            } else if self.established() && seg.seq != other.maxack && !self.rst_train(dir, seg.seq)
            {
                // In the window but not exactly where the peer expects it:
                // the state stays for the challenge ACK (RFC 5961 3.2).
                old
            } else {
                close
            };
            return self.in_window(dir, Index::Rst, old, new, seg, timeouts);
        }
        if self.answers_let_through(dir, old, seg) {
            // The window never saw what it answers (Linux's `goto in_window`).
            return self.commit(dir, Index::Rst, old, close, seg, timeouts);
        }
        self.in_window(dir, Index::Rst, old, close, seg, timeouts)
    }

    /// A RST right behind the last segment, an ACK from the same side
    /// (data, then a RST at its end).
    fn rst_train(&self, dir: Dir, seq: u32) -> bool {
        self.last_index == Index::Ack as u8 && self.last_dir == dir as u8 && seq == self.last_end
    }

    /// Whether a RST answers a segment let through untracked:
    ///
    /// * a SYN, once the reply side was seen: the RST acks its end;
    /// * an ACK before the connection is assured (a half-open connection):
    ///   the RST acks its end;
    /// * a challenge ACK to the originator's SYN in SYN_SENT: the RST's
    ///   sequence is that ACK's ack (Linux 6.2).
    ///
    /// Each answer comes from the other side; Linux checks that only of the
    /// first (the 6.18 stable fix): the other two are stricter (items 3 and
    /// 4 above).
    fn answers_let_through(&self, dir: Dir, old: TcpState, seg: &Segment) -> bool {
        let acks_last = seg.ack == self.last_end;
        let after_ack = self.last_from_other_side(dir, Index::Ack);
        (self.last_from_other_side(dir, Index::Syn) && self.seen_reply() && acks_last)
            || (after_ack && !self.assured() && acks_last)
            || (after_ack
                && old == TcpState::SynSent
                && dir == Dir::Original
                && seg.seq == self.last_ack)
    }

    /// The window checks, then the state change and the timeout.
    fn in_window(
        &mut self,
        dir: Dir,
        index: Index,
        old: TcpState,
        new: TcpState,
        seg: &Segment,
        timeouts: &TcpTimeouts,
    ) -> TcpVerdict {
        match self.check_window(dir, index, seg) {
            Window::Ok => {}
            Window::Ignore => return TcpVerdict::Ignore,
            Window::Invalid(why) => return TcpVerdict::Invalid(why),
        }
        self.commit(dir, index, old, new, seg, timeouts)
    }

    /// After the window checks passed (or were skipped): the state change
    /// and the timeout.
    fn commit(
        &mut self,
        dir: Dir,
        index: Index,
        old: TcpState,
        new: TcpState,
        seg: &Segment,
        timeouts: &TcpTimeouts,
    ) -> TcpVerdict {
        let d = dir.idx();
        self.last_index = index as u8;
        self.last_dir = dir as u8;
        self.state = new;
        if old != new && new == TcpState::FinWait {
            self.peers[d].flags |= pflag::CLOSE_INIT;
        }

        let unacked = (self.peers[0].flags | self.peers[1].flags) & pflag::DATA_UNACKNOWLEDGED != 0;
        let state_timeout = timeouts.of(new);
        let mut timeout =
            if self.retrans >= timeouts.max_retrans && state_timeout > timeouts.retrans {
                timeouts.retrans
            } else if index == Index::Rst {
                timeouts.close
            } else if unacked && state_timeout > timeouts.unacknowledged {
                timeouts.unacknowledged
            } else if self.last_win == 0 && state_timeout > timeouts.retrans {
                timeouts.retrans
            } else {
                state_timeout
            };

        // The reply direction of this very packet is not "seen" yet.
        if !self.seen_reply() {
            if seg.has(flags::RST) {
                return TcpVerdict::Close;
            }
            if index == Index::Syn && old == TcpState::SynSent {
                // A retransmitted SYN does not extend the entry's life.
                return TcpVerdict::Accept { timeout: None };
            }
            if new == TcpState::Established && timeout > timeouts.unacknowledged {
                timeout = timeouts.unacknowledged;
            }
        } else if !self.assured()
            && matches!(old, TcpState::SynRecv | TcpState::Established)
            && new == TcpState::Established
        {
            self.flags |= cflag::ASSURED;
        }
        TcpVerdict::Accept {
            timeout: Some(timeout),
        }
    }

    /// `tcp_in_window`.
    fn check_window(&mut self, dir: Dir, index: Index, seg: &Segment) -> Window {
        let (d, r) = (dir.idx(), dir.other().idx());
        let state = self.state;
        let mut seq = seg.seq;
        let mut ack = seg.ack;
        let mut sack = ack;
        let mut end = seg.end();
        let mut win = u32::from(seg.window);

        if self.peers[r].flags & pflag::SACK_PERM != 0 {
            if let Some(edge) = seg.sack_right_edge {
                if after(edge, sack) {
                    sack = edge;
                }
            }
        }

        let (sender, receiver) = pair(&mut self.peers, d);
        if sender.maxwin == 0 {
            if seg.has(flags::SYN) {
                // SYN/ACK answering the SYN, or the reply's SYN in a simultaneous open.
                sender.end = end;
                sender.maxend = end;
                sender.maxwin = win.max(1);
                sender.take_options(seg);
                if !(sender.flags & pflag::WINDOW_SCALE != 0
                    && receiver.flags & pflag::WINDOW_SCALE != 0)
                {
                    sender.scale = 0;
                    receiver.scale = 0;
                }
                if !seg.has(flags::ACK) {
                    return Window::Ok;
                }
            } else {
                // Mid-connection (only after adoption from the partner).
                sender.end = end;
                let swin = win << sender.scale;
                sender.maxwin = swin.max(1);
                sender.maxend = end.wrapping_add(sender.maxwin);
                if receiver.maxwin == 0 {
                    receiver.end = sack;
                    receiver.maxend = sack;
                } else if sack == receiver.end.wrapping_add(1) {
                    receiver.end = receiver.end.wrapping_add(1);
                }
            }
        } else if seg.has(flags::SYN)
            && after(end, sender.end)
            && matches!(state, TcpState::SynSent | TcpState::SynRecv)
        {
            // RFC 793: a reinitialised TCP may restart with a higher sequence.
            sender.end = end;
            sender.maxend = end;
            sender.maxwin = win.max(1);
            sender.take_options(seg);
        }

        if !seg.has(flags::ACK) {
            ack = receiver.end;
            sack = receiver.end;
        } else if seg.has(flags::RST) && ack == 0 {
            // Stacks that set ACK on a RST with a zero ack.
            ack = receiver.end;
            sack = receiver.end;
        }
        if seg.has(flags::RST) && seq == 0 && state == TcpState::SynSent {
            // RST answering a SYN.
            seq = sender.end;
            end = sender.end;
        }

        let liberal = (sender.flags | receiver.flags) & pflag::BE_LIBERAL != 0;
        let max_ack_window = sender.maxwin.max(MAX_ACK_WINDOW_CONST);
        let seq_ok = before(seq, sender.maxend.wrapping_add(1));
        if !seq_ok && !liberal {
            let overshot = end.wrapping_sub(sender.maxend).wrapping_add(1);
            let ack_ok = after(
                sack,
                receiver.end.wrapping_sub(max_ack_window).wrapping_sub(1),
            );
            let in_recv_win = receiver.maxwin != 0
                && after(
                    end,
                    sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
                );
            if in_recv_win
                && ack_ok
                && overshot <= receiver.maxwin
                && before(sack, receiver.end.wrapping_add(1))
            {
                // A few bytes more than the window allowed: let the receiver
                // decide, and count the bytes as sent, so that its ack of
                // them is not "beyond what was sent" (Linux 6.1+).
                sender.end = end;
                sender.flags |= pflag::DATA_UNACKNOWLEDGED;
                return Window::Ignore;
            }
            return Window::Invalid(TcpInvalid::SeqOverWindow);
        }
        if !before(sack, receiver.end.wrapping_add(1)) && !liberal {
            return Window::Invalid(TcpInvalid::AckOverSent);
        }
        let in_recv_win = receiver.maxwin == 0
            || after(
                end,
                sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
            );
        if !in_recv_win && !liberal {
            // Already acked data, retransmitted.
            return Window::Ignore;
        }
        if !after(
            sack,
            receiver.end.wrapping_sub(max_ack_window).wrapping_sub(1),
        ) && !liberal
        {
            // An overly delayed ack.
            return Window::Ignore;
        }

        if !seg.has(flags::SYN) {
            win <<= sender.scale;
        }
        let swin = win.wrapping_add(sack.wrapping_sub(ack));
        if sender.maxwin < swin {
            sender.maxwin = swin;
        }
        if after(end, sender.end) {
            sender.end = end;
            sender.flags |= pflag::DATA_UNACKNOWLEDGED;
        }
        // An entry still learning its windows (adopted at a takeover) takes
        // an ack as proof of what the other side sent: the partner's copy
        // lags, and the segments that carried those bytes went through the
        // partner. Without this, strict checking would resume with the other
        // side's end behind its peer's acks, and refuse them for good.
        if liberal && seg.has(flags::ACK) && after(sack, receiver.end) {
            receiver.end = sack;
        }
        if seg.has(flags::ACK) {
            if sender.flags & pflag::MAXACK_SET == 0 {
                sender.maxack = ack;
                sender.flags |= pflag::MAXACK_SET;
            } else if after(ack, sender.maxack) {
                sender.maxack = ack;
            }
        }
        if receiver.maxwin != 0 && after(end, sender.maxend) {
            receiver.maxwin = receiver
                .maxwin
                .wrapping_add(end.wrapping_sub(sender.maxend));
        }
        if after(sack.wrapping_add(win), receiver.maxend.wrapping_sub(1)) {
            receiver.maxend = sack.wrapping_add(win);
            if win == 0 {
                receiver.maxend = receiver.maxend.wrapping_add(1);
            }
        }
        if ack == receiver.end {
            receiver.flags &= !pflag::DATA_UNACKNOWLEDGED;
        }
        // An adopted entry is strict again once each side has sent an ACK
        // since the takeover: a side's segment teaches its own end (its
        // sequence) and the other's (its ack, above), so both ends are this
        // unit's own knowledge then, not the partner's lagging copy. A side
        // that is silent — a receiver whose window is closed, whose sender
        // only probes — keeps the entry learning until it speaks.
        if liberal && seg.has(flags::ACK) && sender.maxwin > 1 {
            sender.flags &= !pflag::BE_LIBERAL;
        }

        if index == Index::Ack {
            if self.last_dir == dir as u8
                && self.last_seq == seq
                && self.last_ack == ack
                && self.last_end == end
                && self.last_win == seg.window
            {
                self.retrans = self.retrans.saturating_add(1);
            } else {
                self.last_dir = dir as u8;
                self.last_seq = seq;
                self.last_ack = ack;
                self.last_end = end;
                self.last_win = seg.window;
                self.retrans = 0;
            }
        }
        Window::Ok
    }

    /// Whether a segment sent in `dir` with sequence number `seq` could have
    /// been sent on this connection: at most the highest sequence the
    /// receiver's window allowed, and at least one receiver window (one byte
    /// before the receiver spoke) below the highest sequence sent. pf's test
    /// of the TCP segment an ICMP error quotes (`pf_icmp_state_lookup`); an
    /// entry still learning its windows (adopted from the partner) passes.
    pub fn could_have_sent(&self, dir: Dir, seq: u32) -> bool {
        let (sender, receiver) = (&self.peers[dir.idx()], &self.peers[dir.other().idx()]);
        if (sender.flags | receiver.flags) & pflag::BE_LIBERAL != 0 {
            return true;
        }
        let lowest = sender.end.wrapping_sub(receiver.maxwin.max(1));
        !after(seq, sender.maxend) && !before(seq, lowest)
    }

    /// The flag class of the last segment that changed the state, for listings.
    pub fn last_flags_class(&self) -> &'static str {
        match Index::from_u8(self.last_index) {
            Index::Syn => "syn",
            Index::SynAck => "synack",
            Index::Fin => "fin",
            Index::Ack => "ack",
            Index::Rst => "rst",
            Index::None => "none",
        }
    }
}

/// Outcome of the window checks.
enum Window {
    Ok,
    Ignore,
    Invalid(TcpInvalid),
}

/// Both peers mutably, sender first.
fn pair(peers: &mut [Peer; 2], sender: usize) -> (&mut Peer, &mut Peer) {
    let [a, b] = peers;
    if sender == 0 {
        (a, b)
    } else {
        (b, a)
    }
}
