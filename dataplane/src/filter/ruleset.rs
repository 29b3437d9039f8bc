//! The ordered rule list a worker consults for the first packet of a new flow.
//!
//! Immutable once built: the control plane builds a new one off the fast path and
//! swaps the `Arc` in, so a worker never sees half a reload.

use super::meta::PacketMeta;
use super::prefix::IpPrefix;
use super::rule::{Action, PortRange, Rule};
use std::fmt;
use std::net::IpAddr;

/// How many rules a set may hold: a connection names its rule in 16 bits, and
/// the two highest values mean "the default policy" and "no rule of the set in
/// force" (`conntrack::record::{DEFAULT_RULE, NO_RULE}`).
pub const MAX_RULES: usize = (u16::MAX - 1) as usize;

/// A set with more than [`MAX_RULES`] rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{count} rules; at most {MAX_RULES} fit")]
pub struct TooManyRules {
    /// How many were given.
    pub count: usize,
}

/// What to do with a new flow, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Pass or block.
    pub action: Action,
    /// Index of the rule that decided; `None` for the default policy.
    pub rule: Option<u16>,
    /// Create a connection entry (always `false` on block).
    pub keep_state: bool,
    /// Send the entry to the partner (never without `keep_state`).
    pub sync: bool,
    /// Log this packet.
    pub log: bool,
}

impl Verdict {
    fn of(action: Action, rule: Option<u16>, keep_state: bool, sync: bool, log: bool) -> Self {
        // A blocked flow has no state, and state that is not kept cannot be sent.
        let keep_state = keep_state && action == Action::Pass;
        Self {
            action,
            rule,
            keep_state,
            sync: sync && keep_state,
            log,
        }
    }
}

/// A content hash of a rule set, the same on every unit and firmware version that
/// loads the same rules (comments and layout of the file do not count). Listings show
/// it, and the two members of a pair can compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(pub u64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The rules of a unit: first match wins, then the default policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
    default: Action,
    revision: Revision,
}

/// No rules, block everything: what a unit runs before it has loaded any.
impl Default for RuleSet {
    fn default() -> Self {
        Self::with_revision(Vec::new(), Action::Block)
    }
}

impl RuleSet {
    /// A set of `rules` in order, with `default` for flows no rule matches.
    pub fn new(rules: Vec<Rule>, default: Action) -> Result<Self, TooManyRules> {
        if rules.len() > MAX_RULES {
            return Err(TooManyRules { count: rules.len() });
        }
        Ok(Self::with_revision(rules, default))
    }

    fn with_revision(rules: Vec<Rule>, default: Action) -> Self {
        let revision = revision_of(&rules, default);
        Self {
            rules,
            default,
            revision,
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The action for flows no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// The content hash.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Decides a new flow: the first rule that matches, else the default policy. A
    /// linear scan without allocation; established flows never come here (their
    /// connection entry already decided).
    ///
    /// A default `Pass` keeps state and syncs, like a rule with default options: a
    /// stateful firewall tracks what it lets through.
    pub fn evaluate(&self, pkt: &PacketMeta) -> Verdict {
        // `MAX_RULES` makes every index fit the `u16` range zipped in.
        for (rule, i) in self.rules.iter().zip(0..=u16::MAX) {
            if rule.matches(pkt) {
                return Verdict::of(rule.action, Some(i), rule.keep_state, rule.sync, rule.log);
            }
        }
        Verdict::of(self.default, None, true, true, false)
    }

    /// A listing for the console: a header with the revision, then one numbered rule
    /// a line, interfaces named from `interfaces` (index order).
    pub fn listing<'a, S: AsRef<str>>(&'a self, interfaces: &'a [S]) -> impl fmt::Display + 'a {
        Listing {
            set: self,
            interfaces,
        }
    }
}

struct Listing<'a, S> {
    set: &'a RuleSet,
    interfaces: &'a [S],
}

impl<S: AsRef<str>> fmt::Display for Listing<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.set.rules.len();
        writeln!(
            f,
            "rules {}: {n} rule{}, default {}",
            self.set.revision,
            if n == 1 { "" } else { "s" },
            self.set.default
        )?;
        for (i, r) in self.set.rules.iter().enumerate() {
            writeln!(f, "{i:>5} {}", r.display(self.interfaces))?;
        }
        Ok(())
    }
}

/// FNV-1a (64 bits) over an explicit encoding, not `#[derive(Hash)]`: derived hashes
/// may change between compiler versions, and partners may run different builds.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    fn flag(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn opt<T>(&mut self, v: Option<T>, mut each: impl FnMut(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                each(self, v);
            }
        }
    }

    fn action(&mut self, a: Action) {
        self.u8(match a {
            Action::Pass => 1,
            Action::Block => 2,
        });
    }

    fn prefix(&mut self, p: IpPrefix) {
        match p.network() {
            IpAddr::V4(a) => {
                self.u8(4);
                self.bytes(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(6);
                self.bytes(&a.octets());
            }
        }
        self.u8(p.prefix_len());
    }

    fn ports(&mut self, r: PortRange) {
        self.bytes(&r.lo().to_le_bytes());
        self.bytes(&r.hi().to_le_bytes());
    }
}

/// Version of the encoding below; bump it when the encoding changes.
const ENCODING: u8 = 1;

fn revision_of(rules: &[Rule], default: Action) -> Revision {
    let mut h = Fnv::new();
    h.u8(ENCODING);
    h.action(default);
    h.u64(rules.len() as u64);
    for r in rules {
        h.rule(r);
    }
    Revision(h.0)
}

impl Fnv {
    fn rule(&mut self, r: &Rule) {
        self.action(r.action);
        self.opt(r.in_iface, |h, i| h.u64(i as u64));
        self.opt(r.out_iface, |h, i| h.u64(i as u64));
        self.opt(r.src, Fnv::prefix);
        self.opt(r.dst, Fnv::prefix);
        self.opt(r.proto, Fnv::u8);
        self.opt(r.src_ports, Fnv::ports);
        self.opt(r.dst_ports, Fnv::ports);
        self.opt(r.icmp_type, Fnv::u8);
        self.flag(r.keep_state);
        self.flag(r.sync);
        self.flag(r.log);
        self.opt(r.label.as_deref(), |h, l| {
            h.u64(l.len() as u64);
            h.bytes(l.as_bytes());
        });
    }
}

impl RuleSet {
    /// Where each rule of `old` sits in this set: its index here when an
    /// identical rule is here (the n-th copy of a rule maps to the n-th copy),
    /// else `gone`. A reload renumbers its connections' rule indexes with it.
    pub fn renumbering_from(&self, old: &RuleSet, gone: u16) -> Vec<u16> {
        let hash = |r: &Rule| {
            let mut h = Fnv::new();
            h.rule(r);
            h.0
        };
        let mut here: std::collections::HashMap<u64, std::collections::VecDeque<u16>> =
            std::collections::HashMap::new();
        for (i, r) in (0u16..).zip(&self.rules) {
            here.entry(hash(r)).or_default().push_back(i);
        }
        old.rules
            .iter()
            .map(|r| {
                let candidates = here.get_mut(&hash(r));
                candidates
                    .and_then(|c| {
                        // Equal hashes of unequal rules never match.
                        let pos = c.iter().position(|&i| self.rules[usize::from(i)] == *r)?;
                        c.remove(pos)
                    })
                    .unwrap_or(gone)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::meta::{ICMP, TCP, UDP};
    use super::*;

    fn tcp_to(dst: &str, port: u16) -> PacketMeta {
        PacketMeta {
            in_iface: 0,
            out_iface: 1,
            src: "198.18.1.10".parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: TCP,
            src_port: 40000,
            dst_port: port,
            icmp_type: None,
        }
    }

    fn pass_port(port: u16) -> Rule {
        Rule {
            proto: Some(TCP),
            dst_ports: Some(PortRange::single(port)),
            ..Rule::new(Action::Pass)
        }
    }

    #[test]
    fn default_policy_is_block_with_no_rule() {
        let set = RuleSet::default();
        let v = set.evaluate(&tcp_to("198.18.2.2", 80));
        assert_eq!(
            v,
            Verdict {
                action: Action::Block,
                rule: None,
                keep_state: false,
                sync: false,
                log: false
            }
        );
        assert_eq!(set.default_action(), Action::Block);
        assert!(set.rules().is_empty());
    }

    #[test]
    fn default_pass_keeps_state_and_syncs() {
        let set = RuleSet::new(vec![], Action::Pass).unwrap();
        let v = set.evaluate(&tcp_to("198.18.2.2", 80));
        assert_eq!(
            (v.action, v.rule, v.keep_state, v.sync, v.log),
            (Action::Pass, None, true, true, false)
        );
    }

    #[test]
    fn first_match_wins() {
        let block_host = Rule {
            dst: Some("198.18.2.2".parse().unwrap()),
            log: true,
            ..Rule::new(Action::Block)
        };
        // The block comes first: the later, more specific pass never sees the packet.
        let set = RuleSet::new(vec![block_host.clone(), pass_port(80)], Action::Pass).unwrap();
        let v = set.evaluate(&tcp_to("198.18.2.2", 80));
        assert_eq!((v.action, v.rule, v.log), (Action::Block, Some(0), true));
        assert_eq!(set.evaluate(&tcp_to("198.18.2.3", 80)).rule, Some(1));
        assert_eq!(set.evaluate(&tcp_to("198.18.2.3", 81)).rule, None);
        // Swapped, the pass decides.
        let set = RuleSet::new(vec![pass_port(80), block_host], Action::Pass).unwrap();
        let v = set.evaluate(&tcp_to("198.18.2.2", 80));
        assert_eq!((v.action, v.rule, v.log), (Action::Pass, Some(0), false));
        assert_eq!(set.evaluate(&tcp_to("198.18.2.2", 81)).rule, Some(1));
    }

    #[test]
    fn verdict_carries_the_rule_options() {
        let no_sync = Rule {
            sync: false,
            ..pass_port(80)
        };
        let no_state = Rule {
            keep_state: false,
            ..pass_port(81)
        };
        let block = Rule {
            keep_state: true,
            sync: true,
            ..Rule {
                action: Action::Block,
                ..pass_port(82)
            }
        };
        let set = RuleSet::new(vec![no_sync, no_state, block], Action::Block).unwrap();
        let v = set.evaluate(&tcp_to("198.18.2.2", 80));
        assert_eq!((v.keep_state, v.sync), (true, false));
        // No state, so nothing to sync even though the rule says sync.
        let v = set.evaluate(&tcp_to("198.18.2.2", 81));
        assert_eq!(
            (v.action, v.keep_state, v.sync),
            (Action::Pass, false, false)
        );
        // Block never keeps state.
        let v = set.evaluate(&tcp_to("198.18.2.2", 82));
        assert_eq!(
            (v.action, v.rule, v.keep_state, v.sync),
            (Action::Block, Some(2), false, false)
        );
    }

    #[test]
    fn families_and_protocols() {
        let v6_only = Rule {
            src: Some("::/0".parse().unwrap()),
            ..Rule::new(Action::Pass)
        };
        let udp = Rule {
            proto: Some(UDP),
            ..Rule::new(Action::Pass)
        };
        let set = RuleSet::new(vec![v6_only, udp], Action::Block).unwrap();
        assert_eq!(set.evaluate(&tcp_to("198.18.2.2", 80)).rule, None);
        let mut p = tcp_to("2001:db8::2", 80);
        p.src = "2001:db8::1".parse().unwrap();
        assert_eq!(set.evaluate(&p).rule, Some(0));
        let echo = PacketMeta {
            proto: ICMP,
            src_port: 0,
            dst_port: 0,
            icmp_type: Some(8),
            ..tcp_to("198.18.2.2", 0)
        };
        assert_eq!(set.evaluate(&echo).action, Action::Block);
    }

    #[test]
    fn the_last_index_fits_and_one_more_is_refused() {
        let mut rules = vec![Rule::new(Action::Block); MAX_RULES - 1];
        rules.push(pass_port(80));
        let set = RuleSet::new(rules.clone(), Action::Block).unwrap();
        let v = set.evaluate(&tcp_to("198.18.2.2", 81));
        assert_eq!(v.rule, Some(0));
        let only_last = RuleSet::new(
            rules
                .into_iter()
                .map(|r| Rule {
                    proto: r.proto.or(Some(UDP)),
                    ..r
                })
                .collect(),
            Action::Block,
        )
        .unwrap();
        assert_eq!(
            only_last.evaluate(&tcp_to("198.18.2.2", 80)).rule,
            Some(u16::MAX - 2)
        );
        let too_many = vec![Rule::new(Action::Block); MAX_RULES + 1];
        assert_eq!(
            RuleSet::new(too_many, Action::Block)
                .unwrap_err()
                .to_string(),
            "65535 rules; at most 65534 fit"
        );
    }

    #[test]
    fn a_reload_renumbers_rules_by_content() {
        let (a, b, c) = (pass_port(80), pass_port(443), pass_port(22));
        let old = RuleSet::new(vec![a.clone(), b.clone(), a.clone(), c], Action::Block).unwrap();
        let new = RuleSet::new(vec![b, a.clone(), pass_port(8080), a], Action::Block).unwrap();
        assert_eq!(new.renumbering_from(&old, 999), [1, 0, 3, 999]);
    }

    #[test]
    fn revision_follows_content_only() {
        let a = RuleSet::new(vec![pass_port(80)], Action::Block).unwrap();
        let same = RuleSet::new(vec![pass_port(80)], Action::Block).unwrap();
        assert_eq!(a.revision(), same.revision());
        let changes = [
            RuleSet::new(vec![pass_port(81)], Action::Block).unwrap(),
            RuleSet::new(vec![pass_port(80)], Action::Pass).unwrap(),
            RuleSet::new(
                vec![Rule {
                    log: true,
                    ..pass_port(80)
                }],
                Action::Block,
            )
            .unwrap(),
            RuleSet::new(
                vec![Rule {
                    label: Some("x".into()),
                    ..pass_port(80)
                }],
                Action::Block,
            )
            .unwrap(),
            RuleSet::new(vec![pass_port(80), pass_port(80)], Action::Block).unwrap(),
            RuleSet::default(),
        ];
        for c in &changes {
            assert_ne!(c.revision(), a.revision(), "{c:?}");
        }
        // Pinned (computed independently: FNV-1a of [1, 2, 0u64 LE]): the encoding
        // is part of what partners compare, so a change must be deliberate.
        assert_eq!(
            RuleSet::default().revision().to_string(),
            "78029183c6dcb96a"
        );
    }

    #[test]
    fn listing_numbers_the_rules() {
        let set = RuleSet::new(
            vec![
                Rule {
                    in_iface: Some(0),
                    ..pass_port(80)
                },
                Rule::new(Action::Block),
            ],
            Action::Block,
        )
        .unwrap();
        let text = set.listing(&["data0"]).to_string();
        let want = format!(
            "rules {}: 2 rules, default block\n    0 pass in on data0 proto tcp to any port 80\n    1 block all\n",
            set.revision()
        );
        assert_eq!(text, want);
    }
}
