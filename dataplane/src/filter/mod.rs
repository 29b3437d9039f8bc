//! Packet filter rules: an ordered list, first match wins, default block.
//!
//! * [`prefix`]: [`IpPrefix`], a network of either family.
//! * [`meta`]: [`PacketMeta`], what the rules see of a packet.
//! * [`rule`]: [`Rule`], [`Action`], [`PortRange`].
//! * [`ruleset`]: [`RuleSet`], the ordered list and its [`Verdict`].
//!
//! # Semantics
//!
//! * **First match wins.** Rules are tried in order and the first whose matchers all
//!   match decides — as if every pf rule had `quick`, or like an iptables chain. What
//!   is written first is what counts, so a listing reads top to bottom.
//! * **Default block.** A flow no rule matches gets the set's default action, `Block`
//!   unless the file says otherwise (and [`RuleSet::default`] blocks everything).
//! * **Rules decide new flows only.** A passed flow with `keep_state` gets a connection
//!   entry; its later packets and its replies match that entry and never come back to
//!   the rules. So a rule set is consulted once per connection, and reply traffic
//!   needs no rule of its own.
//! * **Reload keeps every connection.** A reload builds a new [`RuleSet`] off the fast
//!   path and swaps it in as an `Arc`; established entries are not re-evaluated (pf
//!   behaves the same until its states are flushed). Removing a pass rule stops *new*
//!   connections; existing ones live out their timeouts. The same holds on takeover:
//!   a synced entry carries its own state, not a reference to a rule.
//! * **Options.** `keep_state` (default on) creates the entry; `sync` (default on)
//!   sends it to the partner and needs `keep_state`; `log` logs the deciding packet.
//!   On a block rule `keep_state` and `sync` mean nothing and the [`Verdict`] has
//!   them off.
//! * **Families.** Rules match IPv4 and IPv6 alike; a rule with a prefix matches only
//!   its own family. Port ranges match only TCP, UDP and SCTP; an ICMP type only ICMP
//!   and ICMPv6.
//!
//! # The file
//!
//! `mgmt::rules` loads the operator's RON file, validates all of it, and only then
//! builds the set; a bad file changes nothing.
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

pub mod meta;
pub mod prefix;
pub mod rule;
pub mod ruleset;

pub use meta::PacketMeta;
pub use prefix::{IpPrefix, IpPrefixError};
pub use rule::{Action, PortRange, PortRangeError, Rule};
pub use ruleset::{Revision, RuleSet, TooManyRules, Verdict, MAX_RULES};
