//! The unit's configuration file (RON): its data interfaces and static routes.
//!
//! ```ron
//! (
//!     interfaces: [
//!         (port: "data0", address: "198.18.1.1/24",
//!          virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
//!         (port: "data1", address: "198.18.2.1/24"),
//!     ],
//!     routes: [
//!         (prefix: "198.19.0.0/16", via: "198.18.2.2"),
//!     ],
//! )
//! ```
//!
//! Loading checks everything before anything is used: a file that does not
//! parse, names a field the format does not have, or does not make sense
//! against the hardware profile is refused as a whole with
//! `file:line:column: field: reason`.

use dataplane::forward::{InterfaceConfig, Ipv4Prefix, RouterConfig, StaticRoute};
use dataplane::wire::EthernetAddress;
use hw_profiles::{Profile, Role};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;

/// A refused configuration, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{file}:{line}:{column}: {field}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Path of the field (`routes[0].via`), or `syntax`.
        field: String,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    interfaces: Vec<InterfaceFile>,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    port: String,
    address: String,
    #[serde(default)]
    virtual_ip: Option<String>,
    #[serde(default)]
    virtual_mac: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    via: String,
}

/// A validated unit configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitConfig {
    /// What the router needs.
    pub router: RouterConfig,
}

impl UnitConfig {
    /// Reads and validates `path` against `profile`.
    pub fn load(path: &Path, profile: &Profile) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
        Self::parse(&source, &file, profile)
    }

    /// Validates `source`, naming it `file` in errors.
    pub fn parse(source: &str, file: &str, profile: &Profile) -> Result<Self, ConfigError> {
        let raw: File = ron::from_str(source).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            line: e.position.line,
            column: e.position.col,
            field: "syntax".into(),
            reason: e.code.to_string(),
        })?;
        validate(&raw, profile).map_err(|(field, reason)| {
            let (line, column) = hw_profiles::locate::locate_nearest(source, &field);
            ConfigError::Invalid { file: file.into(), line, column, field, reason }
        })
    }
}

type Invalid = (String, String);

fn invalid<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, Invalid> {
    Err((field.into(), reason.into()))
}

fn validate(raw: &File, profile: &Profile) -> Result<UnitConfig, Invalid> {
    if raw.interfaces.is_empty() {
        return invalid("interfaces", "at least one data interface is needed");
    }
    let mut interfaces: Vec<InterfaceConfig> = Vec::new();
    for (i, f) in raw.interfaces.iter().enumerate() {
        let at = |name: &str| format!("interfaces[{i}].{name}");
        match profile.port(&f.port) {
            None => return invalid(at("port"), format!("the profile has no port `{}`", f.port)),
            Some(p) if p.role != Role::Data => {
                return invalid(at("port"), format!("port `{}` is not a data port", f.port))
            }
            Some(_) => {}
        }
        if interfaces.iter().any(|o| o.port == f.port) {
            return invalid(at("port"), format!("port `{}` is configured twice", f.port));
        }
        let address: Ipv4Prefix = f.address.parse().map_err(|e| (at("address"), format!("{e}")))?;
        if !(1..=30).contains(&address.len()) {
            return invalid(at("address"), "prefix length must be 1..=30");
        }
        if !is_unicast_host(address.addr()) || address.addr() == address.network() || address.addr() == address.broadcast() {
            return invalid(at("address"), format!("{} is not a host address of its subnet", address.addr()));
        }
        if let Some(o) = interfaces.iter().find(|o| o.address.contains(address.network()) || address.contains(o.address.network())) {
            return invalid(at("address"), format!("subnet overlaps {} of port `{}`", o.address, o.port));
        }
        let virtual_ip = match &f.virtual_ip {
            None => None,
            Some(s) => {
                let vip: Ipv4Addr = s.parse().map_err(|_| (at("virtual_ip"), format!("`{s}` is not an IPv4 address")))?;
                if !address.contains(vip) || vip == address.network() || vip == address.broadcast() {
                    return invalid(at("virtual_ip"), format!("{vip} is not a host address of {}", address));
                }
                if vip == address.addr() {
                    return invalid(at("virtual_ip"), "the virtual IP must differ from the interface address");
                }
                Some(vip)
            }
        };
        let virtual_mac = match &f.virtual_mac {
            None => None,
            Some(s) => {
                let mac: EthernetAddress = s.parse().map_err(|_| (at("virtual_mac"), format!("`{s}` is not a MAC address")))?;
                if !mac.is_unicast() || mac == EthernetAddress::UNSPECIFIED {
                    return invalid(at("virtual_mac"), format!("{mac} is not a unicast MAC"));
                }
                Some(mac)
            }
        };
        if virtual_ip.is_some() != virtual_mac.is_some() {
            let missing = if virtual_ip.is_some() { "virtual_mac" } else { "virtual_ip" };
            return invalid(at(missing), "virtual_ip and virtual_mac go together");
        }
        interfaces.push(InterfaceConfig { port: f.port.clone(), address, virtual_ip, virtual_mac });
    }
    let mut routes: Vec<StaticRoute> = Vec::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let at = |name: &str| format!("routes[{i}].{name}");
        let prefix: Ipv4Prefix = r.prefix.parse().map_err(|e| (at("prefix"), format!("{e}")))?;
        if prefix.addr() != prefix.network() {
            return invalid(at("prefix"), format!("host bits set; did you mean {}/{}?", prefix.network(), prefix.len()));
        }
        if routes.iter().any(|o| o.prefix == prefix) || interfaces.iter().any(|o| o.address.network() == prefix.network() && o.address.len() == prefix.len()) {
            return invalid(at("prefix"), format!("{prefix} is already routed"));
        }
        let via: Ipv4Addr = r.via.parse().map_err(|_| (at("via"), format!("`{}` is not an IPv4 address", r.via)))?;
        if !interfaces.iter().any(|o| o.address.contains(via)) {
            return invalid(at("via"), format!("gateway {via} is on no connected subnet"));
        }
        if interfaces.iter().any(|o| o.address.addr() == via || o.virtual_ip == Some(via)) {
            return invalid(at("via"), format!("gateway {via} is the unit's own address"));
        }
        routes.push(StaticRoute { prefix, via });
    }
    Ok(UnitConfig { router: RouterConfig { interfaces, routes } })
}

fn is_unicast_host(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() || ip.octets()[0] >= 240)
}
