//! The HA links as the sync protocol sees them: which ones carry traffic in
//! each direction, and which one the reliable stream uses.
//!
//! A unit knows it hears its partner on a link (a datagram arrived there
//! within `link_dead`); it learns whether the partner hears *it* from the
//! partner's heartbeats, which say on which links the partner hears this unit
//! (and travel on every link, so a link that fails one way is reported over
//! another, or over itself in the working direction). So both units show a
//! one-way link: the one that hears nothing, and the one whose partner says
//! it hears nothing.
//!
//! The stream uses the first link that works both ways (the main link, then
//! the backup); moving to another link loses nothing, because sequence
//! numbers belong to the stream, not to a link — what the old link did not
//! deliver is retransmitted on the new one.

use crate::session::Drop;

/// What a link does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Nothing heard either way.
    Down,
    /// This unit hears the partner, the partner does not hear this unit.
    OnlyHearing,
    /// The partner hears this unit, this unit does not hear the partner.
    OnlyHeard,
    /// Both ways.
    Up,
}

impl LinkState {
    /// A short name for status lines.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::OnlyHearing => "one-way (partner does not hear us)",
            LinkState::OnlyHeard => "one-way (we do not hear the partner)",
            LinkState::Up => "up",
        }
    }
}

/// One link's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Datagrams sent (first transmissions and retransmissions, data and control).
    pub datagrams_sent: u64,
    /// Bytes of them (UDP payload).
    pub bytes_sent: u64,
    /// Records in first transmissions of data datagrams.
    pub records_sent: u64,
    /// Data datagrams sent again.
    pub retransmitted: u64,
    /// Datagrams received and opened.
    pub datagrams_received: u64,
    /// Bytes of them.
    pub bytes_received: u64,
    /// Records delivered from the datagrams received here.
    pub records_received: u64,
    /// Datagrams dropped, by [`Drop::NAMES`] index.
    pub dropped: [u64; Drop::NAMES.len()],
}

/// One HA link.
#[derive(Debug, Clone)]
pub struct Link {
    heard_at: Option<u64>,
    /// When the partner last said it hears us here.
    peer_hears_at: Option<u64>,
    state: LinkState,
    since_ns: u64,
    /// Counters.
    pub stats: LinkStats,
}

impl Link {
    /// A link that has heard nothing yet, at `now_ns`.
    pub fn new(now_ns: u64) -> Link {
        Link {
            heard_at: None,
            peer_hears_at: None,
            state: LinkState::Down,
            since_ns: now_ns,
            stats: LinkStats::default(),
        }
    }

    /// A datagram from the partner arrived on it.
    pub fn heard(&mut self, now_ns: u64) {
        self.heard_at = Some(now_ns);
    }

    /// The partner said (in a heartbeat) whether it hears this unit here.
    pub fn peer_says(&mut self, now_ns: u64, hears_us: bool) {
        if hears_us {
            self.peer_hears_at = Some(now_ns);
        } else {
            self.peer_hears_at = None;
        }
    }

    /// Whether this unit hears the partner here.
    pub fn hearing(&self, now_ns: u64, dead_ns: u64) -> bool {
        self.heard_at
            .is_some_and(|t| now_ns.saturating_sub(t) < dead_ns)
    }

    fn computed(&self, now_ns: u64, dead_ns: u64) -> LinkState {
        let hearing = self.hearing(now_ns, dead_ns);
        let heard = self
            .peer_hears_at
            .is_some_and(|t| now_ns.saturating_sub(t) < dead_ns);
        match (hearing, heard) {
            (true, true) => LinkState::Up,
            (true, false) => LinkState::OnlyHearing,
            (false, true) => LinkState::OnlyHeard,
            (false, false) => LinkState::Down,
        }
    }

    /// Re-evaluates the link at `now_ns`; returns the old state if it changed.
    pub fn update(&mut self, now_ns: u64, dead_ns: u64) -> Option<LinkState> {
        let new = self.computed(now_ns, dead_ns);
        if new == self.state {
            return None;
        }
        let old = self.state;
        self.state = new;
        self.since_ns = now_ns;
        Some(old)
    }

    /// The state at the last [`Link::update`].
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Since when it is in that state.
    pub fn since_ns(&self) -> u64 {
        self.since_ns
    }
}

/// The link the stream uses: the first that works both ways, else the first
/// the partner hears us on, else the main link (traffic there is what brings
/// a link up).
pub fn stream_link(links: &[Link]) -> usize {
    let first = |s| links.iter().position(|l| l.state == s);
    first(LinkState::Up)
        .or_else(|| first(LinkState::OnlyHeard))
        .unwrap_or(0)
}

/// Bit n set when this unit hears the partner on link n (a heartbeat says it).
pub fn heard_bitmap(links: &[Link], now_ns: u64, dead_ns: u64) -> u8 {
    links
        .iter()
        .take(8)
        .enumerate()
        .filter(|(_, l)| l.hearing(now_ns, dead_ns))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEAD: u64 = 1_000;

    #[test]
    fn both_ways_one_way_and_down() {
        let mut l = Link::new(0);
        assert_eq!(l.update(0, DEAD), None);
        l.heard(10);
        assert_eq!(l.update(10, DEAD), Some(LinkState::Down));
        assert_eq!(l.state(), LinkState::OnlyHearing);
        l.peer_says(20, true);
        l.update(20, DEAD);
        assert_eq!((l.state(), l.since_ns()), (LinkState::Up, 20));
        // Nothing more heard: the partner still hears us for a while.
        l.update(1_010, DEAD);
        assert_eq!(l.state(), LinkState::OnlyHeard);
        l.update(1_020, DEAD);
        assert_eq!(l.state(), LinkState::Down);
        l.heard(1_100);
        l.peer_says(1_100, false);
        l.update(1_100, DEAD);
        assert_eq!(l.state(), LinkState::OnlyHearing);
    }

    #[test]
    fn the_stream_prefers_the_main_link_and_moves_when_it_fails() {
        let mut links = vec![Link::new(0), Link::new(0)];
        assert_eq!(stream_link(&links), 0);
        for l in &mut links {
            l.heard(1);
            l.peer_says(1, true);
            l.update(1, DEAD);
        }
        assert_eq!(stream_link(&links), 0);
        links[0].peer_says(2, false);
        links[0].update(2, DEAD);
        assert_eq!(stream_link(&links), 1);
        assert_eq!(heard_bitmap(&links, 2, DEAD), 0b11);
        assert_eq!(heard_bitmap(&links, 2_000, DEAD), 0);
    }
}
