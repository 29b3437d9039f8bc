//! What the engine tells the daemon: notices to log, counters, and the
//! status a console shows and a heartbeat carries.

use crate::bulk::IncomingState;
use crate::channel::{ReceiverHealth, SenderHealth};
use crate::links::LinkState;
use crate::session::Drop;
use crate::wire::Heartbeat;
use dataplane::conntrack::record::Digest;

/// Something the daemon should log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The partner appeared, or restarted (a new boot epoch).
    PeerEpoch {
        /// The boot it had.
        old: Option<u64>,
        /// The boot it has.
        new: u64,
    },
    /// A link changed state.
    Link {
        /// Which.
        link: usize,
        /// Before.
        from: LinkState,
        /// Now.
        to: LinkState,
    },
    /// The stream moved to another link.
    StreamMoved {
        /// From.
        from: usize,
        /// To.
        to: usize,
    },
    /// A datagram of another protocol version was refused.
    Version {
        /// The link it came on.
        link: usize,
        /// Its version.
        version: u8,
    },
    /// A bulk was asked for (`retry`: the last one did not end in time).
    BulkRequested {
        /// A retry after a timeout.
        retry: bool,
    },
    /// The partner's bulk arrived whole.
    BulkReceived,
    /// The partner installed this unit's bulk.
    BulkSent,
    /// A shard of this unit disagrees with the partner's digest.
    DigestMismatch {
        /// The shard.
        shard: usize,
        /// The partner's.
        theirs: Digest,
        /// Ours.
        ours: Digest,
        /// Records this unit refused since the last check explain it (no
        /// resync is asked for: it would be refused again).
        refused: bool,
    },
    /// A record named an interface this unit does not have.
    UnknownInterface {
        /// Its index.
        iface: u8,
    },
    /// Datagrams the partner never acknowledged were given up; their shards
    /// are sent again.
    GaveUp {
        /// The shards.
        shards: u64,
    },
    /// Sequences the partner no longer holds were never received.
    Lost {
        /// How many.
        datagrams: u64,
    },
    /// The partner runs another number of workers: digests are compared as a
    /// whole-unit figure no more; shards resync as a whole.
    WorkersDiffer {
        /// Ours.
        ours: usize,
        /// The partner's.
        theirs: u8,
    },
}

/// What the engine counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Full states sent (first transmissions).
    pub inserts_sent: u64,
    /// Compact updates sent.
    pub updates_sent: u64,
    /// Deletes sent.
    pub deletes_sent: u64,
    /// Updates folded into an earlier one in the same datagram.
    pub updates_coalesced: u64,
    /// Data datagrams sent (first transmissions).
    pub data_sent: u64,
    /// Data datagrams sent again.
    pub retransmitted: u64,
    /// Control datagrams sent (acks, nacks, heartbeats).
    pub control_sent: u64,
    /// Records received in order and handed on.
    pub records_received: u64,
    /// Datagrams dropped, by [`Drop::NAMES`] index.
    pub dropped: [u64; Drop::NAMES.len()],
    /// Records naming an interface this unit does not have.
    pub unknown_interface: u64,
    /// Digests sent.
    pub digests_sent: u64,
    /// Digests received but not comparable (the partner's shards differ, or
    /// this unit's bulk is not in yet).
    pub digests_skipped: u64,
    /// Shard resyncs asked of the partner.
    pub resyncs_asked: u64,
    /// Entries asked for by name (an update of an unknown name).
    pub requests_sent: u64,
    /// Data datagrams left unacknowledged because the workers were behind.
    pub receive_backpressure: u64,
    /// Times the stream's window was full (draining paused).
    pub send_window_full: u64,
    /// Datagrams given up after the last retry.
    pub gave_up: u64,
    /// Sequences of the partner's stream never received.
    pub lost: u64,
    /// Notices not kept because the daemon was slow to take them.
    pub notices_dropped: u64,
}

/// The last digest comparison of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestState {
    /// None yet.
    Unknown,
    /// Agreed.
    Match,
    /// Differed (a resync was asked for).
    Mismatch,
}

/// Where synchronisation stands: what a heartbeat carries and a console shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// The partner's boot epoch, once a datagram of it authenticated.
    pub peer_epoch: Option<u64>,
    /// What the partner last said of itself.
    pub peer: Option<Heartbeat>,
    /// Each link's state and since when (ns).
    pub links: Vec<(LinkState, u64)>,
    /// The link the stream uses.
    pub stream_link: usize,
    /// The bulk this unit receives.
    pub bulk_in: IncomingState,
    /// A bulk of this unit's is in progress.
    pub bulk_out: bool,
    /// The last digest comparison of each shard.
    pub digests: Vec<DigestState>,
    /// The stream out.
    pub sender: SenderHealth,
    /// The stream in.
    pub receiver: ReceiverHealth,
    /// Age of the sealing key, ns.
    pub key_age_ns: u64,
}

impl Status {
    /// The partner holds what this unit told it and this unit holds what the
    /// partner told it, as far as can be known: a partner, its bulk received,
    /// no digest disagreeing, no gap in either stream.
    pub fn in_sync(&self) -> bool {
        self.peer_epoch.is_some()
            && matches!(self.bulk_in, IncomingState::Done { .. })
            && !self.digests.contains(&DigestState::Mismatch)
            && self.receiver.gap_open_for_ns.is_none()
            && self.sender.unacked == 0
    }
}
