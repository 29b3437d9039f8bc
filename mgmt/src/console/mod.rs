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
//! | `reload` | reads the rules file again, like SIGHUP: the result, or `error: ...` with `file:line:column` |
//! | `help` | the command list |
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
