//! `ha.election`: what decides which unit of the pair is active.
//!
//! ```ron
//! election: (                 // optional, every field too; defaults shown
//!     priority: 0,            // 0..=255; on equal quality the higher is active
//!     forced: None,           // Some(Active) | Some(Passive): forced at boot (haactive / hapassive)
//!     listen_ms: 1000,        // a starting unit listens this long for its partner
//!     probe: [],              // the partner's own addresses on the data networks
//!     weights: [],            // (port: "data0", weight: 100): 0..=9999, default 100
//! ),
//! ```
//!
//! * `probe`: when every HA link falls silent, the unit asks these addresses
//!   (ICMP echo, from its own address on that subnet) whether the partner
//!   still lives before it takes over — Stormshield's "ICMP monitoring". Each
//!   must be a host of a data interface's subnet, neither this unit's own
//!   address nor a virtual IP. Without any, a unit whose HA links are all cut
//!   takes over: two actives until a link comes back (say so to operators).
//! * `weights`: each data interface's link counts this much in the quality
//!   factor (`electiond::quality`); an interface not named weighs 100, one of
//!   weight 0 is shown but never counted.

use super::super::{invalid, is_unicast_host, Invalid};
use super::{written, HaRole};
use dataplane::forward::InterfaceConfig;
use electiond::quality::{DEFAULT_WEIGHT, MAX_WEIGHT};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The listen time when none is written, in ms.
pub const DEFAULT_LISTEN_MS: u32 = 1000;
/// The longest listen time, in ms.
const MAX_LISTEN_MS: u32 = 60_000;

/// A validated `ha.election`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// On equal quality, the higher priority is active ("active if equal").
    pub priority: u8,
    /// The role forced at boot, if any.
    pub forced: Option<HaRole>,
    /// How long a starting unit listens for its partner before deciding.
    pub listen: Duration,
    /// The partner's own addresses on the data networks, probed when every
    /// HA link is silent.
    pub probe: Vec<Ipv4Addr>,
    /// Every data interface's weight, in port order.
    pub weights: Vec<u16>,
}

impl ElectionConfig {
    /// The defaults for `interfaces` data interfaces.
    pub fn defaults(interfaces: usize) -> ElectionConfig {
        ElectionConfig {
            priority: 0,
            forced: None,
            listen: Duration::from_millis(DEFAULT_LISTEN_MS.into()),
            probe: Vec::new(),
            weights: vec![DEFAULT_WEIGHT; interfaces],
        }
    }
}

/// `ha.election` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ElectionFile {
    #[serde(deserialize_with = "written")]
    priority: Option<i64>,
    forced: Option<HaRole>,
    #[serde(deserialize_with = "written")]
    pub(crate) listen_ms: Option<i64>,
    probe: Vec<String>,
    pub(crate) weights: Vec<WeightFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeightFile {
    port: String,
    weight: i64,
}

/// A number in `range`, or the reason.
fn ranged(field: &str, v: i64, max: u32) -> Result<u32, Invalid> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v <= max)
        .map_or_else(|| invalid(field, format!("{v} is not in 0..={max}")), Ok)
}

/// Checks `ha.election` against the data interfaces.
pub(crate) fn validate(
    f: &ElectionFile,
    interfaces: &[InterfaceConfig],
) -> Result<ElectionConfig, Invalid> {
    let mut c = ElectionConfig::defaults(interfaces.len());
    if let Some(p) = f.priority {
        let p = ranged("ha.election.priority", p, 255)?;
        c.priority = u8::try_from(p).unwrap_or(u8::MAX);
    }
    c.forced = f.forced;
    if let Some(ms) = f.listen_ms {
        c.listen =
            Duration::from_millis(ranged("ha.election.listen_ms", ms, MAX_LISTEN_MS)?.into());
    }
    for (i, text) in f.probe.iter().enumerate() {
        let at = format!("ha.election.probe[{i}]");
        let ip: Ipv4Addr = text.parse().or_else(|_| {
            invalid(
                &at,
                format!("`{}` is not an IPv4 address", text.escape_debug()),
            )
        })?;
        let own = |ifc: &InterfaceConfig| ifc.address.addr() == ip || ifc.virtual_ip == Some(ip);
        if let Some(ifc) = interfaces.iter().find(|ifc| own(ifc)) {
            return invalid(
                at,
                format!(
                    "{ip} is this unit's own or virtual address on `{}`; name the partner's",
                    ifc.port
                ),
            );
        }
        let on_subnet = interfaces.iter().any(|ifc| {
            ifc.address.contains(ip) && ip != ifc.address.network() && ip != ifc.address.broadcast()
        });
        if !on_subnet || !is_unicast_host(ip) {
            return invalid(
                at,
                format!("{ip} is no host of a data interface's subnet; the probe goes out there"),
            );
        }
        c.probe.push(ip);
    }
    let mut named = vec![false; interfaces.len()];
    for (i, w) in f.weights.iter().enumerate() {
        let Some(index) = interfaces.iter().position(|ifc| ifc.port == w.port) else {
            return invalid(
                format!("ha.election.weights[{i}].port"),
                format!(
                    "`{}` is not a configured data interface",
                    w.port.escape_debug()
                ),
            );
        };
        if std::mem::replace(&mut named[index], true) {
            return invalid(
                format!("ha.election.weights[{i}].port"),
                format!("`{}` is weighted twice", w.port),
            );
        }
        let weight = ranged(
            &format!("ha.election.weights[{i}].weight"),
            w.weight,
            MAX_WEIGHT.into(),
        )?;
        c.weights[index] = u16::try_from(weight).unwrap_or(MAX_WEIGHT);
    }
    Ok(c)
}
