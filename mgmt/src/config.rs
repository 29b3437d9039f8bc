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

use dataplane::conntrack::conn::Timeouts;
use dataplane::forward::{InterfaceConfig, Ipv4Prefix, RouterConfig, StaticRoute};
use dataplane::wire::EthernetAddress;
use hw_profiles::diagnostic::{self, Diagnostic};
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
    /// `file:line:column: field: reason` — not a valid configuration.
    #[error("{}", located(.file, .at))]
    Invalid {
        /// The file.
        file: String,
        /// Where and why.
        at: Diagnostic,
    },
}

/// `file:line:column: field: reason`, without `field: ` for the document as a whole:
/// the one shape of every refusal of a unit's RON files (configuration, rules).
pub(crate) fn located(file: &str, at: &Diagnostic) -> String {
    if at.field.is_empty() {
        format!("{file}:{}:{}: {}", at.line, at.column, at.reason)
    } else {
        format!(
            "{file}:{}:{}: {}: {}",
            at.line, at.column, at.field, at.reason
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    interfaces: Vec<InterfaceFile>,
    #[serde(default)]
    routes: Vec<RouteFile>,
    #[serde(default)]
    timeouts: TimeoutsFile,
}

/// The longest timeout accepted: a year, far beyond any sane setting, and
/// far below where seconds-since-boot arithmetic could overflow.
const MAX_TIMEOUT: u32 = 366 * 24 * 3600;

/// One list of `file field => place in Timeouts`, from which the file's
/// struct, its defaults (Linux's) and its validation are all generated.
macro_rules! timeouts_file {
    ($($name:ident => $($path:ident).+,)*) => {
        /// Connection timeouts in seconds; each one left out keeps Linux's default.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct TimeoutsFile {
            $($name: u32,)*
        }

        impl Default for TimeoutsFile {
            fn default() -> Self {
                let t = Timeouts::default();
                Self { $($name: t.$($path).+,)* }
            }
        }

        impl TimeoutsFile {
            fn to_timeouts(&self) -> Result<Timeouts, Invalid> {
                let mut t = Timeouts::default();
                $(
                    let v = self.$name;
                    if v == 0 || v > MAX_TIMEOUT {
                        let field = concat!("timeouts.", stringify!($name));
                        return invalid(field, format!("{v} s is not in 1..={MAX_TIMEOUT}"));
                    }
                    t.$($path).+ = v;
                )*
                Ok(t)
            }
        }
    };
}

timeouts_file! {
    tcp_syn_sent => tcp.syn_sent,
    tcp_syn_recv => tcp.syn_recv,
    tcp_established => tcp.established,
    tcp_fin_wait => tcp.fin_wait,
    tcp_close_wait => tcp.close_wait,
    tcp_last_ack => tcp.last_ack,
    tcp_time_wait => tcp.time_wait,
    tcp_close => tcp.close,
    tcp_retrans => tcp.retrans,
    tcp_unacknowledged => tcp.unacknowledged,
    udp_unreplied => udp_unreplied,
    udp_replied => udp_replied,
    icmp => icmp,
    other => other,
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
    /// Connection tracking timeouts.
    pub timeouts: Timeouts,
}

impl UnitConfig {
    /// Reads and validates `path` against `profile`.
    pub fn load(path: &Path, profile: &Profile) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Self::parse(&source, &file, profile)
    }

    /// Validates `source`, naming it `file` in errors.
    pub fn parse(source: &str, file: &str, profile: &Profile) -> Result<Self, ConfigError> {
        let raw: File = ron::from_str(source).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            at: diagnostic::from_ron_error(source, &e),
        })?;
        validate(&raw, profile).map_err(|(field, reason)| ConfigError::Invalid {
            file: file.into(),
            at: diagnostic::at_path(source, &field, reason),
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
        let address: Ipv4Prefix = f
            .address
            .parse()
            .map_err(|e| (at("address"), format!("{e}")))?;
        if !(1..=30).contains(&address.len()) {
            return invalid(at("address"), "prefix length must be 1..=30");
        }
        if !is_unicast_host(address.addr())
            || address.addr() == address.network()
            || address.addr() == address.broadcast()
        {
            return invalid(
                at("address"),
                format!("{} is not a host address of its subnet", address.addr()),
            );
        }
        if let Some(o) = interfaces.iter().find(|o| {
            o.address.contains(address.network()) || address.contains(o.address.network())
        }) {
            return invalid(
                at("address"),
                format!("subnet overlaps {} of port `{}`", o.address, o.port),
            );
        }
        let virtual_ip = match &f.virtual_ip {
            None => None,
            Some(s) => {
                let vip: Ipv4Addr = s
                    .parse()
                    .map_err(|_| (at("virtual_ip"), format!("`{s}` is not an IPv4 address")))?;
                if !address.contains(vip) || vip == address.network() || vip == address.broadcast()
                {
                    return invalid(
                        at("virtual_ip"),
                        format!("{vip} is not a host address of {}", address),
                    );
                }
                if vip == address.addr() {
                    return invalid(
                        at("virtual_ip"),
                        "the virtual IP must differ from the interface address",
                    );
                }
                Some(vip)
            }
        };
        let virtual_mac = match &f.virtual_mac {
            None => None,
            Some(s) => {
                let mac: EthernetAddress = s
                    .parse()
                    .map_err(|_| (at("virtual_mac"), format!("`{s}` is not a MAC address")))?;
                if !mac.is_unicast() || mac == EthernetAddress::UNSPECIFIED {
                    return invalid(at("virtual_mac"), format!("{mac} is not a unicast MAC"));
                }
                Some(mac)
            }
        };
        if virtual_ip.is_some() != virtual_mac.is_some() {
            let missing = if virtual_ip.is_some() {
                "virtual_mac"
            } else {
                "virtual_ip"
            };
            return invalid(at(missing), "virtual_ip and virtual_mac go together");
        }
        interfaces.push(InterfaceConfig {
            port: f.port.clone(),
            address,
            virtual_ip,
            virtual_mac,
        });
    }
    let mut routes: Vec<StaticRoute> = Vec::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let at = |name: &str| format!("routes[{i}].{name}");
        let prefix: Ipv4Prefix = r
            .prefix
            .parse()
            .map_err(|e| (at("prefix"), format!("{e}")))?;
        if prefix.addr() != prefix.network() {
            return invalid(
                at("prefix"),
                format!(
                    "host bits set; did you mean {}/{}?",
                    prefix.network(),
                    prefix.len()
                ),
            );
        }
        if routes.iter().any(|o| o.prefix == prefix)
            || interfaces
                .iter()
                .any(|o| o.address.network() == prefix.network() && o.address.len() == prefix.len())
        {
            return invalid(at("prefix"), format!("{prefix} is already routed"));
        }
        let via: Ipv4Addr = r
            .via
            .parse()
            .map_err(|_| (at("via"), format!("`{}` is not an IPv4 address", r.via)))?;
        if !interfaces.iter().any(|o| o.address.contains(via)) {
            return invalid(
                at("via"),
                format!("gateway {via} is on no connected subnet"),
            );
        }
        if interfaces
            .iter()
            .any(|o| o.address.addr() == via || o.virtual_ip == Some(via))
        {
            return invalid(
                at("via"),
                format!("gateway {via} is the unit's own address"),
            );
        }
        routes.push(StaticRoute { prefix, via });
    }
    let timeouts = raw.timeouts.to_timeouts()?;
    Ok(UnitConfig {
        router: RouterConfig { interfaces, routes },
        timeouts,
    })
}

fn is_unicast_host(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.octets()[0] >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = include_str!("../../hw-profiles/profiles/lab.ron");

    const GOOD: &str = r#"(
    interfaces: [
        (port: "data0", address: "198.18.1.1/24",
         virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
        (port: "data1", address: "198.18.2.1/24"),
    ],
    routes: [
        (prefix: "198.19.0.0/16", via: "198.18.2.2"),
    ],
)
"#;

    fn profile() -> Profile {
        Profile::from_str_named(PROFILE, "lab.ron").unwrap()
    }

    fn refused(text: &str) -> String {
        UnitConfig::parse(text, "unit.ron", &profile())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_config_loads() {
        let c = UnitConfig::parse(GOOD, "unit.ron", &profile()).unwrap();
        assert_eq!(c.router.interfaces.len(), 2);
        assert_eq!(
            c.router.interfaces[0].virtual_ip,
            Some(Ipv4Addr::new(198, 18, 1, 254))
        );
        assert_eq!(c.router.routes[0].via, Ipv4Addr::new(198, 18, 2, 2));
        assert!(c.router.route_table().is_ok());
    }

    /// One change at a time, each with its exact message.
    #[test]
    fn bad_configs_are_refused_with_file_line_field_and_reason() {
        let cases = [
            (GOOD.replace("routes: [", "rotes: ["), "unit.ron:7:5: rotes: unknown field `rotes`, expected `interfaces`, `routes` or `timeouts`"),
            (GOOD.replace("\"data1\"", "\"data7\""), "unit.ron:5:16: interfaces[1].port: the profile has no port `data7`"),
            (GOOD.replace("\"data1\"", "\"ha0\""), "unit.ron:5:16: interfaces[1].port: port `ha0` is not a data port"),
            (GOOD.replace("\"data1\"", "\"data0\""), "unit.ron:5:16: interfaces[1].port: port `data0` is configured twice"),
            (GOOD.replace("198.18.2.1/24", "198.18.2.1"), "unit.ron:5:34: interfaces[1].address: expected ADDRESS/LENGTH, e.g. 198.18.1.0/24"),
            (GOOD.replace("198.18.2.1/24", "198.18.2.0/24"), "unit.ron:5:34: interfaces[1].address: 198.18.2.0 is not a host address of its subnet"),
            (GOOD.replace("198.18.2.1/24", "198.18.1.9/16"), "unit.ron:5:34: interfaces[1].address: subnet overlaps 198.18.1.1/24 of port `data0`"),
            (GOOD.replace("198.18.1.254", "198.18.9.254"), "unit.ron:4:22: interfaces[0].virtual_ip: 198.18.9.254 is not a host address of 198.18.1.1/24"),
            (GOOD.replace("02:00:5e:10:00:01", "01:00:5e:10:00:01"), "unit.ron:4:57: interfaces[0].virtual_mac: 01:00:5e:10:00:01 is not a unicast MAC"),
            (GOOD.replace(", virtual_mac: Some(\"02:00:5e:10:00:01\")", ""), "unit.ron:3:9: interfaces[0].virtual_mac: virtual_ip and virtual_mac go together"),
            (GOOD.replace("198.19.0.0/16", "198.19.0.1/16"), "unit.ron:8:18: routes[0].prefix: host bits set; did you mean 198.19.0.0/16?"),
            (GOOD.replace("198.19.0.0/16", "198.18.2.0/24"), "unit.ron:8:18: routes[0].prefix: 198.18.2.0/24 is already routed"),
            (GOOD.replace("via: \"198.18.2.2\"", "via: \"198.18.3.2\""), "unit.ron:8:40: routes[0].via: gateway 198.18.3.2 is on no connected subnet"),
            (GOOD.replace("via: \"198.18.2.2\"", "via: \"198.18.2.1\""), "unit.ron:8:40: routes[0].via: gateway 198.18.2.1 is the unit's own address"),
            ("(interfaces: [])".to_string(), "unit.ron:1:14: interfaces: at least one data interface is needed"),
        ];
        let got: Vec<String> = cases.iter().map(|(text, _)| refused(text)).collect();
        let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn timeouts_override_linux_defaults_one_by_one() {
        let text = GOOD.replace(
            "    routes: [",
            "    timeouts: (tcp_established: 3600, udp_unreplied: 10),\n    routes: [",
        );
        let c = UnitConfig::parse(&text, "unit.ron", &profile()).unwrap();
        assert_eq!(c.timeouts.tcp.established, 3600);
        assert_eq!(c.timeouts.udp_unreplied, 10);
        assert_eq!(c.timeouts.tcp.time_wait, 120, "the rest keep the defaults");
        let bad = GOOD.replace(
            "    routes: [",
            "    timeouts: (tcp_time_wait: 0),\n    routes: [",
        );
        assert_eq!(
            refused(&bad),
            "unit.ron:7:31: timeouts.tcp_time_wait: 0 s is not in 1..=31622400"
        );
        let unknown = GOOD.replace(
            "    routes: [",
            "    timeouts: (tcp_tme_wait: 5),\n    routes: [",
        );
        assert!(
            refused(&unknown).starts_with("unit.ron:7:16: timeouts.tcp_tme_wait: unknown field"),
            "{}",
            refused(&unknown)
        );
    }

    #[test]
    fn truncated_files_are_refused_never_panic() {
        for end in 0..GOOD.len() {
            if GOOD.is_char_boundary(end) {
                let _ = UnitConfig::parse(&GOOD[..end], "unit.ron", &profile());
            }
        }
    }
}
