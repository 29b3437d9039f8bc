//! TCP tracking, grouped by state. The client opens with ISN 1000, the
//! server answers with ISN 5000; windows are 64240 unless a test says other.

use super::tcp::{flags::*, Dir, Segment, TcpConn, TcpInvalid, TcpState, TcpTimeouts, TcpVerdict};
use Dir::{Original as C2S, Reply as S2C};

const C_ISN: u32 = 1000;
const S_ISN: u32 = 5000;
const WIN: u16 = 64240;

fn seg(flags: u8, seq: u32, ack: u32, window: u16, len: u32) -> Segment {
    Segment {
        seq,
        ack,
        window,
        flags,
        payload_len: len,
        ..Segment::default()
    }
}

fn syn(seq: u32) -> Segment {
    Segment {
        sack_permitted: true,
        ..seg(SYN, seq, 0, WIN, 0)
    }
}

fn syn_ws(seq: u32, ws: u8) -> Segment {
    Segment {
        wscale: Some(ws),
        ..syn(seq)
    }
}

fn synack(seq: u32, ack: u32) -> Segment {
    Segment {
        sack_permitted: true,
        ..seg(SYN | ACK, seq, ack, WIN, 0)
    }
}

fn synack_ws(seq: u32, ack: u32, ws: u8) -> Segment {
    Segment {
        wscale: Some(ws),
        ..synack(seq, ack)
    }
}

fn ack(seq: u32, ack: u32) -> Segment {
    seg(ACK, seq, ack, WIN, 0)
}

fn data(seq: u32, ack: u32, len: u32) -> Segment {
    seg(ACK | PSH, seq, ack, WIN, len)
}

fn t() -> TcpTimeouts {
    TcpTimeouts::default()
}

/// A connection opened by `seg` (which must be a SYN).
fn open(seg: &Segment) -> Result<TcpConn, TcpInvalid> {
    TcpConn::new(seg, &t()).map(|(c, _)| c)
}

fn accepted(v: TcpVerdict) -> bool {
    matches!(v, TcpVerdict::Accept { .. })
}

/// A connection through the three-way handshake: ESTABLISHED, client next
/// sequence 1001, server next 5001.
fn established() -> TcpConn {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert!(accepted(c.track(S2C, &synack(S_ISN, C_ISN + 1), &t())));
    assert!(accepted(c.track(C2S, &ack(C_ISN + 1, S_ISN + 1), &t())));
    assert_eq!(c.state(), TcpState::Established);
    c
}

/// Same, with window scale 7 on both SYNs and windows of 512 (= 65536 bytes).
fn established_scaled() -> TcpConn {
    let mut c = open(&syn_ws(C_ISN, 7)).unwrap();
    assert!(accepted(c.track(
        S2C,
        &synack_ws(S_ISN, C_ISN + 1, 7),
        &t()
    )));
    assert!(accepted(c.track(
        C2S,
        &seg(ACK, C_ISN + 1, S_ISN + 1, 512, 0),
        &t()
    )));
    assert!(accepted(c.track(
        S2C,
        &seg(ACK, S_ISN + 1, C_ISN + 1, 512, 0),
        &t()
    )));
    c
}

// ==================================================================== NONE

#[test]
fn none_only_a_syn_opens_a_connection() {
    let (c, timeout) = TcpConn::new(&syn(C_ISN), &t()).unwrap();
    assert_eq!((c.state(), timeout), (TcpState::SynSent, 120));
    assert_eq!(
        open(&ack(C_ISN, S_ISN)),
        Err(TcpInvalid::NoConnection),
        "bare ACK"
    );
    assert_eq!(open(&synack(S_ISN, C_ISN)), Err(TcpInvalid::NoConnection));
    assert_eq!(
        open(&seg(RST | ACK, C_ISN, S_ISN, 0, 0)),
        Err(TcpInvalid::NoConnection)
    );
    assert_eq!(
        open(&seg(FIN | ACK, C_ISN, S_ISN, WIN, 0)),
        Err(TcpInvalid::NoConnection)
    );
}

#[test]
fn none_invalid_flag_combinations_are_refused() {
    for f in [
        SYN | FIN,
        0,
        FIN,
        SYN | RST,
        FIN | RST | ACK,
        SYN | FIN | ACK,
        PSH,
        URG,
    ] {
        assert_eq!(
            open(&seg(f, C_ISN, 0, WIN, 0)),
            Err(TcpInvalid::BadFlags),
            "flags {f:#x}"
        );
    }
    // PSH, ECE, CWR do not matter
    assert!(open(&seg(SYN | ECE | CWR, C_ISN, 0, WIN, 0)).is_ok());
}

// ==================================================================== SYN_SENT

#[test]
fn syn_sent_after_the_first_syn() {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert_eq!(
        c.track(C2S, &syn(C_ISN), &t()),
        TcpVerdict::Accept { timeout: None }
    );
    assert_eq!(c.state(), TcpState::SynSent);
}

#[test]
fn syn_sent_retransmitted_syn_passes_without_extending_life() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    assert_eq!(
        c.track(C2S, &syn(C_ISN), &t()),
        TcpVerdict::Accept { timeout: None }
    );
    // a reinitialised client may use a higher ISN
    assert_eq!(
        c.track(C2S, &syn(C_ISN + 7000), &t()),
        TcpVerdict::Accept { timeout: None }
    );
    assert_eq!(c.peers[0].end, C_ISN + 7001);
    assert!(accepted(c.track(S2C, &synack(S_ISN, C_ISN + 7001), &t())));
}

#[test]
fn syn_sent_synack_with_the_right_ack_moves_to_syn_recv() {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert_eq!(
        c.track(S2C, &synack(S_ISN, C_ISN + 1), &t()),
        TcpVerdict::Accept { timeout: Some(60) }
    );
    assert_eq!(c.state(), TcpState::SynRecv);
}

#[test]
fn syn_sent_synack_acking_unsent_data_is_invalid() {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert_eq!(
        c.track(S2C, &synack(S_ISN, C_ISN + 2), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
    assert_eq!(c.state(), TcpState::SynSent);
}

#[test]
fn syn_sent_rst_refusing_the_connection_closes_the_entry() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    assert_eq!(
        c.track(S2C, &seg(RST | ACK, 0, C_ISN + 1, 0, 0), &t()),
        TcpVerdict::Close
    );
}

#[test]
fn syn_sent_reply_ack_is_ignored() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    assert_eq!(
        c.track(S2C, &ack(S_ISN, C_ISN + 1), &t()),
        TcpVerdict::Ignore
    );
    assert_eq!(c.state(), TcpState::SynSent);
}

#[test]
fn syn_sent_originator_ack_is_invalid() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    assert_eq!(
        c.track(C2S, &ack(C_ISN + 1, S_ISN + 1), &t()),
        TcpVerdict::Invalid(TcpInvalid::BadTransition)
    );
}

#[test]
fn simultaneous_open_reaches_established() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    assert!(accepted(c.track(S2C, &syn(S_ISN), &t())));
    assert_eq!(c.state(), TcpState::SynSent2);
    assert!(accepted(c.track(C2S, &synack(C_ISN, S_ISN + 1), &t())));
    assert_eq!(c.state(), TcpState::SynRecv);
    // the responder's own SYN/ACK crosses: passes, changes nothing
    assert_eq!(
        c.track(S2C, &synack(S_ISN, C_ISN + 1), &t()),
        TcpVerdict::Ignore
    );
    assert!(accepted(c.track(S2C, &ack(S_ISN + 1, C_ISN + 1), &t())));
    assert_eq!(c.state(), TcpState::Established);
}

// ==================================================================== SYN_RECV

#[test]
fn syn_recv_final_ack_establishes_and_assures() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    c.track(S2C, &synack(S_ISN, C_ISN + 1), &t());
    assert!(!c.assured());
    assert_eq!(
        c.track(C2S, &ack(C_ISN + 1, S_ISN + 1), &t()),
        TcpVerdict::Accept {
            timeout: Some(432_000)
        }
    );
    assert_eq!(c.state(), TcpState::Established);
    assert!(c.assured());
}

#[test]
fn syn_recv_synack_retransmit_passes_unchanged() {
    let mut c = open(&syn(C_ISN)).unwrap();
    c.track(C2S, &syn(C_ISN), &t());
    c.track(S2C, &synack(S_ISN, C_ISN + 1), &t());
    assert_eq!(
        c.track(S2C, &synack(S_ISN, C_ISN + 1), &t()),
        TcpVerdict::Ignore
    );
    assert_eq!(c.state(), TcpState::SynRecv);
}

// ==================================================================== ESTABLISHED

#[test]
fn established_data_both_ways_passes_and_tracks_the_windows() {
    let mut c = established();
    assert!(accepted(c.track(C2S, &data(1001, 5001, 100), &t())));
    assert_eq!(c.peers[0].end, 1101);
    assert!(accepted(c.track(S2C, &data(5001, 1101, 300), &t())));
    assert!(accepted(c.track(C2S, &ack(1101, 5301), &t())));
    assert_eq!(c.peers[1].end, 5301);
}

#[test]
fn established_unacknowledged_data_shortens_the_timeout() {
    let mut c = established();
    assert_eq!(
        c.track(C2S, &data(1001, 5001, 100), &t()),
        TcpVerdict::Accept { timeout: Some(300) }
    );
    assert_eq!(
        c.track(S2C, &ack(5001, 1101), &t()),
        TcpVerdict::Accept {
            timeout: Some(432_000)
        }
    );
}

#[test]
fn established_data_beyond_the_receivers_window_is_invalid() {
    let mut c = established();
    // the server's window is 64240 from 5001's ack point: client may send up to 1001 + 64240
    assert!(accepted(c.track(
        C2S,
        &data(1001 + 64_000, 5001, 240),
        &t()
    )));
    let far = 1001 + 64_240 + 70_000;
    assert_eq!(
        c.track(C2S, &data(far, 5001, 10), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
}

#[test]
fn established_ack_for_unsent_data_is_invalid() {
    let mut c = established();
    assert_eq!(
        c.track(C2S, &ack(1001, 5001 + 1), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
    assert_eq!(
        c.track(S2C, &ack(5001, 1001 + 500), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
}

#[test]
fn established_old_retransmission_is_ignored_not_dropped() {
    let mut c = established();
    for i in 0..3 {
        assert!(accepted(c.track(
            C2S,
            &data(1001 + i * 60_000, 5001, 60_000),
            &t()
        )));
        assert!(accepted(c.track(
            S2C,
            &ack(5001, 1001 + (i + 1) * 60_000),
            &t()
        )));
    }
    // a segment a full window behind
    assert_eq!(
        c.track(C2S, &data(1001, 5001, 100), &t()),
        TcpVerdict::Ignore
    );
}

#[test]
fn established_sack_beyond_ack_counts_for_the_ack_bound() {
    let mut c = established();
    c.track(C2S, &data(1001, 5001, 1000), &t());
    let mut s = ack(5001, 1001);
    s.sack_right_edge = Some(1501);
    assert!(accepted(c.track(S2C, &s, &t())));
    s.sack_right_edge = Some(2002);
    assert_eq!(
        c.track(S2C, &s, &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent),
        "SACK of unsent data"
    );
}

#[test]
fn established_rst_at_the_expected_sequence_closes() {
    let mut c = established();
    assert_eq!(
        c.track(C2S, &seg(RST | ACK, 1001, 5001, 0, 0), &t()),
        TcpVerdict::Accept { timeout: Some(10) }
    );
    assert_eq!(c.state(), TcpState::Close);
}

#[test]
fn established_rst_below_the_peers_highest_ack_is_invalid() {
    let mut c = established();
    c.track(C2S, &data(1001, 5001, 500), &t());
    c.track(S2C, &ack(5001, 1501), &t());
    assert_eq!(
        c.track(C2S, &seg(RST | ACK, 1200, 5001, 0, 0), &t()),
        TcpVerdict::Invalid(TcpInvalid::BadRst)
    );
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn established_rst_in_window_but_not_exact_keeps_state_for_a_challenge_ack() {
    let mut c = established();
    assert!(accepted(c.track(
        C2S,
        &seg(RST | ACK, 1001 + 500, 5001, 0, 0),
        &t()
    )));
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn established_rst_far_outside_the_window_is_invalid() {
    let mut c = established();
    assert_eq!(
        c.track(S2C, &seg(RST | ACK, 5001 + 2_000_000, 1001, 0, 0), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
}

#[test]
fn established_new_syn_is_ignored() {
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(9999), &t()), TcpVerdict::Ignore);
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn established_zero_window_probe_passes() {
    let mut c = established();
    c.track(C2S, &data(1001, 5001, 100), &t());
    // the server acks and closes its window
    assert!(accepted(c.track(S2C, &seg(ACK, 5001, 1101, 0, 0), &t())));
    // one byte probe at the window edge
    assert!(accepted(c.track(C2S, &data(1101, 5001, 1), &t())));
}

// ------------------------------------------------------------------ window scaling

#[test]
fn scaled_window_admits_what_only_the_scale_allows() {
    let mut c = established_scaled();
    // the server's window is 512 << 7 = 65536 bytes past 1001 (more than 16 bits can say)
    assert!(accepted(c.track(
        C2S,
        &data(1001 + 60_000, 5001, 5_000),
        &t()
    )));
    assert!(
        accepted(c.track(S2C, &seg(ACK, 5001, 1001, 2048, 0), &t())),
        "window 2048 << 7 = 256 KiB"
    );
    assert!(accepted(c.track(
        C2S,
        &data(1001 + 200_000, 5001, 1_000),
        &t()
    )));
}

#[test]
fn scale_is_ignored_unless_both_syns_carry_it() {
    let mut c = open(&syn_ws(C_ISN, 7)).unwrap();
    c.track(S2C, &synack(S_ISN, C_ISN + 1), &t()); // no wscale: RFC 7323 says no scaling
    c.track(C2S, &seg(ACK, C_ISN + 1, S_ISN + 1, 512, 0), &t());
    c.track(S2C, &seg(ACK, S_ISN + 1, C_ISN + 1, 2048, 0), &t());
    assert_eq!(c.peers[0].scale, 0);
    assert_eq!(c.peers[1].scale, 0);
    // 200 KB ahead is beyond an unscaled window
    assert_eq!(
        c.track(C2S, &data(1001 + 200_000, 5001, 1_000), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
}

#[test]
fn wscale_above_14_is_clamped() {
    let c = open(&syn_ws(C_ISN, 20)).unwrap();
    assert_eq!(c.peers[0].scale, 14);
}

// ==================================================================== closing

#[test]
fn orderly_close_client_first_walks_every_state() {
    let mut c = established();
    assert_eq!(
        c.track(C2S, &seg(FIN | ACK, 1001, 5001, WIN, 0), &t()),
        TcpVerdict::Accept { timeout: Some(120) }
    );
    assert_eq!(c.state(), TcpState::FinWait);
    assert_eq!(
        c.track(S2C, &ack(5001, 1002), &t()),
        TcpVerdict::Accept { timeout: Some(60) }
    );
    assert_eq!(c.state(), TcpState::CloseWait);
    assert_eq!(
        c.track(S2C, &seg(FIN | ACK, 5001, 1002, WIN, 0), &t()),
        TcpVerdict::Accept { timeout: Some(30) }
    );
    assert_eq!(c.state(), TcpState::LastAck);
    assert_eq!(
        c.track(C2S, &ack(1002, 5002), &t()),
        TcpVerdict::Accept { timeout: Some(120) }
    );
    assert_eq!(c.state(), TcpState::TimeWait);
}

#[test]
fn close_with_both_fins_crossing() {
    let mut c = established();
    c.track(C2S, &seg(FIN | ACK, 1001, 5001, WIN, 0), &t());
    assert!(accepted(c.track(
        S2C,
        &seg(FIN | ACK, 5001, 1002, WIN, 0),
        &t()
    )));
    assert_eq!(c.state(), TcpState::LastAck);
    assert!(accepted(c.track(C2S, &ack(1002, 5002), &t())));
    assert_eq!(c.state(), TcpState::TimeWait);
}

#[test]
fn fin_acking_unsent_data_is_invalid() {
    let mut c = established();
    assert_eq!(
        c.track(C2S, &seg(FIN | ACK, 1001, 5001 + 10, WIN, 0), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
    assert_eq!(c.state(), TcpState::Established);
}

// ==================================================================== TIME_WAIT / CLOSE

fn time_wait() -> TcpConn {
    let mut c = established();
    c.track(C2S, &seg(FIN | ACK, 1001, 5001, WIN, 0), &t());
    c.track(S2C, &seg(FIN | ACK, 5001, 1002, WIN, 0), &t());
    c.track(C2S, &ack(1002, 5002), &t());
    assert_eq!(c.state(), TcpState::TimeWait);
    c
}

#[test]
fn time_wait_new_syn_reopens_the_tuple() {
    let mut c = time_wait();
    assert_eq!(c.track(C2S, &syn(90_000), &t()), TcpVerdict::Reopen);
}

#[test]
fn time_wait_last_ack_retransmit_passes() {
    let mut c = time_wait();
    assert!(accepted(c.track(C2S, &ack(1002, 5002), &t())));
    assert_eq!(c.state(), TcpState::TimeWait);
}

#[test]
fn close_after_rst_reopens_on_syn_from_the_same_side() {
    let mut c = established();
    c.track(C2S, &seg(RST | ACK, 1001, 5001, 0, 0), &t());
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Reopen);
}

#[test]
fn close_data_after_rst_is_refused() {
    let mut c = established();
    c.track(C2S, &seg(RST | ACK, 1001, 5001, 0, 0), &t());
    // ACK in CLOSE stays CLOSE if in window; a SYN/ACK is not a valid transition
    assert_eq!(
        c.track(C2S, &synack(1001, 5001), &t()),
        TcpVerdict::Invalid(TcpInvalid::BadTransition)
    );
}

// ==================================================================== adoption

#[test]
fn adopted_entry_accepts_the_first_sequence_numbers_then_tightens() {
    let old = established();
    let mut c = TcpConn::adopted(TcpState::Established, old.peers);
    assert!(c.learning());
    assert!(!old.learning());
    // the partner's copy is behind: the live connection has moved on 10 MB
    assert!(accepted(c.track(
        C2S,
        &data(1001 + 10_000_000, 5001 + 3_000_000, 100),
        &t()
    )));
    assert!(accepted(c.track(
        S2C,
        &ack(5001 + 3_000_000, 1001 + 10_000_100),
        &t()
    )));
    assert!(accepted(c.track(
        C2S,
        &data(1001 + 10_000_100, 5001 + 3_000_000, 100),
        &t()
    )));
    assert!(!c.learning());
    assert_eq!(
        c.track(C2S, &data(1001 + 30_000_000, 5001 + 3_000_000, 100), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow),
        "strict again once both windows are learnt"
    );
}

/// The takeover of a busy download: the partner's copy lags the server's
/// data; the client acks bytes that went through the partner, which this
/// unit never saw; the server, its ack lost with the partner, retransmits
/// older bytes. Once strict again, the client's ack of those bytes must
/// still pass, or the download stalls for good (the lab's 100 MB transfer
/// did, `tcp_ack_over_sent`, before acks taught the other side's end).
#[test]
fn an_adopted_entry_learns_the_other_sides_end_from_its_acks() {
    let old = established();
    let mut c = TcpConn::adopted(TcpState::Established, old.peers);
    let lag = 2_000_000;
    let acked = 5001 + 3_000_000;
    // The client acks what came through the partner (the copy says 5001).
    assert!(accepted(c.track(C2S, &ack(1001, acked), &t())));
    // The server retransmits older bytes (passed, as an old retransmission
    // always is); the client sends data, the server acks it.
    let passes = |v: TcpVerdict| matches!(v, TcpVerdict::Accept { .. } | TcpVerdict::Ignore);
    assert!(passes(c.track(S2C, &data(acked - lag, 1001, 1000), &t())));
    assert!(accepted(c.track(C2S, &data(1001, acked, 100), &t())));
    assert!(passes(c.track(S2C, &ack(acked - lag + 1000, 1101), &t())));
    assert!(accepted(c.track(C2S, &data(1101, acked, 100), &t())));
    assert!(accepted(c.track(S2C, &data(acked, 1201, 1000), &t())));
    assert!(!c.learning(), "strict again");
    // The client acks what it has: not beyond what was sent.
    assert!(accepted(c.track(C2S, &ack(1201, acked), &t())));
    assert!(accepted(c.track(C2S, &ack(1201, acked + 1000), &t())));
}

/// The takeover of a download whose receiver had closed its window: the
/// server only probes (one byte below what it sent), the client answers
/// with its ack of everything, then opens the window. The server's probes
/// must not end the learning before the client has spoken (the lab's
/// curl --limit-rate download stalled for good on `tcp_ack_over_sent`).
#[test]
fn an_adopted_entry_stays_learning_until_both_sides_have_spoken() {
    let old = established();
    let mut c = TcpConn::adopted(TcpState::Established, old.peers);
    let sent = 5001 + 3_000_000;
    // Zero-window probes from the server (the copy lags: it says 5001).
    assert!(accepted(c.track(S2C, &ack(sent - 1, 1001), &t())));
    assert!(accepted(c.track(S2C, &ack(sent - 1, 1001), &t())));
    assert!(c.learning(), "the client has not spoken yet");
    // The client's answers: window closed, then opening.
    assert!(accepted(c.track(C2S, &seg(ACK, 1001, sent, 0, 0), &t())));
    assert!(accepted(c.track(C2S, &seg(ACK, 1001, sent, 1323, 0), &t())));
    assert!(!c.learning());
    assert!(accepted(c.track(S2C, &data(sent, 1001, 1000), &t())));
    assert!(accepted(c.track(C2S, &ack(1001, sent + 1000), &t())));
}

// ==================================================================== answers to what was let through
//
// Each path that lets a segment skip the checks because it answers one the
// tracker let through untracked: the answer, and the segments that must not
// pass for one (from the wrong side, or in the wrong sequence space).

fn rst(seq: u32) -> Segment {
    seg(RST, seq, 0, 0, 0)
}

fn rst_ack(seq: u32, ack: u32) -> Segment {
    seg(RST | ACK, seq, ack, 0, 0)
}

/// ESTABLISHED, the client's 100 bytes acked: client end 1101, server's
/// highest ack 1101.
fn established_data_acked() -> TcpConn {
    let mut c = established();
    assert!(accepted(c.track(C2S, &data(1001, 5001, 100), &t())));
    assert!(accepted(c.track(S2C, &ack(5001, 1101), &t())));
    c
}

// ------------------------------------------------------------------ a SYN ignored in ESTABLISHED

#[test]
fn ignored_syn_the_issues_rst_from_the_syns_sender_is_window_checked() {
    // Issue item 1, its exact numbers: window scale 7, windows of 502 << 7.
    let mut c = open(&syn_ws(4000, 7)).unwrap();
    assert!(accepted(c.track(S2C, &synack_ws(8000, 4001, 7), &t())));
    assert!(accepted(c.track(C2S, &seg(ACK, 4001, 8001, 502, 0), &t())));
    assert!(accepted(c.track(
        C2S,
        &seg(ACK | PSH, 4001, 8001, 502, 100),
        &t()
    )));
    assert!(accepted(c.track(S2C, &seg(ACK, 8001, 4101, 502, 0), &t())));
    assert_eq!(
        c.track(C2S, &syn_ws(3_004_000, 7), &t()),
        TcpVerdict::Ignore
    );
    assert_eq!(
        c.track(C2S, &rst_ack(3_004_777, 3_004_001), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow),
        "acks C's own SYN: no answer to it, so window-checked"
    );
    assert_eq!(c.state(), TcpState::Established);
    assert!(accepted(c.track(
        C2S,
        &seg(ACK | PSH, 4101, 8001, 502, 100),
        &t()
    )));
    assert!(accepted(c.track(S2C, &seg(ACK, 8001, 4201, 502, 0), &t())));
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn ignored_syn_rst_from_the_receiver_acking_something_else_is_window_checked() {
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Ignore);
    assert_eq!(
        c.track(S2C, &rst_ack(0, 70_002), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent),
        "one past the SYN's end"
    );
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn ignored_syn_rst_from_its_sender_is_still_checked_against_the_highest_ack() {
    // Deliberately stricter than Linux, item 2.
    let mut c = established_data_acked();
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Ignore);
    assert_eq!(
        c.track(C2S, &rst(1001), &t()),
        TcpVerdict::Invalid(TcpInvalid::BadRst),
        "below the server's highest ack"
    );
    assert!(accepted(c.track(C2S, &rst(1500), &t())));
    assert_eq!(
        c.state(),
        TcpState::Established,
        "in window, not exact: kept for the challenge ACK"
    );
}

#[test]
fn ignored_syn_synack_acking_it_resynchronises() {
    // The server lost the connection; the client starts over on the same tuple.
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Ignore);
    assert!(
        accepted(c.track(S2C, &synack(90_000, 70_001), &t())),
        "SYN/ACK acks the ignored SYN"
    );
    assert_eq!(c.state(), TcpState::SynRecv);
    assert!(accepted(c.track(C2S, &ack(70_001, 90_001), &t())));
    assert_eq!(c.state(), TcpState::Established);
    assert!(accepted(c.track(C2S, &data(70_001, 90_001, 100), &t())));
}

#[test]
fn ignored_syn_rst_from_the_receiver_acking_it_closes() {
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Ignore);
    // the server refuses the new SYN: its RST acks the SYN, not the old stream
    assert!(accepted(c.track(
        S2C,
        &seg(RST | ACK, 0, 70_001, 0, 0),
        &t()
    )));
    assert_eq!(c.state(), TcpState::Close);
}

#[test]
fn ignored_syn_synack_acking_past_it_does_not_resynchronise() {
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(700_000), &t()), TcpVerdict::Ignore);
    assert_eq!(
        c.track(S2C, &synack(900_000, 700_002), &t()),
        TcpVerdict::Ignore
    );
    assert_eq!(c.state(), TcpState::Established);
    assert_eq!(
        c.track(C2S, &ack(700_001, 900_001), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow),
        "still the old windows"
    );
    assert!(accepted(c.track(C2S, &data(1001, 5001, 100), &t())));
}

#[test]
fn ignored_syn_synack_from_its_sender_does_not_resynchronise() {
    let mut c = established();
    assert_eq!(c.track(C2S, &syn(700_000), &t()), TcpVerdict::Ignore);
    assert_eq!(
        c.track(C2S, &synack(700_000, 700_001), &t()),
        TcpVerdict::Invalid(TcpInvalid::BadTransition)
    );
    assert_eq!(c.state(), TcpState::Established);
}

// ------------------------------------------------------------------ RST validation before ESTABLISHED

#[test]
fn syn_recv_rst_with_seq_zero_is_left_to_the_window_checks() {
    // Not held against the server's highest ack (1_000_001): more than a
    // window old, it passes and changes nothing, as in Linux.
    let mut c = open(&syn(1_000_000)).unwrap();
    assert!(accepted(c.track(S2C, &synack(5000, 1_000_001), &t())));
    assert_eq!(c.track(C2S, &rst(0), &t()), TcpVerdict::Ignore);
    assert_eq!(c.state(), TcpState::SynRecv);
}

#[test]
fn syn_recv_rst_acking_the_servers_ack_is_window_checked() {
    // The server's highest ack is known: no skipping the window for an
    // answer to its ACK.
    let mut c = open(&syn(C_ISN)).unwrap();
    assert!(accepted(c.track(S2C, &synack(S_ISN, 1001), &t())));
    assert!(accepted(c.track(S2C, &ack(5001, 1001), &t())));
    assert_eq!(
        c.track(C2S, &rst_ack(1001 + 10_000_000, 5001), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
    assert_eq!(c.state(), TcpState::SynRecv);
}

// ------------------------------------------------------------------ an ACK ignored in SYN_SENT (half-open)

#[test]
fn syn_sent_rst_acking_the_ignored_ack_closes() {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert_eq!(c.track(S2C, &ack(9000, 500), &t()), TcpVerdict::Ignore);
    assert_eq!(
        c.track(C2S, &rst_ack(1001 + 10_000_000, 9000), &t()),
        TcpVerdict::Accept { timeout: Some(10) },
        "skips the window checks"
    );
    assert_eq!(c.state(), TcpState::Close);
}

#[test]
fn syn_recv_rst_acking_its_own_ack_is_window_checked() {
    // Deliberately stricter than Linux, item 3.
    let mut c = open(&syn(C_ISN)).unwrap();
    assert!(accepted(c.track(S2C, &synack(S_ISN, 1001), &t())));
    assert!(accepted(c.track(S2C, &ack(5001, 1001), &t())));
    assert_eq!(
        c.track(S2C, &rst_ack(5001 + 10_000_000, 5001), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
    assert_eq!(c.state(), TcpState::SynRecv);
}

// ------------------------------------------------------------------ a challenge ACK in SYN_SENT

/// SYN_SENT for a SYN at 500, below the old connection's numbers; the
/// server answered with an ACK of the old connection (acking 1002).
fn syn_sent_after_challenge_ack() -> TcpConn {
    let mut c = open(&syn(500)).unwrap();
    assert_eq!(c.track(S2C, &ack(5002, 1002), &t()), TcpVerdict::Ignore);
    c
}

#[test]
fn syn_sent_rst_at_the_challenge_acks_ack_closes() {
    let mut c = syn_sent_after_challenge_ack();
    assert_eq!(
        c.track(C2S, &rst(1002), &t()),
        TcpVerdict::Accept { timeout: Some(10) },
        "beyond the SYN's window, yet the answer"
    );
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.track(C2S, &syn(500), &t()), TcpVerdict::Reopen);
}

#[test]
fn syn_sent_rst_elsewhere_than_the_challenge_acks_ack_is_window_checked() {
    let mut c = syn_sent_after_challenge_ack();
    assert_eq!(
        c.track(C2S, &rst(1003), &t()),
        TcpVerdict::Invalid(TcpInvalid::SeqOverWindow)
    );
    assert_eq!(c.state(), TcpState::SynSent);
}

#[test]
fn syn_sent_rst_from_the_server_at_the_challenge_acks_ack_is_window_checked() {
    // Deliberately stricter than Linux, item 4.
    let mut c = syn_sent_after_challenge_ack();
    assert_eq!(
        c.track(S2C, &rst_ack(1002, 9999), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
    assert_eq!(c.state(), TcpState::SynSent);
    assert!(
        accepted(c.track(C2S, &rst(1002), &t())),
        "the client's answer still closes"
    );
}

// ------------------------------------------------------------------ RST trains

#[test]
fn established_rst_right_behind_the_senders_data_closes() {
    let mut c = established();
    assert!(accepted(c.track(C2S, &data(1001, 5001, 100), &t())));
    assert!(accepted(c.track(C2S, &rst(1101), &t())));
    assert_eq!(c.state(), TcpState::Close);
}

#[test]
fn established_rst_at_the_end_of_the_other_sides_data_is_no_train() {
    let mut c = established();
    assert!(accepted(c.track(S2C, &data(5001, 1001, 100), &t())));
    assert!(accepted(c.track(C2S, &rst(5101), &t())));
    assert_eq!(
        c.state(),
        TcpState::Established,
        "the server's end is in the server's sequence space"
    );
}

// ------------------------------------------------------------------ RSTs in a closing state

#[test]
fn closing_rst_beyond_the_window_is_invalid() {
    // Deliberately stricter than Linux, item 1.
    let mut fin_wait = established();
    assert!(accepted(fin_wait.track(
        C2S,
        &seg(FIN | ACK, 1001, 5001, WIN, 0),
        &t()
    )));
    for mut c in [fin_wait, time_wait()] {
        let before = c.state();
        assert_eq!(
            c.track(C2S, &rst(1002 + 10_000_000), &t()),
            TcpVerdict::Invalid(TcpInvalid::SeqOverWindow),
            "in {before}"
        );
        assert_eq!(c.state(), before);
        assert_eq!(
            c.track(C2S, &rst(1002), &t()),
            TcpVerdict::Accept { timeout: Some(10) },
            "in {before}"
        );
        assert_eq!(c.state(), TcpState::Close);
    }
}

// ------------------------------------------------------------------ a SYN ignored in LAST_ACK

/// LAST_ACK (both FINs seen), then a new client SYN: ignored, a challenge
/// ACK expected.
fn last_ack_after_syn() -> TcpConn {
    let mut c = established();
    assert!(accepted(c.track(
        C2S,
        &seg(FIN | ACK, 1001, 5001, WIN, 0),
        &t()
    )));
    assert!(accepted(c.track(
        S2C,
        &seg(FIN | ACK, 5001, 1002, WIN, 0),
        &t()
    )));
    assert_eq!(c.state(), TcpState::LastAck);
    assert_eq!(c.track(C2S, &syn(70_000), &t()), TcpVerdict::Ignore);
    c
}

#[test]
fn last_ack_challenge_ack_is_not_the_last_ack() {
    let mut c = last_ack_after_syn();
    assert_eq!(c.track(S2C, &ack(5002, 1002), &t()), TcpVerdict::Ignore);
    assert_eq!(c.state(), TcpState::LastAck);
    assert!(accepted(c.track(C2S, &ack(1002, 5002), &t())));
    assert_eq!(c.state(), TcpState::TimeWait);
}

#[test]
fn last_ack_challenge_ack_acking_unsent_data_is_invalid() {
    // Deliberately stricter than Linux, item 5.
    let mut c = last_ack_after_syn();
    let peers = c.peers;
    assert_eq!(
        c.track(S2C, &ack(5002, 1002 + 100_000), &t()),
        TcpVerdict::Invalid(TcpInvalid::AckOverSent)
    );
    assert_eq!((c.state(), c.peers), (TcpState::LastAck, peers));
    assert_eq!(
        c.track(S2C, &ack(5002, 1002), &t()),
        TcpVerdict::Ignore,
        "the real challenge ACK is still expected"
    );
    assert_eq!(
        (c.state(), c.peers),
        (TcpState::LastAck, peers),
        "nothing learnt"
    );
}

#[test]
fn last_ack_ack_from_the_syns_sender_is_no_challenge_ack() {
    let mut c = last_ack_after_syn();
    assert!(accepted(c.track(C2S, &ack(1002, 5002), &t())));
    assert_eq!(c.state(), TcpState::TimeWait);
}

// ------------------------------------------------------------------ a SYN in CLOSE, and simultaneous open

#[test]
fn close_after_the_peers_rst_a_syn_is_ignored_then_resynchronises() {
    let mut c = established();
    assert!(accepted(c.track(S2C, &rst_ack(5001, 1001), &t())));
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(
        c.track(C2S, &syn(700_000), &t()),
        TcpVerdict::Ignore,
        "the RST was the server's: no reopening"
    );
    assert!(accepted(c.track(S2C, &synack(900_000, 700_001), &t())));
    assert_eq!(c.state(), TcpState::SynRecv);
    assert!(accepted(c.track(C2S, &ack(700_001, 900_001), &t())));
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn simultaneous_open_is_forgotten_with_a_syn_ignored_in_syn_recv() {
    let mut c = open(&syn(C_ISN)).unwrap();
    assert!(accepted(c.track(S2C, &syn(S_ISN), &t())));
    assert!(accepted(c.track(C2S, &synack(C_ISN, 5001), &t())));
    assert_eq!(c.track(C2S, &syn(C_ISN), &t()), TcpVerdict::Ignore);
    assert!(accepted(c.track(S2C, &ack(5001, 1001), &t())));
    assert_eq!(c.state(), TcpState::SynRecv, "as Linux: last_flags reset");
    assert!(accepted(c.track(C2S, &ack(1001, 5001), &t())));
    assert_eq!(c.state(), TcpState::Established);
}
