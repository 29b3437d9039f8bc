//! The reliable channel of the state sync: one ordered, reliable stream of
//! datagram *bodies* from the sending unit to the receiving unit over UDP,
//! which may lose, duplicate and reorder.
//!
//! ```text
//!  sender: SendWindow                              receiver: ReceiveWindow
//!  send(b7) → 7  ──── 7 ─────────────────────────▶  on_datagram(7): Delivered(1)
//!  send(b8) → 8  ──── 8 ──────╳ lost
//!  send(b9) → 9  ──── 9 ─────────────────────────▶  on_datagram(9): Buffered
//!                                                   (gap 8..=8 opens; wait
//!                                                    nack_delay: reordering grace)
//!  on_ack(7): frees 7   ◀──── ack 7, nack 8..=8 ──  poll → Feedback
//!  on_nack(8, 8): 8 due now
//!  poll → due(8, b8)  ──── 8 (re-sealed) ────────▶  on_datagram(8): Delivered(2)
//!                                                   (8, then the buffered 9)
//!  on_ack(9): frees 8, 9 ◀──── ack 9 ─────────────  poll (≤ ack_delay later)
//! ```
//!
//! If the nack or the retransmission is lost too, the receiver repeats the
//! nack every `nack_interval_ns` while the gap stays open (each gap on its
//! own timers, so several are repaired at once), and the sender
//! retransmits anything unacknowledged for `rto_ns` on its own (doubling per
//! datagram up to `rto_max_ns`), which also covers the tail of a burst: a
//! lost last datagram leaves no later one to reveal the gap.
//!
//! # Anchor: conntrackd's FTFW
//!
//! conntrackd's FTFW mode numbers every message, keeps what it sent in a
//! resend queue until the peer acknowledges it, lets the receiver nack the
//! range it finds missing (`from = expected, to = seq - 1`), acks every
//! `ACKWindowSize` messages, and sends ALIVE messages when idle. This channel
//! keeps those mechanisms and changes four things, each for a reason:
//!
//! * **In-order delivery with a reorder buffer** (selective repeat).
//!   Records for one flow must be applied in the order they were produced,
//!   or an older state would overwrite a newer one on the passive unit.
//! * **Cumulative acks** ("everything ≤ n"), repeated on a timer: one ack
//!   that gets through makes up for every lost one before it. Each gap is
//!   nacked on its own timers (grace, then repeats), one range per
//!   feedback message.
//! * **A bounded resend window with backpressure.** [`SendWindow::send`]
//!   refuses ([`ChannelError::WindowFull`]) rather than dropping; the caller
//!   stops draining its queues. Memory is fixed at construction.
//! * **Bounded retries, then an explicit loss.** A datagram retransmitted
//!   `max_retries` times without an ack is given up; its caller-supplied tag
//!   (a bitmap of the shards it carried) comes back from
//!   [`SendWindow::take_lost`] so those shards are resynchronised, and the
//!   receiver learns through [`SendWindow::first_held`] /
//!   [`ReceiveWindow::on_first_held`] that the gap will never fill, instead
//!   of waiting for it forever.
//!
//! # What it costs
//!
//! Every loss costs one retransmission when the timers suit the link (see
//! [`ChannelConfig`]): in the simulation of the tests (5 % loss each way,
//! delays of 0.1–5.1 ms), 20 000 datagrams needed 1 016 retransmissions
//! with timers set for that link's 10 ms round trip. With the defaults,
//! set for a sub-millisecond HA link, the same run needed 5 943, because
//! gaps outlived the 50 ms retransmit timeout and cumulative acks cannot
//! say what the receiver already holds past a gap. A selective-ack bitmap
//! in the feedback would remove that cost; on a healthy HA link it does
//! not arise.
//!
//! # Sequence numbers
//!
//! `u64`, the first is 1, 0 means "none", and they never wrap (at 10⁹
//! datagrams a second, 584 years). The largest valid one is [`MAX_SEQ`]. The
//! sequence space belongs to the channel, not to a link: when the main HA
//! link fails the daemon sends, and retransmits, the same numbers on the
//! backup link. A new sender epoch (the sender restarted) is announced out of
//! band and the receiver [`ReceiveWindow::reset`]s.
//!
//! # What the channel does not do
//!
//! Framing, encryption and replay protection belong to the caller: the
//! channel stores plaintext bodies, because a retransmission is re-sealed
//! with a fresh nonce. Everything a peer sends (acks, nacks, `first_held`,
//! sequence numbers) is treated as hostile: out-of-range values are counted
//! and refused with a [`ChannelError`], never trusted, never a panic, and the
//! work they cause is bounded by the window sizes.
//!
//! # Time and memory
//!
//! Pure logic: every time-dependent call takes `now_ns`, nanoseconds of the
//! unit's monotonic clock; nothing reads a clock. A clock that goes backwards
//! is tolerated (ages saturate at 0). All memory is allocated in `new`; no
//! call allocates afterwards.

/// The largest valid sequence number. `u64::MAX` is kept out so that "one
/// past the last delivered" always fits in a `u64`.
pub const MAX_SEQ: u64 = u64::MAX - 1;

/// How far ahead of the receiver's next expected sequence a peer-supplied
/// sequence or `first_held` may be before it is called implausible and
/// refused: 2³² datagrams, 71 minutes at 10⁶ datagrams a second. A sender
/// that really is this far ahead has lost so much that the daemon must start
/// a new epoch and a bulk resync anyway.
pub const MAX_SKIP: u64 = 1 << 32;

/// The most slots a window or reorder buffer may have.
pub const MAX_SLOTS: usize = 1 << 20;

/// The largest body: the largest UDP payload.
pub const MAX_BODY: usize = 65_535;

/// The most bytes one window's (or reorder buffer's) body storage may take,
/// so that a configuration typo cannot ask for hundreds of gigabytes.
pub const MAX_BUFFER_BYTES: usize = 1 << 30;

/// Why a channel call was refused. Refusals of what a peer sent, and of
/// sends when the window is full or the body too big, are also counted in
/// the window's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// A configuration value makes no sense.
    #[error("channel configuration: {field} {reason}")]
    Config {
        /// The [`ChannelConfig`] field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Every slot of the send window holds an unacknowledged datagram: stop
    /// draining the queues until acks free some (backpressure, never drop).
    #[error("send window full")]
    WindowFull,
    /// A body is larger than the configured `max_body`.
    #[error("body of {len} bytes exceeds the maximum of {max}")]
    TooBig {
        /// The body's length in bytes.
        len: usize,
        /// The configured `max_body`.
        max: usize,
    },
    /// The sender has used every sequence number up to [`MAX_SEQ`].
    #[error("sequence numbers exhausted")]
    Exhausted,
    /// Sequence 0 (or `first_held` 0) is never valid.
    #[error("sequence 0 is never valid")]
    ZeroSequence,
    /// A sequence number is [`u64::MAX`] or more than [`MAX_SKIP`] ahead of
    /// the receiver's next expected one.
    #[error("sequence {seq} is implausible (next expected {expected})")]
    Implausible {
        /// The sequence (or `first_held`) received.
        seq: u64,
        /// The receiver's next expected sequence.
        expected: u64,
    },
    /// An ack for a sequence that was never sent.
    #[error("ack of {cumulative} but the highest sequence sent is {highest}")]
    BogusAck {
        /// The cumulative ack received.
        cumulative: u64,
        /// The highest sequence sent (0: none).
        highest: u64,
    },
    /// A nack range that is empty, reversed, starts at 0 or names a
    /// sequence that was never sent.
    #[error("nack of {first}..={last} but the highest sequence sent is {highest}")]
    BogusNack {
        /// The first sequence of the range received.
        first: u64,
        /// The last sequence of the range received.
        last: u64,
        /// The highest sequence sent (0: none).
        highest: u64,
    },
}

/// The channel's tunables; both units must use the same ones. Every time is
/// in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Send window, in datagrams: how many may be unacknowledged at once.
    /// It must cover the bandwidth-delay product plus the time to repair a
    /// loss (nack delay + a round trip): 1024 × 1500 bytes is 1.5 MB, 12 ms
    /// at 1 Gbit/s.
    pub window: usize,
    /// The largest body, in bytes (a datagram's payload before sealing).
    pub max_body: usize,
    /// Receiver's reorder buffer, in datagrams: how far past a gap it keeps
    /// early arrivals. At least `window` (selective repeat's rule), so
    /// that whatever the sender may have in flight can be kept: a
    /// retransmission dropped for lack of room would still count against
    /// `max_retries` and end as a false loss on a working link, and while
    /// it waited for its timeout the window behind the gap would stay
    /// full. (In the 5 %-loss simulation, 256 against a window of 1024
    /// cost three retransmissions per datagram.)
    pub reorder: usize,
    /// Initial retransmit timeout of a datagram. It must exceed the time to
    /// repair a gap even when one nack or retransmission is lost
    /// (`nack_delay_ns + nack_interval_ns` + two round trips, 22 ms plus
    /// twice the round trip with the defaults): acks are cumulative, so
    /// while a gap stays open everything sent after it is unacknowledged
    /// too, and a timeout retransmits all of it although the receiver holds
    /// it. Timeouts are for lost feedback and a lost tail, nacks for the
    /// rest; [`SendStats::timeouts`] shows when this is too short.
    pub rto_ns: u64,
    /// Cap of the per-datagram exponential backoff of `rto_ns`, so that a
    /// datagram on a dead link is still tried about once a second.
    pub rto_max_ns: u64,
    /// Retransmissions of one datagram (on timeout or nack) without an ack
    /// before it is given up ([`SendWindow::take_lost`]). With the defaults
    /// a datagram is tried for about 5.5 s on a silent link.
    pub max_retries: u32,
    /// A nack retransmits a datagram at most once per this interval, so a
    /// burst of duplicate nacks (or one for a retransmission still in
    /// flight) does not multiply traffic. Best above the round trip plus
    /// `nack_delay_ns`.
    pub min_retransmit_gap_ns: u64,
    /// The longest an ack for a delivered datagram is held back, waiting
    /// for more to acknowledge at once.
    pub ack_delay_ns: u64,
    /// Ack at once after this many deliveries, so the sender's window keeps
    /// moving at full rate.
    pub ack_every: u32,
    /// Ack at least this often even when idle: the sender's
    /// [`SenderHealth::last_ack_age_ns`] is how it knows the link is alive.
    pub ack_interval_ns: u64,
    /// A gap is nacked only once it has been open this long: reordering
    /// grace, so a datagram that is merely late is not retransmitted. Best
    /// above the link's reordering (delay jitter), which on the two paths
    /// of a bonded or switched HA link is well under a millisecond.
    pub nack_delay_ns: u64,
    /// While a gap stays open its nack is repeated this often (nacks and
    /// retransmissions get lost too).
    pub nack_interval_ns: u64,
}

const MS: u64 = 1_000_000;

impl Default for ChannelConfig {
    /// Tuned for a dedicated HA link (sub-millisecond round trip, rare
    /// loss): window 1024, max_body 1500 B, reorder 1024 (= window), rto
    /// 50 ms doubling to 1 s, 8 retries, retransmit gap 5 ms, ack delay
    /// 1 ms or every 32, idle ack 100 ms, nack after 2 ms, repeated every
    /// 20 ms. Memory: about 1.5 MB of bodies at each end.
    fn default() -> ChannelConfig {
        ChannelConfig {
            window: 1024,
            max_body: 1500,
            reorder: 1024,
            rto_ns: 50 * MS,
            rto_max_ns: 1_000 * MS,
            max_retries: 8,
            min_retransmit_gap_ns: 5 * MS,
            ack_delay_ns: MS,
            ack_every: 32,
            ack_interval_ns: 100 * MS,
            nack_delay_ns: 2 * MS,
            nack_interval_ns: 20 * MS,
        }
    }
}

impl ChannelConfig {
    /// Checks that every value makes sense (both windows' constructors call
    /// it): slot counts and body size within their maximums, the buffers
    /// within [`MAX_BUFFER_BYTES`], a non-zero timeout and intervals.
    pub fn validate(&self) -> Result<(), ChannelError> {
        let bad = |field, reason| Err(ChannelError::Config { field, reason });
        if self.window == 0 || self.window > MAX_SLOTS {
            return bad("window", "must be 1..=1048576 datagrams");
        }
        if self.reorder == 0 || self.reorder > MAX_SLOTS {
            return bad("reorder", "must be 1..=1048576 datagrams");
        }
        if self.reorder < self.window {
            return bad("reorder", "must be at least window");
        }
        if self.max_body == 0 || self.max_body > MAX_BODY {
            return bad("max_body", "must be 1..=65535 bytes");
        }
        let too_big = |slots: usize| {
            slots
                .checked_mul(self.max_body)
                .is_none_or(|bytes| bytes > MAX_BUFFER_BYTES)
        };
        if too_big(self.window) {
            return bad("window", "times max_body exceeds 1 GiB");
        }
        if too_big(self.reorder) {
            return bad("reorder", "times max_body exceeds 1 GiB");
        }
        if self.rto_ns == 0 {
            return bad("rto_ns", "must be above 0");
        }
        if self.rto_max_ns < self.rto_ns {
            return bad("rto_max_ns", "must be at least rto_ns");
        }
        if self.ack_every == 0 {
            return bad("ack_every", "must be above 0");
        }
        if self.ack_interval_ns == 0 {
            return bad("ack_interval_ns", "must be above 0");
        }
        if self.nack_interval_ns == 0 {
            return bad("nack_interval_ns", "must be above 0");
        }
        Ok(())
    }
}

/// The slot of `seq` in a ring of `n` slots.
#[inline]
fn slot_of(seq: u64, n: usize) -> usize {
    // The remainder is below `n`, a `usize`: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let i = (seq % n as u64) as usize;
    i
}

// ---------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------

/// Counters of a [`SendWindow`], in datagrams (or messages) since it was
/// built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams accepted by [`SendWindow::send`] (first transmissions).
    pub sent: u64,
    /// Retransmissions handed out by [`SendWindow::poll`].
    pub retransmitted: u64,
    /// Of those, the ones due to a retransmit timeout rather than a nack:
    /// the receiver's feedback did not get through (or the tail of a burst
    /// was lost), so many of them mean a lossy or one-way return path.
    pub timeouts: u64,
    /// Datagrams freed by an ack.
    pub acked: u64,
    /// Nack messages received (valid or not).
    pub nacks_received: u64,
    /// Datagrams given up after `max_retries` (a loss: their tags come back
    /// from [`SendWindow::take_lost`]).
    pub gave_up: u64,
    /// Acks for sequences never sent, ignored.
    pub bogus_acks: u64,
    /// Nacks that were empty, reversed, started at 0 or named sequences
    /// never sent, ignored.
    pub bogus_nacks: u64,
    /// [`SendWindow::send`] calls refused because the window was full.
    pub window_full: u64,
    /// [`SendWindow::send`] calls refused because the body was too big.
    pub too_big: u64,
}

/// What a [`SendWindow`] knows about its partner, so the daemon can say
/// "partner is not acknowledging" instead of sending into the void.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderHealth {
    /// Datagrams sent and not yet acknowledged (nor given up).
    pub unacked: usize,
    /// Nanoseconds since the oldest unacknowledged datagram was first sent;
    /// `None` when nothing is unacknowledged. Growing while acks still
    /// arrive: the receiver is stuck on a gap.
    pub oldest_unacked_age_ns: Option<u64>,
    /// Nanoseconds since the last valid ack (the receiver acks at least
    /// every `ack_interval_ns`, even idle); `None` if none ever came. Large:
    /// the return path or the partner is dead.
    pub last_ack_age_ns: Option<u64>,
}

/// One datagram held by the sender.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// Its sequence; 0 when the slot is free.
    seq: u64,
    /// Bytes of body in the slot's storage.
    len: usize,
    /// The caller's opaque tag, returned if the datagram is given up.
    tag: u64,
    /// When it was first sent (for [`SenderHealth`]).
    first_sent_ns: u64,
    /// When it was last (re)transmitted (for `min_retransmit_gap_ns`).
    last_sent_ns: u64,
    /// When it is next due for a retransmission by timeout.
    due_ns: u64,
    /// Its current retransmit timeout (backed off per datagram).
    rto_ns: u64,
    /// Retransmissions so far.
    retries: u32,
    /// A nack asked for it: due at the next poll.
    nacked: bool,
}

/// The sender's half of the channel: numbers bodies, keeps a copy of each
/// until it is acknowledged, and says when to retransmit. See the module
/// docs.
///
/// Slots are indexed by `seq % window`, so the window spans `window`
/// consecutive sequence numbers from [`SendWindow::first_held`]: it is full
/// when the slot of the next sequence still holds the datagram `window`
/// sequences back.
pub struct SendWindow {
    cfg: ChannelConfig,
    slots: Vec<Sent>,
    /// `window × max_body` bytes, slot `i` at `i × max_body`.
    bodies: Vec<u8>,
    /// The lowest sequence still held, or `next` when none is.
    base: u64,
    /// The next sequence to send.
    next: u64,
    /// Datagrams held.
    held: usize,
    /// No held datagram is due before this (a lower bound; 0 after a
    /// nack): lets [`SendWindow::poll`] return without scanning the window.
    next_due_ns: u64,
    last_ack_ns: Option<u64>,
    /// Ring of `(seq, tag)` given up and not yet taken, capacity `window`.
    lost: Vec<(u64, u64)>,
    lost_head: usize,
    lost_len: usize,
    stats: SendStats,
}

impl std::fmt::Debug for SendWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendWindow")
            .field("first_held", &self.base)
            .field("next", &self.next)
            .field("held", &self.held)
            .field("lost_pending", &self.lost_len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SendWindow {
    /// A window for `cfg`, with all its memory: `window` slots of
    /// `max_body` bytes and room for `window` lost records.
    pub fn new(cfg: ChannelConfig) -> Result<SendWindow, ChannelError> {
        cfg.validate()?;
        Ok(SendWindow {
            cfg,
            slots: vec![Sent::default(); cfg.window],
            bodies: vec![0; cfg.window * cfg.max_body],
            base: 1,
            next: 1,
            held: 0,
            next_due_ns: u64::MAX,
            last_ack_ns: None,
            lost: vec![(0, 0); cfg.window],
            lost_head: 0,
            lost_len: 0,
            stats: SendStats::default(),
        })
    }

    /// Stores a copy of `body` and returns its sequence number; the caller
    /// seals and transmits it now. `tag` is opaque (the caller's bitmap of
    /// the shards whose records the body carries) and comes back from
    /// [`SendWindow::take_lost`] if the datagram is ever given up.
    ///
    /// [`ChannelError::WindowFull`]: stop draining the queues until acks
    /// free a slot. [`ChannelError::TooBig`]: `body` exceeds `max_body`.
    pub fn send(&mut self, now_ns: u64, body: &[u8], tag: u64) -> Result<u64, ChannelError> {
        if body.len() > self.cfg.max_body {
            self.stats.too_big += 1;
            return Err(ChannelError::TooBig {
                len: body.len(),
                max: self.cfg.max_body,
            });
        }
        if self.next > MAX_SEQ {
            return Err(ChannelError::Exhausted);
        }
        if self.next - self.base >= self.cfg.window as u64 {
            self.stats.window_full += 1;
            return Err(ChannelError::WindowFull);
        }
        let seq = self.next;
        // Held sequences lie in `base..next`, less than `window` apart, so
        // the slot of `seq` (which could only hold `seq - window`) is free.
        let i = slot_of(seq, self.slots.len());
        let start = i * self.cfg.max_body;
        self.bodies[start..start + body.len()].copy_from_slice(body);
        let due_ns = now_ns.saturating_add(self.cfg.rto_ns);
        self.slots[i] = Sent {
            seq,
            len: body.len(),
            tag,
            first_sent_ns: now_ns,
            last_sent_ns: now_ns,
            due_ns,
            rto_ns: self.cfg.rto_ns,
            retries: 0,
            nacked: false,
        };
        self.next += 1;
        self.held += 1;
        self.next_due_ns = self.next_due_ns.min(due_ns);
        self.stats.sent += 1;
        Ok(seq)
    }

    /// The body of `seq` if it is still held (not acknowledged nor given
    /// up), for a (re)transmission.
    pub fn body(&self, seq: u64) -> Option<&[u8]> {
        if seq == 0 {
            return None;
        }
        let i = slot_of(seq, self.slots.len());
        let slot = &self.slots[i];
        if slot.seq != seq {
            return None;
        }
        let start = i * self.cfg.max_body;
        Some(&self.bodies[start..start + slot.len])
    }

    /// The receiver has delivered every sequence `≤ cumulative`: frees
    /// their slots and returns how many were freed. Any valid ack, even one
    /// that frees nothing (a stale one, or `0` from an idle receiver), shows
    /// the partner is alive ([`SenderHealth::last_ack_age_ns`]).
    ///
    /// An ack above the highest sequence sent is counted (`bogus_acks`) and
    /// refused. Work is bounded by the window.
    pub fn on_ack(&mut self, now_ns: u64, cumulative: u64) -> Result<u64, ChannelError> {
        let highest = self.next - 1;
        if cumulative > highest {
            self.stats.bogus_acks += 1;
            return Err(ChannelError::BogusAck {
                cumulative,
                highest,
            });
        }
        self.last_ack_ns = Some(now_ns);
        let mut freed = 0;
        // `base ≤ cumulative < next` and `next - base ≤ window`.
        while self.base <= cumulative {
            let i = slot_of(self.base, self.slots.len());
            if self.slots[i].seq == self.base {
                self.slots[i].seq = 0;
                self.held -= 1;
                freed += 1;
            }
            self.base += 1;
        }
        self.advance_base();
        self.stats.acked += freed;
        Ok(freed)
    }

    /// The receiver misses `first..=last`: every one of those still held is
    /// due for retransmission at the next [`SendWindow::poll`], unless it
    /// was (re)transmitted less than `min_retransmit_gap_ns` ago (so
    /// duplicate nacks, or one that crossed a retransmission, do not
    /// multiply traffic). Returns how many were marked.
    ///
    /// A range that is reversed, starts at 0 or names a sequence never
    /// sent is counted (`bogus_nacks`) and refused. Sequences no longer
    /// held are skipped; work is bounded by the window whatever the range.
    pub fn on_nack(&mut self, now_ns: u64, first: u64, last: u64) -> Result<u64, ChannelError> {
        self.stats.nacks_received += 1;
        let highest = self.next - 1;
        if first == 0 || first > last || last > highest {
            self.stats.bogus_nacks += 1;
            return Err(ChannelError::BogusNack {
                first,
                last,
                highest,
            });
        }
        let mut marked = 0;
        // `base ≤ seq ≤ last < next`: at most `window` iterations.
        for seq in first.max(self.base)..=last {
            let s = &mut self.slots[slot_of(seq, self.cfg.window)];
            if s.seq == seq
                && !s.nacked
                && now_ns.saturating_sub(s.last_sent_ns) >= self.cfg.min_retransmit_gap_ns
            {
                s.nacked = true;
                marked += 1;
            }
        }
        if marked > 0 {
            self.next_due_ns = 0;
        }
        Ok(marked)
    }

    /// Calls `due(seq, body)`, lowest sequence first, for every datagram to
    /// retransmit now: nacked ones, and those unacknowledged for their
    /// retransmit timeout (which then doubles, up to `rto_max_ns`). The
    /// caller re-seals and transmits each. Returns how many were due.
    ///
    /// A datagram due after `max_retries` retransmissions is given up
    /// instead: its slot is freed (counted `gave_up`) and `(seq, tag)`
    /// queued for [`SendWindow::take_lost`]. If that queue is full (the
    /// caller has not taken `window` earlier losses) the give-up waits and
    /// the datagram keeps its slot: the window fills and the caller is
    /// pushed back rather than a loss being forgotten.
    ///
    /// Cheap when nothing is due; otherwise one pass over the window.
    pub fn poll(&mut self, now_ns: u64, due: &mut impl FnMut(u64, &[u8])) -> usize {
        if now_ns < self.next_due_ns {
            return 0;
        }
        let mut count = 0;
        let mut next_due_ns = u64::MAX;
        for seq in self.base..self.next {
            let i = slot_of(seq, self.cfg.window);
            let s = &mut self.slots[i];
            if s.seq != seq {
                continue;
            }
            let timed_out = now_ns >= s.due_ns;
            if s.nacked || timed_out {
                if s.retries >= self.cfg.max_retries {
                    if self.lost_len < self.lost.len() {
                        let at = (self.lost_head + self.lost_len) % self.lost.len();
                        self.lost[at] = (seq, s.tag);
                        self.lost_len += 1;
                        s.seq = 0;
                        self.held -= 1;
                        self.stats.gave_up += 1;
                        continue;
                    }
                    // Deferred: look again at the next poll.
                    next_due_ns = next_due_ns.min(now_ns);
                    continue;
                }
                if timed_out {
                    s.rto_ns = s.rto_ns.saturating_mul(2).min(self.cfg.rto_max_ns);
                    self.stats.timeouts += 1;
                }
                s.retries += 1;
                s.nacked = false;
                s.last_sent_ns = now_ns;
                s.due_ns = now_ns.saturating_add(s.rto_ns);
                self.stats.retransmitted += 1;
                count += 1;
                let start = i * self.cfg.max_body;
                due(seq, &self.bodies[start..start + s.len]);
            }
            next_due_ns = next_due_ns.min(s.due_ns);
        }
        self.next_due_ns = next_due_ns;
        self.advance_base();
        count
    }

    /// The oldest datagram given up and not yet taken, as `(seq, tag)`:
    /// the caller tells the receiver and marks the shards in `tag` for
    /// resync. The datagram may in fact have arrived (only its acks were
    /// lost, as on a one-way link): the resync is then redundant, never
    /// harmful, whereas trusting it had arrived could leave a shard stale.
    pub fn take_lost(&mut self) -> Option<(u64, u64)> {
        if self.lost_len == 0 {
            return None;
        }
        let lost = self.lost[self.lost_head];
        self.lost_head = (self.lost_head + 1) % self.lost.len();
        self.lost_len -= 1;
        Some(lost)
    }

    /// The lowest sequence still held, or the next to send when none is.
    /// Carried to the receiver ([`ReceiveWindow::on_first_held`]): a
    /// sequence below it that the receiver still misses was given up and
    /// will never come. It never decreases.
    pub fn first_held(&self) -> u64 {
        self.base
    }

    /// The sequence the next [`SendWindow::send`] will return.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Datagrams held: sent and neither acknowledged nor given up.
    pub fn unacked(&self) -> usize {
        self.held
    }

    /// How the partner is doing, as seen from here; see [`SenderHealth`].
    pub fn health(&self, now_ns: u64) -> SenderHealth {
        let oldest_unacked_age_ns = (self.held > 0).then(|| {
            let first = self.slots[slot_of(self.base, self.cfg.window)].first_sent_ns;
            now_ns.saturating_sub(first)
        });
        SenderHealth {
            unacked: self.held,
            oldest_unacked_age_ns,
            last_ack_age_ns: self.last_ack_ns.map(|t| now_ns.saturating_sub(t)),
        }
    }

    /// The counters.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The configuration this window was built with.
    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// Moves `base` past freed slots (acked or given up), so it is the
    /// lowest held sequence again. At most `window` steps.
    fn advance_base(&mut self) {
        while self.base < self.next
            && self.slots[slot_of(self.base, self.cfg.window)].seq != self.base
        {
            self.base += 1;
        }
        if self.held == 0 {
            self.next_due_ns = u64::MAX;
        }
    }
}

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

/// What [`ReceiveWindow::on_datagram`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// It was the next expected: delivered, with this many in all (itself
    /// and the buffered ones it put back in order).
    Delivered(usize),
    /// It arrived early, within the reorder buffer: kept until the gap
    /// before it fills.
    Buffered,
    /// Already delivered or already buffered: dropped.
    Duplicate,
    /// Too far past a gap for the reorder buffer: dropped (the sender will
    /// retransmit it). Only from a sender with a larger window than this
    /// buffer, or one that gave up sequences the receiver has not yet
    /// heard of through `first_held`.
    BeyondWindow,
}

/// What [`ReceiveWindow::on_first_held`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Sequences declared lost for good.
    pub lost: u64,
    /// Datagrams delivered (buffered ones now in order).
    pub delivered: usize,
}

/// What to send back to the sender now ([`ReceiveWindow::poll`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Cumulative ack: every sequence `≤` it was delivered (or declared
    /// lost). `Some(0)` before anything was: it still tells the sender the
    /// link is alive.
    pub ack: Option<u64>,
    /// A missing range, `(first, last)` inclusive: the lowest gap whose
    /// nack is due (one per poll; with several gaps open, the next poll
    /// nacks the next).
    pub nack: Option<(u64, u64)>,
}

/// Counters of a [`ReceiveWindow`], in datagrams (or sequences, or
/// messages) since it was built; [`ReceiveWindow::reset`] keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// [`ReceiveWindow::on_datagram`] calls.
    pub received: u64,
    /// Datagrams delivered.
    pub delivered: u64,
    /// Datagrams already delivered or buffered.
    pub duplicates: u64,
    /// Datagrams kept in the reorder buffer.
    pub buffered: u64,
    /// Datagrams dropped for arriving beyond the reorder buffer.
    pub beyond_window: u64,
    /// Sequences skipped because the sender gave them up (a loss: a resync
    /// is needed).
    pub lost: u64,
    /// Nacks sent (in [`Feedback`]).
    pub nacks_sent: u64,
    /// Acks sent (in [`Feedback`]).
    pub acks_sent: u64,
    /// Datagrams refused: sequence 0, implausible, or too big.
    pub invalid: u64,
    /// `first_held` values refused: 0 or implausible.
    pub bogus_first_held: u64,
}

/// What a [`ReceiveWindow`] knows about the stream, so a stale passive is
/// visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverHealth {
    /// Nanoseconds the current gap (the next expected sequence missing
    /// while a later one arrived) has been open; `None` when there is none.
    pub gap_open_for_ns: Option<u64>,
    /// Nanoseconds since the last valid datagram; `None` if none ever came.
    pub last_datagram_age_ns: Option<u64>,
    /// Datagrams delivered so far.
    pub delivered: u64,
}

/// One datagram in the reorder buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Early {
    /// Its sequence; 0 when the slot is free.
    seq: u64,
    /// Bytes of body in the slot's storage.
    len: usize,
    /// When it arrived: a gap just before it has been known since then.
    arrived_ns: u64,
    /// When the gap just before it was last nacked.
    nacked_ns: Option<u64>,
}

/// The receiver's half of the channel: delivers bodies in order, exactly
/// once, and says what to ack and nack. See the module docs.
///
/// The reorder buffer holds sequences `expected + 1 ..= expected + reorder`
/// in slots indexed by `seq % reorder`. Every gap (a run of missing
/// sequences) below a buffered datagram is nacked on its own timers, kept
/// in that datagram's slot; a gap with no buffered datagram past it (only
/// datagrams beyond the buffer, dropped, showed it) is the *tail* gap.
pub struct ReceiveWindow {
    cfg: ChannelConfig,
    slots: Vec<Early>,
    /// `reorder × max_body` bytes, slot `i` at `i × max_body`.
    bodies: Vec<u8>,
    /// The next sequence to deliver; everything below was delivered or
    /// declared lost.
    expected: u64,
    /// The highest sequence seen (0: none). A gap is open when it is
    /// `≥ expected`: something later arrived while `expected` did not.
    highest_seen: u64,
    /// Datagrams in the reorder buffer.
    buffered: usize,
    /// Since when the tail gap has been known.
    tail_since_ns: u64,
    /// When the tail gap was last nacked.
    tail_nacked_ns: Option<u64>,
    /// No gap's nack is due before this (a lower bound): lets
    /// [`ReceiveWindow::poll`] skip the scan of the buffer.
    nack_check_ns: u64,
    last_ack_ns: Option<u64>,
    /// Deliveries not yet acknowledged.
    unacked_deliveries: u64,
    /// Since when an ack has been owed (a delivery, a duplicate, a skip).
    ack_owed_since_ns: Option<u64>,
    last_datagram_ns: Option<u64>,
    resync_needed: bool,
    stats: ReceiveStats,
}

impl std::fmt::Debug for ReceiveWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveWindow")
            .field("expected", &self.expected)
            .field("highest_seen", &self.highest_seen)
            .field("buffered", &self.buffered)
            .field("resync_needed", &self.resync_needed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ReceiveWindow {
    /// A receiver for `cfg` expecting sequence 1, with all its memory: a
    /// reorder buffer of `reorder` slots of `max_body` bytes.
    pub fn new(cfg: ChannelConfig) -> Result<ReceiveWindow, ChannelError> {
        cfg.validate()?;
        Ok(ReceiveWindow {
            cfg,
            slots: vec![Early::default(); cfg.reorder],
            bodies: vec![0; cfg.reorder * cfg.max_body],
            expected: 1,
            highest_seen: 0,
            buffered: 0,
            tail_since_ns: 0,
            tail_nacked_ns: None,
            nack_check_ns: u64::MAX,
            last_ack_ns: None,
            unacked_deliveries: 0,
            ack_owed_since_ns: None,
            last_datagram_ns: None,
            resync_needed: false,
            stats: ReceiveStats::default(),
        })
    }

    /// Takes datagram `seq` (already opened and authenticated by the
    /// caller). If it is the next expected, calls `deliver(seq, body)` for
    /// it and then for every buffered one now in order; if it is early, it
    /// is kept; duplicates and datagrams beyond the reorder buffer are
    /// dropped and counted.
    ///
    /// Refused (counted `invalid`): sequence 0, `u64::MAX` or more than
    /// [`MAX_SKIP`] ahead, and bodies over `max_body`.
    pub fn on_datagram(
        &mut self,
        now_ns: u64,
        seq: u64,
        body: &[u8],
        deliver: &mut impl FnMut(u64, &[u8]),
    ) -> Result<Receipt, ChannelError> {
        self.stats.received += 1;
        if seq == 0 {
            self.stats.invalid += 1;
            return Err(ChannelError::ZeroSequence);
        }
        if seq > MAX_SEQ || seq.saturating_sub(self.expected) > MAX_SKIP {
            self.stats.invalid += 1;
            return Err(ChannelError::Implausible {
                seq,
                expected: self.expected,
            });
        }
        if body.len() > self.cfg.max_body {
            self.stats.invalid += 1;
            return Err(ChannelError::TooBig {
                len: body.len(),
                max: self.cfg.max_body,
            });
        }
        self.last_datagram_ns = Some(now_ns);
        if seq < self.expected {
            // The sender retransmitted what was delivered: our ack was
            // probably lost, so owe it another.
            self.stats.duplicates += 1;
            self.ack_owed_since_ns.get_or_insert(now_ns);
            return Ok(Receipt::Duplicate);
        }
        let ahead = seq - self.expected;
        let receipt = if ahead == 0 {
            deliver(seq, body);
            self.expected += 1;
            let n = 1 + self.drain(deliver);
            self.note_delivered(now_ns, n);
            Receipt::Delivered(n)
        } else if ahead <= self.cfg.reorder as u64 {
            let i = slot_of(seq, self.cfg.reorder);
            // The slot can hold no other sequence of the buffer's range.
            if self.slots[i].seq == seq {
                self.stats.duplicates += 1;
                return Ok(Receipt::Duplicate);
            }
            let start = i * self.cfg.max_body;
            self.bodies[start..start + body.len()].copy_from_slice(body);
            self.slots[i] = Early {
                seq,
                len: body.len(),
                arrived_ns: now_ns,
                nacked_ns: None,
            };
            self.buffered += 1;
            self.stats.buffered += 1;
            self.highest_seen = self.highest_seen.max(seq);
            // A gap before it, new or split off another, is due after the
            // reordering grace.
            self.nack_check_ns = self
                .nack_check_ns
                .min(now_ns.saturating_add(self.cfg.nack_delay_ns));
            Receipt::Buffered
        } else {
            self.stats.beyond_window += 1;
            if !self.tail_open() {
                self.tail_since_ns = now_ns;
                self.tail_nacked_ns = None;
            }
            self.highest_seen = self.highest_seen.max(seq);
            self.nack_check_ns = self
                .nack_check_ns
                .min(now_ns.saturating_add(self.cfg.nack_delay_ns));
            Receipt::BeyondWindow
        };
        Ok(receipt)
    }

    /// The sender says it holds nothing below `first_held`
    /// ([`SendWindow::first_held`]): every sequence still missing below it
    /// was given up and is lost for good. Skips past them, calling
    /// `deliver` for the buffered ones now in order, counts the missing
    /// ones `lost` and remembers that a resync is needed
    /// ([`ReceiveWindow::take_resync_needed`]). A `first_held` at or below
    /// what was already delivered (the usual case) does nothing.
    ///
    /// Refused (counted `bogus_first_held`): 0, and more than [`MAX_SKIP`]
    /// ahead of the next expected sequence. Work is bounded by the reorder
    /// buffer whatever the distance.
    pub fn on_first_held(
        &mut self,
        now_ns: u64,
        first_held: u64,
        deliver: &mut impl FnMut(u64, &[u8]),
    ) -> Result<Skipped, ChannelError> {
        if first_held == 0 {
            self.stats.bogus_first_held += 1;
            return Err(ChannelError::ZeroSequence);
        }
        if first_held <= self.expected {
            return Ok(Skipped::default());
        }
        let distance = first_held - self.expected;
        if distance > MAX_SKIP {
            self.stats.bogus_first_held += 1;
            return Err(ChannelError::Implausible {
                seq: first_held,
                expected: self.expected,
            });
        }
        // Buffered sequences lie in `expected + 1 ..= expected + reorder`:
        // look at those below `first_held`, count the rest as missing.
        let span = distance.min(self.cfg.reorder as u64 + 1);
        let mut lost = distance - span;
        let mut delivered = 0;
        let from = self.expected;
        for seq in from..from + span {
            let i = slot_of(seq, self.cfg.reorder);
            let early = self.slots[i];
            if early.seq == seq {
                let start = i * self.cfg.max_body;
                deliver(seq, &self.bodies[start..start + early.len]);
                self.slots[i].seq = 0;
                self.buffered -= 1;
                delivered += 1;
            } else {
                lost += 1;
            }
        }
        self.expected = first_held;
        delivered += self.drain(deliver);
        self.stats.lost += lost;
        if lost > 0 {
            self.resync_needed = true;
        }
        // The sender must hear where we are now, delivered or not.
        self.note_delivered(now_ns, delivered);
        self.ack_owed_since_ns.get_or_insert(now_ns);
        Ok(Skipped { lost, delivered })
    }

    /// Whether a loss was declared since the last call (and clears it):
    /// the daemon then asks the sender for a resync of the shards involved.
    pub fn take_resync_needed(&mut self) -> bool {
        std::mem::take(&mut self.resync_needed)
    }

    /// What to send back now. An ack when `ack_every` deliveries are
    /// unacknowledged, when one has been owed for `ack_delay_ns`, when none
    /// was sent for `ack_interval_ns` (idle keep-alive) or along with a
    /// nack. A nack of the lowest gap that is due: open for `nack_delay_ns`
    /// (reordering grace) and not nacked for `nack_interval_ns`. Each gap
    /// has its own timers, so with several gaps open successive polls nack
    /// each in turn and all are repaired in parallel, not one round trip
    /// after another. Call it often (every loop turn) and send what is
    /// `Some`.
    ///
    /// Cheap when no nack can be due; otherwise one pass over the reorder
    /// buffer at most.
    pub fn poll(&mut self, now_ns: u64) -> Feedback {
        let mut feedback = Feedback::default();
        if self.gap_open() && now_ns >= self.nack_check_ns {
            feedback.nack = self.due_gap(now_ns);
            if feedback.nack.is_some() {
                self.stats.nacks_sent += 1;
            }
        }
        let ack = feedback.nack.is_some()
            || self.unacked_deliveries >= u64::from(self.cfg.ack_every)
            || self
                .ack_owed_since_ns
                .is_some_and(|t| now_ns.saturating_sub(t) >= self.cfg.ack_delay_ns)
            || self
                .last_ack_ns
                .is_none_or(|t| now_ns.saturating_sub(t) >= self.cfg.ack_interval_ns);
        if ack {
            feedback.ack = Some(self.expected - 1);
            self.last_ack_ns = Some(now_ns);
            self.unacked_deliveries = 0;
            self.ack_owed_since_ns = None;
            self.stats.acks_sent += 1;
        }
        feedback
    }

    /// Starts a new sender epoch (the sender restarted and numbers from
    /// `first_expected`; 0 is taken as 1): forgets the reorder buffer, the
    /// gap and the ack state, and acks at the next poll. Keeps the stats
    /// and a pending resync flag.
    pub fn reset(&mut self, first_expected: u64) {
        for slot in &mut self.slots {
            slot.seq = 0;
        }
        self.expected = first_expected.max(1);
        self.highest_seen = self.expected - 1;
        self.buffered = 0;
        self.tail_since_ns = 0;
        self.tail_nacked_ns = None;
        self.nack_check_ns = u64::MAX;
        self.last_ack_ns = None;
        self.unacked_deliveries = 0;
        self.ack_owed_since_ns = None;
    }

    /// The next sequence to deliver.
    pub fn next_expected(&self) -> u64 {
        self.expected
    }

    /// How the stream is doing; see [`ReceiverHealth`].
    pub fn health(&self, now_ns: u64) -> ReceiverHealth {
        ReceiverHealth {
            gap_open_for_ns: self.gap_open().then(|| {
                let since = self
                    .lowest_buffered()
                    .map_or(self.tail_since_ns, |early| early.arrived_ns);
                now_ns.saturating_sub(since)
            }),
            last_datagram_age_ns: self.last_datagram_ns.map(|t| now_ns.saturating_sub(t)),
            delivered: self.stats.delivered,
        }
    }

    /// The counters.
    pub fn stats(&self) -> ReceiveStats {
        self.stats
    }

    /// The configuration this window was built with.
    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    fn gap_open(&self) -> bool {
        self.highest_seen >= self.expected
    }

    /// Delivers buffered datagrams from `expected` on while they are in
    /// order; returns how many. At most `reorder`.
    fn drain(&mut self, deliver: &mut impl FnMut(u64, &[u8])) -> usize {
        let mut n = 0;
        while self.buffered > 0 {
            let i = slot_of(self.expected, self.cfg.reorder);
            let early = self.slots[i];
            if early.seq != self.expected {
                break;
            }
            let start = i * self.cfg.max_body;
            deliver(early.seq, &self.bodies[start..start + early.len]);
            self.slots[i].seq = 0;
            self.buffered -= 1;
            self.expected += 1;
            n += 1;
        }
        n
    }

    fn note_delivered(&mut self, now_ns: u64, n: usize) {
        if n == 0 {
            return;
        }
        self.stats.delivered += n as u64;
        self.unacked_deliveries += n as u64;
        self.ack_owed_since_ns.get_or_insert(now_ns);
    }

    /// Whether the highest sequence seen is missing: a gap runs up to it
    /// (or to the end of the buffer) with no buffered datagram past it.
    fn tail_open(&self) -> bool {
        let h = self.highest_seen;
        if h < self.expected {
            return false;
        }
        h - self.expected > self.cfg.reorder as u64
            || self.slots[slot_of(h, self.cfg.reorder)].seq != h
    }

    /// The lowest gap whose nack is due, marked nacked now; or `None`, and
    /// then `nack_check_ns` says when the next one will be. Only called
    /// with a gap open.
    fn due_gap(&mut self, now_ns: u64) -> Option<(u64, u64)> {
        let (delay, interval) = (self.cfg.nack_delay_ns, self.cfg.nack_interval_ns);
        let due_at = |since: u64, nacked: Option<u64>| {
            let repeat = nacked.map_or(0, |t| t.saturating_add(interval));
            since.saturating_add(delay).max(repeat)
        };
        // `expected ≤ highest_seen ≤ MAX_SEQ`: nothing below overflows.
        let top = self
            .highest_seen
            .min(self.expected.saturating_add(self.cfg.reorder as u64));
        let mut next_check = u64::MAX;
        // `expected` itself is always missing: a gap starts there.
        let mut gap_first = Some(self.expected);
        if self.buffered > 0 {
            for seq in self.expected.saturating_add(1)..=top {
                let i = slot_of(seq, self.cfg.reorder);
                if self.slots[i].seq != seq {
                    gap_first = gap_first.or(Some(seq));
                    continue;
                }
                if let Some(first) = gap_first.take() {
                    let at = due_at(self.slots[i].arrived_ns, self.slots[i].nacked_ns);
                    if now_ns >= at {
                        self.slots[i].nacked_ns = Some(now_ns);
                        // Others may be due too: look again next poll.
                        self.nack_check_ns = now_ns;
                        return Some((first, seq - 1));
                    }
                    next_check = next_check.min(at);
                }
            }
        }
        if let Some(first) = gap_first {
            let at = due_at(self.tail_since_ns, self.tail_nacked_ns);
            if now_ns >= at {
                self.tail_nacked_ns = Some(now_ns);
                self.nack_check_ns = now_ns;
                return Some((first, top));
            }
            next_check = next_check.min(at);
        }
        self.nack_check_ns = next_check;
        None
    }

    /// The lowest buffered datagram. At most `reorder` slots looked at.
    fn lowest_buffered(&self) -> Option<Early> {
        if self.buffered == 0 {
            return None;
        }
        let top = self
            .highest_seen
            .min(self.expected.saturating_add(self.cfg.reorder as u64));
        // The slot of `seq` holds `seq` or nothing in this range.
        (self.expected.saturating_add(1)..=top).find_map(|seq| {
            let early = self.slots[slot_of(seq, self.cfg.reorder)];
            (early.seq == seq).then_some(early)
        })
    }
}

#[cfg(test)]
// Test data: small numbers made into bytes and lengths on purpose.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    const US: u64 = 1_000;

    /// A window and reorder buffer of `slots` datagrams of 64 bytes.
    fn small(slots: usize) -> ChannelConfig {
        ChannelConfig {
            window: slots,
            reorder: slots,
            max_body: 64,
            ..ChannelConfig::default()
        }
    }

    fn sender(cfg: ChannelConfig) -> SendWindow {
        SendWindow::new(cfg).expect("valid configuration")
    }

    fn receiver(cfg: ChannelConfig) -> ReceiveWindow {
        ReceiveWindow::new(cfg).expect("valid configuration")
    }

    /// Retransmissions handed out by one poll, as `(seq, body)`.
    fn poll_due(s: &mut SendWindow, now_ns: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let n = s.poll(now_ns, &mut |seq, body| out.push((seq, body.to_vec())));
        assert_eq!(n, out.len());
        out
    }

    fn seqs(due: &[(u64, Vec<u8>)]) -> Vec<u64> {
        due.iter().map(|(seq, _)| *seq).collect()
    }

    /// A receiver call that records what it delivers.
    fn recv(
        r: &mut ReceiveWindow,
        now_ns: u64,
        seq: u64,
        body: &[u8],
        got: &mut Vec<u64>,
    ) -> Result<Receipt, ChannelError> {
        r.on_datagram(now_ns, seq, body, &mut |s, _| got.push(s))
    }

    // ---- configuration ----------------------------------------------------

    #[test]
    fn default_config_is_valid_and_as_documented() {
        let c = ChannelConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.window, c.max_body, c.reorder), (1024, 1500, 1024));
        assert_eq!(
            (c.rto_ns, c.rto_max_ns, c.max_retries),
            (50 * MS, 1_000 * MS, 8)
        );
        assert_eq!(c.min_retransmit_gap_ns, 5 * MS);
        assert_eq!(
            (c.ack_delay_ns, c.ack_every, c.ack_interval_ns),
            (MS, 32, 100 * MS)
        );
        assert_eq!((c.nack_delay_ns, c.nack_interval_ns), (2 * MS, 20 * MS));
    }

    #[test]
    fn nonsense_configs_are_refused() {
        let d = ChannelConfig::default();
        let bad = [
            ("window", ChannelConfig { window: 0, ..d }),
            (
                "window",
                ChannelConfig {
                    window: MAX_SLOTS + 1,
                    ..d
                },
            ),
            ("reorder", ChannelConfig { reorder: 0, ..d }),
            (
                "reorder",
                ChannelConfig {
                    reorder: d.window - 1,
                    ..d
                },
            ),
            (
                "reorder",
                ChannelConfig {
                    reorder: MAX_SLOTS + 1,
                    ..d
                },
            ),
            ("max_body", ChannelConfig { max_body: 0, ..d }),
            (
                "max_body",
                ChannelConfig {
                    max_body: MAX_BODY + 1,
                    ..d
                },
            ),
            (
                "window",
                ChannelConfig {
                    window: MAX_SLOTS,
                    reorder: MAX_SLOTS,
                    max_body: 2048,
                    ..d
                },
            ),
            (
                "reorder",
                ChannelConfig {
                    reorder: MAX_SLOTS,
                    max_body: 2048,
                    ..d
                },
            ),
            ("rto_ns", ChannelConfig { rto_ns: 0, ..d }),
            (
                "rto_max_ns",
                ChannelConfig {
                    rto_max_ns: d.rto_ns - 1,
                    ..d
                },
            ),
            ("ack_every", ChannelConfig { ack_every: 0, ..d }),
            (
                "ack_interval_ns",
                ChannelConfig {
                    ack_interval_ns: 0,
                    ..d
                },
            ),
            (
                "nack_interval_ns",
                ChannelConfig {
                    nack_interval_ns: 0,
                    ..d
                },
            ),
        ];
        for (field, cfg) in bad {
            match cfg.validate() {
                Err(ChannelError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
            assert!(SendWindow::new(cfg).is_err());
            assert!(ReceiveWindow::new(cfg).is_err());
        }
    }

    // ---- sender -----------------------------------------------------------

    #[test]
    fn send_numbers_from_one_and_keeps_a_copy() {
        let mut s = sender(small(8));
        assert_eq!(s.first_held(), 1);
        for (i, body) in [&b"a"[..], b"bb", b""].iter().enumerate() {
            assert_eq!(s.send(0, body, 0), Ok(i as u64 + 1));
        }
        assert_eq!(s.body(1), Some(&b"a"[..]));
        assert_eq!(s.body(2), Some(&b"bb"[..]));
        assert_eq!(s.body(3), Some(&b""[..]));
        assert_eq!(s.body(0), None);
        assert_eq!(s.body(4), None);
        assert_eq!(s.body(9), None, "same slot as 1, never sent");
        assert_eq!((s.first_held(), s.next_seq(), s.unacked()), (1, 4, 3));
        assert_eq!(s.stats().sent, 3);
    }

    #[test]
    fn too_big_is_refused_and_counted() {
        let mut s = sender(small(8));
        assert_eq!(
            s.send(0, &[0; 65], 0),
            Err(ChannelError::TooBig { len: 65, max: 64 })
        );
        assert_eq!(s.send(0, &[7; 64], 0), Ok(1), "the sequence was not used");
        assert_eq!(s.stats().too_big, 1);
    }

    #[test]
    fn full_window_pushes_back_and_acks_make_room() {
        let mut s = sender(small(4));
        for seq in 1..=4 {
            assert_eq!(s.send(0, &[seq as u8], 0), Ok(seq));
        }
        assert_eq!(s.send(0, b"x", 0), Err(ChannelError::WindowFull));
        assert_eq!(s.send(0, b"x", 0), Err(ChannelError::WindowFull));
        assert_eq!(s.stats().window_full, 2);
        assert_eq!(s.on_ack(MS, 2), Ok(2));
        assert_eq!(s.send(MS, b"5", 0), Ok(5));
        assert_eq!(s.send(MS, b"6", 0), Ok(6));
        assert_eq!(s.send(MS, b"7", 0), Err(ChannelError::WindowFull));
        // The reused slots hold the new bodies, the old ones are gone.
        assert_eq!(s.body(5), Some(&b"5"[..]));
        assert_eq!(s.body(1), None);
        assert_eq!(s.body(3), Some(&[3][..]));
    }

    #[test]
    fn ack_frees_everything_up_to_it() {
        let mut s = sender(small(8));
        for _ in 0..5 {
            s.send(0, b"x", 0).unwrap();
        }
        assert_eq!(s.on_ack(MS, 3), Ok(3));
        assert_eq!((s.first_held(), s.unacked()), (4, 2));
        assert_eq!(s.body(3), None);
        assert!(s.body(4).is_some());
        assert_eq!(s.on_ack(MS, 3), Ok(0), "a repeated ack frees nothing");
        assert_eq!(s.on_ack(MS, 1), Ok(0), "a stale (reordered) ack too");
        assert_eq!(s.on_ack(MS, 5), Ok(2));
        assert_eq!((s.first_held(), s.next_seq(), s.unacked()), (6, 6, 0));
        assert_eq!(s.stats().acked, 5);
        assert_eq!(
            poll_due(&mut s, 10 * 1_000 * MS),
            vec![],
            "nothing left to time out"
        );
    }

    #[test]
    fn bogus_ack_is_counted_and_ignored() {
        let mut s = sender(small(8));
        assert_eq!(
            s.on_ack(0, 1),
            Err(ChannelError::BogusAck {
                cumulative: 1,
                highest: 0
            })
        );
        s.send(0, b"x", 0).unwrap();
        s.send(0, b"y", 0).unwrap();
        assert!(s.on_ack(0, 3).is_err());
        assert!(s.on_ack(0, u64::MAX).is_err());
        assert_eq!(s.stats().bogus_acks, 3);
        assert_eq!((s.unacked(), s.first_held()), (2, 1));
        assert_eq!(
            s.health(MS).last_ack_age_ns,
            None,
            "a bogus ack is no sign of life"
        );
        assert_eq!(s.on_ack(MS, 0), Ok(0), "an idle receiver's keep-alive");
        assert_eq!(s.health(3 * MS).last_ack_age_ns, Some(2 * MS));
    }

    #[test]
    fn nack_retransmits_at_most_once_per_gap() {
        let mut s = sender(ChannelConfig::default());
        for i in 1..=5u8 {
            s.send(0, &[i], 0).unwrap();
        }
        // Too soon after the first transmission: it may still be in flight.
        assert_eq!(s.on_nack(MS, 2, 3), Ok(0));
        assert_eq!(poll_due(&mut s, MS), vec![]);
        assert_eq!(s.on_nack(6 * MS, 2, 3), Ok(2));
        assert_eq!(
            poll_due(&mut s, 6 * MS),
            vec![(2, vec![2]), (3, vec![3])],
            "due now, bodies as sent"
        );
        // A burst of duplicate nacks does not multiply traffic.
        assert_eq!(s.on_nack(6 * MS, 2, 3), Ok(0));
        assert_eq!(s.on_nack(10 * MS, 1, 3), Ok(1), "1 was never retransmitted");
        assert_eq!(seqs(&poll_due(&mut s, 10 * MS)), vec![1]);
        assert_eq!(s.on_nack(10 * MS, 2, 3), Ok(0));
        assert_eq!(poll_due(&mut s, 10 * MS), vec![]);
        // One gap later the repeated nack is honoured again.
        assert_eq!(s.on_nack(11 * MS, 2, 3), Ok(2));
        assert_eq!(seqs(&poll_due(&mut s, 11 * MS)), vec![2, 3]);
        assert_eq!(s.stats().retransmitted, 5);
        assert_eq!(s.stats().nacks_received, 6);
        // Nacks of sequences already acknowledged are ignored.
        s.on_ack(12 * MS, 3).unwrap();
        assert_eq!(s.on_nack(40 * MS, 1, 3), Ok(0));
        assert_eq!(s.on_nack(40 * MS, 2, 5), Ok(2));
    }

    #[test]
    fn bad_nack_ranges_are_counted_and_ignored() {
        let mut s = sender(small(8));
        for _ in 0..4 {
            s.send(0, b"x", 0).unwrap();
        }
        let now = 10 * MS;
        for (first, last) in [
            (0, 2),
            (3, 2),
            (1, 5),
            (5, 5),
            (u64::MAX, u64::MAX),
            (1, u64::MAX),
            (u64::MAX, 1),
        ] {
            assert_eq!(
                s.on_nack(now, first, last),
                Err(ChannelError::BogusNack {
                    first,
                    last,
                    highest: 4
                })
            );
        }
        assert_eq!(s.stats().bogus_nacks, 7);
        assert_eq!(s.stats().nacks_received, 7);
        assert_eq!(
            poll_due(&mut s, now),
            vec![],
            "nothing marked, nothing timed out"
        );
    }

    #[test]
    fn nack_work_is_bounded_by_the_window() {
        let mut s = sender(ChannelConfig::default());
        for _ in 0..1024 {
            s.send(0, b"x", 0).unwrap();
        }
        s.on_ack(0, 1000).unwrap();
        // The whole sequence space that was ever sent: only 24 are held.
        assert_eq!(s.on_nack(10 * MS, 1, 1024), Ok(24));
        assert_eq!(poll_due(&mut s, 10 * MS).len(), 24);
    }

    #[test]
    fn timeouts_back_off_exponentially_up_to_the_cap() {
        let cfg = ChannelConfig {
            rto_ns: 50 * MS,
            rto_max_ns: 200 * MS,
            max_retries: 10,
            ..small(8)
        };
        let mut s = sender(cfg);
        s.send(0, b"x", 0).unwrap();
        let mut t = 0;
        for wait in [50, 100, 200, 200, 200] {
            t += wait * MS;
            assert_eq!(poll_due(&mut s, t - 1), vec![], "not before {t}");
            assert_eq!(seqs(&poll_due(&mut s, t)), vec![1], "at {t}");
            assert_eq!(poll_due(&mut s, t), vec![], "once");
        }
        // A nack-driven retransmission restarts the timer without doubling.
        s.on_nack(t + 10 * MS, 1, 1).unwrap();
        assert_eq!(seqs(&poll_due(&mut s, t + 10 * MS)), vec![1]);
        assert_eq!(poll_due(&mut s, t + 210 * MS - 1), vec![]);
        assert_eq!(seqs(&poll_due(&mut s, t + 210 * MS)), vec![1]);
    }

    #[test]
    fn give_up_after_max_retries_reports_the_tag_and_moves_first_held() {
        let cfg = ChannelConfig {
            rto_ns: 10 * MS,
            rto_max_ns: 10 * MS,
            max_retries: 2,
            ..small(8)
        };
        let mut s = sender(cfg);
        s.send(0, b"a", 0xA).unwrap();
        s.send(0, b"b", 0xB).unwrap();
        assert_eq!(seqs(&poll_due(&mut s, 10 * MS)), vec![1, 2]);
        assert_eq!(seqs(&poll_due(&mut s, 20 * MS)), vec![1, 2]);
        assert_eq!(s.take_lost(), None);
        assert_eq!(
            poll_due(&mut s, 30 * MS),
            vec![],
            "given up, not retransmitted"
        );
        assert_eq!(s.stats().gave_up, 2);
        assert_eq!(s.take_lost(), Some((1, 0xA)));
        assert_eq!(s.take_lost(), Some((2, 0xB)));
        assert_eq!(s.take_lost(), None);
        assert_eq!((s.first_held(), s.next_seq(), s.unacked()), (3, 3, 0));
        assert_eq!(s.body(1), None);
        assert_eq!(s.health(30 * MS).oldest_unacked_age_ns, None);
        assert_eq!(s.stats().retransmitted, 4);
    }

    #[test]
    fn a_give_up_behind_a_held_datagram_shows_once_that_one_is_acked() {
        let cfg = ChannelConfig {
            max_retries: 1,
            ..small(8)
        };
        let mut s = sender(cfg);
        for tag in 1..=3 {
            s.send(0, b"x", tag).unwrap();
        }
        let gap = cfg.min_retransmit_gap_ns;
        s.on_nack(gap, 2, 2).unwrap();
        assert_eq!(seqs(&poll_due(&mut s, gap)), vec![2]);
        s.on_nack(2 * gap, 2, 2).unwrap();
        assert_eq!(poll_due(&mut s, 2 * gap), vec![]);
        assert_eq!(s.take_lost(), Some((2, 2)));
        assert_eq!(s.first_held(), 1, "1 is still held");
        s.on_ack(3 * gap, 1).unwrap();
        assert_eq!(s.first_held(), 3, "past the freed 2");
        assert_eq!(s.on_ack(3 * gap, 3), Ok(1));
        assert_eq!(s.first_held(), 4);
    }

    #[test]
    fn a_full_lost_queue_defers_give_ups_instead_of_forgetting_them() {
        let cfg = ChannelConfig {
            max_retries: 0,
            ..small(2)
        };
        let rto = cfg.rto_ns;
        let mut s = sender(cfg);
        s.send(0, b"1", 1).unwrap();
        s.send(0, b"2", 2).unwrap();
        assert_eq!(poll_due(&mut s, rto), vec![]);
        assert_eq!(s.stats().gave_up, 2);
        s.send(rto, b"3", 3).unwrap();
        s.send(rto, b"4", 4).unwrap();
        assert_eq!(poll_due(&mut s, 2 * rto), vec![]);
        assert_eq!(s.stats().gave_up, 2, "no room to record 3 and 4");
        assert_eq!((s.unacked(), s.first_held()), (2, 3));
        assert_eq!(s.send(2 * rto, b"5", 5), Err(ChannelError::WindowFull));
        assert_eq!(s.take_lost(), Some((1, 1)));
        assert_eq!(s.take_lost(), Some((2, 2)));
        assert_eq!(s.take_lost(), None);
        assert_eq!(poll_due(&mut s, 2 * rto + 1), vec![]);
        assert_eq!(s.stats().gave_up, 4);
        assert_eq!(s.take_lost(), Some((3, 3)));
        assert_eq!(s.take_lost(), Some((4, 4)));
        assert_eq!(s.first_held(), 5);
    }

    #[test]
    fn sender_health_shows_a_silent_partner() {
        let mut s = sender(small(8));
        assert_eq!(
            s.health(0),
            SenderHealth {
                unacked: 0,
                oldest_unacked_age_ns: None,
                last_ack_age_ns: None
            }
        );
        s.send(MS, b"x", 0).unwrap();
        s.send(2 * MS, b"y", 0).unwrap();
        assert_eq!(
            s.health(8 * MS),
            SenderHealth {
                unacked: 2,
                oldest_unacked_age_ns: Some(7 * MS),
                last_ack_age_ns: None
            }
        );
        s.on_ack(9 * MS, 1).unwrap();
        assert_eq!(
            s.health(10 * MS),
            SenderHealth {
                unacked: 1,
                oldest_unacked_age_ns: Some(8 * MS),
                last_ack_age_ns: Some(MS)
            }
        );
        // A clock that steps back does not panic; ages saturate.
        assert_eq!(s.health(0).oldest_unacked_age_ns, Some(0));
    }

    // ---- receiver ---------------------------------------------------------

    #[test]
    fn in_order_datagrams_are_delivered_at_once() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        let mut bodies = Vec::new();
        for seq in 1..=3u64 {
            let receipt = r.on_datagram(0, seq, &[seq as u8; 3], &mut |s, b| {
                got.push(s);
                bodies.push(b.to_vec());
            });
            assert_eq!(receipt, Ok(Receipt::Delivered(1)));
        }
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(bodies, vec![vec![1; 3], vec![2; 3], vec![3; 3]]);
        assert_eq!(r.next_expected(), 4);
        assert_eq!(r.stats().delivered, 3);
    }

    #[test]
    fn early_datagrams_wait_for_the_gap_and_come_out_in_order() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        let mut bodies = Vec::new();
        let mut take = |r: &mut ReceiveWindow, seq: u64| {
            r.on_datagram(0, seq, &[seq as u8; 2], &mut |s, b| {
                got.push(s);
                bodies.push(b.to_vec());
            })
        };
        assert_eq!(take(&mut r, 3), Ok(Receipt::Buffered));
        assert_eq!(take(&mut r, 2), Ok(Receipt::Buffered));
        assert_eq!(take(&mut r, 5), Ok(Receipt::Buffered));
        assert_eq!(take(&mut r, 1), Ok(Receipt::Delivered(3)));
        assert_eq!(take(&mut r, 4), Ok(Receipt::Delivered(2)));
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(bodies, (1..=5u8).map(|i| vec![i; 2]).collect::<Vec<_>>());
        assert_eq!(r.stats().buffered, 3);
        assert_eq!(r.health(0).gap_open_for_ns, None);
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            recv(&mut r, 0, 1, b"a", &mut got),
            Ok(Receipt::Delivered(1))
        );
        assert_eq!(recv(&mut r, 0, 1, b"a", &mut got), Ok(Receipt::Duplicate));
        assert_eq!(recv(&mut r, 0, 3, b"c", &mut got), Ok(Receipt::Buffered));
        assert_eq!(recv(&mut r, 0, 3, b"c", &mut got), Ok(Receipt::Duplicate));
        assert_eq!(
            recv(&mut r, 0, 2, b"b", &mut got),
            Ok(Receipt::Delivered(2))
        );
        assert_eq!(recv(&mut r, 0, 3, b"c", &mut got), Ok(Receipt::Duplicate));
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(r.stats().duplicates, 3);
        assert_eq!(r.stats().received, 6);
    }

    #[test]
    fn datagrams_beyond_the_reorder_buffer_are_dropped() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            recv(&mut r, 0, 5, b"5", &mut got),
            Ok(Receipt::Buffered),
            "1 + 4"
        );
        assert_eq!(
            recv(&mut r, 0, 6, b"6", &mut got),
            Ok(Receipt::BeyondWindow)
        );
        assert_eq!(r.stats().beyond_window, 1);
        for seq in 1..=3 {
            assert_eq!(
                recv(&mut r, 0, seq, b"x", &mut got),
                Ok(Receipt::Delivered(1))
            );
        }
        assert_eq!(
            recv(&mut r, 0, 4, b"4", &mut got),
            Ok(Receipt::Delivered(2))
        );
        assert_eq!(
            recv(&mut r, 0, 6, b"6", &mut got),
            Ok(Receipt::Delivered(1)),
            "retransmitted"
        );
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn invalid_datagrams_are_refused_and_counted() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            recv(&mut r, 0, 0, b"x", &mut got),
            Err(ChannelError::ZeroSequence)
        );
        for seq in [u64::MAX, MAX_SKIP + 2, MAX_SEQ] {
            assert_eq!(
                recv(&mut r, 0, seq, b"x", &mut got),
                Err(ChannelError::Implausible { seq, expected: 1 })
            );
        }
        assert_eq!(
            recv(&mut r, 0, 1, &[0; 65], &mut got),
            Err(ChannelError::TooBig { len: 65, max: 64 })
        );
        assert_eq!(r.stats().invalid, 5);
        assert_eq!(r.health(0).gap_open_for_ns, None, "nothing trusted");
        assert_eq!(r.health(0).last_datagram_age_ns, None);
        assert_eq!(
            recv(&mut r, 0, MAX_SKIP + 1, b"x", &mut got),
            Ok(Receipt::BeyondWindow)
        );
        assert!(got.is_empty());
    }

    #[test]
    fn first_held_skips_lost_sequences_and_asks_for_a_resync() {
        let mut r = receiver(small(8));
        let mut got = Vec::new();
        recv(&mut r, 0, 1, b"1", &mut got).unwrap();
        recv(&mut r, 0, 3, b"3", &mut got).unwrap();
        recv(&mut r, 0, 5, b"5", &mut got).unwrap();
        assert!(!r.take_resync_needed());
        let skipped = r.on_first_held(MS, 4, &mut |s, _| got.push(s));
        assert_eq!(
            skipped,
            Ok(Skipped {
                lost: 1,
                delivered: 1
            }),
            "2 lost, 3 delivered"
        );
        assert_eq!(r.next_expected(), 4);
        assert!(r.take_resync_needed());
        assert!(!r.take_resync_needed(), "taken");
        assert!(
            r.health(MS).gap_open_for_ns.is_some(),
            "4 still missing, 5 waits"
        );
        // Stale or redundant first_held values change nothing.
        for stale in [1, 3, 4] {
            assert_eq!(
                r.on_first_held(MS, stale, &mut |s, _| got.push(s)),
                Ok(Skipped::default())
            );
        }
        assert_eq!(
            r.on_first_held(MS, 7, &mut |s, _| got.push(s)),
            Ok(Skipped {
                lost: 2,
                delivered: 1
            }),
            "4 and 6 lost, 5 delivered"
        );
        assert_eq!(got, vec![1, 3, 5]);
        assert_eq!(r.stats().lost, 3);
        assert_eq!(r.stats().delivered, 3);
        assert!(r.take_resync_needed());
        assert_eq!(r.health(MS).gap_open_for_ns, None);
        assert_eq!(
            recv(&mut r, MS, 7, b"7", &mut got),
            Ok(Receipt::Delivered(1))
        );
    }

    #[test]
    fn first_held_far_past_the_reorder_buffer() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        recv(&mut r, 0, 2, b"2", &mut got).unwrap();
        recv(&mut r, 0, 3, b"3", &mut got).unwrap();
        // 1000 is not buffered: the skip lands on it and delivers the
        // buffered 2 and 3 on the way.
        assert_eq!(
            r.on_first_held(0, 1000, &mut |s, _| got.push(s)),
            Ok(Skipped {
                lost: 997,
                delivered: 2
            })
        );
        assert_eq!(r.next_expected(), 1000);
        assert_eq!(
            recv(&mut r, 0, 1000, b"k", &mut got),
            Ok(Receipt::Delivered(1))
        );
        assert_eq!(got, vec![2, 3, 1000]);
        // And a skip onto a buffered sequence delivers it and what follows.
        recv(&mut r, 0, 1003, b"x", &mut got).unwrap();
        recv(&mut r, 0, 1004, b"y", &mut got).unwrap();
        assert_eq!(
            r.on_first_held(0, 1003, &mut |s, _| got.push(s)),
            Ok(Skipped {
                lost: 2,
                delivered: 2
            })
        );
        assert_eq!(r.next_expected(), 1005);
    }

    #[test]
    fn implausible_first_held_is_not_trusted() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            r.on_first_held(0, 0, &mut |s, _| got.push(s)),
            Err(ChannelError::ZeroSequence)
        );
        for far in [MAX_SKIP + 2, u64::MAX, MAX_SEQ] {
            assert_eq!(
                r.on_first_held(0, far, &mut |s, _| got.push(s)),
                Err(ChannelError::Implausible {
                    seq: far,
                    expected: 1
                })
            );
        }
        assert_eq!(r.stats().bogus_first_held, 4);
        assert_eq!((r.next_expected(), r.stats().lost), (1, 0));
        assert!(!r.take_resync_needed());
        assert_eq!(
            r.on_first_held(0, MAX_SKIP + 1, &mut |s, _| got.push(s)),
            Ok(Skipped {
                lost: MAX_SKIP,
                delivered: 0
            }),
            "the largest skip believed is bounded work too"
        );
    }

    #[test]
    fn acks_are_delayed_batched_and_kept_alive() {
        let cfg = ChannelConfig {
            ack_every: 4,
            ..small(8)
        };
        let mut r = receiver(cfg);
        let mut got = Vec::new();
        assert_eq!(
            r.poll(0),
            Feedback {
                ack: Some(0),
                nack: None
            },
            "alive before any data"
        );
        assert_eq!(r.poll(0), Feedback::default());
        recv(&mut r, 10 * MS, 1, b"1", &mut got).unwrap();
        assert_eq!(r.poll(10 * MS), Feedback::default(), "held back for more");
        assert_eq!(r.poll(11 * MS - 1), Feedback::default());
        assert_eq!(r.poll(11 * MS).ack, Some(1), "after ack_delay");
        for seq in 2..=5 {
            recv(&mut r, 12 * MS, seq, b"x", &mut got).unwrap();
        }
        assert_eq!(r.poll(12 * MS).ack, Some(5), "ack_every reached: at once");
        assert_eq!(r.poll(50 * MS), Feedback::default());
        assert_eq!(r.poll(112 * MS - 1), Feedback::default());
        assert_eq!(r.poll(112 * MS).ack, Some(5), "idle keep-alive");
        // A duplicate means our ack was lost: owe another.
        assert_eq!(
            recv(&mut r, 120 * MS, 3, b"x", &mut got),
            Ok(Receipt::Duplicate)
        );
        assert_eq!(r.poll(120 * MS), Feedback::default());
        assert_eq!(r.poll(121 * MS).ack, Some(5));
        assert_eq!(r.stats().acks_sent, 5);
    }

    #[test]
    fn gaps_are_nacked_after_the_grace_and_repeated() {
        let mut r = receiver(small(8));
        let mut got = Vec::new();
        recv(&mut r, 0, 1, b"1", &mut got).unwrap();
        r.poll(0);
        recv(&mut r, MS, 4, b"4", &mut got).unwrap();
        assert_eq!(r.poll(2 * MS).nack, None, "reordering grace");
        assert_eq!(
            r.poll(3 * MS),
            Feedback {
                ack: Some(1),
                nack: Some((2, 3))
            },
            "the ack rides along"
        );
        assert_eq!(r.poll(4 * MS).nack, None);
        assert_eq!(r.poll(23 * MS - 1).nack, None);
        assert_eq!(r.poll(23 * MS).nack, Some((2, 3)), "repeated");
        assert_eq!(r.health(23 * MS).gap_open_for_ns, Some(22 * MS));
        // Half the gap fills: the rest keeps its timers (the sender has
        // just retransmitted it), so the next nack comes an interval later.
        recv(&mut r, 24 * MS, 2, b"2", &mut got).unwrap();
        assert_eq!(r.health(24 * MS).gap_open_for_ns, Some(23 * MS));
        assert_eq!(r.poll(24 * MS).nack, None);
        assert_eq!(r.poll(43 * MS - 1).nack, None);
        assert_eq!(r.poll(43 * MS).nack, Some((3, 3)));
        recv(&mut r, 45 * MS, 3, b"3", &mut got).unwrap();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(r.poll(100 * MS).nack, None);
        assert_eq!(r.health(100 * MS).gap_open_for_ns, None);
        assert_eq!(r.stats().nacks_sent, 3);
    }

    #[test]
    fn every_gap_is_nacked_on_its_own_timers() {
        let mut r = receiver(small(16));
        let mut got = Vec::new();
        recv(&mut r, 0, 1, b"1", &mut got).unwrap();
        recv(&mut r, 0, 4, b"4", &mut got).unwrap();
        recv(&mut r, MS, 6, b"6", &mut got).unwrap();
        recv(&mut r, 2 * MS, 9, b"9", &mut got).unwrap();
        let nacks = |r: &mut ReceiveWindow, now| {
            std::iter::from_fn(|| r.poll(now).nack).collect::<Vec<_>>()
        };
        assert_eq!(
            nacks(&mut r, 2 * MS),
            vec![(2, 3)],
            "the others are in their grace"
        );
        assert_eq!(nacks(&mut r, 3 * MS), vec![(5, 5)]);
        assert_eq!(nacks(&mut r, 4 * MS), vec![(7, 8)]);
        assert_eq!(nacks(&mut r, 21 * MS), vec![]);
        assert_eq!(nacks(&mut r, 22 * MS), vec![(2, 3)]);
        assert_eq!(nacks(&mut r, 24 * MS), vec![(5, 5), (7, 8)]);
        // The first gap fills: the ones behind keep their own timers.
        recv(&mut r, 25 * MS, 2, b"2", &mut got).unwrap();
        recv(&mut r, 25 * MS, 3, b"3", &mut got).unwrap();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(nacks(&mut r, 25 * MS), vec![]);
        assert_eq!(nacks(&mut r, 44 * MS), vec![(5, 5), (7, 8)]);
        // A datagram beyond the buffer opens a tail gap, up to what fits.
        assert_eq!(
            recv(&mut r, 45 * MS, 30, b"x", &mut got),
            Ok(Receipt::BeyondWindow)
        );
        assert_eq!(nacks(&mut r, 47 * MS), vec![(10, 21)]);
        assert_eq!(r.stats().nacks_sent, 9);
    }

    #[test]
    fn a_gap_seen_only_beyond_the_buffer_is_nacked_up_to_what_fits() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            recv(&mut r, 0, 10, b"x", &mut got),
            Ok(Receipt::BeyondWindow)
        );
        assert_eq!(r.poll(2 * MS).nack, Some((1, 5)));
    }

    #[test]
    fn reset_starts_a_new_epoch() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        recv(&mut r, 0, 1, b"1", &mut got).unwrap();
        recv(&mut r, 0, 3, b"3", &mut got).unwrap();
        r.poll(0);
        r.reset(100);
        assert_eq!(r.next_expected(), 100);
        assert_eq!(r.health(MS).gap_open_for_ns, None);
        assert_eq!(r.poll(MS).ack, Some(99), "tells the new sender at once");
        assert_eq!(recv(&mut r, MS, 3, b"3", &mut got), Ok(Receipt::Duplicate));
        assert_eq!(recv(&mut r, MS, 101, b"e", &mut got), Ok(Receipt::Buffered));
        assert_eq!(
            recv(&mut r, MS, 100, b"d", &mut got),
            Ok(Receipt::Delivered(2))
        );
        assert_eq!(got, vec![1, 100, 101], "the old buffered 3 is gone");
        assert_eq!(r.stats().delivered, 3, "stats are kept");
        r.reset(0);
        assert_eq!(r.next_expected(), 1);
    }

    #[test]
    fn receiver_health_shows_a_stale_stream() {
        let mut r = receiver(small(4));
        let mut got = Vec::new();
        assert_eq!(
            r.health(0),
            ReceiverHealth {
                gap_open_for_ns: None,
                last_datagram_age_ns: None,
                delivered: 0
            }
        );
        recv(&mut r, 5 * MS, 1, b"1", &mut got).unwrap();
        recv(&mut r, 6 * MS, 3, b"3", &mut got).unwrap();
        assert_eq!(
            r.health(9 * MS),
            ReceiverHealth {
                gap_open_for_ns: Some(3 * MS),
                last_datagram_age_ns: Some(3 * MS),
                delivered: 1
            }
        );
    }

    // ---- hostile peer -----------------------------------------------------

    /// xorshift64: a deterministic pseudo-random source.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn chance(&mut self, per_million: u64) -> bool {
            self.below(1_000_000) < per_million
        }

        /// A number a hostile peer might pick, near `around` or extreme.
        fn nasty(&mut self, around: u64) -> u64 {
            match self.below(8) {
                0 => 0,
                1 => u64::MAX,
                2 => MAX_SEQ,
                3 => self.next(),
                4 => around.saturating_add(MAX_SKIP),
                _ => around.saturating_add(self.below(40)).saturating_sub(20),
            }
        }
    }

    #[test]
    fn hostile_feedback_never_panics_and_is_counted() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut s = sender(ChannelConfig {
            window: 64,
            ..small(64)
        });
        let mut now = 0;
        let mut first_held = s.first_held();
        for _ in 0..50_000 {
            now += rng.below(2 * MS);
            let next = s.next_seq();
            match rng.below(4) {
                0 => {
                    let _ = s.send(now, b"x", rng.next());
                }
                1 => {
                    let _ = s.on_ack(now, rng.nasty(next));
                }
                2 => {
                    let _ = s.on_nack(now, rng.nasty(next), rng.nasty(next));
                }
                _ => {
                    s.poll(now, &mut |seq, _| assert!(seq >= first_held && seq < next));
                    while s.take_lost().is_some() {}
                }
            }
            assert!(s.unacked() <= 64);
            assert!(s.first_held() >= first_held, "first_held never goes back");
            assert!(s.first_held() <= s.next_seq());
            first_held = s.first_held();
        }
        let st = s.stats();
        assert!(st.bogus_acks > 1000 && st.bogus_nacks > 1000, "{st:?}");
        assert_eq!(st.sent, st.acked + st.gave_up + s.unacked() as u64);
    }

    #[test]
    fn hostile_datagrams_never_panic_and_nothing_is_delivered_twice() {
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        let mut r = receiver(small(16));
        let mut now = 0;
        let mut last = 0;
        let mut check = |seq: u64, _: &[u8]| {
            assert!(seq > last, "{seq} after {last}");
            last = seq;
        };
        for _ in 0..50_000 {
            now += rng.below(MS);
            let expected = r.next_expected();
            match rng.below(4) {
                0 | 1 => {
                    let len = rng.below(70) as usize;
                    let _ = r.on_datagram(now, rng.nasty(expected), &[0; 70][..len], &mut check);
                }
                2 => {
                    let _ = r.on_first_held(now, rng.nasty(expected), &mut check);
                }
                _ => {
                    if let Some((first, last)) = r.poll(now).nack {
                        assert!(first <= last);
                    }
                }
            }
            assert!(r.next_expected() >= expected);
        }
        let st = r.stats();
        assert!(st.invalid > 1000 && st.bogus_first_held > 1000, "{st:?}");
    }

    // ---- simulated link ---------------------------------------------------

    #[derive(Debug, Clone)]
    enum Msg {
        Data {
            seq: u64,
            first_held: u64,
            body: Vec<u8>,
        },
        Feedback(Feedback),
    }

    /// A message in flight, ordered by arrival time then by send order.
    struct InFlight {
        at: u64,
        id: u64,
        msg: Msg,
    }

    impl PartialEq for InFlight {
        fn eq(&self, other: &InFlight) -> bool {
            (self.at, self.id) == (other.at, other.id)
        }
    }

    impl Eq for InFlight {}

    impl PartialOrd for InFlight {
        fn partial_cmp(&self, other: &InFlight) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for InFlight {
        fn cmp(&self, other: &InFlight) -> std::cmp::Ordering {
            (self.at, self.id).cmp(&(other.at, other.id))
        }
    }

    /// One direction of a UDP path: loses, delays by 0.1 to 5.1 ms (so it
    /// reorders) and duplicates, deterministically.
    struct Link {
        rng: XorShift,
        loss_per_million: u64,
        dup_per_million: u64,
        /// Every transmission of this sequence is lost.
        black_hole: Option<u64>,
        queue: BinaryHeap<Reverse<InFlight>>,
        ids: u64,
    }

    impl Link {
        fn new(seed: u64, loss_per_million: u64, dup_per_million: u64) -> Link {
            Link {
                rng: XorShift(seed),
                loss_per_million,
                dup_per_million,
                black_hole: None,
                queue: BinaryHeap::new(),
                ids: 0,
            }
        }

        fn send(&mut self, now: u64, msg: Msg) {
            if matches!(msg, Msg::Data { seq, .. } if Some(seq) == self.black_hole) {
                return;
            }
            let copies = if self.rng.chance(self.dup_per_million) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if self.rng.chance(self.loss_per_million) {
                    continue;
                }
                let at = now + 100 * US + self.rng.below(5 * MS + 1);
                self.ids += 1;
                self.queue.push(Reverse(InFlight {
                    at,
                    id: self.ids,
                    msg: msg.clone(),
                }));
            }
        }

        fn recv(&mut self, now: u64) -> Option<Msg> {
            if self.queue.peek()?.0.at > now {
                return None;
            }
            self.queue.pop().map(|Reverse(f)| f.msg)
        }
    }

    /// A body that encodes its own number `n` (sent as sequence `n + 1`),
    /// 8 to 64 bytes long.
    fn body_of(n: u64) -> Vec<u8> {
        let mut body = n.to_le_bytes().to_vec();
        body.extend((0..n % 57).map(|i| (n ^ i) as u8));
        body
    }

    fn number_of(body: &[u8]) -> u64 {
        let n = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        assert_eq!(body, body_of(n), "body of {n} intact");
        n
    }

    /// A sender and a receiver joined by two [`Link`]s, driven in 100 µs
    /// steps of an explicit clock. The sender carries its `first_held`
    /// in every datagram, as the daemon's header does.
    struct Sim {
        now: u64,
        s: SendWindow,
        r: ReceiveWindow,
        data: Link,
        back: Link,
        total: u64,
        queued: u64,
        /// The next number the receiver must deliver.
        next_delivery: u64,
        delivered: Vec<u64>,
    }

    impl Sim {
        fn new(cfg: ChannelConfig, total: u64, data: Link, back: Link) -> Sim {
            Sim {
                now: 0,
                s: sender(cfg),
                r: receiver(cfg),
                data,
                back,
                total,
                queued: 0,
                next_delivery: 0,
                delivered: Vec::new(),
            }
        }

        fn step(&mut self) {
            self.now += 100 * US;
            let now = self.now;
            // Drain the application's queue until the window pushes back.
            for _ in 0..16 {
                if self.queued == self.total {
                    break;
                }
                let body = body_of(self.queued);
                match self.s.send(now, &body, 1 << (self.queued % 64)) {
                    Ok(seq) => {
                        assert_eq!(seq, self.queued + 1);
                        let first_held = self.s.first_held();
                        self.data.send(
                            now,
                            Msg::Data {
                                seq,
                                first_held,
                                body,
                            },
                        );
                        self.queued += 1;
                    }
                    Err(ChannelError::WindowFull) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            let mut due = Vec::new();
            self.s
                .poll(now, &mut |seq, body| due.push((seq, body.to_vec())));
            let first_held = self.s.first_held();
            for (seq, body) in due {
                self.data.send(
                    now,
                    Msg::Data {
                        seq,
                        first_held,
                        body,
                    },
                );
            }
            let Sim {
                r,
                data,
                next_delivery,
                delivered,
                ..
            } = self;
            let mut deliver = |seq: u64, body: &[u8]| {
                let n = number_of(body);
                assert_eq!(seq, n + 1);
                assert_eq!(n, *next_delivery, "in order, each once");
                *next_delivery += 1;
                delivered.push(seq);
            };
            while let Some(msg) = data.recv(now) {
                let Msg::Data {
                    seq,
                    first_held,
                    body,
                } = msg
                else {
                    unreachable!("data link carries data")
                };
                r.on_first_held(now, first_held, &mut deliver)
                    .expect("honest first_held");
                r.on_datagram(now, seq, &body, &mut deliver)
                    .expect("honest datagram");
            }
            let feedback = self.r.poll(now);
            if feedback != Feedback::default() {
                self.back.send(now, Msg::Feedback(feedback));
            }
            while let Some(msg) = self.back.recv(now) {
                let Msg::Feedback(feedback) = msg else {
                    unreachable!("feedback link carries feedback")
                };
                if let Some(ack) = feedback.ack {
                    self.s.on_ack(now, ack).expect("honest ack");
                }
                if let Some((first, last)) = feedback.nack {
                    self.s.on_nack(now, first, last).expect("honest nack");
                }
            }
        }

        /// Steps until everything is delivered and acknowledged; returns
        /// the simulated time it took.
        fn run_to_completion(&mut self, deadline: u64) -> u64 {
            while !(self.queued == self.total && self.s.unacked() == 0) {
                assert!(self.now < deadline, "stuck: {:?} {:?}", self.s, self.r);
                self.step();
            }
            self.now
        }
    }

    fn lossy_link(cfg: ChannelConfig, loss_per_million: u64, seed: u64) -> SendStats {
        let total = 20_000;
        let data = Link::new(seed, loss_per_million, 10_000);
        let back = Link::new(seed.rotate_left(17) ^ 0x5555, loss_per_million, 10_000);
        let mut sim = Sim::new(cfg, total, data, back);
        let took = sim.run_to_completion(600 * 1_000 * MS);
        assert_eq!(sim.delivered, (1..=total).collect::<Vec<_>>());
        assert_eq!(sim.next_delivery, total);
        assert_eq!((sim.s.unacked(), sim.s.first_held()), (0, total + 1));
        assert_eq!(sim.s.take_lost(), None);
        let (ss, rs) = (sim.s.stats(), sim.r.stats());
        assert_eq!(
            (ss.sent, ss.acked, ss.gave_up, ss.bogus_acks, ss.bogus_nacks),
            (total, total, 0, 0, 0)
        );
        assert_eq!(
            (rs.delivered, rs.lost, rs.invalid, rs.bogus_first_held),
            (total, 0, 0, 0)
        );
        assert!(!sim.r.take_resync_needed());
        assert!(ss.retransmitted > 0 && rs.duplicates > 0 && rs.buffered > 0 && rs.nacks_sent > 0);
        eprintln!(
            "loss {loss_per_million} ppm: {} ms simulated\n{ss:?}\n{rs:?}",
            took / MS
        );
        ss
    }

    #[test]
    fn lossy_link_5_percent_delivers_everything_in_order_once() {
        lossy_link(ChannelConfig::default(), 50_000, 0x2545_F491_4F6C_DD1D);
    }

    #[test]
    fn timers_suited_to_the_link_retransmit_only_what_was_lost() {
        // This link's round trip is up to 10.2 ms and it reorders by up to
        // 5 ms: a grace above the reordering, a retransmit gap above the
        // round trip and a timeout above the repair time.
        let cfg = ChannelConfig {
            rto_ns: 200 * MS,
            nack_delay_ns: 6 * MS,
            min_retransmit_gap_ns: 11 * MS,
            ..ChannelConfig::default()
        };
        let stats = lossy_link(cfg, 50_000, 0x2545_F491_4F6C_DD1D);
        // 5 % of 20 000 first transmissions, then 5 % of those, …: ~1 050.
        assert_eq!(stats.timeouts, 0);
        assert!(stats.retransmitted < 1_200, "{stats:?}");
    }

    #[test]
    fn lossy_link_30_percent_delivers_everything_in_order_once() {
        // At 30 % loss, 9 transmissions (8 retries) all fail with
        // probability 0.3⁹ ≈ 2·10⁻⁵, so 20 000 datagrams would see a
        // give-up about one run in three: a link this bad needs more
        // retries (0.3²¹ ≈ 10⁻¹¹), which is what the knob is for.
        let cfg = ChannelConfig {
            max_retries: 20,
            ..ChannelConfig::default()
        };
        lossy_link(cfg, 300_000, 0x9E37_79B9_7F4A_7C15);
    }

    /// Data gets through (except, in the first case, every copy of
    /// sequence 3), feedback never does.
    fn one_way_link(black_hole: Option<u64>) -> Sim {
        let cfg = ChannelConfig::default();
        let mut data = Link::new(7, 0, 0);
        data.black_hole = black_hole;
        let back = Link::new(11, 1_000_000, 0);
        let mut sim = Sim::new(cfg, 10, data, back);
        while sim.now < 1_000 * MS {
            sim.step();
        }
        let health = sim.s.health(sim.now);
        assert_eq!(health.unacked, 10);
        assert_eq!(
            health.last_ack_age_ns, None,
            "the partner is not acknowledging"
        );
        assert!(health.oldest_unacked_age_ns >= Some(999 * MS));
        // 50 ms doubling to 1 s, 8 retries: given up after 5.55 s.
        let took = sim.run_to_completion(10_000 * MS);
        assert!((5_550 * MS..5_560 * MS).contains(&took), "{took}");
        let tags: Vec<_> = std::iter::from_fn(|| sim.s.take_lost()).collect();
        assert_eq!(
            tags,
            (1..=10)
                .map(|seq| (seq, 1 << (seq - 1)))
                .collect::<Vec<_>>()
        );
        let ss = sim.s.stats();
        assert_eq!((ss.gave_up, ss.acked, ss.retransmitted), (10, 0, 80));
        assert_eq!(sim.s.first_held(), 11);
        sim
    }

    #[test]
    fn one_way_link_gives_up_and_the_receiver_learns_of_the_loss() {
        let mut sim = one_way_link(Some(3));
        assert_eq!(sim.delivered, vec![1, 2], "3 never came, 4..=10 wait");
        assert!(
            sim.r.stats().duplicates >= 7 * 8,
            "every retransmission arrived"
        );
        assert!(sim.r.health(sim.now).gap_open_for_ns.is_some());
        // The daemon carries first_held to the receiver (here the data
        // link works, but nothing is left to send).
        let Sim {
            r,
            s,
            now,
            delivered,
            ..
        } = &mut sim;
        let skipped = r.on_first_held(*now, s.first_held(), &mut |seq, body| {
            assert_eq!(number_of(body) + 1, seq);
            delivered.push(seq);
        });
        assert_eq!(
            skipped,
            Ok(Skipped {
                lost: 1,
                delivered: 7
            })
        );
        assert_eq!(sim.delivered, vec![1, 2, 4, 5, 6, 7, 8, 9, 10], "each once");
        assert!(sim.r.take_resync_needed());
        assert_eq!(sim.r.stats().lost, 1);
    }

    #[test]
    fn one_way_link_without_data_loss_needs_no_resync_at_the_receiver() {
        let mut sim = one_way_link(None);
        assert_eq!(sim.delivered, (1..=10).collect::<Vec<_>>(), "each once");
        let first_held = sim.s.first_held();
        assert_eq!(
            sim.r
                .on_first_held(sim.now, first_held, &mut |_, _| panic!("nothing left")),
            Ok(Skipped::default())
        );
        assert!(
            !sim.r.take_resync_needed(),
            "the sender's tags still say resync"
        );
    }
}
