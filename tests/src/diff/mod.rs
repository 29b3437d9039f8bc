//! Differential test of tandem's TCP tracker against Linux's own conntrack.
//!
//! The same TCP segments ([`traces`]) go through two trackers:
//!
//! * [`linux`]: a real Linux kernel in a namespace of its own, forwarding
//!   between two veth links, with `nf_conntrack_tcp_loose=0`,
//!   `nf_conntrack_tcp_be_liberal=0` and an nftables rule that drops
//!   `ct state invalid` and accepts everything else. A segment is *pass* when
//!   it comes out on the far side, *drop* when conntrack counted it invalid.
//! * [`tandem`]: `dataplane::conntrack::tcp::TcpConn`, driven in-process
//!   with the same segments.
//!
//! The verdicts are compared packet by packet ([`Report`]). A trace also
//! says which verdict Linux is expected to give ([`Packet::expect`]) and
//! why; that guards the harness itself (a bare ACK must be dropped, a
//! handshake must pass), and the reasons are the review notes of the test.
//!
//! # Deliberate differences
//!
//! Where tandem and Linux disagree on purpose, the difference is listed in
//! [`DELIBERATE`] (trace, packet number, the item, the reason) and printed,
//! not failed. An entry whose difference no longer shows up fails the test,
//! so the list stays true.
//!
//! Every one is a place where tandem is stricter than Linux (Linux passes,
//! tandem drops), never laxer: the items of the list "Deliberately stricter
//! than Linux" in the docs of `dataplane::conntrack::tcp`, which says why.
//! [`DELIBERATE`] names the item each packet shows, and a unit test checks
//! that the two lists are the same. Elsewhere tandem's tracker copies Linux
//! 6.18's state table, window checks and special cases, so any other
//! difference is a bug on one side.

pub mod linux;
pub mod tandem;
pub mod traces;

use std::fmt::{self, Write as _};

use serde::Serialize;

pub use traces::all as all_traces;

/// TCP flag bits, as on the wire.
pub mod flags {
    pub use dataplane::conntrack::tcp::flags::*;
}

/// Which end of the connection sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// C, 198.18.10.2, behind the firewall's `a` side.
    Client,
    /// S, 198.18.20.2, behind the firewall's `b` side.
    Server,
}

/// What a tracker did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forwarded.
    Pass,
    /// Dropped as invalid.
    Drop,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Drop => "drop",
        })
    }
}

/// One TCP segment of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    /// Who sends it.
    pub from: Side,
    /// Raw flags byte (see [`flags`]).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 when the ACK flag is off).
    pub ack: u32,
    /// Window field, unscaled, as sent.
    pub window: u16,
    /// Bytes of payload.
    pub len: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// One SACK block `(left, right)`.
    pub sack: Option<(u32, u32)>,
    /// The verdict Linux should give, when the trace says.
    pub expect: Option<Verdict>,
    /// Why (in Linux's terms): the review note of this packet.
    pub why: &'static str,
}

/// A sequence of segments of one connection (one 4-tuple).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// Unique, snake_case.
    pub name: &'static str,
    /// What it covers.
    pub about: &'static str,
    /// C's port (unique per trace).
    pub client_port: u16,
    /// S's port.
    pub server_port: u16,
    /// C's initial sequence number: summaries print C's sequence numbers
    /// relative to it (`c+1`).
    pub isn_c: u32,
    /// S's initial sequence number (`s+1`).
    pub isn_s: u32,
    /// The segments, in order.
    pub packets: Vec<Packet>,
}

/// `name` of each flag bit, in tcpdump's order of importance.
const FLAG_NAMES: [(u8, &str); 8] = [
    (flags::SYN, "SYN"),
    (flags::FIN, "FIN"),
    (flags::RST, "RST"),
    (flags::PSH, "PSH"),
    (flags::ACK, "ACK"),
    (flags::URG, "URG"),
    (flags::ECE, "ECE"),
    (flags::CWR, "CWR"),
];

/// `SYN|ACK`, or `NULL` for no flags.
pub fn flag_names(f: u8) -> String {
    if f == 0 {
        return "NULL".to_string();
    }
    FLAG_NAMES
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join("|")
}

/// `n` relative to `base`, as `c+12` or `c-3`.
fn rel(prefix: char, n: u32, base: u32) -> String {
    // In sequence space: up to 2^31 ahead reads as `+`, the rest as `-`.
    // Zero is zero (a RST answering a SYN carries seq 0).
    if n == 0 {
        return "0".to_string();
    }
    let d = n.wrapping_sub(base);
    if d < 0x8000_0000 {
        format!("{prefix}+{d}")
    } else {
        format!("{prefix}-{}", d.wrapping_neg())
    }
}

impl Trace {
    /// One line per packet: `C>S SYN seq=c+0 win=64240 [mss 1460, ws 7, sackOK]`.
    pub fn summary(&self, p: &Packet) -> String {
        let (arrow, own, own_base, peer, peer_base) = match p.from {
            Side::Client => ("C>S", 'c', self.isn_c, 's', self.isn_s),
            Side::Server => ("S>C", 's', self.isn_s, 'c', self.isn_c),
        };
        let mut out = format!(
            "{arrow} {} seq={}",
            flag_names(p.flags),
            rel(own, p.seq, own_base)
        );
        if p.flags & flags::ACK != 0 || p.ack != 0 {
            let _ = write!(out, " ack={}", rel(peer, p.ack, peer_base));
        }
        let _ = write!(out, " win={}", p.window);
        if p.len > 0 {
            let _ = write!(out, " len={}", p.len);
        }
        let mut opts = Vec::new();
        if let Some(m) = p.mss {
            opts.push(format!("mss {m}"));
        }
        if let Some(w) = p.wscale {
            opts.push(format!("ws {w}"));
        }
        if p.sack_permitted {
            opts.push("sackOK".to_string());
        }
        if let Some((l, r)) = p.sack {
            opts.push(format!(
                "sack {}..{}",
                rel(peer, l, peer_base),
                rel(peer, r, peer_base)
            ));
        }
        if !opts.is_empty() {
            let _ = write!(out, " [{}]", opts.join(", "));
        }
        out
    }
}

/// A difference between Linux and tandem that is there on purpose.
#[derive(Debug, Clone, Copy)]
pub struct Deliberate {
    /// The trace.
    pub trace: &'static str,
    /// The packet, numbered from 1 as in the report.
    pub packet: usize,
    /// What Linux does.
    pub linux: Verdict,
    /// What tandem does.
    pub tandem: Verdict,
    /// The item of "Deliberately stricter than Linux" in the tracker's docs
    /// (its title, from [`stricter`]).
    pub item: &'static str,
    /// What this packet shows of it.
    pub reason: &'static str,
}

/// The titles of the items of "Deliberately stricter than Linux" in the
/// docs of `dataplane::conntrack::tcp`, word for word.
pub mod stricter {
    /// Item 1.
    pub const RST_WHILE_CLOSING: &str = "A RST in a closing state must be in the window.";
    /// Item 2.
    pub const RST_AFTER_OWN_SYN: &str =
        "After an ignored SYN, a RST from its sender is still checked against the highest ack.";
    /// Item 3.
    pub const RST_ANSWERING_ACK: &str =
        "A RST answering an ACK of a half-open connection comes from the other side.";
    /// Item 4.
    pub const RST_ANSWERING_CHALLENGE_ACK: &str =
        "A RST answering a challenge ACK in SYN_SENT comes from the originator.";
    /// Item 5.
    pub const CHALLENGE_ACK_IN_WINDOW: &str =
        "A challenge ACK in LAST_ACK must pass the window checks.";
}

/// Every deliberate difference (see the module docs).
pub const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        trace: "rst_far_ahead_while_closing",
        packet: 5,
        linux: Verdict::Pass,
        tandem: Verdict::Drop,
        item: stricter::RST_WHILE_CLOSING,
        reason: "a RST without ACK 10 MB beyond the window in FIN_WAIT: Linux checks nothing (tcp_can_early_drop), tandem finds it beyond the window (I)",
    },
    Deliberate {
        trace: "rst_from_the_syns_sender_below_highest_ack",
        packet: 7,
        linux: Verdict::Pass,
        tandem: Verdict::Drop,
        item: stricter::RST_AFTER_OWN_SYN,
        reason: "C's RST right after C's own ignored SYN, below S's highest ack: Linux skips that check after any ignored SYN, tandem calls it an old RST",
    },
    Deliberate {
        trace: "rst_acking_its_own_ack_in_syn_recv",
        packet: 4,
        linux: Verdict::Pass,
        tandem: Verdict::Drop,
        item: stricter::RST_ANSWERING_ACK,
        reason: "S's RST acking the end of S's own ACK in SYN_RECV: Linux skips the window checks, tandem finds it 10 MB beyond the window (I)",
    },
    Deliberate {
        trace: "challenge_ack_in_syn_sent_rst_from_the_server",
        packet: 10,
        linux: Verdict::Pass,
        tandem: Verdict::Drop,
        item: stricter::RST_ANSWERING_CHALLENGE_ACK,
        reason: "S's RST whose seq is the ack of S's own challenge ACK: Linux skips the window checks, tandem finds it acking beyond C's SYN (III)",
    },
    Deliberate {
        trace: "last_ack_challenge_ack_acking_unsent_data",
        packet: 7,
        linux: Verdict::Pass,
        tandem: Verdict::Drop,
        item: stricter::CHALLENGE_ACK_IN_WINDOW,
        reason: "the ACK expected as a challenge ACK acks 100000 bytes C never sent: Linux passes it unchecked, tandem's window check drops it (III)",
    },
];

/// One packet's outcome on both sides.
#[derive(Debug, Clone)]
pub struct Row {
    /// The trace's name.
    pub trace: &'static str,
    /// Numbered from 1.
    pub packet: usize,
    /// [`Trace::summary`].
    pub summary: String,
    /// What the trace expects of Linux.
    pub expect: Option<Verdict>,
    /// Why, according to the trace.
    pub why: &'static str,
    /// What Linux did.
    pub linux: Verdict,
    /// What tandem did.
    pub tandem: tandem::Outcome,
}

impl Row {
    fn deliberate(&self) -> Option<&'static Deliberate> {
        DELIBERATE
            .iter()
            .find(|d| d.trace == self.trace && d.packet == self.packet)
    }
}

/// The comparison of every trace.
#[derive(Debug, Default)]
pub struct Report {
    /// Traces compared.
    pub traces: usize,
    /// Every packet of every trace.
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds one trace's results (`linux` and `tandem` in packet order).
    pub fn add(&mut self, trace: &Trace, linux: &[Verdict], tandem: &[tandem::Outcome]) {
        assert_eq!(linux.len(), trace.packets.len(), "linux verdicts");
        assert_eq!(tandem.len(), trace.packets.len(), "tandem verdicts");
        self.traces += 1;
        for (i, p) in trace.packets.iter().enumerate() {
            self.rows.push(Row {
                trace: trace.name,
                packet: i + 1,
                summary: trace.summary(p),
                expect: p.expect,
                why: p.why,
                linux: linux[i],
                tandem: tandem[i].clone(),
            });
        }
    }

    /// Packets where tandem and Linux differ and no [`DELIBERATE`] entry
    /// says why.
    pub fn mismatches(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.linux != r.tandem.verdict && r.deliberate().is_none())
            .collect()
    }

    /// Packets that differ as documented, with their entry.
    pub fn documented(&self) -> Vec<(&Row, &'static Deliberate)> {
        self.rows
            .iter()
            .filter_map(|r| {
                let d = r.deliberate()?;
                (r.linux == d.linux && r.tandem.verdict == d.tandem).then_some((r, d))
            })
            .collect()
    }

    /// [`DELIBERATE`] entries that did not happen as written (no such
    /// packet, or the verdicts are not the documented ones).
    pub fn stale(&self) -> Vec<&'static Deliberate> {
        let seen = self.documented();
        DELIBERATE
            .iter()
            .filter(|d| !seen.iter().any(|(_, s)| std::ptr::eq(*s, *d)))
            .collect()
    }

    /// Packets where Linux did not give the verdict the trace expects: the
    /// harness (or the trace) is wrong.
    pub fn unexpected_linux(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.expect.is_some_and(|e| e != r.linux))
            .collect()
    }

    /// Packets where both agree.
    pub fn identical(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.linux == r.tandem.verdict)
            .count()
    }

    /// No undocumented difference, no stale entry, Linux as expected.
    pub fn ok(&self) -> bool {
        self.mismatches().is_empty()
            && self.stale().is_empty()
            && self.unexpected_linux().is_empty()
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} traces, {} packets: {} identical, {} documented differences, {} undocumented differences, {} stale documented differences, {} unexpected Linux verdicts",
            self.traces,
            self.rows.len(),
            self.identical(),
            self.documented().len(),
            self.mismatches().len(),
            self.stale().len(),
            self.unexpected_linux().len(),
        )
    }

    /// Every packet, for people reading a run (`--nocapture`).
    pub fn full_table(&self) -> String {
        table(self.rows.iter())
    }
}

fn table<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let mut out = format!(
        "{:<38} {:>3}  {:<62} {:<6} {:<5} {}\n",
        "trace", "#", "segment", "expect", "linux", "tandem"
    );
    for r in rows {
        let mark = if r.linux != r.tandem.verdict {
            "  <-- differs"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<38} {:>3}  {:<62} {:<6} {:<5} {}{mark}",
            r.trace,
            r.packet,
            r.summary,
            r.expect.map_or("-".to_string(), |v| v.to_string()),
            r.linux,
            r.tandem,
        );
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        let mismatches = self.mismatches();
        if !mismatches.is_empty() {
            writeln!(
                f,
                "\nUNDOCUMENTED DIFFERENCES (fix tandem, or list the difference in tandem_tests::diff::DELIBERATE with the reason):"
            )?;
            write!(f, "{}", table(mismatches.iter().copied()))?;
            for r in &mismatches {
                writeln!(f, "  {} #{}: the trace says: {}", r.trace, r.packet, r.why)?;
            }
        }
        let unexpected = self.unexpected_linux();
        if !unexpected.is_empty() {
            writeln!(
                f,
                "\nLINUX DID NOT DO WHAT THE TRACE EXPECTS (the harness or the trace is wrong):"
            )?;
            write!(f, "{}", table(unexpected.iter().copied()))?;
            for r in &unexpected {
                writeln!(f, "  {} #{}: the trace says: {}", r.trace, r.packet, r.why)?;
            }
        }
        let stale = self.stale();
        if !stale.is_empty() {
            writeln!(
                f,
                "\nSTALE DELIBERATE DIFFERENCES (listed, but not seen as listed; remove or correct them):"
            )?;
            for d in stale {
                writeln!(
                    f,
                    "  {} #{}: linux {}, tandem {}: {} ({})",
                    d.trace, d.packet, d.linux, d.tandem, d.item, d.reason
                )?;
            }
        }
        let documented = self.documented();
        if !documented.is_empty() {
            writeln!(f, "\nDocumented differences:")?;
            for (r, d) in documented {
                writeln!(
                    f,
                    "  {} #{} {}: linux {}, tandem {}: {} ({})",
                    r.trace, r.packet, r.summary, d.linux, d.tandem, d.item, d.reason
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_read_like_tcpdump() {
        assert_eq!(flag_names(flags::SYN | flags::ACK), "SYN|ACK");
        assert_eq!(flag_names(0), "NULL");
        assert_eq!(
            flag_names(flags::FIN | flags::PSH | flags::URG),
            "FIN|PSH|URG"
        );
    }

    /// The bold titles of the items under "Deliberately stricter than Linux"
    /// in the tracker's module docs.
    fn documented_stricter_items() -> Vec<String> {
        let src = include_str!("../../../dataplane/src/conntrack/tcp.rs");
        let docs: Vec<&str> = src
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(str::trim)
            .collect();
        let start = docs
            .iter()
            .position(|l| *l == "# Deliberately stricter than Linux")
            .expect("the tracker's docs have the heading \"Deliberately stricter than Linux\"");
        let section = docs[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        section
            .split("**")
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn deliberate_differences_are_the_documented_list_and_only_stricter() {
        let items = documented_stricter_items();
        assert!(!items.is_empty(), "the documented list is empty");
        for d in DELIBERATE {
            assert_eq!(
                (d.linux, d.tandem),
                (Verdict::Pass, Verdict::Drop),
                "{} #{}: tandem may only be stricter than Linux",
                d.trace,
                d.packet
            );
            assert!(
                items.iter().any(|i| i == d.item),
                "{} #{}: {:?} is not an item of the list in dataplane/src/conntrack/tcp.rs: {items:#?}",
                d.trace,
                d.packet,
                d.item
            );
        }
        for i in &items {
            assert!(
                DELIBERATE.iter().any(|d| d.item == i),
                "{i:?} is documented, but no DELIBERATE entry shows it"
            );
        }
    }

    #[test]
    fn relative_numbers_wrap() {
        assert_eq!(rel('c', 5, 2), "c+3");
        assert_eq!(rel('c', 2, 5), "c-3");
        assert_eq!(rel('s', 10, 0xFFFF_FFF0), "s+26");
    }
}
