//! The shared configuration file (`tandemd --shared FILE`): the part of a
//! unit's configuration both members of a pair have alike, which `hasync`
//! sends to the partner. The unit file keeps what is each unit's own (its
//! data and HA link addresses, serials, the key file, priority, forced role,
//! probes, the profile).
//!
//! ```ron
//! (
//!     interfaces: [                     // by port: the virtual IP and MAC
//!         (port: "data0", virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
//!     ],
//!     routes: [(prefix: "198.19.0.0/16", via: "198.18.2.2")],
//!     timeouts: (tcp_established: 432000),
//!     ha: Some((
//!         election: (listen_ms: 1000, weights: [(port: "data0", weight: 100)]),
//!         sync: (min_age_s: 0),
//!     )),
//! )
//! ```
//!
//! Every field is optional and means what it means in the unit file; each
//! may be written in one of the two files only (a value in both is refused
//! where the unit file has it: two places would be two truths). A refusal
//! of a value the shared file holds names the shared file, its line and
//! column. Virtual addresses, routes and timeouts are put in force on a
//! running unit; `ha.sync` and `ha.election.listen_ms` at its next start.

use super::ha::election::{ElectionFile, WeightFile};
use super::ha::{HaFile, SyncFile};
use super::{at_most_routes, written, File, Invalid, RouteFile, TimeoutsFile};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SharedFile<'a> {
    #[serde(default)]
    interfaces: Vec<VirtualFile>,
    #[serde(default, borrow, deserialize_with = "at_most_routes")]
    routes: Vec<RouteFile<'a>>,
    #[serde(default, deserialize_with = "written")]
    timeouts: Option<TimeoutsFile>,
    #[serde(default)]
    ha: Option<SharedHaFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VirtualFile {
    port: String,
    #[serde(default)]
    virtual_ip: Option<String>,
    #[serde(default)]
    virtual_mac: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedHaFile {
    #[serde(default, deserialize_with = "written")]
    sync: Option<SyncFile>,
    #[serde(default, deserialize_with = "written")]
    election: Option<SharedElectionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedElectionFile {
    #[serde(default, deserialize_with = "super::ha::written")]
    listen_ms: Option<i64>,
    #[serde(default)]
    weights: Vec<WeightFile>,
}

/// Which file a refusal is placed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum In {
    /// The unit file.
    Unit,
    /// The shared file.
    Shared,
}

/// The field paths of the merged configuration whose values came from the
/// shared file, each with its path there.
#[derive(Debug, Default)]
pub(super) struct Origins(Vec<(String, String)>);

impl Origins {
    fn add(&mut self, merged: impl Into<String>, shared: impl Into<String>) {
        self.0.push((merged.into(), shared.into()));
    }

    /// Where a refusal of merged field `field` belongs: the shared file and
    /// the path there, or `None` for the unit file.
    pub(super) fn shared_path(&self, field: &str) -> Option<String> {
        self.0.iter().find_map(|(merged, shared)| {
            let rest = field.strip_prefix(merged.as_str())?;
            (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
                .then(|| format!("{shared}{rest}"))
        })
    }
}

fn both(field: &str) -> Result<(), (In, Invalid)> {
    Err((
        In::Unit,
        (
            field.to_owned(),
            "also written in the shared file (--shared); write it in one of the two".to_owned(),
        ),
    ))
}

/// Moves the shared file's values into the unit file's, refusing a value
/// written in both; says where each moved value came from.
pub(super) fn merge<'a>(
    unit: &mut File<'a>,
    shared: SharedFile<'a>,
) -> Result<Origins, (In, Invalid)> {
    let mut origins = Origins::default();
    for (j, v) in shared.interfaces.into_iter().enumerate() {
        let Some(i) = unit.interfaces.iter().position(|f| f.port == v.port) else {
            return Err((
                In::Shared,
                (
                    format!("interfaces[{j}].port"),
                    format!("`{}` is not a data interface of the unit file", v.port),
                ),
            ));
        };
        let f = &mut unit.interfaces[i];
        for (name, mine, theirs) in [
            ("virtual_ip", &mut f.virtual_ip, v.virtual_ip),
            ("virtual_mac", &mut f.virtual_mac, v.virtual_mac),
        ] {
            if theirs.is_some() {
                if mine.is_some() {
                    both(&format!("interfaces[{i}].{name}"))?;
                }
                *mine = theirs;
                origins.add(
                    format!("interfaces[{i}].{name}"),
                    format!("interfaces[{j}].{name}"),
                );
            }
        }
    }
    if !shared.routes.is_empty() {
        if !unit.routes.is_empty() {
            both("routes")?;
        }
        unit.routes = shared.routes;
        origins.add("routes", "routes");
    }
    if let Some(t) = shared.timeouts {
        if unit.timeouts.is_some() {
            both("timeouts")?;
        }
        unit.timeouts = Some(t);
        origins.add("timeouts", "timeouts");
    }
    if let Some(ha) = shared.ha {
        let Some(mine) = unit.ha.as_mut() else {
            return Err((
                In::Shared,
                (
                    "ha".to_owned(),
                    "the unit file has no `ha` section: a unit alone shares nothing".to_owned(),
                ),
            ));
        };
        merge_ha(mine, ha, &mut origins)?;
    }
    Ok(origins)
}

fn merge_ha(
    mine: &mut HaFile,
    ha: SharedHaFile,
    origins: &mut Origins,
) -> Result<(), (In, Invalid)> {
    if let Some(sync) = ha.sync {
        if !mine.sync.is_empty() {
            both("ha.sync")?;
        }
        mine.sync = sync;
        origins.add("ha.sync", "ha.sync");
    }
    if let Some(e) = ha.election {
        let ElectionFile {
            listen_ms, weights, ..
        } = &mut mine.election;
        if e.listen_ms.is_some() {
            if listen_ms.is_some() {
                both("ha.election.listen_ms")?;
            }
            *listen_ms = e.listen_ms;
            origins.add("ha.election.listen_ms", "ha.election.listen_ms");
        }
        if !e.weights.is_empty() {
            if !weights.is_empty() {
                both("ha.election.weights")?;
            }
            *weights = e.weights;
            origins.add("ha.election.weights", "ha.election.weights");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merged_field_is_found_in_the_shared_file_by_its_own_path() {
        let mut o = Origins::default();
        o.add("interfaces[1].virtual_ip", "interfaces[0].virtual_ip");
        o.add("routes", "routes");
        assert_eq!(
            o.shared_path("interfaces[1].virtual_ip"),
            Some("interfaces[0].virtual_ip".into())
        );
        assert_eq!(o.shared_path("routes[3].via"), Some("routes[3].via".into()));
        assert_eq!(o.shared_path("routes_extra"), None);
        assert_eq!(o.shared_path("interfaces[1].address"), None);
    }
}
