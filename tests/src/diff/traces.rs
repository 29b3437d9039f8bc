//! The traces: TCP segments between C (198.18.10.2) and S (198.18.20.2),
//! each with the verdict Linux conntrack (6.x, `nf_conntrack_tcp_loose=0`,
//! `be_liberal=0`) gives it and why.
//!
//! Sequence numbers are written relative to the initial ones: C starts at
//! [`C0`], S at [`S0`] (above 2^31, so signed comparisons get exercised).
//! Unless a trace says otherwise, the handshake offers MSS 1460, SACK and
//! window scale 7 on both sides, and later segments carry window 502
//! (64256 bytes once scaled). After [`handshake`]:
//!
//! ```text
//!            end (highest seq sent)   maxend (right edge the peer allows)   maxwin
//!   C        c+1                      c+1+65160  (S's SYN/ACK window: never scaled)  64256
//!   S        s+1                      s+1+64256  (C's ACK: 502 << 7)                 65160
//! ```
//!
//! Linux's checks (`tcp_in_window`), in the terms used by the notes:
//! I `seq <= sender.maxend`, II `end > sender.end - receiver.maxwin`,
//! III `ack <= receiver.end`, IV `ack > receiver.end - max(66000, sender.maxwin)`.
//! Failing I (by more than the receiver's max window) or III is invalid;
//! failing II or IV is "ignored": the packet passes and changes nothing.

use super::flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use super::{Packet, Side, Trace, Verdict};

/// C's initial sequence number.
pub const C0: u32 = 1_000_000_000;
/// S's initial sequence number.
pub const S0: u32 = 3_000_000_000;
/// C's first client port; trace `i` uses `FIRST_CLIENT_PORT + i`.
pub const FIRST_CLIENT_PORT: u16 = 40_000;
/// S's port.
pub const SERVER_PORT: u16 = 80;

/// The window of segments that do not say otherwise.
const WIN: u16 = 502;
/// S's window in its SYN/ACK.
const S_SYN_WIN: u16 = 65160;
/// C's right edge after the handshake: S's SYN/ACK window, unscaled.
const C_EDGE: u32 = C0 + 1 + S_SYN_WIN as u32;

const PA: u8 = PSH | ACK;
const SA: u8 = SYN | ACK;
const FA: u8 = FIN | ACK;
const RA: u8 = RST | ACK;

fn seg(from: Side, flags: u8, seq: u32, ack: u32) -> Packet {
    Packet {
        from,
        flags,
        seq,
        ack,
        window: WIN,
        len: 0,
        mss: None,
        wscale: None,
        sack_permitted: false,
        sack: None,
        expect: None,
        why: "",
    }
}

/// A segment from C.
fn c(flags: u8, seq: u32, ack: u32) -> Packet {
    seg(Side::Client, flags, seq, ack)
}

/// A segment from S.
fn s(flags: u8, seq: u32, ack: u32) -> Packet {
    seg(Side::Server, flags, seq, ack)
}

impl Packet {
    fn len(mut self, n: u16) -> Packet {
        self.len = n;
        self
    }

    fn win(mut self, w: u16) -> Packet {
        self.window = w;
        self
    }

    /// The options of a SYN: MSS 1460, and these.
    fn opts(mut self, wscale: Option<u8>, sack_permitted: bool) -> Packet {
        self.mss = Some(1460);
        self.wscale = wscale;
        self.sack_permitted = sack_permitted;
        self
    }

    fn sack(mut self, left: u32, right: u32) -> Packet {
        self.sack = Some((left, right));
        self
    }

    fn passes(mut self, why: &'static str) -> Packet {
        self.expect = Some(Verdict::Pass);
        self.why = why;
        self
    }

    fn dropped(mut self, why: &'static str) -> Packet {
        self.expect = Some(Verdict::Drop);
        self.why = why;
        self
    }
}

/// How a handshake opens.
#[derive(Debug, Clone, Copy)]
struct Open {
    c: u32,
    s: u32,
    c_ws: Option<u8>,
    s_ws: Option<u8>,
    sack_ok: bool,
    s_win: u16,
}

/// The usual handshake: both sides offer window scale 7 and SACK.
const OPEN: Open = Open {
    c: C0,
    s: S0,
    c_ws: Some(7),
    s_ws: Some(7),
    sack_ok: true,
    s_win: S_SYN_WIN,
};

/// SYN, SYN/ACK, ACK.
fn handshake(o: Open) -> Vec<Packet> {
    vec![
        c(SYN, o.c, 0)
            .win(64240)
            .opts(o.c_ws, o.sack_ok)
            .passes("a SYN opens a connection (SYN_SENT)"),
        s(SA, o.s, o.c.wrapping_add(1))
            .win(o.s_win)
            .opts(o.s_ws, o.sack_ok)
            .passes("the SYN/ACK answers it (SYN_RECV)"),
        c(ACK, o.c.wrapping_add(1), o.s.wrapping_add(1))
            .passes("the ACK completes the handshake (ESTABLISHED)"),
    ]
}

/// C's FIN, S's FIN, C's last ACK: TIME_WAIT, right after the handshake.
fn close_after_handshake() -> Vec<Packet> {
    vec![
        c(FA, C0 + 1, S0 + 1).passes("C closes (FIN_WAIT)"),
        s(FA, S0 + 1, C0 + 2).passes("S acks C's FIN and closes too (LAST_ACK)"),
        c(ACK, C0 + 2, S0 + 2).passes("the last ACK (TIME_WAIT)"),
    ]
}

fn trace(name: &'static str, about: &'static str, parts: &[Vec<Packet>]) -> Trace {
    Trace {
        name,
        about,
        client_port: 0,
        server_port: SERVER_PORT,
        isn_c: C0,
        isn_s: S0,
        packets: parts.concat(),
    }
}

/// Every trace, each with its own client port.
pub fn all() -> Vec<Trace> {
    let mut traces = vec![
        close_client_first(),
        close_server_first(),
        close_simultaneous(),
        close_by_rst(),
        rst_in_window_not_exact(),
        rst_after_unacked_data(),
        rst_far_ahead_of_window(),
        rst_far_behind_window(),
        syn_retransmit(),
        synack_retransmit(),
        simultaneous_open(),
        reopen_time_wait_by_client(),
        reopen_time_wait_by_server(),
        no_connection(),
        data_far_beyond_window(),
        data_across_right_edge(),
        data_just_past_right_edge(),
        ack_beyond_sent(),
        ack_far_below(),
        window_scale_in_use(),
        window_scale_not_negotiated(),
        window_scale_offered_by_client_only(),
        synack_window_never_scaled(),
        invalid_flags_established(),
        invalid_flags_without_connection(),
        syn_with_ecn_and_urg(),
        retransmission_within_window(),
        very_old_segment(),
        zero_window_probe(),
        sequence_wraparound(),
        syn_in_established_challenge_ack(),
        syn_in_established_resync(),
        syn_in_established_answered_by_rst(),
        server_syn_in_established(),
        ack_before_synack(),
        syn_refused_by_rst(),
        synack_acks_wrong_sequence(),
        sack_blocks(),
        sack_without_permission(),
        data_after_fin(),
        rst_from_the_syns_sender(),
        rst_from_the_syns_sender_below_highest_ack(),
        rst_with_seq_zero_in_syn_recv(),
        rst_acking_the_servers_ack_in_syn_recv(),
        rst_acking_its_own_ack_in_syn_recv(),
        rst_answering_an_ignored_ack_in_syn_sent(),
        challenge_ack_in_syn_sent_answered_by_rst(),
        challenge_ack_in_syn_sent_rst_from_the_server(),
        rst_train_interrupted(),
        rst_far_ahead_while_closing(),
        last_ack_challenge_ack(),
        last_ack_challenge_ack_acking_unsent_data(),
        resync_synack_with_the_wrong_ack(),
        resync_synack_from_the_syns_sender(),
        syn_after_the_peers_rst_resynchronises(),
        simultaneous_open_syn_again_in_syn_recv(),
    ];
    for (i, t) in traces.iter_mut().enumerate() {
        let i = u16::try_from(i).expect("fewer than 2^16 traces");
        t.client_port = FIRST_CLIENT_PORT + i;
    }
    traces
}

fn close_client_first() -> Trace {
    trace(
        "close_client_first",
        "handshake, data both ways, C closes first",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                s(PA, S0 + 1, C0 + 101).len(200).passes("data S->C"),
                c(ACK, C0 + 101, S0 + 201).passes("C acks it"),
                c(FA, C0 + 101, S0 + 201).passes("C's FIN (FIN_WAIT)"),
                s(ACK, S0 + 201, C0 + 102).passes("S acks the FIN (CLOSE_WAIT)"),
                s(FA, S0 + 201, C0 + 102).passes("S's FIN (LAST_ACK)"),
                c(ACK, C0 + 102, S0 + 202).passes("the last ACK (TIME_WAIT)"),
            ],
        ],
    )
}

fn close_server_first() -> Trace {
    trace(
        "close_server_first",
        "handshake, data both ways, S closes first",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
                s(PA, S0 + 1, C0 + 101)
                    .len(300)
                    .passes("S acks and answers"),
                c(ACK, C0 + 101, S0 + 301).passes("C acks"),
                s(FA, S0 + 301, C0 + 101).passes("S's FIN (FIN_WAIT)"),
                c(ACK, C0 + 101, S0 + 302).passes("C acks the FIN (CLOSE_WAIT)"),
                c(FA, C0 + 101, S0 + 302).passes("C's FIN (LAST_ACK)"),
                s(ACK, S0 + 302, C0 + 102).passes("the last ACK (TIME_WAIT)"),
            ],
        ],
    )
}

fn close_simultaneous() -> Trace {
    trace(
        "close_simultaneous",
        "both FINs cross on the wire",
        &[
            handshake(OPEN),
            vec![
                c(FA, C0 + 1, S0 + 1).passes("C's FIN (FIN_WAIT)"),
                s(FA, S0 + 1, C0 + 1).passes("S's FIN, not acking C's (LAST_ACK)"),
                c(ACK, C0 + 2, S0 + 2).passes("C acks S's FIN (TIME_WAIT)"),
                s(ACK, S0 + 2, C0 + 2).passes("S acks C's FIN (TIME_WAIT)"),
            ],
        ],
    )
}

fn close_by_rst() -> Trace {
    trace(
        "close_by_rst",
        "S resets an established connection at the exact sequence; C's data after it",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                s(RA, S0 + 1, C0 + 101).passes("RST at exactly the highest ack C sent (CLOSE)"),
                c(PA, C0 + 101, S0 + 1)
                    .len(50)
                    .passes("CLOSE keeps the entry for 10 s; in-window data still passes"),
            ],
        ],
    )
}

fn rst_in_window_not_exact() -> Trace {
    trace(
        "rst_in_window_not_exact",
        "RST inside the window but not at the expected sequence (RFC 5961)",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                c(RST, C0 + 1101, 0)
                    .passes("in-window RST, seq != what S acked: passes, state stays ESTABLISHED"),
                s(ACK, S0 + 1, C0 + 101).passes("S's challenge ACK"),
                c(RST, C0 + 101, 0).passes("RST at the acked sequence (CLOSE)"),
            ],
        ],
    )
}

fn rst_after_unacked_data() -> Trace {
    trace(
        "rst_after_unacked_data",
        "abortive close: RST right behind data that is not acked yet",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
                c(RA, C0 + 101, S0 + 1)
                    .passes("RST continuing the data C just sent (a 'RST train'): CLOSE"),
            ],
        ],
    )
}

fn rst_far_ahead_of_window() -> Trace {
    trace(
        "rst_far_ahead_of_window",
        "RST without ACK far beyond the window, in ESTABLISHED: the issue's example, which Linux 6.18 drops too (it passes only in a closing state: rst_far_ahead_while_closing)",
        &[
            handshake(OPEN),
            vec![
                c(RST, C0 + 10_000_001, 0)
                    .dropped("RST beyond the right edge by far more than S's window (I)"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("the connection lives on"),
            ],
        ],
    )
}

fn rst_far_behind_window() -> Trace {
    trace(
        "rst_far_behind_window",
        "RST with a sequence below what the peer already acked",
        &[
            handshake(OPEN),
            vec![
                c(RST, C0 - 1_000_000, 0)
                    .dropped("RST seq below the highest ack S sent: 'invalid rst'"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("the connection lives on"),
            ],
        ],
    )
}

fn syn_retransmit() -> Trace {
    let mut hs = handshake(OPEN);
    let syn = hs[0]
        .clone()
        .passes("the same SYN again: SYN_SENT -> SYN_SENT");
    hs.insert(1, syn);
    trace(
        "syn_retransmit",
        "the SYN is sent twice",
        &[hs, vec![c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S")]],
    )
}

fn synack_retransmit() -> Trace {
    let hs = handshake(OPEN);
    let synack = hs[1].clone();
    trace(
        "synack_retransmit",
        "the SYN/ACK is sent again before and after the handshake completes",
        &[
            hs[..2].to_vec(),
            vec![
                synack
                    .clone()
                    .passes("SYN/ACK again in SYN_RECV: ignored (passes, no change)"),
                hs[2].clone(),
                synack.passes("a late SYN/ACK in ESTABLISHED: ignored"),
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
            ],
        ],
    )
}

fn simultaneous_open() -> Trace {
    trace(
        "simultaneous_open",
        "both sides send a SYN (RFC 793 simultaneous open)",
        &[vec![
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN (SYN_SENT)"),
            s(SYN, S0, 0)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("S's SYN crosses it (SYN_SENT2)"),
            c(SA, C0, S0 + 1)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN/ACK (SYN_RECV)"),
            s(SA, S0, C0 + 1)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("S's SYN/ACK in SYN_RECV: ignored"),
            s(ACK, S0 + 1, C0 + 1).passes("S's ACK ends the simultaneous open (ESTABLISHED)"),
            c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
        ]],
    )
}

fn reopen_time_wait_by_client() -> Trace {
    trace(
        "reopen_time_wait_by_client",
        "after an orderly close, C reuses the tuple with a new SYN",
        &[
            handshake(OPEN),
            close_after_handshake(),
            vec![
                c(SYN, C0 + 100_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("a SYN in TIME_WAIT reopens (the old entry is replaced)"),
                s(SA, S0 + 200_000, C0 + 100_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("SYN/ACK of the new connection"),
                c(ACK, C0 + 100_001, S0 + 200_001).passes("ACK of the new connection"),
                c(PA, C0 + 100_001, S0 + 200_001)
                    .len(100)
                    .passes("data on the new connection"),
            ],
        ],
    )
}

fn reopen_time_wait_by_server() -> Trace {
    trace(
        "reopen_time_wait_by_server",
        "after an orderly close, S opens the tuple in the other direction",
        &[
            handshake(OPEN),
            close_after_handshake(),
            vec![
                s(SYN, S0 + 200_000, 0)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("reply-direction SYN in TIME_WAIT: Linux 6.x reopens ('server may have switched role')"),
                c(SA, C0 + 100_000, S0 + 200_001)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("C answers the new connection"),
                s(ACK, S0 + 200_001, C0 + 100_001).passes("handshake completes"),
            ],
        ],
    )
}

fn no_connection() -> Trace {
    trace(
        "no_connection",
        "segments other than a SYN, with no connection (nf_conntrack_tcp_loose=0: no pickup)",
        &[vec![
            c(ACK, C0 + 1, S0 + 1).dropped("bare ACK, no connection"),
            c(PA, C0 + 1, S0 + 1)
                .len(100)
                .dropped("data, no connection"),
            s(ACK, S0 + 1, C0 + 1).dropped("bare ACK from S, no connection"),
            s(PA, S0 + 1, C0 + 1)
                .len(100)
                .dropped("data from S, no connection"),
            s(SA, S0, C0 + 1)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .dropped("SYN/ACK with no SYN"),
            c(FA, C0 + 1, S0 + 1).dropped("FIN, no connection"),
            c(RST, C0 + 1, 0).dropped("RST, no connection"),
            s(RA, S0 + 1, C0 + 1).dropped("RST/ACK, no connection"),
        ]],
    )
}

fn data_far_beyond_window() -> Trace {
    trace(
        "data_far_beyond_window",
        "data starting 10 MB beyond the right edge, both directions",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 10_000_001, S0 + 1)
                    .len(100)
                    .dropped("seq beyond C's right edge by more than S's max window (I)"),
                s(PA, S0 + 10_000_001, C0 + 1)
                    .len(100)
                    .dropped("the same from S (I)"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("in-window data still passes"),
            ],
        ],
    )
}

fn data_across_right_edge() -> Trace {
    trace(
        "data_across_right_edge",
        "a segment that starts inside the window and ends beyond it",
        &[
            handshake(OPEN),
            vec![
                c(PA, C_EDGE - 50, S0 + 1)
                    .len(100)
                    .passes("starts 50 bytes before the right edge: I only checks the start"),
                s(ACK, S0 + 1, C_EDGE + 50).passes("S acks all of it"),
            ],
        ],
    )
}

fn data_just_past_right_edge() -> Trace {
    trace(
        "data_just_past_right_edge",
        "a segment starting one byte beyond the right edge",
        &[
            handshake(OPEN),
            vec![
                c(PA, C_EDGE + 1, S0 + 1)
                    .len(100)
                    .passes("fails I by 102 bytes, less than S's max window: Linux ignores it ('bytes more than expected') and lets S decide"),
                s(ACK, S0 + 1, C_EDGE + 101)
                    .passes("S acks those bytes: Linux moved C's end over them, so the ack is not beyond what C sent"),
            ],
        ],
    )
}

fn ack_beyond_sent() -> Trace {
    trace(
        "ack_beyond_sent",
        "C acks data S never sent",
        &[
            handshake(OPEN),
            vec![
                s(PA, S0 + 1, C0 + 1)
                    .len(100)
                    .passes("data S->C (S's end: s+101)"),
                c(ACK, C0 + 1, S0 + 102).dropped("acks one byte more than S sent (III)"),
                c(ACK, C0 + 1, S0 + 5101).dropped("acks 5000 bytes more than S sent (III)"),
                c(ACK, C0 + 1, S0 + 101).passes("the right ack"),
            ],
        ],
    )
}

fn ack_far_below() -> Trace {
    trace(
        "ack_far_below",
        "acks far below what S sent (old, or forged)",
        &[
            handshake(OPEN),
            vec![
                s(PA, S0 + 1, C0 + 1).len(100).passes("data S->C"),
                c(ACK, C0 + 1, S0 + 1)
                    .passes("a duplicate (old but recent) ACK"),
                c(ACK, C0 + 1, S0 - 99_999)
                    .passes("100000 below S's end, beyond the 66000 floor (IV): Linux 6.x ignores it, it does not drop it"),
                c(ACK, C0 + 1, S0 + 101).passes("the right ack"),
            ],
        ],
    )
}

fn window_scale_in_use() -> Trace {
    trace(
        "window_scale_in_use",
        "window scale 7 both ways: segments in the window only because of the scale",
        &[
            handshake(OPEN),
            vec![
                s(ACK, S0 + 1, C0 + 1)
                    .win(2000)
                    .passes("S opens its window to 2000 << 7 = 256000 bytes"),
                c(PA, C0 + 200_001, S0 + 1)
                    .len(100)
                    .passes("200000 bytes ahead: inside 256000, outside the unscaled 2000 (and the SYN/ACK's 65160)"),
                c(ACK, C0 + 1, S0 + 1)
                    .win(2000)
                    .passes("C opens its window to 256000 bytes"),
                s(PA, S0 + 200_001, C0 + 1)
                    .len(100)
                    .passes("the same from S"),
                c(PA, C0 + 600_001, S0 + 1)
                    .len(100)
                    .dropped("600000 ahead: beyond the scaled window by more than S's max window (I)"),
            ],
        ],
    )
}

fn window_scale_not_negotiated() -> Trace {
    let open = Open {
        c_ws: None,
        s_ws: None,
        ..OPEN
    };
    trace(
        "window_scale_not_negotiated",
        "no window scale: the same segment as in window_scale_in_use is out of window",
        &[
            handshake(open),
            vec![
                s(ACK, S0 + 1, C0 + 1)
                    .win(2000)
                    .passes("S's window: 2000 bytes"),
                c(PA, C0 + 200_001, S0 + 1).len(100).dropped(
                    "200000 ahead, the right edge is c+65161: out by more than S's max window (I)",
                ),
                c(PA, C0 + 1, S0 + 1).len(100).passes("in-window data"),
            ],
        ],
    )
}

fn window_scale_offered_by_client_only() -> Trace {
    let open = Open { s_ws: None, ..OPEN };
    trace(
        "window_scale_offered_by_client_only",
        "only C's SYN has window scale: no scaling either way (RFC 7323)",
        &[
            handshake(open),
            vec![
                s(ACK, S0 + 1, C0 + 1)
                    .win(2000)
                    .passes("S's window: 2000 bytes, not 256000"),
                c(PA, C0 + 200_001, S0 + 1)
                    .len(100)
                    .dropped("out of window: a tracker scaling one-sided would let it pass (I)"),
                c(PA, C0 + 1, S0 + 1).len(100).passes("in-window data"),
            ],
        ],
    )
}

fn synack_window_never_scaled() -> Trace {
    let open = Open {
        s_win: 1000,
        ..OPEN
    };
    trace(
        "synack_window_never_scaled",
        "the window of a SYN/ACK is never scaled, even with window scale on",
        &[
            handshake(open),
            vec![
                c(PA, C0 + 50_001, S0 + 1)
                    .len(100)
                    .dropped("right edge c+1001 (SYN/ACK window 1000, unscaled): out by more than S's max window 1000 (I)"),
                s(ACK, S0 + 1, C0 + 1)
                    .win(1000)
                    .passes("a plain ACK's window is scaled: 128000 bytes"),
                c(PA, C0 + 50_001, S0 + 1).len(100).passes("now in window"),
            ],
        ],
    )
}

fn invalid_flags_established() -> Trace {
    trace(
        "invalid_flags_established",
        "flag combinations no TCP sends, on an established connection",
        &[
            handshake(OPEN),
            vec![
                c(SYN | FIN, C0 + 1, 0).dropped("SYN+FIN: invalid flag combination"),
                c(0, C0 + 1, 0).dropped("no flags (NULL scan)"),
                c(FIN, C0 + 1, 0).dropped("FIN without ACK"),
                c(SYN | RST, C0 + 1, 0).dropped("SYN+RST"),
                c(FIN | PSH | URG, C0 + 1, 0).dropped("FIN+PSH+URG (Xmas scan)"),
                c(PSH, C0 + 1, 0).dropped("PSH alone (NULL once PSH is masked)"),
                c(0x3F, C0 + 1, S0 + 1).dropped("SYN+FIN+RST+PSH+ACK+URG"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("the connection is unharmed"),
            ],
        ],
    )
}

fn invalid_flags_without_connection() -> Trace {
    trace(
        "invalid_flags_without_connection",
        "flag combinations no TCP sends, as the first packet of a tuple",
        &[vec![
            c(SYN | FIN, C0, 0).opts(Some(7), true).dropped("SYN+FIN"),
            c(0, C0, 0).dropped("NULL"),
            c(SYN | RST, C0, 0).dropped("SYN+RST"),
            c(FIN, C0, 0).dropped("FIN without ACK"),
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("a proper SYN still opens the tuple"),
        ]],
    )
}

fn syn_with_ecn_and_urg() -> Trace {
    trace(
        "syn_with_ecn_and_urg",
        "ECN setup (SYN with ECE+CWR, SYN/ACK with ECE) and URG on a SYN, which Linux allows",
        &[vec![
            c(SYN | ECE | CWR | URG, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("ECE, CWR and PSH never matter; SYN+URG is a valid combination"),
            s(SA | ECE, S0, C0 + 1)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("ECN-setup SYN/ACK"),
            c(ACK, C0 + 1, S0 + 1).passes("handshake completes"),
            c(PA | ECE, C0 + 1, S0 + 1).len(100).passes("data with ECE"),
        ]],
    )
}

fn retransmission_within_window() -> Trace {
    trace(
        "retransmission_within_window",
        "already acked data sent again, still within the window",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data 1"),
                c(PA, C0 + 101, S0 + 1).len(100).passes("data 2"),
                s(ACK, S0 + 1, C0 + 201).passes("S acks both"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("data 1 again: old, but within S's window (II holds)"),
                c(PA, C0 + 101, S0 + 1).len(100).passes("data 2 again"),
                c(PA, C0 + 201, S0 + 1).len(100).passes("new data"),
            ],
        ],
    )
}

fn very_old_segment() -> Trace {
    trace(
        "very_old_segment",
        "a segment from 200000 bytes before the acked data",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                c(PA, C0 - 199_999, S0 + 1)
                    .len(100)
                    .passes("ends more than S's max window below C's end (II fails): Linux ignores it, it does not drop it"),
                c(PA, C0 + 101, S0 + 1).len(100).passes("new data"),
            ],
        ],
    )
}

fn zero_window_probe() -> Trace {
    trace(
        "zero_window_probe",
        "S closes its window; C probes; S opens it again",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101)
                    .win(0)
                    .passes("S acks with window 0 (the right edge does not move back)"),
                c(PA, C0 + 101, S0 + 1)
                    .len(1)
                    .passes("a one-byte window probe"),
                s(ACK, S0 + 1, C0 + 101)
                    .win(0)
                    .passes("S: still window 0, probe not taken"),
                c(ACK, C0 + 100, S0 + 1).passes("Linux-style probe: no data, seq = snd_una - 1"),
                s(ACK, S0 + 1, C0 + 101).passes("S opens its window"),
                c(PA, C0 + 101, S0 + 1).len(100).passes("data flows again"),
            ],
        ],
    )
}

fn sequence_wraparound() -> Trace {
    const CW: u32 = 0xFFFF_FF00;
    const SW: u32 = 0xFFFF_FFF0;
    let open = Open {
        c: CW,
        s: SW,
        ..OPEN
    };
    let mut t = trace(
        "sequence_wraparound",
        "sequence numbers that wrap past 2^32 in both directions",
        &[
            handshake(open),
            vec![
                c(PA, CW.wrapping_add(1), SW.wrapping_add(1))
                    .len(1000)
                    .passes("C's data crosses 2^32"),
                s(ACK, SW.wrapping_add(1), CW.wrapping_add(1001)).passes("S acks it"),
                s(PA, SW.wrapping_add(1), CW.wrapping_add(1001))
                    .len(500)
                    .passes("S's data crosses 2^32"),
                c(ACK, CW.wrapping_add(1001), SW.wrapping_add(501)).passes("C acks it"),
                c(PA, CW.wrapping_add(10_001_001), SW.wrapping_add(501))
                    .len(100)
                    .dropped("far beyond the window, after the wrap (I)"),
            ],
        ],
    );
    t.isn_c = CW;
    t.isn_s = SW;
    t
}

fn syn_in_established_challenge_ack() -> Trace {
    trace(
        "syn_in_established_challenge_ack",
        "C restarted and reuses the tuple; S answers with a challenge ACK, C resets, C reconnects",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                c(SYN, C0 + 5_000_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("a new SYN in ESTABLISHED: ignored (the firewall may be out of sync)"),
                s(ACK, S0 + 1, C0 + 101).passes("S's challenge ACK (RFC 5961)"),
                c(RST, C0 + 101, 0).passes("C resets at the challenge ACK's ack (CLOSE)"),
                c(SYN, C0 + 5_000_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("C's SYN again: after C's own RST it reopens the tuple"),
                s(SA, S0 + 9_000_000, C0 + 5_000_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("SYN/ACK of the new connection"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001).passes("handshake completes"),
            ],
        ],
    )
}

fn syn_in_established_resync() -> Trace {
    trace(
        "syn_in_established_resync",
        "S lost the connection (rebooted): it answers C's new SYN with a SYN/ACK, and the firewall resynchronises",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                c(SYN, C0 + 5_000_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("a new SYN in ESTABLISHED: ignored, its seq/end/window/options noted"),
                s(SA, S0 + 9_000_000, C0 + 5_000_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("a SYN/ACK acking exactly the ignored SYN's end: the endpoints are in sync, the firewall resynchronises on them (SYN_RECV)"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001)
                    .passes("handshake of the new incarnation completes (ESTABLISHED)"),
                c(PA, C0 + 5_000_001, S0 + 9_000_001)
                    .len(100)
                    .passes("data on the new incarnation"),
            ],
        ],
    )
}

fn syn_in_established_answered_by_rst() -> Trace {
    trace(
        "syn_in_established_answered_by_rst",
        "a SYN the firewall ignored in ESTABLISHED is refused by S with a RST; C reconnects",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
                c(SYN, C0 + 5_000_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("a new SYN in ESTABLISHED: ignored"),
                s(RA, 0, C0 + 5_000_001)
                    .passes("S refuses that SYN: a RST acking exactly the ignored SYN skips the window checks (CLOSE)"),
                c(SYN, C0 + 5_000_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("C's SYN again"),
                s(SA, S0 + 9_000_000, C0 + 5_000_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("S accepts it this time"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001).passes("handshake completes"),
            ],
        ],
    )
}

fn server_syn_in_established() -> Trace {
    trace(
        "server_syn_in_established",
        "a SYN from the reply direction on an established connection",
        &[
            handshake(OPEN),
            vec![
                s(SYN, S0 + 5_000_000, 0)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .dropped("reply-direction SYN in ESTABLISHED: invalid transition"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("the connection is unharmed"),
            ],
        ],
    )
}

fn ack_before_synack() -> Trace {
    trace(
        "ack_before_synack",
        "segments that do not belong in SYN_SENT",
        &[vec![
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN (SYN_SENT)"),
            c(ACK, C0 + 1, S0 + 1).dropped("C's ACK before any SYN/ACK: invalid transition"),
            c(FA, C0 + 1, S0 + 1).dropped("C's FIN in SYN_SENT: invalid transition"),
            s(ACK, S0 + 1, C0 + 1)
                .passes("an ACK from S in SYN_SENT: ignored (maybe a half-open connection)"),
            s(SA, S0, C0 + 1)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("the SYN/ACK"),
            c(ACK, C0 + 1, S0 + 1).passes("handshake completes"),
        ]],
    )
}

fn syn_refused_by_rst() -> Trace {
    trace(
        "syn_refused_by_rst",
        "S refuses the SYN (port closed); C tries again",
        &[vec![
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN"),
            s(RA, 0, C0 + 1)
                .win(0)
                .passes("RST/ACK seq 0 answering the SYN: passes, the entry is deleted"),
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN again: a fresh entry"),
            s(SA, S0, C0 + 1)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("S accepts it this time"),
            c(ACK, C0 + 1, S0 + 1).passes("handshake completes"),
        ]],
    )
}

fn synack_acks_wrong_sequence() -> Trace {
    let hs = handshake(OPEN);
    trace(
        "synack_acks_wrong_sequence",
        "a SYN/ACK acking a sequence C never sent, then the right one",
        &[vec![
            hs[0].clone(),
            s(SA, S0, C0 + 1001)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .dropped("acks 1000 bytes beyond C's SYN (III)"),
            hs[1].clone(),
            hs[2].clone(),
        ]],
    )
}

fn sack_blocks() -> Trace {
    trace(
        "sack_blocks",
        "SACK negotiated: a SACK block's right edge is checked like an ack",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data 1"),
                c(PA, C0 + 101, S0 + 1).len(100).passes("data 2"),
                c(PA, C0 + 201, S0 + 1).len(100).passes("data 3"),
                s(ACK, S0 + 1, C0 + 101)
                    .sack(C0 + 201, C0 + 301)
                    .passes("ack data 1, SACK data 3"),
                s(ACK, S0 + 1, C0 + 101).sack(C0 + 201, C0 + 2301).dropped(
                    "SACK block ending 2000 bytes beyond what C sent (III on the SACK edge)",
                ),
                s(ACK, S0 + 1, C0 + 301).passes("ack everything"),
            ],
        ],
    )
}

fn sack_without_permission() -> Trace {
    let open = Open {
        sack_ok: false,
        ..OPEN
    };
    trace(
        "sack_without_permission",
        "SACK not negotiated: SACK blocks are not looked at",
        &[
            handshake(open),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data"),
                s(ACK, S0 + 1, C0 + 101)
                    .sack(C0 + 201, C0 + 2301)
                    .passes("a bogus SACK block, but C never offered SACK: only the ack counts"),
            ],
        ],
    )
}

fn data_after_fin() -> Trace {
    trace(
        "data_after_fin",
        "C sends data after its own FIN",
        &[
            handshake(OPEN),
            vec![
                c(FA, C0 + 1, S0 + 1).passes("C's FIN (FIN_WAIT)"),
                s(ACK, S0 + 1, C0 + 2).passes("S acks it (CLOSE_WAIT)"),
                c(PA, C0 + 2, S0 + 1)
                    .len(100)
                    .passes("data after the FIN: conntrack only checks the window"),
            ],
        ],
    )
}

// ------------------------------------------------------------------ exception paths
//
// The RST block of `nf_conntrack_tcp_packet` and the packets the tracker lets
// through while it may be out of sync: each path, with the segment that takes
// it and the one that must not.

/// A SYN the firewall ignores in ESTABLISHED (C restarted, or a forgery).
fn ignored_syn(seq: u32) -> Packet {
    c(SYN, seq, 0).win(64240).opts(Some(7), true)
}

/// Data C->S and S's ack of it: C's end c+101, S's highest ack c+101.
fn data_acked() -> Vec<Packet> {
    vec![
        c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
        s(ACK, S0 + 1, C0 + 101).passes("S acks it"),
    ]
}

fn rst_from_the_syns_sender() -> Trace {
    // The issue's exact numbers: C ISN 4000, S ISN 8000, window scale 7.
    const CI: u32 = 4000;
    const SI: u32 = 8000;
    let open = Open {
        c: CI,
        s: SI,
        ..OPEN
    };
    let mut t = trace(
        "rst_from_the_syns_sender",
        "the issue's RST: C's RST acks C's own ignored SYN; only S can answer that SYN",
        &[
            handshake(open),
            vec![
                c(PA, CI + 1, SI + 1).len(100).passes("data C->S (4001, 100 bytes)"),
                s(ACK, SI + 1, CI + 101).passes("S acks 4101"),
                c(SYN, 3_004_000, 0)
                    .win(64240)
                    .opts(Some(7), true)
                    .passes("a SYN on the same tuple in ESTABLISHED: ignored, noted"),
                c(RA, 3_004_777, 3_004_001).dropped(
                    "C's RST acking C's own SYN answers nothing (the 6.18 stable fix: last_dir != dir): window-checked, 3 MB beyond the window (I); ESTABLISHED stays",
                ),
                c(PA, CI + 101, SI + 1).len(100).passes("the live connection goes on (4101)"),
                s(ACK, SI + 1, CI + 201).passes("S acks 4201"),
            ],
        ],
    );
    t.isn_c = CI;
    t.isn_s = SI;
    t
}

fn rst_from_the_syns_sender_below_highest_ack() -> Trace {
    trace(
        "rst_from_the_syns_sender_below_highest_ack",
        "after C's ignored SYN, C's own RST below S's highest ack",
        &[
            handshake(OPEN),
            data_acked(),
            vec![
                ignored_syn(C0 + 5_000_000).passes("a new SYN in ESTABLISHED: ignored"),
                c(RST, C0 + 1, 0).passes(
                    "Linux skips the highest-ack check after any ignored SYN and the window check passes it (CLOSE); tandem skips it only for the SYN's receiver: below S's ack c+101, invalid",
                ),
                c(PA, C0 + 101, S0 + 1)
                    .len(100)
                    .passes("C's data, in window either way"),
            ],
        ],
    )
}

fn rst_with_seq_zero_in_syn_recv() -> Trace {
    let hs = handshake(OPEN);
    trace(
        "rst_with_seq_zero_in_syn_recv",
        "a RST with seq 0 before the handshake completes",
        &[vec![
            hs[0].clone(),
            hs[1].clone(),
            c(RST, 0, 0).passes(
                "seq 0 and not established: maybe an answer to a SYN let through, so not held against S's highest ack; the window check finds it more than a window old: ignored",
            ),
            hs[2].clone(),
        ]],
    )
}

fn rst_acking_the_servers_ack_in_syn_recv() -> Trace {
    let hs = handshake(OPEN);
    trace(
        "rst_acking_the_servers_ack_in_syn_recv",
        "C's RST acks S's ACK, but S's highest ack is known: no skipping the window",
        &[vec![
            hs[0].clone(),
            hs[1].clone(),
            s(ACK, S0 + 1, C0 + 1).passes("S's ACK in SYN_RECV: tracked"),
            c(RA, C0 + 10_000_001, S0 + 1).dropped(
                "S's highest ack is known and the connection is not established: the RST goes to the window checks, 10 MB beyond (I)",
            ),
            hs[2].clone(),
        ]],
    )
}

fn rst_acking_its_own_ack_in_syn_recv() -> Trace {
    let hs = handshake(OPEN);
    trace(
        "rst_acking_its_own_ack_in_syn_recv",
        "S's RST acks the end of S's own ACK: it answers nothing",
        &[vec![
            hs[0].clone(),
            hs[1].clone(),
            s(ACK, S0 + 1, C0 + 1).passes("S's ACK in SYN_RECV: tracked"),
            s(RA, S0 + 10_000_001, S0 + 1).passes(
                "Linux: RST acking the last ACK of a connection not assured skips the window checks, whichever way it goes (CLOSE); tandem: an answer travels the other way, so this one is window-checked: 10 MB beyond (I)",
            ),
            hs[2]
                .clone()
                .passes("C's ACK, in window either way (Linux: CLOSE, tandem: ESTABLISHED)"),
        ]],
    )
}

fn rst_answering_an_ignored_ack_in_syn_sent() -> Trace {
    let hs = handshake(OPEN);
    trace(
        "rst_answering_an_ignored_ack_in_syn_sent",
        "S still holds an older connection: its ACK to C's SYN is ignored, C's RST answers it",
        &[vec![
            hs[0].clone(),
            s(ACK, S0 + 1, C0 - 5000)
                .passes("an ACK from S in SYN_SENT (half-open connection): ignored, noted"),
            c(RA, C0 + 10_000_001, S0 + 1).passes(
                "C's RST acks exactly the end of the ACK the firewall let through: it skips the window checks (CLOSE)",
            ),
            hs[0]
                .clone()
                .passes("C's SYN again: after C's own RST it reopens the tuple"),
            hs[1].clone(),
            hs[2].clone(),
        ]],
    )
}

/// S closes first and ends in TIME-WAIT; C reuses the tuple with a lower
/// ISN, which reopens the entry; S's TIME-WAIT socket answers the SYN with an
/// ACK of the old connection (Linux's `handle tcp challenge acks during
/// connection reuse`, 6.2).
fn reuse_answered_by_challenge_ack() -> Vec<Packet> {
    vec![
        s(FA, S0 + 1, C0 + 1).passes("S closes first (FIN_WAIT)"),
        c(ACK, C0 + 1, S0 + 2).passes("C acks (CLOSE_WAIT)"),
        c(FA, C0 + 1, S0 + 2).passes("C's FIN (LAST_ACK)"),
        s(ACK, S0 + 2, C0 + 2).passes("S's last ACK (TIME_WAIT)"),
        ignored_syn(C0 - 1_000_000)
            .passes("C reuses the tuple with a lower ISN: the SYN reopens the entry (SYN_SENT)"),
        s(ACK, S0 + 2, C0 + 2)
            .passes("S's TIME-WAIT socket answers with an ACK of the old connection: ignored, its ack noted"),
    ]
}

fn challenge_ack_in_syn_sent_answered_by_rst() -> Trace {
    trace(
        "challenge_ack_in_syn_sent_answered_by_rst",
        "C resets at the challenge ACK's ack, then reconnects",
        &[
            handshake(OPEN),
            reuse_answered_by_challenge_ack(),
            vec![
                c(RST, C0 + 2, 0).passes(
                    "C's RST at the challenge ACK's ack: skips the window checks (it is far beyond C's new SYN) (CLOSE)",
                ),
                ignored_syn(C0 - 1_000_000)
                    .passes("C's SYN again: after C's own RST it reopens the tuple"),
                s(SA, S0 + 5_000_000, C0 - 999_999)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("S accepts it this time"),
                c(ACK, C0 - 999_999, S0 + 5_000_001).passes("handshake completes"),
            ],
        ],
    )
}

fn challenge_ack_in_syn_sent_rst_from_the_server() -> Trace {
    trace(
        "challenge_ack_in_syn_sent_rst_from_the_server",
        "a RST from S carrying the challenge ACK's ack as its seq",
        &[
            handshake(OPEN),
            reuse_answered_by_challenge_ack(),
            vec![
                s(RA, C0 + 2, C0 - 900_000).passes(
                    "Linux matches only seq == the challenge ACK's ack, in either direction (CLOSE); tandem: only C answers S's ACK, so this one is window-checked: it acks beyond C's SYN (III)",
                ),
                c(RST, C0 + 2, 0).passes("C's real answer passes (Linux: early-drop state; tandem: answers the challenge ACK)"),
                ignored_syn(C0 - 1_000_000).passes("C's SYN again reopens the tuple"),
            ],
        ],
    )
}

fn rst_train_interrupted() -> Trace {
    trace(
        "rst_train_interrupted",
        "C's RST continues C's data, but S spoke in between: not a RST train",
        &[
            handshake(OPEN),
            vec![
                c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S, not acked yet"),
                s(PA, S0 + 1, C0 + 1).len(100).passes("data S->C, still acking c+1"),
                c(RST, C0 + 101, 0).passes(
                    "in window but not at S's highest ack (c+1), and the last segment was S's: keeps ESTABLISHED for a challenge ACK",
                ),
                c(ACK, C0 + 101, S0 + 101).passes("the connection lives on"),
            ],
        ],
    )
}

fn rst_far_ahead_while_closing() -> Trace {
    trace(
        "rst_far_ahead_while_closing",
        "the issue's RST (no ACK, far beyond the window) once the connection is closing",
        &[
            handshake(OPEN),
            vec![
                c(FA, C0 + 1, S0 + 1).passes("C closes (FIN_WAIT)"),
                c(RST, C0 + 10_000_001, 0).passes(
                    "Linux checks nothing of a RST in a closing state (tcp_can_early_drop) and closes; tandem checks the window: 10 MB beyond (I)",
                ),
                s(ACK, S0 + 1, C0 + 2)
                    .passes("S acks C's FIN (Linux: CLOSE, tandem: CLOSE_WAIT)"),
            ],
        ],
    )
}

/// C closes, S acks and closes too: LAST_ACK; C's new SYN is ignored and a
/// challenge ACK is expected (RFC 5961 section 4).
fn last_ack_then_syn() -> Vec<Packet> {
    vec![
        c(FA, C0 + 1, S0 + 1).passes("C closes (FIN_WAIT)"),
        s(FA, S0 + 1, C0 + 2).passes("S acks C's FIN and closes (LAST_ACK)"),
        ignored_syn(C0 + 5_000_000)
            .passes("C reuses the tuple: in LAST_ACK the SYN is ignored, a challenge ACK expected"),
    ]
}

fn last_ack_challenge_ack() -> Trace {
    trace(
        "last_ack_challenge_ack",
        "S's challenge ACK to C's SYN in LAST_ACK is not the last ACK",
        &[
            handshake(OPEN),
            last_ack_then_syn(),
            vec![
                s(ACK, S0 + 2, C0 + 2).passes("S's challenge ACK: ignored, LAST_ACK stays"),
                c(RST, C0 + 2, 0).passes("C answers it with a RST at its ack (CLOSE)"),
                ignored_syn(C0 + 5_000_000).passes("C's SYN again reopens the closed tuple"),
                s(SA, S0 + 9_000_000, C0 + 5_000_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("SYN/ACK of the new connection"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001).passes("handshake completes"),
            ],
        ],
    )
}

fn last_ack_challenge_ack_acking_unsent_data() -> Trace {
    trace(
        "last_ack_challenge_ack_acking_unsent_data",
        "where a challenge ACK is expected, an ACK acking data C never sent",
        &[
            handshake(OPEN),
            last_ack_then_syn(),
            vec![
                s(ACK, S0 + 2, C0 + 100_002).passes(
                    "Linux lets the first ACK from S through unchecked as the challenge ACK; tandem checks it first: acks 100000 bytes C never sent (III)",
                ),
                s(ACK, S0 + 2, C0 + 2).passes(
                    "the real challenge ACK (Linux: expectation spent, taken as the last ACK: TIME_WAIT; tandem: ignored)",
                ),
                c(ACK, C0 + 2, S0 + 2).passes("C's last ACK (TIME_WAIT)"),
            ],
        ],
    )
}

fn resync_synack_with_the_wrong_ack() -> Trace {
    trace(
        "resync_synack_with_the_wrong_ack",
        "a SYN/ACK after an ignored SYN that does not ack it: no resynchronisation",
        &[
            handshake(OPEN),
            data_acked(),
            vec![
                ignored_syn(C0 + 5_000_000).passes("a new SYN in ESTABLISHED: ignored, noted"),
                s(SA, S0 + 9_000_000, C0 + 5_000_002)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("acks one past the ignored SYN's end: ignored, nothing resynchronised"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001)
                    .dropped("C's ACK to it: still the old connection's window, 5 MB beyond (I)"),
                c(PA, C0 + 101, S0 + 1)
                    .len(100)
                    .passes("the old connection is unharmed"),
            ],
        ],
    )
}

fn resync_synack_from_the_syns_sender() -> Trace {
    trace(
        "resync_synack_from_the_syns_sender",
        "a SYN/ACK from the side whose SYN was ignored, acking that SYN's end",
        &[
            handshake(OPEN),
            vec![
                ignored_syn(C0 + 5_000_000).passes("a new SYN in ESTABLISHED: ignored, noted"),
                c(SA, C0 + 5_000_000, C0 + 5_000_001)
                    .win(64240)
                    .opts(Some(7), true)
                    .dropped("no SYN/ACK from the original direction in ESTABLISHED (invalid): only the SYN's receiver resynchronises"),
                c(PA, C0 + 1, S0 + 1)
                    .len(100)
                    .passes("the connection lives on"),
            ],
        ],
    )
}

fn syn_after_the_peers_rst_resynchronises() -> Trace {
    trace(
        "syn_after_the_peers_rst_resynchronises",
        "S resets; C's next SYN does not reopen the tuple (the RST was not C's) but resynchronises",
        &[
            handshake(OPEN),
            vec![
                s(RA, S0 + 1, C0 + 1).passes("S's RST at exactly C's highest ack (CLOSE)"),
                ignored_syn(C0 + 5_000_000).passes(
                    "C's SYN in CLOSE: no FIN was seen and the last RST was S's, so no reopening: ignored, noted",
                ),
                s(SA, S0 + 9_000_000, C0 + 5_000_001)
                    .win(S_SYN_WIN)
                    .opts(Some(7), true)
                    .passes("S's SYN/ACK acks the ignored SYN: resynchronised (SYN_RECV)"),
                c(ACK, C0 + 5_000_001, S0 + 9_000_001).passes("handshake completes (ESTABLISHED)"),
                c(PA, C0 + 5_000_001, S0 + 9_000_001)
                    .len(100)
                    .passes("data on the new connection"),
            ],
        ],
    )
}

fn simultaneous_open_syn_again_in_syn_recv() -> Trace {
    trace(
        "simultaneous_open_syn_again_in_syn_recv",
        "a simultaneous open where C's SYN comes again in SYN_RECV",
        &[vec![
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN (SYN_SENT)"),
            s(SYN, S0, 0)
                .win(S_SYN_WIN)
                .opts(Some(7), true)
                .passes("S's SYN crosses it (SYN_SENT2)"),
            c(SA, C0, S0 + 1)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN/ACK (SYN_RECV)"),
            c(SYN, C0, 0)
                .win(64240)
                .opts(Some(7), true)
                .passes("C's SYN again: ignored; Linux forgets the simultaneous open with it"),
            s(ACK, S0 + 1, C0 + 1)
                .passes("S's ACK: SYN_RECV stays (without the ignored SYN it would end the open)"),
            c(ACK, C0 + 1, S0 + 1).passes("C's ACK (ESTABLISHED)"),
            c(PA, C0 + 1, S0 + 1).len(100).passes("data C->S"),
        ]],
    )
}

/// `traces` as JSON, one line per packet (the committed
/// `tests/traces/conntrack_diff.json`, for review and for running
/// `tests/scripts/ct_replay.py` by hand).
pub fn to_json(traces: &[Trace]) -> String {
    let mut out = String::from("[\n");
    for (i, t) in traces.iter().enumerate() {
        let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
        out.push_str(&format!(
            "  {{\"name\":{},\"about\":{},\"client_port\":{},\"server_port\":{},\"isn_c\":{},\"isn_s\":{}",
            text(t.name),
            text(t.about),
            t.client_port,
            t.server_port,
            t.isn_c,
            t.isn_s
        ));
        out.push_str(",\"packets\":[\n");
        for (j, p) in t.packets.iter().enumerate() {
            let line = serde_json::to_string(p).unwrap_or_default();
            let sep = if j + 1 < t.packets.len() { "," } else { "" };
            out.push_str(&format!("    {line}{sep}\n"));
        }
        let sep = if i + 1 < traces.len() { "," } else { "" };
        out.push_str(&format!("  ]}}{sep}\n"));
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::PathBuf;

    /// The traces as JSON, committed for review; `TANDEM_BLESS=1` rewrites it.
    fn golden_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("traces/conntrack_diff.json")
    }

    #[test]
    fn traces_are_well_formed() {
        let traces = all();
        assert!((20..=60).contains(&traces.len()), "{} traces", traces.len());
        let mut names = HashSet::new();
        let mut ports = HashSet::new();
        for t in &traces {
            assert!(names.insert(t.name), "duplicate trace name {}", t.name);
            assert!(ports.insert(t.client_port), "duplicate port in {}", t.name);
            assert!(
                (2..=15).contains(&t.packets.len()),
                "{}: {} packets",
                t.name,
                t.packets.len()
            );
            for (i, p) in t.packets.iter().enumerate() {
                assert!(p.expect.is_some(), "{} #{}: no expectation", t.name, i + 1);
                assert!(!p.why.is_empty(), "{} #{}: no reason", t.name, i + 1);
                assert!(
                    p.len <= 1400,
                    "{} #{}: payload over one frame",
                    t.name,
                    i + 1
                );
                if p.flags & ACK == 0 {
                    assert_eq!(p.ack, 0, "{} #{}: ack without ACK", t.name, i + 1);
                }
            }
        }
    }

    #[test]
    fn the_committed_json_is_up_to_date() {
        let json = to_json(&all());
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(parsed, serde_json::to_value(all()).unwrap());
        let path = golden_path();
        if std::env::var_os("TANDEM_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &json).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json,
            "{} is not what traces.rs generates; rerun with TANDEM_BLESS=1 to rewrite it",
            path.display()
        );
    }
}
