//! The unit's configuration file (RON): its data interfaces, static routes,
//! connection timeouts and, for a unit of a pair, its HA section ([`ha`]).
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
//!     ha: Some((
//!         serial: "TNDM-LAB-A", peer_serial: "TNDM-LAB-B", role: Active,
//!         psk_file: "/etc/tandem/cluster.key",
//!         links: [(port: "ha0", address: "198.18.254.1/30", peer: "198.18.254.2")],
//!     )),
//! )
//! ```
//!
//! The part both members of a pair have alike (virtual addresses, routes,
//! timeouts, election weights and sync tuning) may be written in a file of
//! its own, [`shared`] (`tandemd --shared`), which `hasync` sends to the
//! partner. Without `ha` the unit runs alone. The section's fields, defaults and
//! ranges are described in [`ha`].
//!
//! Loading checks everything before anything is used: a file that does not
//! parse, names a field the format does not have, or does not make sense
//! against the hardware profile is refused as a whole with
//! `file:line:column: field: reason`.
//!
//! # Limits
//!
//! At most [`MAX_ROUTES`] routes (a full Internet table twice over) and
//! [`MAX_CONFIG_BYTES`] bytes. A bigger file is refused by its size before it
//! is read, and a list past its count is refused at the first item too many,
//! before the rest is read: a wrong file costs no more memory than a full one.
//! Checking is linear in the number of routes.

use dataplane::conntrack::conn::Timeouts;
use dataplane::forward::{InterfaceConfig, Ipv4Prefix, RouterConfig, StaticRoute};
use dataplane::wire::EthernetAddress;
use hw_profiles::diagnostic::{self, Diagnostic, ReadError};
use hw_profiles::{Profile, Role};
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::path::Path;

pub mod ha;
pub mod shared;

pub use ha::{HaConfig, HaLinkConfig, HaRole, SyncTuning};

/// Routes a configuration may hold: twice a full IPv4 Internet table (about
/// a million prefixes in 2025).
pub const MAX_ROUTES: usize = 1 << 21;

/// Bytes a route may take in the file, generously:
/// `(prefix: "255.255.255.255/32", via: "255.255.255.255"),` is 70 with its
/// indentation, which leaves room for a comment.
pub const ROUTE_BYTES: u64 = 128;

/// The largest configuration file, in bytes: [`MAX_ROUTES`] routes of
/// [`ROUTE_BYTES`], and 1 MiB for the interfaces and timeouts (257 MiB).
pub const MAX_CONFIG_BYTES: u64 = MAX_ROUTES as u64 * ROUTE_BYTES + (1 << 20);

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

/// Reads a RON file for a loader: the text, or the refusal as `Invalid` at its
/// place (too big, not UTF-8) or as `Io`.
pub(crate) fn read<E>(
    path: &Path,
    max_bytes: u64,
    io: impl FnOnce(String, std::io::Error) -> E,
    invalid: impl FnOnce(String, Diagnostic) -> E,
) -> Result<String, E> {
    let file = path.display().to_string();
    diagnostic::read_text(path, max_bytes).map_err(|e| match e {
        ReadError::Io(source) => io(file, source),
        ReadError::Invalid(at) => invalid(file, at),
    })
}

/// The refusal of an empty (or comment-only) file, which is most likely a
/// failed write rather than a wish: `the file is empty; ` and what to write.
pub(crate) fn blank(source: &str, what_to_write: &str) -> Option<Diagnostic> {
    hw_profiles::locate::is_blank(source)
        .then(|| diagnostic::at_path(source, "", format!("the file is empty; {what_to_write}")))
}

/// Deserialises a list of at most `max` items named `what`: the one past the
/// limit is refused where it starts, before any of it or the rest is read, so a
/// file far past the limit costs no more memory than a full one.
pub(crate) fn at_most<'de, D, T>(d: D, max: usize, what: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    /// An item refused before any of it is read: asking for it tells whether
    /// there is one more, and the error leaves the parser at its start. The
    /// flag tells this refusal from a syntax error met on the way to it.
    struct NoMore<'a>(&'a Cell<bool>);
    impl<'de> DeserializeSeed<'de> for NoMore<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
            self.0.set(true);
            Err(D::Error::custom("one item too many"))
        }
    }
    struct Bounded<T> {
        max: usize,
        what: &'static str,
        item: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {} {}", self.max, self.what)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while items.len() < self.max {
                match seq.next_element()? {
                    Some(item) => items.push(item),
                    None => return Ok(items),
                }
            }
            let one_more = Cell::new(false);
            match seq.next_element_seed(NoMore(&one_more)) {
                Ok(_) => Ok(items),
                Err(_) if one_more.get() => Err(A::Error::custom(format!(
                    "more than {} {}; at most {} fit",
                    self.max, self.what, self.max
                ))),
                Err(e) => Err(e),
            }
        }
    }
    d.deserialize_seq(Bounded {
        max,
        what,
        item: PhantomData,
    })
}

fn at_most_routes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RouteFile<'de>>, D::Error> {
    at_most(d, MAX_ROUTES, "routes")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File<'a> {
    interfaces: Vec<InterfaceFile>,
    #[serde(default, borrow, deserialize_with = "at_most_routes")]
    routes: Vec<RouteFile<'a>>,
    #[serde(default, deserialize_with = "written")]
    timeouts: Option<TimeoutsFile>,
    #[serde(default)]
    ha: Option<ha::HaFile>,
}

/// A section written as itself (`timeouts: (...)`, not `Some((...))`):
/// `None` stands for one left out, through `#[serde(default)]`.
pub(crate) fn written<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
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

/// A route as written. Its strings borrow from the text where they can (no
/// escapes): a full table is mostly these, so they should not double it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile<'a> {
    #[serde(borrow)]
    prefix: Cow<'a, str>,
    #[serde(borrow)]
    via: Cow<'a, str>,
}

/// A validated unit configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitConfig {
    /// What the router needs.
    pub router: RouterConfig,
    /// Connection tracking timeouts.
    pub timeouts: Timeouts,
    /// This unit's place in an HA pair; `None`: it runs alone.
    pub ha: Option<HaConfig>,
}

impl UnitConfig {
    /// Reads and validates `path` against `profile`.
    pub fn load(path: &Path, profile: &Profile) -> Result<Self, ConfigError> {
        let source = read(
            path,
            MAX_CONFIG_BYTES,
            |file, source| ConfigError::Io { file, source },
            |file, at| ConfigError::Invalid { file, at },
        )?;
        Self::parse(&source, &path.display().to_string(), profile)
    }

    /// Reads and validates `path` with the shared file `shared`
    /// ([`shared`](mod@shared): the part both members of a pair have alike).
    pub fn load_with_shared(
        path: &Path,
        shared: &Path,
        profile: &Profile,
    ) -> Result<Self, ConfigError> {
        let read_one = |p: &Path| {
            read(
                p,
                MAX_CONFIG_BYTES,
                |file, source| ConfigError::Io { file, source },
                |file, at| ConfigError::Invalid { file, at },
            )
        };
        let (source, shared_source) = (read_one(path)?, read_one(shared)?);
        Self::parse_with_shared(
            &source,
            &path.display().to_string(),
            Some((&shared_source, &shared.display().to_string())),
            profile,
        )
    }

    /// Validates `source`, naming it `file` in errors.
    pub fn parse(source: &str, file: &str, profile: &Profile) -> Result<Self, ConfigError> {
        Self::parse_with_shared(source, file, None, profile)
    }

    /// Validates `source` (named `file`) with a shared file's text and name,
    /// if any; a refusal names the file that holds the value refused.
    pub fn parse_with_shared(
        source: &str,
        file: &str,
        shared: Option<(&str, &str)>,
        profile: &Profile,
    ) -> Result<Self, ConfigError> {
        let refused = |file: &str, source: &str, (field, reason): Invalid| ConfigError::Invalid {
            file: file.into(),
            at: diagnostic::at_path(source, &field, reason),
        };
        let mut raw = Self::raw(source, file)?;
        let origins = match shared {
            None => shared::Origins::default(),
            Some((text, name)) => {
                let theirs: shared::SharedFile =
                    ron::from_str(text).map_err(|e| ConfigError::Invalid {
                        file: name.into(),
                        at: diagnostic::from_ron_error(text, &e),
                    })?;
                shared::merge(&mut raw, theirs).map_err(|(place, why)| match place {
                    shared::In::Unit => refused(file, source, why),
                    shared::In::Shared => refused(name, text, why),
                })?
            }
        };
        validate(&raw, profile).map_err(|(field, reason)| {
            match (origins.shared_path(&field), shared) {
                (Some(path), Some((text, name))) => refused(name, text, (path, reason)),
                _ => refused(file, source, (field, reason)),
            }
        })
    }

    /// The unit file as written.
    fn raw<'a>(source: &'a str, file: &str) -> Result<File<'a>, ConfigError> {
        if let Some(at) = blank(
            source,
            "a unit configuration needs at least `(interfaces: [...])`",
        ) {
            return Err(ConfigError::Invalid {
                file: file.into(),
                at,
            });
        }
        ron::from_str(source).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            at: diagnostic::from_ron_error(source, &e),
        })
    }
}

/// A refusal before it is placed in the text: the field path and the reason.
pub(crate) type Invalid = (String, String);

pub(crate) fn invalid<T>(
    field: impl Into<String>,
    reason: impl Into<String>,
) -> Result<T, Invalid> {
    Err((field.into(), reason.into()))
}

fn validate(raw: &File<'_>, profile: &Profile) -> Result<UnitConfig, Invalid> {
    if raw.interfaces.is_empty() {
        return invalid("interfaces", "at least one data interface is needed");
    }
    let mut interfaces: Vec<InterfaceConfig> = Vec::new();
    for (i, f) in raw.interfaces.iter().enumerate() {
        let at = |name: &str| format!("interfaces[{i}].{name}");
        port_of_role(profile, &f.port, Role::Data, "data interfaces")
            .map_err(|reason| (at("port"), reason))?;
        if interfaces.iter().any(|o| o.port == f.port) {
            return invalid(at("port"), format!("port `{}` is configured twice", f.port));
        }
        let address = host_prefix(&f.address).map_err(|reason| (at("address"), reason))?;
        if let Some(o) = interfaces.iter().find(|o| overlaps(&o.address, &address)) {
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
    // Every prefix routed so far, connected subnets included: a hash set, so
    // that a full Internet table is checked in linear time.
    let mut routed: HashSet<(Ipv4Addr, u8)> = interfaces
        .iter()
        .map(|o| (o.address.network(), o.address.len()))
        .collect();
    let mut routes: Vec<StaticRoute> = Vec::with_capacity(raw.routes.len());
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
        if !routed.insert((prefix.network(), prefix.len())) {
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
    let timeouts = raw
        .timeouts
        .as_ref()
        .map_or_else(|| Ok(Timeouts::default()), TimeoutsFile::to_timeouts)?;
    let ha = match &raw.ha {
        None => None,
        Some(f) => Some(ha::validate(f, profile, &interfaces)?),
    };
    Ok(UnitConfig {
        router: RouterConfig { interfaces, routes },
        timeouts,
        ha,
    })
}

/// Checks that the profile has a port `name` of role `role`, which `what`
/// (`data interfaces`, `HA links`) need; the reason otherwise.
pub(crate) fn port_of_role(
    profile: &Profile,
    name: &str,
    role: Role,
    what: &str,
) -> Result<(), String> {
    let Some(port) = profile.port(name) else {
        return Err(format!("the profile has no port `{name}`"));
    };
    if port.role == role {
        return Ok(());
    }
    let is = match port.role {
        Role::Data => "a data port",
        Role::HaLink => "an HA link port",
        Role::Management => "a management port",
    };
    Err(format!("port `{name}` is {is}; {what} need role {role:?}"))
}

/// A unit's own address on a link, written `address/length`: a unicast host
/// of a subnet of 1..=30 bits (a /31 or /32 leaves no room for a partner or
/// a neighbour beside the network and broadcast addresses); the reason
/// otherwise.
pub(crate) fn host_prefix(text: &str) -> Result<Ipv4Prefix, String> {
    let address: Ipv4Prefix = text.parse().map_err(|e| format!("{e}"))?;
    if !(1..=30).contains(&address.len()) {
        return Err("prefix length must be 1..=30".into());
    }
    if !is_unicast_host(address.addr())
        || address.addr() == address.network()
        || address.addr() == address.broadcast()
    {
        return Err(format!(
            "{} is not a host address of its subnet",
            address.addr()
        ));
    }
    Ok(address)
}

/// Whether two subnets share an address (one contains the other).
pub(crate) fn overlaps(a: &Ipv4Prefix, b: &Ipv4Prefix) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

pub(crate) fn is_unicast_host(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.octets()[0] >= 240)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file `name` holding `bytes`, in a directory removed when the first
    /// value is dropped.
    pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// The message for the file `bytes`, loaded from disk.
    fn load_refused(bytes: &[u8]) -> String {
        let (_dir, path) = temp_file("unit.ron", bytes);
        let err = UnitConfig::load(&path, &profile()).unwrap_err();
        err.to_string()
            .replace(&path.display().to_string(), "unit.ron")
    }

    pub(crate) const PROFILE: &str = include_str!("../../hw-profiles/profiles/lab.ron");

    pub(crate) const GOOD: &str = r#"(
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

    pub(crate) fn profile() -> Profile {
        Profile::from_str_named(PROFILE, "lab.ron").unwrap()
    }

    pub(crate) fn refused(text: &str) -> String {
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

    /// GOOD's unit part: its own addresses, no virtual address, no route.
    const UNIT_PART: &str = r#"(
    interfaces: [
        (port: "data0", address: "198.18.1.1/24"),
        (port: "data1", address: "198.18.2.1/24"),
    ],
)
"#;

    /// GOOD's shared part.
    const SHARED_PART: &str = r#"(
    interfaces: [
        (port: "data0", virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
    ],
    routes: [
        (prefix: "198.19.0.0/16", via: "198.18.2.2"),
    ],
    timeouts: (udp_replied: 77),
)
"#;

    fn with_shared(unit: &str, shared: &str) -> Result<UnitConfig, String> {
        UnitConfig::parse_with_shared(unit, "unit.ron", Some((shared, "shared.ron")), &profile())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_shared_file_completes_the_unit_file() {
        let whole = UnitConfig::parse(GOOD, "unit.ron", &profile()).unwrap();
        let merged = with_shared(UNIT_PART, SHARED_PART).unwrap();
        assert_eq!(merged.router, whole.router);
        assert_eq!(merged.timeouts.udp_replied, 77);
        assert_eq!(with_shared(UNIT_PART, "()").unwrap().router.routes, []);
    }

    #[test]
    fn a_refusal_names_the_file_that_holds_the_value() {
        assert_eq!(
            with_shared(UNIT_PART, &SHARED_PART.replace("198.18.2.2", "198.18.9.2")).unwrap_err(),
            "shared.ron:6:40: routes[0].via: gateway 198.18.9.2 is on no connected subnet"
        );
        assert_eq!(
            with_shared(UNIT_PART, &SHARED_PART.replace("198.18.1.254", "198.18.9.254")).unwrap_err(),
            "shared.ron:3:37: interfaces[0].virtual_ip: 198.18.9.254 is not a host address of 198.18.1.1/24"
        );
        assert_eq!(
            with_shared(UNIT_PART, &SHARED_PART.replace("\"data0\"", "\"data7\"")).unwrap_err(),
            "shared.ron:3:16: interfaces[0].port: `data7` is not a data interface of the unit file"
        );
        assert_eq!(
            with_shared(
                UNIT_PART,
                &SHARED_PART.replace("udp_replied: 77", "udp_replied: 0")
            )
            .unwrap_err(),
            "shared.ron:8:29: timeouts.udp_replied: 0 s is not in 1..=31622400"
        );
        assert_eq!(
            with_shared(GOOD, SHARED_PART).unwrap_err(),
            "unit.ron:4:22: interfaces[0].virtual_ip: also written in the shared file (--shared); write it in one of the two"
        );
        assert_eq!(
            with_shared(UNIT_PART, "(ha: Some((sync: (min_age_s: 1))))").unwrap_err(),
            "shared.ron:1:6: ha: the unit file has no `ha` section: a unit alone shares nothing"
        );
        assert!(with_shared(UNIT_PART, "(rotes: [])")
            .unwrap_err()
            .starts_with("shared.ron:1:2: rotes: unknown field `rotes`"));
    }

    /// One change at a time, each with its exact message.
    #[test]
    fn bad_configs_are_refused_with_file_line_field_and_reason() {
        let cases = [
            (GOOD.replace("routes: [", "rotes: ["), "unit.ron:7:5: rotes: unknown field `rotes`, expected `interfaces`, `routes`, `timeouts` or `ha`"),
            (GOOD.replace("\"data1\"", "\"data7\""), "unit.ron:5:16: interfaces[1].port: the profile has no port `data7`"),
            (GOOD.replace("\"data1\"", "\"ha0\""), "unit.ron:5:16: interfaces[1].port: port `ha0` is an HA link port; data interfaces need role Data"),
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
            ("".to_string(), "unit.ron:1:1: the file is empty; a unit configuration needs at least `(interfaces: [...])`"),
            ("// nothing yet\n".to_string(), "unit.ron:1:1: the file is empty; a unit configuration needs at least `(interfaces: [...])`"),
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

    #[test]
    fn not_utf8_is_placed_like_the_profile() {
        let mut bytes = GOOD.as_bytes().to_vec();
        let at = GOOD.find("data1").unwrap();
        bytes[at] = 0xff;
        assert_eq!(load_refused(&bytes), "unit.ron:5:17: not valid UTF-8");
    }

    #[test]
    fn unclosed_comment_is_placed_where_it_opens() {
        assert_eq!(
            refused(&GOOD.replace("    routes: [", "    /* routes: [")),
            "unit.ron:7:5: unclosed /* comment: it runs to the end of the file"
        );
        assert_eq!(
            refused("/* (interfaces: [])"),
            "unit.ron:1:1: unclosed /* comment: it runs to the end of the file"
        );
    }

    #[test]
    fn a_file_past_the_size_limit_is_refused_unread() {
        let (_dir, path) = temp_file("big.ron", b"");
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let err = UnitConfig::load(&path, &profile()).unwrap_err().to_string();
        assert!(
            err.ends_with(":1:1: the file is 269484033 bytes, over the limit of 269484032 bytes"),
            "{err}"
        );
    }

    #[derive(Debug, Deserialize)]
    struct Three {
        #[serde(deserialize_with = "three")]
        items: Vec<u8>,
    }

    fn three<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        at_most(d, 3, "items")
    }

    /// The count is refused at the first item too many, before it or anything
    /// after it is read: a broken item further on is never reached.
    #[test]
    fn a_list_is_refused_at_the_first_item_past_its_limit() {
        let placed = |text: &str| match ron::from_str::<Three>(text) {
            Ok(t) => format!("ok {:?}", t.items),
            Err(e) => {
                let d = diagnostic::from_ron_error(text, &e);
                located("x.ron", &d)
            }
        };
        assert_eq!(placed("(items: [1, 2, 3])"), "ok [1, 2, 3]");
        assert_eq!(placed("(items: [1, 2, 3,])"), "ok [1, 2, 3]");
        assert_eq!(placed("(items: [])"), "ok []");
        assert_eq!(
            placed("(items: [1, 2, 3, 4, 5])"),
            "x.ron:1:19: items[3]: more than 3 items; at most 3 fit"
        );
        assert_eq!(
            placed("(items: [1, 2, 3,\n  4, oops ]]]"),
            "x.ron:2:3: items[3]: more than 3 items; at most 3 fit"
        );
        // A syntax error where the next item would be is that error.
        assert_eq!(
            placed("(items: [1, 2, 3 4])"),
            "x.ron:1:18: items[3]: expected a comma before this"
        );
        assert_eq!(
            placed("(items: [1, 2, 3"),
            "x.ron:1:17: items[2]: unexpected end of file (unclosed bracket?)"
        );
    }

    #[test]
    fn routes_are_limited_to_twice_a_full_table() {
        assert_eq!(MAX_ROUTES, 2_097_152);
        assert_eq!(MAX_CONFIG_BYTES, 257 << 20);
    }

    /// Duplicates are found by hashing, wherever they are: the last of 20 000
    /// routes repeats the first.
    #[test]
    fn a_duplicate_far_down_a_long_table_is_found() {
        let mut text = String::from(
            "(interfaces: [(port: \"data1\", address: \"198.18.2.1/24\")], routes: [\n",
        );
        for i in 0..20_000u32 {
            let x = (1 << 16) + i;
            text += &format!(
                "(prefix: \"{}.{}.{}.0/24\", via: \"198.18.2.2\"),\n",
                x >> 16,
                (x >> 8) & 255,
                x & 255
            );
        }
        let c = UnitConfig::parse(&format!("{text}])"), "unit.ron", &profile()).unwrap();
        assert_eq!(c.router.routes.len(), 20_000);
        text += "(prefix: \"1.0.0.0/24\", via: \"198.18.2.2\"),\n])";
        assert_eq!(
            refused(&text),
            "unit.ron:20002:10: routes[20000].prefix: 1.0.0.0/24 is already routed"
        );
    }
}
