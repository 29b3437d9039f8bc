//! Runs a trace through tandem's tracker, `dataplane::conntrack::tcp`.
//!
//! The driver plays the connection table's part for one 4-tuple: no entry →
//! [`TcpConn::new`]; an entry → [`TcpConn::track`] with the direction
//! relative to the packet that created the entry (as Linux's original
//! direction); [`TcpVerdict::Close`] deletes the entry after passing the
//! packet; [`TcpVerdict::Reopen`] deletes it and handles the packet again as
//! if there were none (a SYN then opens a fresh entry, in its own
//! direction; anything else is dropped).

use std::fmt;

use dataplane::conntrack::tcp::{Dir, Segment, TcpConn, TcpState, TcpTimeouts, TcpVerdict};

use super::{Packet, Side, Trace, Verdict};

/// What tandem did with one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Pass or drop.
    pub verdict: Verdict,
    /// How tandem got there: `accept`, `ignore`, `new`, `reopen+new`,
    /// `invalid BadRst`, ...
    pub detail: String,
    /// The entry's state afterwards (`None`: no entry).
    pub state: Option<TcpState>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.verdict, self.detail)?;
        match self.state {
            Some(s) => write!(f, " -> {s})"),
            None => write!(f, " -> no entry)"),
        }
    }
}

/// The segment tandem's tracker sees for `p`.
pub fn segment(p: &Packet) -> Segment {
    Segment {
        seq: p.seq,
        ack: p.ack,
        window: p.window,
        flags: p.flags,
        payload_len: u32::from(p.len),
        wscale: p.wscale,
        sack_permitted: p.sack_permitted,
        sack_right_edge: p.sack.map(|(_, right)| right),
    }
}

/// The one entry of the trace's 4-tuple, and who sent the packet that
/// created it.
struct Entry {
    conn: TcpConn,
    origin: Side,
}

/// No entry for the tuple: only a SYN creates one.
fn open(p: &Packet, seg: &Segment, timeouts: &TcpTimeouts, how: &str) -> (Option<Entry>, Outcome) {
    match TcpConn::new(seg, timeouts) {
        Ok((conn, _lifetime)) => {
            let state = Some(conn.state());
            (
                Some(Entry {
                    conn,
                    origin: p.from,
                }),
                Outcome {
                    verdict: Verdict::Pass,
                    detail: how.to_string(),
                    state,
                },
            )
        }
        Err(why) => (
            None,
            Outcome {
                verdict: Verdict::Drop,
                detail: format!("{how}: {why:?}"),
                state: None,
            },
        ),
    }
}

/// One packet through the tuple's entry (or its absence).
fn step(
    entry: Option<Entry>,
    p: &Packet,
    seg: &Segment,
    timeouts: &TcpTimeouts,
) -> (Option<Entry>, Outcome) {
    let Some(mut e) = entry else {
        return open(p, seg, timeouts, "new");
    };
    let dir = if p.from == e.origin {
        Dir::Original
    } else {
        Dir::Reply
    };
    let (verdict, detail) = match e.conn.track(dir, seg, timeouts) {
        TcpVerdict::Accept { .. } => (Verdict::Pass, "accept".to_string()),
        TcpVerdict::Ignore => (Verdict::Pass, "ignore".to_string()),
        TcpVerdict::Invalid(why) => (Verdict::Drop, format!("invalid {why:?}")),
        TcpVerdict::Close => {
            let closed = Outcome {
                verdict: Verdict::Pass,
                detail: "close".to_string(),
                state: None,
            };
            return (None, closed);
        }
        TcpVerdict::Reopen => return open(p, seg, timeouts, "reopen+new"),
    };
    let state = Some(e.conn.state());
    (
        Some(e),
        Outcome {
            verdict,
            detail,
            state,
        },
    )
}

/// Tandem's verdict for every packet of `trace`, in order.
pub fn run(trace: &Trace) -> Vec<Outcome> {
    let timeouts = TcpTimeouts::default();
    let mut entry = None;
    trace
        .packets
        .iter()
        .map(|p| {
            let (next, outcome) = step(entry.take(), p, &segment(p), &timeouts);
            entry = next;
            outcome
        })
        .collect()
}

/// The segment tandem's parser reads from `tcp`, the bytes of a TCP header
/// and payload as they were put on the wire. The test checks it equals
/// [`segment`] of the trace's packet: both trackers then judged the same
/// segment.
pub fn parse_wire(tcp: &[u8]) -> Result<Segment, String> {
    let packet = dataplane::wire::TcpPacket::new_checked(tcp)
        .map_err(|e| format!("tandem's parser refuses the segment: {e:?}"))?;
    let payload_len = u32::try_from(packet.payload().len()).map_err(|e| e.to_string())?;
    Ok(Segment::from_packet(&packet, payload_len))
}
