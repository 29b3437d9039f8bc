//! The console's language: the requests operators (and `tandemctl`) send a
//! unit, and the text of its answers. The control socket ([`crate::control`])
//! carries them; the supervisor ([`crate::supervisor`]) carries them out.
//!
//! * [`request`]: parsing one request line (pure: `tandemctl` refuses a typo
//!   before it connects, with the unit's own words).
//! * [`answer`]: the text of the answers.
//! * [`hainfo`]: both members side by side (text and JSON).
//! * [`hasync`]: the steps of a configuration sync, run by the console.
//!
//! | request | answer |
//! | --- | --- |
//! | `counters [--nonzero] [PATTERN]` | `name value` per counter, names padded so values line up; only names containing PATTERN |
//! | `conns [proto P] [addr IP] [port N] [state S] [sync S] [limit N]` | a header, one aligned row per connection (`W PROTO SOURCE -> DESTINATION STATE RULE IN OUT AGE EXPIRES SYNC FLAGS`; `SYNC`: `live`, `larval`, `no:rule` (its rule says `sync: false`), `no:young` (younger than `ha.sync.min_age_s`)), then `N connection(s)` |
//! | `rules` | the rules in force, as `RuleSet::listing` shows them |
//! | `reload` | reads the shared configuration file (if any) and the rules file again, like SIGHUP: the result, or `error: ...` with `file:line:column` |
//! | `sync` | synchronisation's status text |
//! | `hainfo [-v]` | "Nodes status:", see [`hainfo`] |
//! | `hamode` | `mode:`, `forced:`, `reason:`, `since:` lines |
//! | `haactive`, `hapassive`, `hareset` | the role forced, or the force removed |
//! | `hasynctest` | `NAME: differs` (or `only here`, `only on the partner`) per synchronised file that differs; nothing when none |
//! | `hadiff FILE` | a unified diff, this member `---`, the partner `+++` |
//! | `hasync begin`, `link`, `file T NAME`, `commit T ID`, `post T ID` | one step of `hasync` each, see [`hasync`] |
//! | `enha` | what was re-read, then `supervisor: running; unit SERIAL: MODE (REASON), quality Q %, priority P` |
//! | `halog [-n N]` | the last N lines of the HA event log |
//! | `help` | the command list |
//!
//! # Versions
//!
//! A request line may start with `@N`, the control protocol version its
//! sender speaks ([`request::CONTROL_PROTOCOL`], 1); a line without it is
//! version 1 (a person typing on the socket). Another version is refused by
//! name, never half-understood. The JSON answers below only ever gain
//! fields; a removal or a change of meaning is a new schema name.
//!
//! # JSON (`--json`)
//!
//! One line, UTF-8:
//!
//! | request | object |
//! | --- | --- |
//! | `hainfo --json` | schema `tandem.hainfo/1`, see [`hainfo`] |
//! | `hamode --json` | `{"serial", "mode": "active"\|"passive", "forced": null\|"active"\|"passive", "reason", "since": unix s}` |
//! | `sync --json` | `{"serial", "ha": HaNode\|null, "sync": SyncFigures}` ([`crate::node`]) |
//! | `hasynctest --json` | `{"differ": [{"name", "how"}]}` |
//! | `counters --json` | `{"name": value, ...}` in the unit's order |
//! | `conns --json` | `{"connections": [{"worker", "proto", "src", "sport", "dst", "dport", "state", "rule": n\|null, "in", "out", "age_s", "expires_s", "sync", "flags": [..]}], "count", "limit", "workers_at_limit": [..]}` |
//! | `hasync` steps | [`hasync::StepAnswer`] |
//!
//! An answer that starts with `error: ` is a refusal and is one line; any
//! other answer is a success. In `conns`, `addr` and `port` match either end;
//! `limit` is per worker (default 1000), and a worker that reached it is named
//! on a last line. Addresses are shown `ip:port` for TCP, UDP and SCTP; an ICMP
//! echo's identifier is shown as `id=N` among the flags. `RULE` is the index of
//! the rule that admitted the connection in the rule set of that moment (`-`:
//! none, e.g. the default policy).

pub mod answer;
pub mod hainfo;
pub mod hasync;
pub mod request;

pub use answer::Target;
pub use request::Request;
