//! What one member of the pair says of itself to the console and to its
//! partner: [`NodeStatus`] (`hainfo`'s columns) and [`SyncFigures`]
//! (`hainfo -v`'s). Both are the stable JSON of `hainfo --json`
//! (schema [`HAINFO_SCHEMA`], documented in [`crate::console::hainfo`]):
//! fields are only ever added.
//!
//! Times are Unix seconds (UTC); a quality is in hundredths of a percent
//! (0..=10000, as the heartbeat carries it).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Now, in Unix seconds (UTC), as every time here is given.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The name and version of `hainfo --json`'s schema.
pub const HAINFO_SCHEMA: &str = "tandem.hainfo/1";

/// One member's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its serial (`ha.serial`).
    pub serial: String,
    /// The appliance model (the hardware profile's `model`).
    pub model: String,
    /// The firmware version.
    pub version: String,
    /// When the daemon started.
    pub boot: u64,
    /// The election's view; `None` for a unit without a partner configured.
    pub ha: Option<HaNode>,
    /// Its synchronised configuration.
    pub config: ConfigState,
}

/// The election's and the HA links' view of one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaNode {
    /// `active` or `passive`.
    pub mode: String,
    /// Since when.
    pub mode_since: u64,
    /// Why (the election's reason).
    pub reason: String,
    /// `active`, `passive`, or `None` when the election decides.
    pub forced: Option<String>,
    /// The quality factor, hundredths of a percent.
    pub quality: u16,
    /// The configured priority.
    pub priority: u8,
    /// `ready`, or what it waits for (`waiting for the partner's table`).
    pub state: String,
    /// The HA links, the main link first.
    pub links: Vec<LinkStatus>,
    /// The partner's configuration revision, as its heartbeats say it.
    pub partner_config_revision: Option<String>,
}

/// What the sync task publishes for `hainfo`: the election's view, and the
/// bulk and digest words of [`SyncFigures`].
#[derive(Debug, Clone, PartialEq)]
pub struct HaSnapshot {
    /// The election's and the links' view.
    pub node: HaNode,
    /// [`SyncFigures::bulk`].
    pub bulk: String,
    /// [`SyncFigures::digests`].
    pub digests: String,
}

/// One HA link as a member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Its DPDK port name.
    pub port: String,
    /// This member's address on it.
    pub address: String,
    /// Heartbeats both ways.
    pub ok: bool,
    /// `up`, `only hearing`, `only heard` or `down` (syncd's link states).
    pub state: String,
    /// Since when.
    pub since: u64,
}

/// A member's synchronised configuration files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigState {
    /// The revision: 8 hex digits of the digest of every synchronised file
    /// (the heartbeats carry it).
    pub revision: String,
    /// Each file, by name.
    pub files: Vec<crate::confsync::FileDigest>,
    /// Its files changed since the last configuration sync.
    pub changed: bool,
    /// The last configuration sync it took part in (sent or received).
    pub last_sync: Option<u64>,
    /// That sync's number (both members record the same).
    pub sync_id: u64,
    /// `ok`, `failed: <why>`, or `None` before the first.
    pub last_result: Option<String>,
}

/// A member's synchronisation figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncFigures {
    /// Its serial.
    pub serial: String,
    /// Records sent (full states, updates, deletes; first transmissions).
    pub records_sent: u64,
    /// Records received in order.
    pub records_received: u64,
    /// Datagrams sent again.
    pub retransmitted: u64,
    /// The partner's updates older than the entry held, not applied.
    pub stale: u64,
    /// Datagrams dropped, by reason (only reasons that happened).
    pub dropped: BTreeMap<String, u64>,
    /// The bulk this member receives: `done`, `receiving`, `wanted`, ...
    pub bulk: String,
    /// `in sync`, `not compared yet`, or `differ: shards 0, 3`.
    pub digests: String,
    /// State changes the workers' queues had no room for.
    pub queue_overflows: u64,
    /// Age of the sealing key, seconds.
    pub key_age_s: u64,
}

/// Sums the counters named `worker<N>.<name>`.
fn per_worker(counters: &[(String, u64)], name: &str) -> u64 {
    counters
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix("worker")
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(w, field)| field == name && w.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| v)
        .sum()
}

impl SyncFigures {
    /// The figures of a member from its counters (`sync.*`, `worker<N>.*`)
    /// and the sync task's bulk and digest words.
    pub fn of(serial: &str, counters: &[(String, u64)], bulk: &str, digests: &str) -> SyncFigures {
        let get = |name: &str| {
            counters
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v)
        };
        SyncFigures {
            serial: serial.to_owned(),
            records_sent: get("sync.inserts_sent")
                + get("sync.updates_sent")
                + get("sync.deletes_sent"),
            records_received: get("sync.records_received"),
            retransmitted: get("sync.retransmitted"),
            stale: per_worker(counters, "sync_stale"),
            dropped: counters
                .iter()
                .filter_map(|(n, v)| Some((n.strip_prefix("sync.drop.")?.to_owned(), *v)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            bulk: bulk.to_owned(),
            digests: digests.to_owned(),
            queue_overflows: per_worker(counters, "events_overflow"),
            key_age_s: get("sync.key_age_ms") / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_figures_add_up_the_units_counters() {
        let c: Vec<(String, u64)> = [
            ("sync.inserts_sent", 10),
            ("sync.updates_sent", 5),
            ("sync.deletes_sent", 1),
            ("sync.records_received", 7),
            ("sync.retransmitted", 2),
            ("sync.drop.forged", 3),
            ("sync.drop.replayed", 0),
            ("worker0.sync_stale", 1),
            ("worker1.sync_stale", 2),
            ("worker10.events_overflow", 4),
            ("workerx.sync_stale", 100),
            ("sync.key_age_ms", 12_999),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect();
        let f = SyncFigures::of("TNDM-A", &c, "done", "in sync");
        assert_eq!(
            (f.records_sent, f.records_received, f.retransmitted, f.stale),
            (16, 7, 2, 3)
        );
        assert_eq!(f.dropped, BTreeMap::from([("forged".to_owned(), 3)]));
        assert_eq!((f.queue_overflows, f.key_age_s), (4, 12));
    }
}
