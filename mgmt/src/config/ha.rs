//! The `ha` section of the unit configuration: who this unit is in its pair,
//! who its partner is, the HA links between the two, and how the sync
//! protocol is paced.
//!
//! ```ron
//! ha: Some((
//!     serial: "TNDM-LAB-A",          // this unit's serial
//!     peer_serial: "TNDM-LAB-B",     // the partner's; must differ
//!     psk_file: "/etc/tandem/cluster.key",
//!     sync_port: 8421,               // optional, default 8421
//!     links: [                       // 1 or 2: the main link, then the backup
//!         (port: "ha0", address: "198.18.254.1/30", peer: "198.18.254.2"),
//!         (port: "ha1", address: "198.18.254.5/30", peer: "198.18.254.6"),
//!     ],
//!     sync: (                        // optional, every field too; defaults shown
//!         flush_delay_us: 1000, flush_updates: 4, digest_interval_ms: 2000,
//!         bulk_timeout_ms: 10000, heartbeat_interval_ms: 10, link_dead_ms: 30,
//!         min_age_s: 0,
//!     ),
//!     election: (                    // optional: see `election`
//!         priority: 0, forced: None, listen_ms: 1000, probe: [], weights: [],
//!     ),
//! )),
//! ```
//!
//! Without the section the unit runs alone: no heartbeats, no sync.
//!
//! # What is checked here, and what at boot
//!
//! Everything that can be told from the text and the hardware profile: the
//! serials ([`SERIAL_LEN`] printable ASCII bytes at most, no spaces, the two
//! different), every link's port (in the profile, with role `HaLink`, used
//! once), its address (a host of a /1../30 subnet, as for data interfaces)
//! and its peer (another host of that subnet), that no two subnets of the
//! unit overlap (links and data interfaces alike, or a packet's way out would
//! be ambiguous), and every number in its range ([`SyncTuning`]). The key
//! file is only named here (an absolute path): it may be installed after the
//! configuration is written, and its contents, mode (0600) and owner (root)
//! are checked where it is read, at boot (`syncd::psk`).
//!
//! # The role
//!
//! Elected (`electiond::role`): the better quality is active, then the higher
//! `election.priority`, then the one already active. `election.forced` is
//! what an operator's `haactive` / `hapassive` is: a forced mode, overriding
//! the quality factor, here set at boot.

pub mod election;

use super::{at_most, host_prefix, invalid, overlaps, port_of_role, Invalid};
use dataplane::forward::{InterfaceConfig, Ipv4Prefix};
use hw_profiles::{Profile, Role};
use serde::{Deserialize, Deserializer};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes of a unit serial. Heartbeats carry it in a fixed field of this
/// size, NUL-padded; a serial is 1 to 16 printable ASCII characters, so a NUL
/// never belongs to one.
pub const SERIAL_LEN: usize = 16;

/// HA links a unit may have: a main link and a backup, as appliances have
/// (two ports of one dual-port NIC, cabled back to back).
pub const MAX_HA_LINKS: usize = 2;

/// The sync protocol's UDP port on the HA links when none is written. Any
/// unprivileged port would do: the links are private cables between the two
/// units, and both must agree.
pub const DEFAULT_SYNC_PORT: u16 = 8421;

/// The role of a unit in its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum HaRole {
    /// Forwards, owns the virtual IPs and MACs.
    Active,
    /// Keeps the partner's state ready, forwards nothing.
    Passive,
}

/// A validated `ha` section; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// This unit's serial, NUL-padded (see [`SERIAL_LEN`]); [`serial_str`](Self::serial_str)
    /// for text.
    pub serial: [u8; SERIAL_LEN],
    /// The partner's serial, NUL-padded; never equal to `serial`.
    pub peer_serial: [u8; SERIAL_LEN],
    /// What decides the role ([`election`]).
    pub election: election::ElectionConfig,
    /// The cluster's pre-shared key file, absolute. Read at boot.
    pub psk_file: PathBuf,
    /// UDP port of the sync protocol on every HA link; both units use the same.
    pub sync_port: u16,
    /// 1 to [`MAX_HA_LINKS`] links; the first is the main link, the second
    /// the backup.
    pub links: Vec<HaLinkConfig>,
    /// Pacing of the sync protocol.
    pub sync: SyncTuning,
}

impl HaConfig {
    /// This unit's serial as text.
    pub fn serial_str(&self) -> &str {
        serial_str(&self.serial)
    }

    /// The partner's serial as text.
    pub fn peer_serial_str(&self) -> &str {
        serial_str(&self.peer_serial)
    }
}

/// A serial field as text: its bytes up to the first that cannot be part of
/// a serial (the NUL padding). Safe on bytes from elsewhere, such as a
/// partner's heartbeat: what follows a byte that is not printable ASCII is
/// not shown.
pub fn serial_str(serial: &[u8; SERIAL_LEN]) -> &str {
    let len = serial
        .iter()
        .position(|b| !b.is_ascii_graphic())
        .unwrap_or(SERIAL_LEN);
    // Printable ASCII is UTF-8: the default is never taken.
    std::str::from_utf8(&serial[..len]).unwrap_or_default()
}

/// One HA link: a port of role `HaLink`, this unit's address on it and the
/// partner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaLinkConfig {
    /// The profile's port name (`ha0`).
    pub port: String,
    /// This unit's address on the link.
    pub address: Ipv4Addr,
    /// The link subnet's prefix length, 1..=30.
    pub prefix_len: u8,
    /// The partner's address: another host of the same subnet.
    pub peer: Ipv4Addr,
}

/// How the sync protocol is paced. Most values trade how fresh the partner's
/// copy is against datagrams and CPU on the sync path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTuning {
    /// Longest a state change waits in a batch before its datagram leaves
    /// (1 µs..=100 ms): bounds how stale the partner's copy can be.
    pub flush_delay: Duration,
    /// Updates to one entry after which its batch leaves at once (1..=64),
    /// as pfsync does: a busy connection does not wait for the timer.
    pub flush_updates: u32,
    /// How often each shard's digest is sent (100 ms..=10 min).
    pub digest_interval: Duration,
    /// A bulk not finished within this is retried, counted and logged
    /// (1 s..=1 h): a lost end marker never leaves a unit waiting for long.
    pub bulk_timeout: Duration,
    /// Heartbeat period on each link (10 ms..=10 s): the sync protocol's
    /// heartbeat, which the election hears the partner by.
    pub heartbeat_interval: Duration,
    /// A link that heard nothing from the partner this long is down
    /// (more than 2 × `heartbeat_interval`, at most 60 s): one lost
    /// heartbeat never takes a link down.
    pub link_dead: Duration,
    /// Connections younger than this many seconds are not synchronised
    /// (0: every connection is, at most 3600): short-lived flows cost the
    /// link nothing.
    pub min_age_s: u32,
}

impl Default for SyncTuning {
    fn default() -> Self {
        let t = &TUNING;
        Self {
            flush_delay: Duration::from_micros(t.flush_delay_us.default.into()),
            flush_updates: t.flush_updates.default,
            digest_interval: Duration::from_millis(t.digest_interval_ms.default.into()),
            bulk_timeout: Duration::from_millis(t.bulk_timeout_ms.default.into()),
            heartbeat_interval: Duration::from_millis(t.heartbeat_interval_ms.default.into()),
            link_dead: Duration::from_millis(t.link_dead_ms.default.into()),
            min_age_s: t.min_age_s.default,
        }
    }
}

/// A number of the section: its default and its range, in one place so the
/// docs, the defaults and the checks cannot drift apart.
struct Bounds {
    default: u32,
    range: RangeInclusive<u32>,
    /// Written after the number in messages (` ms`), or nothing.
    unit: &'static str,
}

/// Every tunable number of `ha.sync`.
struct Tuning {
    flush_delay_us: Bounds,
    flush_updates: Bounds,
    digest_interval_ms: Bounds,
    bulk_timeout_ms: Bounds,
    heartbeat_interval_ms: Bounds,
    link_dead_ms: Bounds,
    min_age_s: Bounds,
}

const TUNING: Tuning = Tuning {
    flush_delay_us: Bounds {
        default: 1000,
        range: 1..=100_000,
        unit: " µs",
    },
    flush_updates: Bounds {
        default: 4,
        range: 1..=64,
        unit: "",
    },
    digest_interval_ms: Bounds {
        default: 2000,
        range: 100..=600_000,
        unit: " ms",
    },
    bulk_timeout_ms: Bounds {
        default: 10_000,
        range: 1000..=3_600_000,
        unit: " ms",
    },
    heartbeat_interval_ms: Bounds {
        default: 10,
        range: 10..=10_000,
        unit: " ms",
    },
    // The lower bound is also relative: more than 2 × heartbeat_interval_ms.
    link_dead_ms: Bounds {
        default: 30,
        range: 1..=60_000,
        unit: " ms",
    },
    min_age_s: Bounds {
        default: 0,
        range: 0..=3600,
        unit: " s",
    },
};

const SYNC_PORT: Bounds = Bounds {
    default: DEFAULT_SYNC_PORT as u32,
    range: 1..=65535,
    unit: "",
};

/// The section as written. Numbers are read wide and checked here, so that a
/// refusal names the range rather than the Rust type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HaFile {
    serial: String,
    peer_serial: String,
    psk_file: String,
    #[serde(default, deserialize_with = "written")]
    sync_port: Option<i64>,
    #[serde(deserialize_with = "at_most_links")]
    links: Vec<LinkFile>,
    #[serde(default)]
    pub(super) sync: SyncFile,
    #[serde(default)]
    pub(super) election: election::ElectionFile,
}

fn at_most_links<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LinkFile>, D::Error> {
    at_most(d, MAX_HA_LINKS, "HA links")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    port: String,
    address: String,
    peer: String,
}

/// `ha.sync` as written; a value left out is `None`, so that a refusal can
/// say when the number it names is the default.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SyncFile {
    #[serde(deserialize_with = "written")]
    flush_delay_us: Option<i64>,
    #[serde(deserialize_with = "written")]
    flush_updates: Option<i64>,
    #[serde(deserialize_with = "written")]
    digest_interval_ms: Option<i64>,
    #[serde(deserialize_with = "written")]
    bulk_timeout_ms: Option<i64>,
    #[serde(deserialize_with = "written")]
    heartbeat_interval_ms: Option<i64>,
    #[serde(deserialize_with = "written")]
    link_dead_ms: Option<i64>,
    #[serde(deserialize_with = "written")]
    min_age_s: Option<i64>,
}

/// A number that was written (`5`, not `Some(5)`): `None` stands for one
/// left out, through `#[serde(default)]`. Signed, so that a negative number
/// is refused with the range it should be in.
pub(crate) fn written<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    i64::deserialize(d).map(Some)
}

impl SyncFile {
    /// Nothing written.
    pub(crate) fn is_empty(&self) -> bool {
        *self == SyncFile::default()
    }
}

/// `value`, or the default when it was left out, if it is in range.
fn within(field: &str, value: Option<i64>, bounds: &Bounds) -> Result<u32, Invalid> {
    let v = value.unwrap_or(bounds.default.into());
    if let Some(v) = u32::try_from(v).ok().filter(|v| bounds.range.contains(v)) {
        return Ok(v);
    }
    let default = if value.is_none() {
        " (the default)"
    } else {
        ""
    };
    invalid(
        field,
        format!(
            "{v}{}{default} is not in {}..={}",
            bounds.unit,
            bounds.range.start(),
            bounds.range.end()
        ),
    )
}

/// What a serial may be, for refusals.
const SERIAL_RULE: &str = "a serial is 1 to 16 printable ASCII characters, no spaces";

/// A serial as written, NUL-padded; the reason otherwise. The serial itself
/// is never repeated in the reason: it may be anything, of any length.
fn serial(text: &str) -> Result<[u8; SERIAL_LEN], String> {
    if text.is_empty() {
        return Err(format!("empty; {SERIAL_RULE}"));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        let what = if c == ' ' {
            "a space".to_string()
        } else {
            format!("`{}`", c.escape_debug())
        };
        return Err(format!("holds {what}; {SERIAL_RULE}"));
    }
    let mut bytes = [0u8; SERIAL_LEN];
    match bytes.get_mut(..text.len()) {
        Some(head) => head.copy_from_slice(text.as_bytes()),
        None => return Err(format!("{} characters; {SERIAL_RULE}", text.len())),
    }
    Ok(bytes)
}

/// Checks the section against the profile and the data interfaces already
/// checked.
pub(crate) fn validate(
    raw: &HaFile,
    profile: &Profile,
    interfaces: &[InterfaceConfig],
) -> Result<HaConfig, Invalid> {
    let serial_at = |field: &str, text: &str| serial(text).map_err(|r| (format!("ha.{field}"), r));
    let own = serial_at("serial", &raw.serial)?;
    let peer_serial = serial_at("peer_serial", &raw.peer_serial)?;
    if peer_serial == own {
        return invalid(
            "ha.peer_serial",
            "the same as `serial`; each unit of the pair has its own",
        );
    }
    let psk_file = PathBuf::from(&raw.psk_file);
    if raw.psk_file.is_empty() {
        return invalid("ha.psk_file", "empty; the cluster's key file is needed");
    }
    if !psk_file.is_absolute() {
        return invalid(
            "ha.psk_file",
            format!("`{}` is not an absolute path", raw.psk_file.escape_debug()),
        );
    }
    let port = within("ha.sync_port", raw.sync_port, &SYNC_PORT)?;
    let sync_port = u16::try_from(port).or(invalid("ha.sync_port", "beyond 65535"))?;
    let links = links(raw, profile, interfaces)?;
    let sync = tuning(&raw.sync)?;
    let election = election::validate(&raw.election, interfaces)?;
    Ok(HaConfig {
        serial: own,
        peer_serial,
        election,
        psk_file,
        sync_port,
        links,
        sync,
    })
}

fn links(
    raw: &HaFile,
    profile: &Profile,
    interfaces: &[InterfaceConfig],
) -> Result<Vec<HaLinkConfig>, Invalid> {
    if raw.links.is_empty() {
        return invalid("ha.links", "at least one HA link is needed");
    }
    // Each link with its subnet, for the overlap checks.
    let mut links: Vec<(HaLinkConfig, Ipv4Prefix)> = Vec::with_capacity(raw.links.len());
    for (i, f) in raw.links.iter().enumerate() {
        let at = |name: &str| format!("ha.links[{i}].{name}");
        port_of_role(profile, &f.port, Role::HaLink, "HA links")
            .map_err(|reason| (at("port"), reason))?;
        if links.iter().any(|(o, _)| o.port == f.port) {
            return invalid(at("port"), format!("port `{}` is configured twice", f.port));
        }
        let subnet = host_prefix(&f.address).map_err(|reason| (at("address"), reason))?;
        let taken = interfaces
            .iter()
            .map(|o| (&o.address, &o.port))
            .chain(links.iter().map(|(o, s)| (s, &o.port)));
        for (other, port) in taken {
            if overlaps(other, &subnet) {
                return invalid(
                    at("address"),
                    format!("subnet overlaps {other} of port `{port}`"),
                );
            }
        }
        let peer: Ipv4Addr = f.peer.parse().map_err(|_| {
            (
                at("peer"),
                format!("`{}` is not an IPv4 address", f.peer.escape_debug()),
            )
        })?;
        let why_not = if !subnet.contains(peer) {
            Some("outside")
        } else if peer == subnet.network() {
            Some("the network address of")
        } else if peer == subnet.broadcast() {
            Some("the broadcast address of")
        } else if peer == subnet.addr() {
            Some("this unit's own address in")
        } else {
            None
        };
        if let Some(why) = why_not {
            return invalid(
                at("peer"),
                format!("{peer} is {why} {subnet}; the peer is the partner's address on the link"),
            );
        }
        links.push((
            HaLinkConfig {
                port: f.port.clone(),
                address: subnet.addr(),
                prefix_len: subnet.len(),
                peer,
            },
            subnet,
        ));
    }
    Ok(links.into_iter().map(|(l, _)| l).collect())
}

fn tuning(f: &SyncFile) -> Result<SyncTuning, Invalid> {
    let t = &TUNING;
    let flush_delay_us = within(
        "ha.sync.flush_delay_us",
        f.flush_delay_us,
        &t.flush_delay_us,
    )?;
    let flush_updates = within("ha.sync.flush_updates", f.flush_updates, &t.flush_updates)?;
    let digest_ms = within(
        "ha.sync.digest_interval_ms",
        f.digest_interval_ms,
        &t.digest_interval_ms,
    )?;
    let bulk_ms = within(
        "ha.sync.bulk_timeout_ms",
        f.bulk_timeout_ms,
        &t.bulk_timeout_ms,
    )?;
    let heartbeat_ms = within(
        "ha.sync.heartbeat_interval_ms",
        f.heartbeat_interval_ms,
        &t.heartbeat_interval_ms,
    )?;
    let dead_ms = within("ha.sync.link_dead_ms", f.link_dead_ms, &t.link_dead_ms)?;
    if dead_ms <= 2 * heartbeat_ms {
        let default = if f.link_dead_ms.is_none() {
            " (the default)"
        } else {
            ""
        };
        return invalid(
            "ha.sync.link_dead_ms",
            format!(
                "{dead_ms} ms{default} must be more than 2 × heartbeat_interval_ms = {} ms, so \
                 that one lost heartbeat does not take the link down",
                2 * heartbeat_ms
            ),
        );
    }
    let min_age_s = within("ha.sync.min_age_s", f.min_age_s, &t.min_age_s)?;
    Ok(SyncTuning {
        flush_delay: Duration::from_micros(flush_delay_us.into()),
        flush_updates,
        digest_interval: Duration::from_millis(digest_ms.into()),
        bulk_timeout: Duration::from_millis(bulk_ms.into()),
        heartbeat_interval: Duration::from_millis(heartbeat_ms.into()),
        link_dead: Duration::from_millis(dead_ms.into()),
        min_age_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{profile, refused, GOOD, PROFILE};
    use crate::config::UnitConfig;

    /// The data interfaces and routes of the config tests, with the section of
    /// the module docs (every field written).
    const GOOD_HA: &str = r#"(
    interfaces: [
        (port: "data0", address: "198.18.1.1/24",
         virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
        (port: "data1", address: "198.18.2.1/24"),
    ],
    routes: [
        (prefix: "198.19.0.0/16", via: "198.18.2.2"),
    ],
    ha: Some((
        serial: "TNDM-LAB-A",
        peer_serial: "TNDM-LAB-B",
        election: (priority: 10, forced: Some(Active), listen_ms: 500, probe: ["198.18.1.2"], weights: [(weight: 75, port: "data1")]),
        psk_file: "/etc/tandem/cluster.key",
        sync_port: 8421,
        links: [
            (port: "ha0", address: "198.18.254.1/30", peer: "198.18.254.2"),
            (port: "ha1", address: "198.18.254.5/30", peer: "198.18.254.6"),
        ],
        sync: (
            flush_delay_us: 1000,
            flush_updates: 4,
            digest_interval_ms: 2000,
            bulk_timeout_ms: 10000,
            heartbeat_interval_ms: 10,
            link_dead_ms: 30,
            min_age_s: 0,
        ),
    )),
)
"#;

    /// The two links of `GOOD_HA`.
    const LINKS: &str = r#"            (port: "ha0", address: "198.18.254.1/30", peer: "198.18.254.2"),
            (port: "ha1", address: "198.18.254.5/30", peer: "198.18.254.6"),
"#;

    /// `GOOD_HA` with `from` (which must occur exactly once) replaced by `to`.
    fn ha_with(from: &str, to: &str) -> String {
        assert_eq!(GOOD_HA.matches(from).count(), 1, "`{from}` must occur once");
        GOOD_HA.replacen(from, to, 1)
    }

    fn ha_of(text: &str) -> Option<HaConfig> {
        UnitConfig::parse(text, "unit.ron", &profile())
            .unwrap_or_else(|e| panic!("{e}"))
            .ha
    }

    /// The shared file may hold the election's weights and listen time and
    /// the sync tuning; a value in both files is refused where the unit file
    /// has it.
    #[test]
    fn the_shared_file_holds_weights_listen_time_and_sync_tuning() {
        let own = ha_with(
            "listen_ms: 500, probe: [\"198.18.1.2\"], weights: [(weight: 75, port: \"data1\")]",
            "probe: [\"198.18.1.2\"]",
        );
        let own = own.replace(
            "        sync: (\n            flush_delay_us: 1000,\n            flush_updates: 4,\n            digest_interval_ms: 2000,\n            bulk_timeout_ms: 10000,\n            heartbeat_interval_ms: 10,\n            link_dead_ms: 30,\n            min_age_s: 0,\n        ),\n",
            "",
        );
        let shared = "(ha: Some((election: (listen_ms: 500, weights: [(weight: 75, port: \"data1\")]), sync: (min_age_s: 3))))";
        let parse = |unit: &str| {
            UnitConfig::parse_with_shared(
                unit,
                "unit.ron",
                Some((shared, "shared.ron")),
                &profile(),
            )
            .map_err(|e| e.to_string())
        };
        let ha = parse(&own).unwrap().ha.unwrap();
        assert_eq!(ha.election.weights, [100, 75]);
        assert_eq!(ha.election.listen, Duration::from_millis(500));
        assert_eq!((ha.sync.min_age_s, ha.election.priority), (3, 10));
        let both = parse(GOOD_HA).unwrap_err();
        assert!(
            both.starts_with("unit.ron:")
                && both.contains("ha.sync: also written in the shared file"),
            "{both}"
        );
    }

    #[test]
    fn the_documented_section_loads() {
        let ha = ha_of(GOOD_HA).unwrap();
        assert_eq!(ha.serial_str(), "TNDM-LAB-A");
        assert_eq!(ha.peer_serial_str(), "TNDM-LAB-B");
        assert_eq!(&ha.serial, b"TNDM-LAB-A\0\0\0\0\0\0");
        assert_eq!(&ha.peer_serial, b"TNDM-LAB-B\0\0\0\0\0\0");
        assert_eq!(
            ha.election,
            election::ElectionConfig {
                priority: 10,
                forced: Some(HaRole::Active),
                listen: Duration::from_millis(500),
                probe: vec![Ipv4Addr::new(198, 18, 1, 2)],
                weights: vec![100, 75],
            }
        );
        assert_eq!(ha.psk_file, PathBuf::from("/etc/tandem/cluster.key"));
        assert_eq!(ha.sync_port, 8421);
        assert_eq!(
            ha.links,
            [
                HaLinkConfig {
                    port: "ha0".into(),
                    address: Ipv4Addr::new(198, 18, 254, 1),
                    prefix_len: 30,
                    peer: Ipv4Addr::new(198, 18, 254, 2),
                },
                HaLinkConfig {
                    port: "ha1".into(),
                    address: Ipv4Addr::new(198, 18, 254, 5),
                    prefix_len: 30,
                    peer: Ipv4Addr::new(198, 18, 254, 6),
                },
            ]
        );
        assert_eq!(
            ha.sync,
            SyncTuning {
                flush_delay: Duration::from_millis(1),
                flush_updates: 4,
                digest_interval: Duration::from_secs(2),
                bulk_timeout: Duration::from_secs(10),
                heartbeat_interval: Duration::from_millis(10),
                link_dead: Duration::from_millis(30),
                min_age_s: 0,
            }
        );
        // The file's values are the defaults.
        assert_eq!(ha.sync, SyncTuning::default());
    }

    #[test]
    fn without_the_section_the_unit_runs_alone() {
        assert_eq!(ha_of(GOOD), None);
        assert_eq!(
            ha_of(&GOOD.replace("    routes: [", "    ha: None,\n    routes: [")),
            None
        );
    }

    /// One link, no `sync_port`, no `sync`: the defaults.
    #[test]
    fn the_smallest_section_takes_the_defaults() {
        let text = GOOD.replace(
            "    routes: [",
            r#"    ha: Some((serial: "A", peer_serial: "0123456789abcdef",
        psk_file: "/k", links: [(port: "ha1", address: "10.0.0.1/8", peer: "10.255.255.254")])),
    routes: ["#,
        );
        let ha = ha_of(&text).unwrap();
        assert_eq!(ha.serial_str(), "A");
        assert_eq!(ha.peer_serial_str(), "0123456789abcdef");
        assert_eq!(&ha.peer_serial, b"0123456789abcdef");
        assert_eq!(ha.election, election::ElectionConfig::defaults(2));
        assert_eq!(ha.sync_port, DEFAULT_SYNC_PORT);
        assert_eq!(ha.links.len(), 1);
        assert_eq!(
            (ha.links[0].prefix_len, ha.links[0].port.as_str()),
            (8, "ha1")
        );
        assert_eq!(ha.sync, SyncTuning::default());
        // Each field of `sync` on its own keeps the others' defaults.
        let start = GOOD_HA.find("        sync: (\n").unwrap();
        let end = GOOD_HA.find("    )),\n").unwrap();
        let text = format!(
            "{}        sync: (min_age_s: 30, heartbeat_interval_ms: 12),\n{}",
            &GOOD_HA[..start],
            &GOOD_HA[end..]
        );
        let ha = ha_of(&text).unwrap();
        assert_eq!(ha.sync.min_age_s, 30);
        assert_eq!(ha.sync.heartbeat_interval, Duration::from_millis(12));
        assert_eq!(ha.sync.link_dead, Duration::from_millis(30));
        assert_eq!(ha.sync.flush_updates, 4);
    }

    #[test]
    fn serial_text_stops_at_the_padding_or_anything_not_a_serial() {
        assert_eq!(serial_str(b"TNDM-LAB-A\0\0\0\0\0\0"), "TNDM-LAB-A");
        assert_eq!(serial_str(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(serial_str(&[0; SERIAL_LEN]), "");
        assert_eq!(serial_str(b"AB\xffCD\0\0\0\0\0\0\0\0\0\0\0"), "AB");
        assert_eq!(serial_str(b"AB CD\0\0\0\0\0\0\0\0\0\0\0"), "AB");
    }

    /// One change at a time, each with its exact message.
    #[test]
    fn bad_sections_are_refused_with_file_line_field_and_reason() {
        let cases = [
            // The section itself.
            (GOOD_HA.replace("ha: Some((", "ha: (").replace("    )),\n)", "    ),\n)"), "unit.ron:10:9: ha: expected `Some(...)` or `None`"),
            (ha_with("        sync_port: 8421,\n", "        sync_prot: 8421,\n"), "unit.ron:15:9: ha.sync_prot: unknown field `sync_prot`, expected `serial`, `peer_serial`, `psk_file`, `sync_port`, `links`, `sync` or `election`"),
            (ha_with("            min_age_s: 0,\n", "            min_age: 0,\n"), "unit.ron:27:13: ha.sync.min_age: unknown field `min_age`, expected `flush_delay_us`, `flush_updates`, `digest_interval_ms`, `bulk_timeout_ms`, `heartbeat_interval_ms`, `link_dead_ms` or `min_age_s`"),
            // The election.
            (ha_with("Some(Active)", "Some(Activ)"), "unit.ron:13:42: ha.election.forced: unknown variant `Activ`, expected `Active` or `Passive`"),
            (ha_with("priority: 10", "priority: 256"), "unit.ron:13:30: ha.election.priority: 256 is not in 0..=255"),
            (ha_with("listen_ms: 500", "listen_ms: 60001"), "unit.ron:13:67: ha.election.listen_ms: 60001 is not in 0..=60000"),
            (ha_with("[\"198.18.1.2\"]", "[\"198.18.1.1\"]"), "unit.ron:13:80: ha.election.probe[0]: 198.18.1.1 is this unit's own or virtual address on `data0`; name the partner's"),
            (ha_with("[\"198.18.1.2\"]", "[\"198.18.1.254\"]"), "unit.ron:13:80: ha.election.probe[0]: 198.18.1.254 is this unit's own or virtual address on `data0`; name the partner's"),
            (ha_with("[\"198.18.1.2\"]", "[\"198.18.3.2\"]"), "unit.ron:13:80: ha.election.probe[0]: 198.18.3.2 is no host of a data interface's subnet; the probe goes out there"),
            (ha_with("[\"198.18.1.2\"]", "[\"198.18.1.255\"]"), "unit.ron:13:80: ha.election.probe[0]: 198.18.1.255 is no host of a data interface's subnet; the probe goes out there"),
            (ha_with("[\"198.18.1.2\"]", "[\"a.b\"]"), "unit.ron:13:80: ha.election.probe[0]: `a.b` is not an IPv4 address"),
            (ha_with("port: \"data1\")]", "port: \"ha0\")]"), "unit.ron:13:124: ha.election.weights[0].port: `ha0` is not a configured data interface"),
            (ha_with("weight: 75", "weight: 10000"), "unit.ron:13:114: ha.election.weights[0].weight: 10000 is not in 0..=9999"),
            // Serials.
            (ha_with("\"TNDM-LAB-A\"", "\"\""), "unit.ron:11:17: ha.serial: empty; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-A\"", "\"TNDM LAB A\""), "unit.ron:11:17: ha.serial: holds a space; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-A\"", "\"TNDM-LAB-\\u{e9}\""), "unit.ron:11:17: ha.serial: holds `é`; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-A\"", "\"TNDM-LAB-A\\0\""), "unit.ron:11:17: ha.serial: holds `\\0`; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-A\"", "\"TNDM-LAB-A-0123456\""), "unit.ron:11:17: ha.serial: 18 characters; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-B\"", "\"TNDM-LAB-B\\t\""), "unit.ron:12:22: ha.peer_serial: holds `\\t`; a serial is 1 to 16 printable ASCII characters, no spaces"),
            (ha_with("\"TNDM-LAB-B\"", "\"TNDM-LAB-A\""), "unit.ron:12:22: ha.peer_serial: the same as `serial`; each unit of the pair has its own"),
            // The key file's path.
            (ha_with("\"/etc/tandem/cluster.key\"", "\"cluster.key\""), "unit.ron:14:19: ha.psk_file: `cluster.key` is not an absolute path"),
            (ha_with("\"/etc/tandem/cluster.key\"", "\"\""), "unit.ron:14:19: ha.psk_file: empty; the cluster's key file is needed"),
            // The sync port.
            (ha_with("sync_port: 8421", "sync_port: 0"), "unit.ron:15:20: ha.sync_port: 0 is not in 1..=65535"),
            (ha_with("sync_port: 8421", "sync_port: 65536"), "unit.ron:15:20: ha.sync_port: 65536 is not in 1..=65535"),
            (ha_with("sync_port: 8421", "sync_port: -1"), "unit.ron:15:20: ha.sync_port: -1 is not in 1..=65535"),
            // The links.
            (ha_with(LINKS, ""), "unit.ron:16:16: ha.links: at least one HA link is needed"),
            (ha_with("\"198.18.254.6\"),\n", "\"198.18.254.6\"),\n            (port: \"ha2\", address: \"198.18.254.9/30\", peer: \"198.18.254.10\"),\n"), "unit.ron:19:13: ha.links[2]: more than 2 HA links; at most 2 fit"),
            (ha_with("(port: \"ha0\"", "(port: \"ha7\""), "unit.ron:17:20: ha.links[0].port: the profile has no port `ha7`"),
            (ha_with("(port: \"ha0\"", "(port: \"data0\""), "unit.ron:17:20: ha.links[0].port: port `data0` is a data port; HA links need role HaLink"),
            (ha_with("(port: \"ha1\"", "(port: \"ha0\""), "unit.ron:18:20: ha.links[1].port: port `ha0` is configured twice"),
            (ha_with("\"198.18.254.1/30\"", "\"198.18.254.1\""), "unit.ron:17:36: ha.links[0].address: expected ADDRESS/LENGTH, e.g. 198.18.1.0/24"),
            (ha_with("\"198.18.254.1/30\"", "\"198.18.254.1/31\""), "unit.ron:17:36: ha.links[0].address: prefix length must be 1..=30"),
            (ha_with("\"198.18.254.1/30\"", "\"198.18.254.0/30\""), "unit.ron:17:36: ha.links[0].address: 198.18.254.0 is not a host address of its subnet"),
            (ha_with("\"198.18.254.1/30\"", "\"198.18.1.9/30\""), "unit.ron:17:36: ha.links[0].address: subnet overlaps 198.18.1.1/24 of port `data0`"),
            (ha_with("\"198.18.254.5/30\"", "\"198.18.254.5/29\""), "unit.ron:18:36: ha.links[1].address: subnet overlaps 198.18.254.1/30 of port `ha0`"),
            (ha_with("\"198.18.254.5/30\"", "\"198.18.254.1/30\""), "unit.ron:18:36: ha.links[1].address: subnet overlaps 198.18.254.1/30 of port `ha0`"),
            (ha_with("\"198.18.254.2\"", "\"198.18.254.two\""), "unit.ron:17:61: ha.links[0].peer: `198.18.254.two` is not an IPv4 address"),
            (ha_with("\"198.18.254.2\"", "\"198.18.254.9\""), "unit.ron:17:61: ha.links[0].peer: 198.18.254.9 is outside 198.18.254.1/30; the peer is the partner's address on the link"),
            (ha_with("\"198.18.254.2\"", "\"198.18.254.0\""), "unit.ron:17:61: ha.links[0].peer: 198.18.254.0 is the network address of 198.18.254.1/30; the peer is the partner's address on the link"),
            (ha_with("\"198.18.254.2\"", "\"198.18.254.3\""), "unit.ron:17:61: ha.links[0].peer: 198.18.254.3 is the broadcast address of 198.18.254.1/30; the peer is the partner's address on the link"),
            (ha_with("\"198.18.254.2\"", "\"198.18.254.1\""), "unit.ron:17:61: ha.links[0].peer: 198.18.254.1 is this unit's own address in 198.18.254.1/30; the peer is the partner's address on the link"),
            (ha_with(", peer: \"198.18.254.6\"", ""), "unit.ron:18:13: ha.links[1].peer: missing (this field is required)"),
            // A data interface on an HA port.
            (ha_with("(port: \"data1\"", "(port: \"ha1\""), "unit.ron:5:16: interfaces[1].port: port `ha1` is an HA link port; data interfaces need role Data"),
            // The numbers of `sync`.
            (ha_with("flush_delay_us: 1000", "flush_delay_us: 0"), "unit.ron:21:29: ha.sync.flush_delay_us: 0 µs is not in 1..=100000"),
            (ha_with("flush_delay_us: 1000", "flush_delay_us: 100001"), "unit.ron:21:29: ha.sync.flush_delay_us: 100001 µs is not in 1..=100000"),
            (ha_with("flush_updates: 4", "flush_updates: 0"), "unit.ron:22:28: ha.sync.flush_updates: 0 is not in 1..=64"),
            (ha_with("flush_updates: 4", "flush_updates: 65"), "unit.ron:22:28: ha.sync.flush_updates: 65 is not in 1..=64"),
            (ha_with("digest_interval_ms: 2000", "digest_interval_ms: 99"), "unit.ron:23:33: ha.sync.digest_interval_ms: 99 ms is not in 100..=600000"),
            (ha_with("digest_interval_ms: 2000", "digest_interval_ms: 600001"), "unit.ron:23:33: ha.sync.digest_interval_ms: 600001 ms is not in 100..=600000"),
            (ha_with("bulk_timeout_ms: 10000", "bulk_timeout_ms: 999"), "unit.ron:24:30: ha.sync.bulk_timeout_ms: 999 ms is not in 1000..=3600000"),
            (ha_with("bulk_timeout_ms: 10000", "bulk_timeout_ms: 3600001"), "unit.ron:24:30: ha.sync.bulk_timeout_ms: 3600001 ms is not in 1000..=3600000"),
            (ha_with("heartbeat_interval_ms: 10", "heartbeat_interval_ms: 9"), "unit.ron:25:36: ha.sync.heartbeat_interval_ms: 9 ms is not in 10..=10000"),
            (ha_with("heartbeat_interval_ms: 10", "heartbeat_interval_ms: 10001"), "unit.ron:25:36: ha.sync.heartbeat_interval_ms: 10001 ms is not in 10..=10000"),
            (ha_with("link_dead_ms: 30", "link_dead_ms: 60001"), "unit.ron:26:27: ha.sync.link_dead_ms: 60001 ms is not in 1..=60000"),
            (ha_with("link_dead_ms: 30", "link_dead_ms: 20"), "unit.ron:26:27: ha.sync.link_dead_ms: 20 ms must be more than 2 × heartbeat_interval_ms = 20 ms, so that one lost heartbeat does not take the link down"),
            (ha_with("link_dead_ms: 30", "link_dead_ms: 0"), "unit.ron:26:27: ha.sync.link_dead_ms: 0 ms is not in 1..=60000"),
            (ha_with("heartbeat_interval_ms: 10", "heartbeat_interval_ms: 15").replace("            link_dead_ms: 30,\n", ""), "unit.ron:20:15: ha.sync.link_dead_ms: 30 ms (the default) must be more than 2 × heartbeat_interval_ms = 30 ms, so that one lost heartbeat does not take the link down"),
            (ha_with("min_age_s: 0", "min_age_s: 3601"), "unit.ron:27:24: ha.sync.min_age_s: 3601 s is not in 0..=3600"),
            (ha_with("min_age_s: 0", "min_age_s: 99999999999999999999"), "unit.ron:27:24: ha.sync.min_age_s: number out of range for this field"),
        ];
        let got: Vec<String> = cases.iter().map(|(text, _)| refused(text)).collect();
        let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
        assert_eq!(got, want);
    }

    /// A management port is neither an HA link nor a data interface (the lab
    /// profile has none: one is added).
    #[test]
    fn a_management_port_is_refused_as_an_ha_link() {
        let text = PROFILE.replace(
            "    ],\n    cores:",
            "        (name: \"mgmt0\", role: Management, device: Vdev(\"net_af_packet4,iface=mgmt0,qpairs=1\"), rx_queues: 1, tx_queues: 1),\n    ],\n    cores:",
        );
        let profile = Profile::from_str_named(&text, "lab.ron").unwrap();
        let refused = |text: &str| {
            UnitConfig::parse(text, "unit.ron", &profile)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(refused(&ha_with("(port: \"ha1\"", "(port: \"mgmt0\"")), "unit.ron:18:20: ha.links[1].port: port `mgmt0` is a management port; HA links need role HaLink");
        assert_eq!(
            refused(&ha_with("(port: \"data1\"", "(port: \"mgmt0\"")),
            "unit.ron:5:16: interfaces[1].port: port `mgmt0` is a management port; data interfaces need role Data"
        );
    }

    #[test]
    fn truncated_sections_are_refused_never_panic() {
        for end in 0..GOOD_HA.len() {
            if GOOD_HA.is_char_boundary(end) {
                let _ = UnitConfig::parse(&GOOD_HA[..end], "unit.ron", &profile());
            }
        }
    }
}
