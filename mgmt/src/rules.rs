//! The rules file (RON): what the firewall passes and blocks.
//!
//! ```ron
//! (
//!     default: Block,
//!     rules: [
//!         (action: Pass, proto: Some(Tcp), in: Some("data0"), dst: Some("198.18.2.0/24"),
//!          dst_ports: Some("80"), label: Some("web")),
//!         (action: Pass, proto: Some(Udp), dst_ports: Some("5353")),
//!         (action: Pass, proto: Some(Icmp), icmp_type: Some(8)),
//!         (action: Block, src: Some("198.18.1.66"), log: true),
//!         (action: Pass, proto: Some(Number(47)), keep_state: false),
//!     ],
//! )
//! ```
//!
//! # Semantics
//!
//! The first rule that matches a new flow decides (every rule is pf's `quick`); a flow
//! no rule matches gets `default`. Rules decide only the first packet of a flow: with
//! `keep_state` the flow gets a connection entry and the rest of it, replies included,
//! never comes back to the rules. A reload swaps the whole set and keeps every existing
//! connection. See [`dataplane::filter`] for the details.
//!
//! # Format
//!
//! | field | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `default` | `Pass` or `Block` | `Block` | for flows no rule matches |
//! | `rules` | list | required | tried in order |
//! | `action` | `Pass` or `Block` | required | |
//! | `in`, `out` | `Some("data0")` | any | data interface the packet enters / leaves by (pf's `in on` / `out on`) |
//! | `src`, `dst` | `Some("198.18.0.0/15")`, `Some("2001:db8::/32")`, `Some("198.18.1.66")` | any | prefix; a bare address is one host |
//! | `proto` | `Some(Tcp \| Udp \| Sctp \| Icmp \| Icmpv6 \| Number(47))` | any | IP protocol |
//! | `src_ports`, `dst_ports` | `Some("80")`, `Some("1024-65535")` | any | inclusive; needs `proto` TCP, UDP or SCTP |
//! | `icmp_type` | `Some(8)` | any | needs `proto` `Icmp` or `Icmpv6` |
//! | `keep_state` | bool | `true` | track the connection (meaningless on `Block`) |
//! | `sync` | bool | same as `keep_state` | send the connection to the partner |
//! | `log` | bool | `false` | log the packet the rule decides on |
//! | `label` | `Some("web")` | none | name in listings and logs; unique, printable |
//!
//! `in` and `out` are written as pf writes them; in Rust they are `in_iface` and
//! `out_iface`. Ports are strings because a range is one value to an operator
//! (`"1024-65535"`), as in pf and iptables.
//!
//! # Refused
//!
//! Everything is checked before anything is built, and the first problem is reported as
//! `file:line:column: field: reason`: syntax, unknown fields, an empty file, an unknown
//! interface, a bad prefix (host bits set included), `src` and `dst` of different
//! families, `Icmp` with IPv6 prefixes or `Icmpv6` with IPv4 ones, a reversed or
//! out-of-range port range, ports without TCP/UDP/SCTP, `icmp_type` without ICMP or
//! past 255, a protocol number past 255, a duplicate or empty label, and `keep_state:
//! false` with an explicit `sync: true` — a connection that is not tracked has no state
//! to send, and quietly not syncing what the operator asked to sync would surprise at
//! the worst moment (a takeover). Every rule that loads can match something.
//!
//! # Limits
//!
//! At most [`MAX_RULES`] rules and [`MAX_RULES_FILE_BYTES`] bytes. A bigger
//! file is refused by its size before it is read, and the rule past the count
//! is refused as soon as it is read, before the rest: a refused file, at boot or
//! on reload, costs no more memory than a full one.

use crate::config::{at_most, blank, located, read, UnitConfig};
use dataplane::filter::meta::{ICMP, ICMPV6, SCTP, TCP, UDP};
use dataplane::filter::{Action, IpPrefix, PortRange, Rule, RuleSet, MAX_RULES};
use dataplane::forward::IfIndex;
use hw_profiles::diagnostic::{self, Diagnostic};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::path::Path;

/// A refused rules file, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `file:line:column: field: reason` — not a valid rules file.
    #[error("{}", located(.file, .at))]
    Invalid {
        /// The file.
        file: String,
        /// Where and why.
        at: Diagnostic,
    },
}

/// Bytes a rule may take in the file, generously: one with every field and
/// IPv6 prefixes is about 330, which leaves room for a label and a comment.
pub const RULE_BYTES: u64 = 512;

/// The largest rules file, in bytes: [`MAX_RULES`] rules of [`RULE_BYTES`]
/// (just under 32 MiB).
pub const MAX_RULES_FILE_BYTES: u64 = MAX_RULES as u64 * RULE_BYTES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "block")]
    default: ActionFile,
    #[serde(deserialize_with = "at_most_rules")]
    rules: Vec<RuleFile>,
}

fn at_most_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RuleFile>, D::Error> {
    at_most(d, MAX_RULES, "rules")
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum ActionFile {
    Pass,
    Block,
}

fn block() -> ActionFile {
    ActionFile::Block
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum ProtoFile {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    /// Wider than `u8` so that 256 gets this module's message, not RON's.
    Number(i64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    action: ActionFile,
    #[serde(default, rename = "in")]
    in_iface: Option<String>,
    #[serde(default, rename = "out")]
    out_iface: Option<String>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dst: Option<String>,
    #[serde(default)]
    proto: Option<ProtoFile>,
    #[serde(default)]
    src_ports: Option<String>,
    #[serde(default)]
    dst_ports: Option<String>,
    #[serde(default)]
    icmp_type: Option<i64>,
    #[serde(default = "yes")]
    keep_state: bool,
    /// `None` when not written: then it follows `keep_state`.
    #[serde(default, deserialize_with = "written_bool")]
    sync: Option<bool>,
    #[serde(default)]
    log: bool,
    #[serde(default)]
    label: Option<String>,
}

fn yes() -> bool {
    true
}

/// A plain `true`/`false` in the file, remembered as written (`Some`) so that an explicit
/// `sync: true` can be told from the default.
fn written_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool::deserialize(d).map(Some)
}

impl From<ActionFile> for Action {
    fn from(a: ActionFile) -> Self {
        match a {
            ActionFile::Pass => Action::Pass,
            ActionFile::Block => Action::Block,
        }
    }
}

/// Reads and validates the rules file at `path`. `interfaces` are the data interface
/// names in index order (see [`interface_names`]).
pub fn load<S: AsRef<str>>(path: &Path, interfaces: &[S]) -> Result<RuleSet, RulesError> {
    let source = read(
        path,
        MAX_RULES_FILE_BYTES,
        |file, source| RulesError::Io { file, source },
        |file, at| RulesError::Invalid { file, at },
    )?;
    parse(&source, &path.display().to_string(), interfaces)
}

/// Validates `source`, naming it `file` in errors, and builds the rule set.
pub fn parse<S: AsRef<str>>(
    source: &str,
    file: &str,
    interfaces: &[S],
) -> Result<RuleSet, RulesError> {
    let invalid = |at| RulesError::Invalid {
        file: file.into(),
        at,
    };
    // Not a wish to block everything: say how to write that wish.
    if let Some(at) = blank(source, "`(rules: [])` blocks everything") {
        return Err(invalid(at));
    }
    let raw: File =
        ron::from_str(source).map_err(|e| invalid(diagnostic::from_ron_error(source, &e)))?;
    validate(&raw, interfaces)
        .map_err(|(field, reason)| invalid(diagnostic::at_path(source, &field, reason)))
}

/// The data interface names in the index order the dataplane uses (the unit
/// configuration's order), for [`load`].
pub fn interface_names(config: &UnitConfig) -> Vec<String> {
    config
        .router
        .interfaces
        .iter()
        .map(|i| i.port.clone())
        .collect()
}

type Invalid = (String, String);

fn invalid<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, Invalid> {
    Err((field.into(), reason.into()))
}

fn family(p: &IpPrefix) -> &'static str {
    if p.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// "`a`, `b` and `c`" for the interfaces a unit has.
fn list<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.as_slice() {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn validate<S: AsRef<str>>(raw: &File, interfaces: &[S]) -> Result<RuleSet, Invalid> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
    // The rule of each label so far: hashed, so a full set is checked in linear time.
    let mut labels: HashMap<&str, usize> = HashMap::new();
    for (i, f) in raw.rules.iter().enumerate() {
        let rule = validate_rule(i, f, interfaces)?;
        if let Some(l) = &f.label {
            if let Some(j) = labels.insert(l, i) {
                return invalid(
                    format!("rules[{i}].label"),
                    format!("label `{l}` is already used by rules[{j}]"),
                );
            }
        }
        rules.push(rule);
    }
    RuleSet::new(rules, raw.default.into()).or_else(|e| invalid("rules", e.to_string()))
}

fn validate_rule<S: AsRef<str>>(i: usize, f: &RuleFile, interfaces: &[S]) -> Result<Rule, Invalid> {
    let at = |name: &str| format!("rules[{i}].{name}");
    let iface = |name: &str, written: &Option<String>| -> Result<Option<IfIndex>, Invalid> {
        let Some(w) = written else { return Ok(None) };
        match interfaces.iter().position(|n| n.as_ref() == w) {
            Some(index) => Ok(Some(index)),
            None => invalid(
                at(name),
                format!("no data interface `{w}`; the unit has {}", list(interfaces)),
            ),
        }
    };
    let in_iface = iface("in", &f.in_iface)?;
    let out_iface = iface("out", &f.out_iface)?;

    let proto = match f.proto {
        None => None,
        Some(ProtoFile::Tcp) => Some(TCP),
        Some(ProtoFile::Udp) => Some(UDP),
        Some(ProtoFile::Sctp) => Some(SCTP),
        Some(ProtoFile::Icmp) => Some(ICMP),
        Some(ProtoFile::Icmpv6) => Some(ICMPV6),
        Some(ProtoFile::Number(n)) => match u8::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                return invalid(
                    at("proto"),
                    format!("protocol number {n} is not in 0..=255"),
                )
            }
        },
    };

    let prefix = |name: &str, written: &Option<String>| -> Result<Option<IpPrefix>, Invalid> {
        match written {
            None => Ok(None),
            Some(w) => w.parse().map(Some).map_err(|e| (at(name), format!("{e}"))),
        }
    };
    let src = prefix("src", &f.src)?;
    let dst = prefix("dst", &f.dst)?;
    if let (Some(s), Some(d)) = (&src, &dst) {
        if s.is_ipv4() != d.is_ipv4() {
            return invalid(
                at("dst"),
                format!(
                    "dst is {} but src is {}; no packet has both",
                    family(d),
                    family(s)
                ),
            );
        }
    }
    if let Some(p) = src.or(dst) {
        match proto {
            Some(ICMP) if !p.is_ipv4() => {
                return invalid(
                    at("proto"),
                    "Icmp is IPv4's but the addresses are IPv6; use Icmpv6",
                )
            }
            Some(ICMPV6) if p.is_ipv4() => {
                return invalid(
                    at("proto"),
                    "Icmpv6 is IPv6's but the addresses are IPv4; use Icmp",
                )
            }
            _ => {}
        }
    }

    let ports = |name: &str, written: &Option<String>| -> Result<Option<PortRange>, Invalid> {
        let Some(w) = written else { return Ok(None) };
        let range: PortRange = w.parse().map_err(|e| (at(name), format!("{e}")))?;
        if !matches!(proto, Some(TCP | UDP | SCTP)) {
            return invalid(at(name), "ports need proto Tcp, Udp or Sctp");
        }
        Ok(Some(range))
    };
    let src_ports = ports("src_ports", &f.src_ports)?;
    let dst_ports = ports("dst_ports", &f.dst_ports)?;

    let icmp_type = match f.icmp_type {
        None => None,
        Some(t) => {
            let Ok(t) = u8::try_from(t) else {
                return invalid(at("icmp_type"), format!("ICMP type {t} is not in 0..=255"));
            };
            if !matches!(proto, Some(ICMP | ICMPV6)) {
                return invalid(at("icmp_type"), "icmp_type needs proto Icmp or Icmpv6");
            }
            Some(t)
        }
    };

    if !f.keep_state && f.sync == Some(true) {
        return invalid(
            at("sync"),
            "sync needs keep_state: a connection that is not tracked has no state to send",
        );
    }
    let action = Action::from(f.action);
    // Stored as they act, so listings and the revision show the truth.
    let keep_state = f.keep_state && action == Action::Pass;
    let sync = f.sync.unwrap_or(true) && keep_state;

    if let Some(l) = &f.label {
        if l.trim().is_empty() {
            return invalid(at("label"), "a label must not be blank");
        }
        if l.chars().any(char::is_control) {
            return invalid(
                at("label"),
                "a label must be printable (no control characters)",
            );
        }
    }

    Ok(Rule {
        action,
        in_iface,
        out_iface,
        src,
        dst,
        proto,
        src_ports,
        dst_ports,
        icmp_type,
        keep_state,
        sync,
        log: f.log,
        label: f.label.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::filter::{PacketMeta, Verdict};
    use std::net::IpAddr;

    const IFACES: [&str; 2] = ["data0", "data1"];

    /// The example of the module docs.
    const GOOD: &str = r#"(
    default: Block,
    rules: [
        (action: Pass, proto: Some(Tcp), in: Some("data0"), dst: Some("198.18.2.0/24"), dst_ports: Some("80"), label: Some("web")),
        (action: Pass, proto: Some(Udp), dst_ports: Some("5353")),
        (action: Pass, proto: Some(Icmp), icmp_type: Some(8)),
        (action: Block, src: Some("198.18.1.66"), log: true),
        (action: Pass, proto: Some(Number(47)), keep_state: false),
    ],
)
"#;

    fn good() -> RuleSet {
        parse(GOOD, "rules.ron", &IFACES).unwrap()
    }

    fn refused(text: &str) -> String {
        parse(text, "rules.ron", &IFACES).unwrap_err().to_string()
    }

    fn packet(proto: u8, src: &str, dst: &str, dst_port: u16) -> PacketMeta {
        PacketMeta {
            in_iface: 0,
            out_iface: 1,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            src_port: if dst_port == 0 { 0 } else { 40000 },
            dst_port,
            icmp_type: None,
        }
    }

    #[test]
    fn good_file_loads_in_order_with_defaults() {
        let set = good();
        assert_eq!(set.default_action(), Action::Block);
        let r = set.rules();
        assert_eq!(r.len(), 5);
        assert_eq!(
            r[0],
            Rule {
                in_iface: Some(0),
                proto: Some(TCP),
                dst: Some("198.18.2.0/24".parse().unwrap()),
                dst_ports: Some(PortRange::single(80)),
                label: Some("web".into()),
                ..Rule::new(Action::Pass)
            }
        );
        assert_eq!(
            (r[1].proto, r[1].dst_ports),
            (Some(UDP), Some(PortRange::single(5353)))
        );
        assert_eq!((r[2].proto, r[2].icmp_type), (Some(ICMP), Some(8)));
        assert_eq!(
            r[3].src,
            Some(IpPrefix::host("198.18.1.66".parse().unwrap()))
        );
        assert!(r[3].log && !r[3].keep_state && !r[3].sync);
        // keep_state: false alone turns sync off with it.
        assert_eq!(
            (r[4].proto, r[4].keep_state, r[4].sync),
            (Some(47), false, false)
        );
        assert!(r[..3].iter().all(|r| r.keep_state && r.sync && !r.log));
    }

    #[test]
    fn good_file_evaluates() {
        let set = good();
        let v = set.evaluate(&packet(TCP, "198.18.1.10", "198.18.2.2", 80));
        assert_eq!(
            v,
            Verdict {
                action: Action::Pass,
                rule: Some(0),
                keep_state: true,
                sync: true,
                log: false
            }
        );
        assert_eq!(
            set.evaluate(&packet(TCP, "198.18.1.10", "198.18.2.2", 22))
                .rule,
            None
        );
        assert_eq!(
            set.evaluate(&packet(UDP, "198.18.1.10", "198.18.2.2", 5353))
                .rule,
            Some(1)
        );
        let echo = PacketMeta {
            icmp_type: Some(8),
            ..packet(ICMP, "198.18.1.10", "198.18.2.2", 0)
        };
        assert_eq!(set.evaluate(&echo).rule, Some(2));
        let v = set.evaluate(&packet(TCP, "198.18.1.66", "198.18.2.9", 443));
        assert_eq!((v.action, v.rule, v.log), (Action::Block, Some(3), true));
        let v = set.evaluate(&packet(47, "198.18.1.10", "198.18.2.2", 0));
        assert_eq!(
            (v.action, v.rule, v.keep_state, v.sync),
            (Action::Pass, Some(4), false, false)
        );
    }

    /// One change at a time, each with its exact message.
    #[test]
    fn bad_files_are_refused_with_file_line_field_and_reason() {
        let r0 = r#"(action: Pass, proto: Some(Tcp), in: Some("data0"), dst: Some("198.18.2.0/24"), dst_ports: Some("80"), label: Some("web"))"#;
        let with_r0 = |new: &str| GOOD.replace(r0, new);
        let r1 = r#"(action: Pass, proto: Some(Udp), dst_ports: Some("5353"))"#;
        let with_r1 = |new: &str| GOOD.replace(r1, new);
        let cases = [
            // Syntax and shape (RON's own errors, placed by hw_profiles::diagnostic).
            (GOOD.replace("label:", "lable:"), "rules.ron:4:112: rules[0].lable: unknown field `lable`, expected `action`, `in`, `out`, `src`, `dst`, `proto`, `src_ports`, `dst_ports`, `icmp_type`, `keep_state`, `sync`, `log` or `label`"),
            (GOOD.replace("default:", "policy:"), "rules.ron:2:5: policy: unknown field `policy`, expected `default` or `rules`"),
            (GOOD.replace("Some(Udp),", "Some(Udp)"), "rules.ron:5:41: rules[1].dst_ports: expected a comma before this"),
            (GOOD.replace("Some(Udp)", "Some(Ucp)"), "rules.ron:5:31: rules[1].proto: unknown variant `Ucp`, expected `Tcp`, `Udp`, `Sctp`, `Icmp`, `Icmpv6` or `Number`"),
            (GOOD.replace("action: Pass, proto: Some(Udp)", "proto: Some(Udp)"), "rules.ron:5:9: rules[1].action: missing (this field is required)"),
            (GOOD.replace("log: true", "log: 1"), "rules.ron:7:56: rules[3].log: expected `true` or `false`"),
            ("".to_string(), "rules.ron:1:1: the file is empty; `(rules: [])` blocks everything"),
            ("  // nothing here\n".to_string(), "rules.ron:1:1: the file is empty; `(rules: [])` blocks everything"),
            ("/* (rules: []) */".to_string(), "rules.ron:1:1: the file is empty; `(rules: [])` blocks everything"),
            // Not empty: a comment that never closes hides the rules.
            ("/* (rules: [])".to_string(), "rules.ron:1:1: unclosed /* comment: it runs to the end of the file"),
            (GOOD.replace("        (action: Block, src", "        /* (action: Block, src"), "rules.ron:7:9: unclosed /* comment: it runs to the end of the file"),
            ("#![enable(implicit_some)]".to_string(), "rules.ron:1:26: expected `(`"),
            ("(default: Block)".to_string(), "rules.ron:1:1: rules: missing (this field is required)"),
            // Interfaces.
            (GOOD.replace("\"data0\"", "\"data7\""), "rules.ron:4:46: rules[0].in: no data interface `data7`; the unit has `data0` and `data1`"),
            (with_r1(r#"(action: Pass, out: Some("ha0"))"#), "rules.ron:5:29: rules[1].out: no data interface `ha0`; the unit has `data0` and `data1`"),
            // Prefixes and families.
            (GOOD.replace("198.18.2.0/24", "198.18.2.0/33"), "rules.ron:4:66: rules[0].dst: prefix length `33` is not in 0..=32"),
            (GOOD.replace("198.18.2.0/24", "198.18.2.1/24"), "rules.ron:4:66: rules[0].dst: host bits set; did you mean 198.18.2.0/24 or the single host 198.18.2.1?"),
            (GOOD.replace("198.18.1.66", "198.18.1.666"), "rules.ron:7:30: rules[3].src: `198.18.1.666` is not an IPv4 or IPv6 address"),
            (GOOD.replace("src: Some(\"198.18.1.66\")", "src: Some(\"2001:db8::/32\"), dst: Some(\"198.18.2.0/24\")"), "rules.ron:7:58: rules[3].dst: dst is IPv4 but src is IPv6; no packet has both"),
            (with_r1(r#"(action: Pass, proto: Some(Icmp), dst: Some("2001:db8::1"))"#), "rules.ron:5:31: rules[1].proto: Icmp is IPv4's but the addresses are IPv6; use Icmpv6"),
            (with_r1(r#"(action: Pass, proto: Some(Icmpv6), src: Some("198.18.1.0/24"))"#), "rules.ron:5:31: rules[1].proto: Icmpv6 is IPv6's but the addresses are IPv4; use Icmp"),
            // Protocols, ports, ICMP types.
            (GOOD.replace("Number(47)", "Number(256)"), "rules.ron:8:31: rules[4].proto: protocol number 256 is not in 0..=255"),
            (GOOD.replace("\"5353\"", "\"6000-5353\""), "rules.ron:5:53: rules[1].dst_ports: range 6000-5353 is reversed; did you mean 5353-6000?"),
            (GOOD.replace("\"5353\"", "\"5353-65536\""), "rules.ron:5:53: rules[1].dst_ports: port `65536` is not in 0..=65535"),
            (GOOD.replace("\"5353\"", "\"mdns\""), "rules.ron:5:53: rules[1].dst_ports: `mdns` is not a port or a range such as 1024-65535"),
            (GOOD.replace("proto: Some(Udp), ", ""), "rules.ron:5:35: rules[1].dst_ports: ports need proto Tcp, Udp or Sctp"),
            (with_r1(r#"(action: Pass, proto: Some(Icmp), src_ports: Some("7"))"#), "rules.ron:5:54: rules[1].src_ports: ports need proto Tcp, Udp or Sctp"),
            (GOOD.replace("proto: Some(Icmp), ", ""), "rules.ron:6:35: rules[2].icmp_type: icmp_type needs proto Icmp or Icmpv6"),
            (GOOD.replace("Some(Icmp)", "Some(Number(6))"), "rules.ron:6:59: rules[2].icmp_type: icmp_type needs proto Icmp or Icmpv6"),
            (GOOD.replace("icmp_type: Some(8)", "icmp_type: Some(256)"), "rules.ron:6:54: rules[2].icmp_type: ICMP type 256 is not in 0..=255"),
            (GOOD.replace("icmp_type: Some(8)", "icmp_type: Some(-1)"), "rules.ron:6:54: rules[2].icmp_type: ICMP type -1 is not in 0..=255"),
            // Options and labels.
            (GOOD.replace("keep_state: false", "keep_state: false, sync: true"), "rules.ron:8:74: rules[4].sync: sync needs keep_state: a connection that is not tracked has no state to send"),
            (with_r1(r#"(action: Pass, label: Some("web"))"#), "rules.ron:5:31: rules[1].label: label `web` is already used by rules[0]"),
            (with_r1(r#"(action: Pass, label: Some(" "))"#), "rules.ron:5:31: rules[1].label: a label must not be blank"),
            (with_r1(r#"(action: Pass, label: Some("a\nb"))"#), "rules.ron:5:31: rules[1].label: a label must be printable (no control characters)"),
            (with_r0(r#"(action: Pass, in: Some("data0"), out: Some("data9"))"#), "rules.ron:4:48: rules[0].out: no data interface `data9`; the unit has `data0` and `data1`"),
        ];
        let got: Vec<String> = cases.iter().map(|(text, _)| refused(text)).collect();
        let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn explicit_sync_and_state_options() {
        let one = |rule: &str| {
            let text = format!("(rules: [{rule}])");
            let set = parse(&text, "rules.ron", &IFACES).unwrap();
            let r = &set.rules()[0];
            (r.keep_state, r.sync)
        };
        assert_eq!(one("(action: Pass)"), (true, true));
        assert_eq!(one("(action: Pass, sync: false)"), (true, false));
        assert_eq!(one("(action: Pass, keep_state: false)"), (false, false));
        assert_eq!(
            one("(action: Pass, keep_state: false, sync: false)"),
            (false, false)
        );
        assert_eq!(
            one("(action: Pass, keep_state: true, sync: true)"),
            (true, true)
        );
        // Meaningless on block: stored off, as the verdict acts.
        assert_eq!(one("(action: Block)"), (false, false));
    }

    #[test]
    fn defaults_and_ipv6() {
        let set = parse("(rules: [])", "rules.ron", &IFACES).unwrap();
        assert_eq!(set.default_action(), Action::Block);
        assert!(set.rules().is_empty());
        assert_eq!(set.revision(), RuleSet::default().revision());
        let text = r#"(default: Pass, rules: [
            (action: Block, proto: Some(Icmpv6), src: Some("2001:db8::/32"), dst: Some("2001:db8:2::1"), icmp_type: Some(128)),
            (action: Pass, proto: Some(Sctp), src_ports: Some("1-1023"), out: Some("data1")),
        ])"#;
        let set = parse(text, "rules.ron", &IFACES).unwrap();
        assert_eq!(set.default_action(), Action::Pass);
        let src: IpAddr = "2001:db8::7".parse().unwrap();
        let ping = PacketMeta {
            src,
            dst: "2001:db8:2::1".parse().unwrap(),
            proto: ICMPV6,
            icmp_type: Some(128),
            ..packet(ICMPV6, "198.18.1.1", "198.18.2.2", 0)
        };
        assert_eq!(set.evaluate(&ping).action, Action::Block);
        assert_eq!(
            set.evaluate(&PacketMeta {
                icmp_type: Some(129),
                ..ping
            })
            .rule,
            None
        );
        let sctp = PacketMeta {
            src_port: 1023,
            ..packet(SCTP, "198.18.1.1", "198.18.2.2", 9)
        };
        assert_eq!(set.evaluate(&sctp).rule, Some(1));
    }

    #[test]
    fn same_rules_same_revision_whatever_the_layout() {
        let reformatted = format!("// reformatted\n{}", GOOD.replace(", ", ",\n  "));
        let a = good();
        let b = parse(&reformatted, "other.ron", &IFACES).unwrap();
        assert_eq!(a.revision(), b.revision());
        let c = parse(&GOOD.replace("5353", "5354"), "rules.ron", &IFACES).unwrap();
        assert_ne!(a.revision(), c.revision());
    }

    #[test]
    fn truncated_files_are_refused_never_panic() {
        // Every cut before the closing parenthesis is refused; none panics.
        let whole = GOOD.trim_end().len();
        for end in 0..GOOD.len() {
            if GOOD.is_char_boundary(end) {
                let result = parse(&GOOD[..end], "rules.ron", &IFACES);
                assert_eq!(result.is_ok(), end >= whole, "{end}");
            }
        }
    }

    #[test]
    fn no_interfaces_at_all() {
        let text = r#"(rules: [(action: Pass, in: Some("data0"))])"#;
        let none: [&str; 0] = [];
        assert_eq!(
            parse(text, "rules.ron", &none).unwrap_err().to_string(),
            "rules.ron:1:29: rules[0].in: no data interface `data0`; the unit has none"
        );
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = load(Path::new("/nonexistent/rules.ron"), &IFACES).unwrap_err();
        assert!(matches!(err, RulesError::Io { .. }));
        assert!(
            err.to_string().starts_with("/nonexistent/rules.ron: "),
            "{err}"
        );
    }

    /// The file the namespace lab loads: client on data0, server 198.18.2.2 on data1.
    #[test]
    fn lab_example_loads_and_passes_the_lab_traffic() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab-rules.ron");
        let names = vec!["data0".to_string(), "data1".to_string()];
        let set = load(&path, &names).unwrap();
        assert_eq!(set.default_action(), Action::Block);
        let client = "198.18.1.2";
        let server = "198.18.2.2";
        let pass = |p: &PacketMeta| set.evaluate(p).action == Action::Pass;
        assert!(pass(&packet(TCP, client, server, 80)));
        assert!(pass(&packet(UDP, client, server, 5353)));
        let echo = PacketMeta {
            icmp_type: Some(8),
            ..packet(ICMP, client, server, 0)
        };
        assert!(pass(&echo));
        // Everything else is the default policy.
        assert!(!pass(&packet(TCP, client, server, 22)));
        assert!(!pass(&packet(TCP, client, "198.18.2.3", 80)));
        assert!(!pass(&packet(UDP, client, server, 53)));
        assert!(!pass(&PacketMeta {
            icmp_type: Some(0),
            ..echo
        }));
        // Only from data0: the server cannot open connections to the client side.
        assert!(!pass(&PacketMeta {
            in_iface: 1,
            out_iface: 0,
            ..packet(TCP, server, server, 80)
        }));
        assert!(set.evaluate(&packet(TCP, client, server, 80)).sync);
    }

    #[test]
    fn interface_names_follow_the_unit_config() {
        let profile = hw_profiles::Profile::from_str_named(
            include_str!("../../hw-profiles/profiles/lab.ron"),
            "lab.ron",
        )
        .unwrap();
        let config = UnitConfig::parse(
            r#"(interfaces: [(port: "data1", address: "198.18.2.1/24"), (port: "data0", address: "198.18.1.1/24")])"#,
            "unit.ron",
            &profile,
        )
        .unwrap();
        let names = interface_names(&config);
        assert_eq!(names, ["data1", "data0"]);
        let set = parse(
            r#"(rules: [(action: Pass, in: Some("data0"))])"#,
            "rules.ron",
            &names,
        )
        .unwrap();
        assert_eq!(set.rules()[0].in_iface, Some(1));
    }

    /// `n` one-line rules, the first 65 534 of them valid.
    fn many_rules(n: usize) -> String {
        let mut text = String::with_capacity(n * 120 + 64);
        text.push_str("(\n    default: Block,\n    rules: [\n");
        for i in 0..n {
            text += &format!(
                "        (action: Pass, proto: Some(Tcp), in: Some(\"data0\"), dst: Some(\"10.{}.{}.{}\"), dst_ports: Some(\"443\")),\n",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            );
        }
        text.push_str("    ],\n)\n");
        text
    }

    /// The file of the report: 22 MB, 200 000 rules. Refused at the 65 535th
    /// rule, as it is read: nothing after it is read (a broken rule further on is
    /// never reached), nothing of the 200 000 is built.
    #[test]
    fn a_22_mb_file_of_200k_rules_is_refused_at_rule_65535() {
        let text = many_rules(200_000);
        assert!(text.len() > 22_000_000, "{}", text.len());
        let want = "rules.ron:65538:9: rules[65534]: more than 65534 rules; at most 65534 fit";
        assert_eq!(refused(&text), want);
        let broken_later = text.replacen(
            "(action: Pass, proto: Some(Tcp), in: Some(\"data0\"), dst: Some(\"10.1.134.160\")",
            "(action: Oops",
            1,
        );
        assert_ne!(broken_later, text);
        assert_eq!(refused(&broken_later), want);
    }

    #[test]
    fn exactly_the_limit_loads() {
        let set = parse(&many_rules(MAX_RULES), "rules.ron", &IFACES).unwrap();
        assert_eq!(set.rules().len(), MAX_RULES);
    }

    #[test]
    fn a_file_past_the_size_limit_is_refused_unread() {
        assert_eq!(MAX_RULES_FILE_BYTES, 65_534 * 512);
        let (_dir, path) = crate::config::tests::temp_file("big-rules.ron", b"");
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_len(MAX_RULES_FILE_BYTES + 1).unwrap();
        let err = load(&path, &IFACES).unwrap_err().to_string();
        assert!(
            err.ends_with(":1:1: the file is 33553409 bytes, over the limit of 33553408 bytes"),
            "{err}"
        );
    }

    #[test]
    fn not_utf8_is_placed_like_the_profile() {
        let mut bytes = GOOD.as_bytes().to_vec();
        let at = GOOD.find("\"web\"").unwrap() + 1;
        bytes[at] = 0xc3;
        let (_dir, path) = crate::config::tests::temp_file("rules.ron", &bytes);
        let err = load(&path, &IFACES).unwrap_err().to_string();
        assert_eq!(err, format!("{}:4:125: not valid UTF-8", path.display()));
    }

    /// Labels are checked through a hash map: the last of 65 534 labels repeats the
    /// first.
    #[test]
    fn a_duplicate_label_far_down_is_found() {
        let mut text = String::from("(rules: [\n");
        for i in 0..MAX_RULES {
            text += &format!(
                "(action: Pass, label: Some(\"r{}\")),\n",
                i % (MAX_RULES - 1)
            );
        }
        text += "])";
        assert_eq!(
            refused(&text),
            "rules.ron:65535:23: rules[65533].label: label `r0` is already used by rules[0]"
        );
    }
}
