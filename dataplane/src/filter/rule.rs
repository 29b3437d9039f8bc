//! One filter rule: what it matches and what it does with a new flow.

use super::meta::{has_ports, is_icmp, PacketMeta};
use super::prefix::IpPrefix;
use crate::forward::IfIndex;
use crate::wire::IpProtocol;
use std::fmt;
use std::str::FromStr;

/// What happens to a new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Forward it (and, with `keep_state`, its replies).
    Pass,
    /// Drop it silently.
    Block,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Pass => "pass",
            Action::Block => "block",
        })
    }
}

/// An inclusive range of ports, `lo <= hi` (private fields keep it so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

/// Why a port range string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    /// Neither `N` nor `LO-HI`.
    #[error("`{0}` is not a port or a range such as 1024-65535")]
    Syntax(String),
    /// A number past 65535.
    #[error("port `{0}` is not in 0..=65535")]
    OutOfRange(String),
    /// `hi < lo`.
    #[error("range {lo}-{hi} is reversed; did you mean {hi}-{lo}?")]
    Reversed {
        /// As written first.
        lo: u16,
        /// As written second.
        hi: u16,
    },
}

impl PortRange {
    /// `lo..=hi`; `None` when reversed.
    pub fn new(lo: u16, hi: u16) -> Option<Self> {
        (lo <= hi).then_some(Self { lo, hi })
    }

    /// One port.
    pub fn single(port: u16) -> Self {
        Self { lo: port, hi: port }
    }

    /// First port of the range.
    pub fn lo(&self) -> u16 {
        self.lo
    }

    /// Last port of the range (included).
    pub fn hi(&self) -> u16 {
        self.hi
    }

    /// Whether `port` is inside, bounds included.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    /// `"80"` or `"1024-65535"` (spaces around the numbers are allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |text: &str| {
            let text = text.trim();
            // Digits only: `u16::from_str` would take `+80`.
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PortRangeError::Syntax(s.into()));
            }
            text.parse::<u16>()
                .map_err(|_| PortRangeError::OutOfRange(text.into()))
        };
        match s.split_once('-') {
            None => port(s).map(Self::single),
            Some((lo, hi)) => {
                let (lo, hi) = (port(lo)?, port(hi)?);
                Self::new(lo, hi).ok_or(PortRangeError::Reversed { lo, hi })
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// One rule. A `None` matcher matches anything; all given matchers must match.
///
/// Any combination has a meaning, so a rule built by hand cannot be "invalid": port
/// ranges match only TCP, UDP and SCTP packets, `icmp_type` only ICMP and ICMPv6
/// packets, and a prefix only addresses of its own family. The loader refuses the
/// combinations that could never match, because they are always a mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Pass or block.
    pub action: Action,
    /// Interface the packet came in on.
    pub in_iface: Option<IfIndex>,
    /// Interface the packet leaves by.
    pub out_iface: Option<IfIndex>,
    /// Source prefix.
    pub src: Option<IpPrefix>,
    /// Destination prefix.
    pub dst: Option<IpPrefix>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Source ports (TCP, UDP, SCTP only).
    pub src_ports: Option<PortRange>,
    /// Destination ports (TCP, UDP, SCTP only).
    pub dst_ports: Option<PortRange>,
    /// ICMP or ICMPv6 type (ICMP packets only).
    pub icmp_type: Option<u8>,
    /// Track the connection, so replies and later packets skip the rules. Meaningless
    /// on a block rule.
    pub keep_state: bool,
    /// Send the connection's state to the partner unit. Needs `keep_state`.
    pub sync: bool,
    /// Log the packets this rule decides on.
    pub log: bool,
    /// A name for listings and logs.
    pub label: Option<String>,
}

fn matches_opt<T: PartialEq>(want: Option<T>, got: T) -> bool {
    match want {
        Some(w) => w == got,
        None => true,
    }
}

fn in_range(range: Option<PortRange>, port: u16) -> bool {
    match range {
        Some(r) => r.contains(port),
        None => true,
    }
}

fn in_prefix(prefix: &Option<IpPrefix>, ip: std::net::IpAddr) -> bool {
    match prefix {
        Some(p) => p.contains(ip),
        None => true,
    }
}

impl Rule {
    /// A rule that matches everything, with the loader's defaults: keep state, sync,
    /// no log.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            in_iface: None,
            out_iface: None,
            src: None,
            dst: None,
            proto: None,
            src_ports: None,
            dst_ports: None,
            icmp_type: None,
            keep_state: true,
            sync: true,
            log: false,
            label: None,
        }
    }

    /// Whether `pkt` matches every matcher of the rule. Cheap tests (integers) come
    /// before prefixes; nothing allocates.
    #[inline]
    pub fn matches(&self, pkt: &PacketMeta) -> bool {
        matches_opt(self.proto, pkt.proto)
            && matches_opt(self.in_iface, pkt.in_iface)
            && matches_opt(self.out_iface, pkt.out_iface)
            && self.ports_match(pkt)
            && self.icmp_matches(pkt)
            && in_prefix(&self.src, pkt.src)
            && in_prefix(&self.dst, pkt.dst)
    }

    #[inline]
    fn ports_match(&self, pkt: &PacketMeta) -> bool {
        if self.src_ports.is_none() && self.dst_ports.is_none() {
            return true;
        }
        has_ports(pkt.proto)
            && in_range(self.src_ports, pkt.src_port)
            && in_range(self.dst_ports, pkt.dst_port)
    }

    #[inline]
    fn icmp_matches(&self, pkt: &PacketMeta) -> bool {
        match self.icmp_type {
            Some(t) => is_icmp(pkt.proto) && pkt.icmp_type == Some(t),
            None => true,
        }
    }

    /// The rule in pf-like words, naming interfaces from `interfaces` (index order;
    /// an index without a name is written `#3`).
    pub fn display<'a, S: AsRef<str>>(&'a self, interfaces: &'a [S]) -> impl fmt::Display + 'a {
        RuleDisplay {
            rule: self,
            interfaces,
        }
    }
}

struct RuleDisplay<'a, S> {
    rule: &'a Rule,
    interfaces: &'a [S],
}

impl<S: AsRef<str>> RuleDisplay<'_, S> {
    fn iface(&self, f: &mut fmt::Formatter<'_>, dir: &str, i: Option<IfIndex>) -> fmt::Result {
        match i.map(|i| (i, self.interfaces.get(i))) {
            None => Ok(()),
            Some((_, Some(name))) => write!(f, " {dir} on {}", name.as_ref()),
            Some((i, None)) => write!(f, " {dir} on #{i}"),
        }
    }
}

fn endpoint(
    f: &mut fmt::Formatter<'_>,
    word: &str,
    prefix: Option<IpPrefix>,
    ports: Option<PortRange>,
) -> fmt::Result {
    match (prefix, ports) {
        (None, None) => Ok(()),
        (Some(p), None) => write!(f, " {word} {p}"),
        (None, Some(r)) => write!(f, " {word} any port {r}"),
        (Some(p), Some(r)) => write!(f, " {word} {p} port {r}"),
    }
}

impl<S: AsRef<str>> fmt::Display for RuleDisplay<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.rule;
        write!(f, "{}", r.action)?;
        if r.log {
            f.write_str(" log")?;
        }
        self.iface(f, "in", r.in_iface)?;
        self.iface(f, "out", r.out_iface)?;
        if let Some(p) = r.proto {
            let name = IpProtocol::from(p).to_string().to_lowercase();
            write!(f, " proto {name}")?;
        }
        endpoint(f, "from", r.src, r.src_ports)?;
        endpoint(f, "to", r.dst, r.dst_ports)?;
        if r.src.is_none() && r.dst.is_none() && r.src_ports.is_none() && r.dst_ports.is_none() {
            f.write_str(" all")?;
        }
        if let Some(t) = r.icmp_type {
            write!(f, " icmp-type {t}")?;
        }
        if r.action == Action::Pass {
            if !r.keep_state {
                f.write_str(" no state")?;
            } else if !r.sync {
                f.write_str(" no sync")?;
            }
        }
        if let Some(l) = &r.label {
            write!(f, " label {l:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::meta::{ICMP, ICMPV6, SCTP, TCP, UDP};
    use super::*;

    /// A TCP packet from 198.18.1.10:40000 to 198.18.2.2:80, data0 to data1.
    fn tcp() -> PacketMeta {
        PacketMeta {
            in_iface: 0,
            out_iface: 1,
            src: "198.18.1.10".parse().unwrap(),
            dst: "198.18.2.2".parse().unwrap(),
            proto: TCP,
            src_port: 40000,
            dst_port: 80,
            icmp_type: None,
        }
    }

    fn echo() -> PacketMeta {
        PacketMeta {
            proto: ICMP,
            src_port: 0,
            dst_port: 0,
            icmp_type: Some(8),
            ..tcp()
        }
    }

    fn any() -> Rule {
        Rule::new(Action::Pass)
    }

    #[test]
    fn empty_rule_matches_everything() {
        assert!(any().matches(&tcp()));
        assert!(any().matches(&echo()));
    }

    #[test]
    fn interfaces() {
        assert!(Rule {
            in_iface: Some(0),
            ..any()
        }
        .matches(&tcp()));
        assert!(!Rule {
            in_iface: Some(1),
            ..any()
        }
        .matches(&tcp()));
        assert!(Rule {
            out_iface: Some(1),
            ..any()
        }
        .matches(&tcp()));
        assert!(!Rule {
            out_iface: Some(0),
            ..any()
        }
        .matches(&tcp()));
    }

    #[test]
    fn prefixes() {
        let src = |s: &str| Rule {
            src: Some(s.parse().unwrap()),
            ..any()
        };
        let dst = |s: &str| Rule {
            dst: Some(s.parse().unwrap()),
            ..any()
        };
        assert!(src("198.18.1.0/24").matches(&tcp()));
        assert!(src("198.18.1.10").matches(&tcp()));
        assert!(!src("198.18.1.11").matches(&tcp()));
        assert!(!src("198.18.2.0/24").matches(&tcp()));
        assert!(dst("198.18.2.2").matches(&tcp()));
        assert!(dst("0.0.0.0/0").matches(&tcp()));
        assert!(!dst("198.18.1.0/24").matches(&tcp()));
    }

    #[test]
    fn prefix_of_the_other_family_never_matches() {
        let v6 = Rule {
            src: Some("::/0".parse().unwrap()),
            ..any()
        };
        assert!(!v6.matches(&tcp()));
        let v6_pkt = PacketMeta {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8:2::2".parse().unwrap(),
            ..tcp()
        };
        assert!(v6.matches(&v6_pkt));
        assert!(!Rule {
            dst: Some("0.0.0.0/0".parse().unwrap()),
            ..any()
        }
        .matches(&v6_pkt));
        assert!(Rule {
            dst: Some("2001:db8:2::/48".parse().unwrap()),
            ..any()
        }
        .matches(&v6_pkt));
    }

    #[test]
    fn protocol() {
        assert!(Rule {
            proto: Some(TCP),
            ..any()
        }
        .matches(&tcp()));
        assert!(!Rule {
            proto: Some(UDP),
            ..any()
        }
        .matches(&tcp()));
        assert!(Rule {
            proto: Some(ICMP),
            ..any()
        }
        .matches(&echo()));
    }

    #[test]
    fn port_ranges_at_their_bounds() {
        let dst = |lo, hi| Rule {
            dst_ports: PortRange::new(lo, hi),
            ..any()
        };
        assert!(dst(80, 80).matches(&tcp()));
        assert!(dst(80, 90).matches(&tcp()));
        assert!(dst(70, 80).matches(&tcp()));
        assert!(!dst(81, 90).matches(&tcp()));
        assert!(!dst(70, 79).matches(&tcp()));
        let src = |lo, hi| Rule {
            src_ports: PortRange::new(lo, hi),
            ..any()
        };
        assert!(src(1024, 65535).matches(&tcp()));
        assert!(src(40000, 40000).matches(&tcp()));
        assert!(!src(40001, 65535).matches(&tcp()));
        assert!(!src(0, 39999).matches(&tcp()));
        let top = PacketMeta {
            dst_port: 65535,
            ..tcp()
        };
        assert!(dst(65535, 65535).matches(&top));
        assert!(dst(0, 65535).matches(&top));
        assert!(!dst(0, 65534).matches(&top));
    }

    #[test]
    fn ports_match_only_protocols_with_ports() {
        let r = Rule {
            dst_ports: PortRange::new(0, 65535),
            ..any()
        };
        assert!(r.matches(&tcp()));
        assert!(r.matches(&PacketMeta {
            proto: UDP,
            ..tcp()
        }));
        assert!(r.matches(&PacketMeta {
            proto: SCTP,
            ..tcp()
        }));
        // ICMP has "port 0" in the meta; a port rule must still not match it.
        assert!(!r.matches(&echo()));
        assert!(!r.matches(&PacketMeta {
            proto: 47,
            ..echo()
        }));
        let src_only = Rule {
            src_ports: PortRange::new(0, 65535),
            ..any()
        };
        assert!(!src_only.matches(&echo()));
    }

    #[test]
    fn icmp_type_matches_only_icmp() {
        let r = Rule {
            icmp_type: Some(8),
            ..any()
        };
        assert!(r.matches(&echo()));
        assert!(r.matches(&PacketMeta {
            proto: ICMPV6,
            ..echo()
        }));
        assert!(!r.matches(&PacketMeta {
            icmp_type: Some(0),
            ..echo()
        }));
        assert!(!r.matches(&PacketMeta {
            icmp_type: None,
            ..echo()
        }));
        // A TCP packet never carries an ICMP type, whatever the meta says.
        assert!(!r.matches(&PacketMeta {
            icmp_type: Some(8),
            ..tcp()
        }));
        let zero = Rule {
            icmp_type: Some(0),
            ..any()
        };
        assert!(zero.matches(&PacketMeta {
            icmp_type: Some(0),
            ..echo()
        }));
        let top = Rule {
            icmp_type: Some(255),
            ..any()
        };
        assert!(top.matches(&PacketMeta {
            icmp_type: Some(255),
            ..echo()
        }));
    }

    #[test]
    fn all_matchers_must_match() {
        let r = Rule {
            in_iface: Some(0),
            out_iface: Some(1),
            src: Some("198.18.1.0/24".parse().unwrap()),
            dst: Some("198.18.2.2".parse().unwrap()),
            proto: Some(TCP),
            src_ports: PortRange::new(1024, 65535),
            dst_ports: Some(PortRange::single(80)),
            ..any()
        };
        assert!(r.matches(&tcp()));
        assert!(!r.matches(&PacketMeta {
            in_iface: 1,
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            out_iface: 0,
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            src: "198.18.3.1".parse().unwrap(),
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            dst: "198.18.2.3".parse().unwrap(),
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            proto: UDP,
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            src_port: 1023,
            ..tcp()
        }));
        assert!(!r.matches(&PacketMeta {
            dst_port: 81,
            ..tcp()
        }));
    }

    #[test]
    fn port_ranges_parse() {
        let ok = |s: &str| s.parse::<PortRange>().unwrap();
        assert_eq!(ok("80"), PortRange::single(80));
        assert_eq!(ok("0"), PortRange::single(0));
        assert_eq!(ok("1024-65535"), PortRange::new(1024, 65535).unwrap());
        assert_eq!(ok(" 1024 - 2048 "), PortRange::new(1024, 2048).unwrap());
        assert_eq!(ok("7-7"), PortRange::single(7));
        assert_eq!(ok("1024-65535").to_string(), "1024-65535");
        assert_eq!(ok("7-7").to_string(), "7");
        let err = |s: &str| s.parse::<PortRange>().unwrap_err().to_string();
        assert_eq!(
            err("http"),
            "`http` is not a port or a range such as 1024-65535"
        );
        assert_eq!(err(""), "`` is not a port or a range such as 1024-65535");
        assert_eq!(
            err("+80"),
            "`+80` is not a port or a range such as 1024-65535"
        );
        assert_eq!(
            err("-80"),
            "`-80` is not a port or a range such as 1024-65535"
        );
        assert_eq!(
            err("1-2-3"),
            "`1-2-3` is not a port or a range such as 1024-65535"
        );
        assert_eq!(err("65536"), "port `65536` is not in 0..=65535");
        assert_eq!(
            err("1-99999999999999999999"),
            "port `99999999999999999999` is not in 0..=65535"
        );
        assert_eq!(
            err("2000-1000"),
            "range 2000-1000 is reversed; did you mean 1000-2000?"
        );
        assert_eq!(PortRange::new(2, 1), None);
    }

    #[test]
    fn display_reads_like_pf() {
        let names = ["data0", "data1"];
        let web = Rule {
            in_iface: Some(0),
            proto: Some(TCP),
            dst: Some("198.18.2.0/24".parse().unwrap()),
            dst_ports: Some(PortRange::single(80)),
            label: Some("web".into()),
            ..any()
        };
        assert_eq!(
            web.display(&names).to_string(),
            "pass in on data0 proto tcp to 198.18.2.0/24 port 80 label \"web\""
        );
        let gre = Rule {
            proto: Some(47),
            out_iface: Some(5),
            keep_state: false,
            sync: false,
            ..any()
        };
        assert_eq!(
            gre.display(&names).to_string(),
            "pass out on #5 proto gre all no state"
        );
        let block = Rule {
            log: true,
            src: Some("198.18.1.66".parse().unwrap()),
            src_ports: PortRange::new(1, 1023),
            ..Rule::new(Action::Block)
        };
        assert_eq!(
            block.display(&names).to_string(),
            "block log from 198.18.1.66 port 1-1023"
        );
        let echo = Rule {
            proto: Some(ICMP),
            icmp_type: Some(8),
            sync: false,
            ..any()
        };
        assert_eq!(
            echo.display(&names).to_string(),
            "pass proto icmp all icmp-type 8 no sync"
        );
        let odd = Rule {
            proto: Some(200),
            dst_ports: PortRange::new(1, 2),
            ..any()
        };
        assert_eq!(
            odd.display(&names).to_string(),
            "pass proto 200 to any port 1-2"
        );
    }
}
