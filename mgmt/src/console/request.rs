//! Parsing one request line of the console (see [`crate::console`]).
//!
//! Pure logic, no socket: `tandemctl` runs the same parser before it connects,
//! so a typo is refused the same way whether or not a unit is running.

use dataplane::conntrack::conn::{L4State, Pseudo};
use dataplane::conntrack::tcp::TcpState;
use dataplane::control::ConnFilter;
use dataplane::filter::meta::{ICMP, ICMPV6, SCTP, TCP, UDP};
use std::fmt;
use std::net::IpAddr;

/// Connections listed per worker when `conns` has no `limit`.
pub const DEFAULT_CONN_LIMIT: usize = 1000;
/// The largest `limit` a `conns` request may ask for, per worker.
pub const MAX_CONN_LIMIT: usize = 1_000_000;

/// One request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `counters [--nonzero] [PATTERN]`.
    Counters {
        /// Only names containing this.
        pattern: Option<String>,
        /// Leave out the counters that are zero.
        nonzero: bool,
    },
    /// `conns [proto P] [addr IP] [port N] [state S] [limit N]`.
    Conns {
        /// Which connections.
        filter: ConnFilter,
        /// At most this many per worker.
        limit: usize,
    },
    /// `rules`.
    Rules,
    /// `sync`.
    Sync,
    /// `reload`.
    Reload,
    /// `hamode`: this unit's role, and whether it is forced.
    Mode,
    /// `halog [-n N]`: the last `lines` lines of the HA event log.
    HaLog {
        /// How many (default [`HALOG_LINES`]).
        lines: usize,
    },
    /// `haactive` (`Some(Active)`), `hapassive` (`Some(Passive)`), `hareset`
    /// (`None`): force this unit's role, or let the election decide again.
    Force(Option<crate::config::HaRole>),
    /// `help`.
    Help,
}

/// Why a request line was refused. The answer is `error: ` and this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadRequest {}

fn bad<T>(text: impl Into<String>) -> Result<T, BadRequest> {
    Err(BadRequest(text.into()))
}

/// The command list, as `help` answers it.
pub const HELP: &str = "\
commands (one per line; the answer ends when the unit closes the connection):
  counters [--nonzero] [PATTERN]
      every counter as `name value`; only names containing PATTERN;
      --nonzero leaves out the counters that are zero
  conns [proto tcp|udp|icmp|icmpv6|sctp|N] [addr IP] [port N] [state NAME] [limit N]
      tracked connections matching every filter given (addr and port: either
      end), at most `limit` per worker (default 1000); a state name that is
      not known is answered with the list of those that are
  rules
      the rules in force, numbered as `conns` shows them
  sync
      synchronisation with the partner: its boot, whether the tables agree,
      each HA link's state both ways and since when, bulks, digests, the
      streams, the key's age (counters: `counters sync.`, `counters ha.`)
  reload
      reads the rules file again (as SIGHUP does); a bad file is refused with
      file:line:column and the rules in force stay
  hamode
      this unit's role (active or passive), whether it is forced, why, and since
      when
  halog [-n N]
      the last N lines of the HA event log (default 50): role changes and why,
      partner and links lost and back, bulks, quality, forced mode
  haactive | hapassive | hareset
      force this unit active or passive whatever its quality, or remove the
      force; `hapassive` on the active unit is the planned switchover (the
      partner goes live before this unit stops forwarding)
  help
      this list
errors are one line starting with `error:`
";

/// The connection state names a `conns state` filter accepts, in the
/// dataplane's spelling.
pub fn state_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    for p in [Pseudo::Unreplied, Pseudo::Replied] {
        names.push(L4State::Udp(p).name());
    }
    for p in [Pseudo::Unreplied, Pseudo::Replied] {
        names.push(L4State::IcmpEcho(p).name());
    }
    for p in [Pseudo::Unreplied, Pseudo::Replied] {
        names.push(L4State::Other(p).name());
    }
    names
}

/// The name `conns` shows for an IP protocol number.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        TCP => Some("tcp"),
        UDP => Some("udp"),
        ICMP => Some("icmp"),
        ICMPV6 => Some("icmpv6"),
        SCTP => Some("sctp"),
        _ => None,
    }
}

fn parse_proto(word: &str) -> Result<u8, BadRequest> {
    let named = [TCP, UDP, ICMP, ICMPV6, SCTP]
        .into_iter()
        .find(|&p| proto_name(p).is_some_and(|n| n.eq_ignore_ascii_case(word)));
    match named {
        Some(p) => Ok(p),
        None => word.parse::<u8>().or_else(|_| {
            bad(format!(
                "conns: bad proto `{word}`: expected tcp, udp, icmp, icmpv6, sctp or a number 0-255"
            ))
        }),
    }
}

/// Parses one request line (without its line ending). Words are separated
/// by whitespace; commands and filter names are lower case.
pub fn parse(line: &str) -> Result<Request, BadRequest> {
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else {
        return bad("empty request; `help` lists the commands");
    };
    let args: Vec<&str> = words.collect();
    match command {
        "counters" => parse_counters(&args),
        "conns" => parse_conns(&args),
        "rules" => no_args("rules", &args, Request::Rules),
        "sync" => no_args("sync", &args, Request::Sync),
        "reload" => no_args("reload", &args, Request::Reload),
        "hamode" => no_args("hamode", &args, Request::Mode),
        "halog" => parse_halog(&args),
        "haactive" => no_args(
            "haactive",
            &args,
            Request::Force(Some(crate::config::HaRole::Active)),
        ),
        "hapassive" => no_args(
            "hapassive",
            &args,
            Request::Force(Some(crate::config::HaRole::Passive)),
        ),
        "hareset" => no_args("hareset", &args, Request::Force(None)),
        "help" => no_args("help", &args, Request::Help),
        other => bad(format!(
            "unknown command `{}`; commands: counters, conns, rules, sync, reload, help",
            printable(other)
        )),
    }
}

/// `word` with control characters escaped, so that an error never echoes
/// raw terminal escapes back to a console.
fn printable(word: &str) -> String {
    word.chars()
        .flat_map(char::escape_default)
        .collect::<String>()
}

fn no_args(command: &str, args: &[&str], request: Request) -> Result<Request, BadRequest> {
    match args.first() {
        None => Ok(request),
        Some(first) => bad(format!(
            "{command} takes no arguments, got `{}`",
            printable(first)
        )),
    }
}

/// The lines `halog` shows when not told.
pub const HALOG_LINES: usize = 50;

fn parse_halog(args: &[&str]) -> Result<Request, BadRequest> {
    match args {
        [] => Ok(Request::HaLog { lines: HALOG_LINES }),
        ["-n", n] => match n.parse::<usize>() {
            Ok(lines) if lines > 0 => Ok(Request::HaLog { lines }),
            _ => bad(format!(
                "halog: -n takes a number of lines above 0, not `{}`",
                printable(n)
            )),
        },
        _ => bad("halog takes `-n N` or nothing"),
    }
}

fn parse_counters(args: &[&str]) -> Result<Request, BadRequest> {
    let mut pattern: Option<&str> = None;
    let mut nonzero = false;
    for &arg in args {
        if arg == "--nonzero" {
            nonzero = true;
        } else if arg.starts_with("--") {
            return bad(format!(
                "counters: unknown option `{}`; options: --nonzero",
                printable(arg)
            ));
        } else if let Some(first) = pattern {
            return bad(format!(
                "counters takes one PATTERN, got `{}` and `{}`",
                printable(first),
                printable(arg)
            ));
        } else {
            pattern = Some(arg);
        }
    }
    Ok(Request::Counters {
        pattern: pattern.map(str::to_string),
        nonzero,
    })
}

fn parse_conns(args: &[&str]) -> Result<Request, BadRequest> {
    const FILTERS: &str = "proto, addr, port, state, limit";
    let mut filter = ConnFilter::default();
    let mut limit: Option<usize> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut words = args.iter();
    while let Some(&key) = words.next() {
        if !["proto", "addr", "port", "state", "limit"].contains(&key) {
            return bad(format!(
                "conns: unknown filter `{}`; filters: {FILTERS}",
                printable(key)
            ));
        }
        if seen.contains(&key) {
            return bad(format!("conns: `{key}` given twice"));
        }
        seen.push(key);
        let Some(&value) = words.next() else {
            return bad(format!("conns: `{key}` needs a value"));
        };
        let shown = printable(value);
        match key {
            "proto" => filter.proto = Some(parse_proto(value)?),
            "addr" => match value.parse::<IpAddr>() {
                Ok(a) => filter.addr = Some(a),
                Err(_) => {
                    return bad(format!(
                        "conns: bad addr `{shown}`: expected an IPv4 or IPv6 address"
                    ))
                }
            },
            "port" => match value.parse::<u16>() {
                Ok(p) => filter.port = Some(p),
                Err(_) => return bad(format!("conns: bad port `{shown}`: expected 0-65535")),
            },
            "state" => {
                let names = state_names();
                match names.iter().find(|n| n.eq_ignore_ascii_case(value)) {
                    Some(n) => filter.state = Some((*n).to_string()),
                    None => {
                        return bad(format!(
                            "conns: unknown state `{shown}`; states: {}",
                            names.join(", ")
                        ))
                    }
                }
            }
            _ => match value.parse::<usize>() {
                Ok(n @ 1..=MAX_CONN_LIMIT) => limit = Some(n),
                _ => {
                    return bad(format!(
                        "conns: bad limit `{shown}`: expected 1-{MAX_CONN_LIMIT}"
                    ))
                }
            },
        }
    }
    Ok(Request::Conns {
        filter,
        limit: limit.unwrap_or(DEFAULT_CONN_LIMIT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(r) => panic!("`{line}` was accepted as {r:?}"),
            Err(e) => e.0,
        }
    }

    fn conns(line: &str) -> (ConnFilter, usize) {
        match parse(line) {
            Ok(Request::Conns { filter, limit }) => (filter, limit),
            other => panic!("`{line}`: {other:?}"),
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse("rules"), Ok(Request::Rules));
        assert_eq!(parse("reload"), Ok(Request::Reload));
        assert_eq!(parse("halog"), Ok(Request::HaLog { lines: HALOG_LINES }));
        assert_eq!(parse("halog -n 5"), Ok(Request::HaLog { lines: 5 }));
        assert_eq!(
            parse("halog -n 0"),
            Err(BadRequest(
                "halog: -n takes a number of lines above 0, not `0`".into()
            ))
        );
        assert_eq!(
            parse("halog 5"),
            Err(BadRequest("halog takes `-n N` or nothing".into()))
        );
        assert_eq!(parse("hamode"), Ok(Request::Mode));
        assert_eq!(parse("help"), Ok(Request::Help));
        // Surrounding and repeated whitespace does not matter.
        assert_eq!(parse("  help \t "), Ok(Request::Help));
    }

    #[test]
    fn counters_with_and_without_options() {
        assert_eq!(
            parse("counters"),
            Ok(Request::Counters {
                pattern: None,
                nonzero: false
            })
        );
        assert_eq!(
            parse("counters drop."),
            Ok(Request::Counters {
                pattern: Some("drop.".into()),
                nonzero: false
            })
        );
        let both = Ok(Request::Counters {
            pattern: Some("tcp".into()),
            nonzero: true,
        });
        assert_eq!(parse("counters --nonzero tcp"), both);
        assert_eq!(parse("counters tcp --nonzero"), both);
    }

    #[test]
    fn conns_defaults_and_every_filter() {
        assert_eq!(conns("conns"), (ConnFilter::default(), DEFAULT_CONN_LIMIT));
        let (f, limit) = conns("conns proto tcp addr 198.18.2.2 port 80 state established limit 5");
        assert_eq!(
            f,
            ConnFilter {
                proto: Some(TCP),
                addr: Some("198.18.2.2".parse().unwrap()),
                port: Some(80),
                state: Some("ESTABLISHED".into()),
            }
        );
        assert_eq!(limit, 5);
        assert_eq!(conns("conns proto UDP").0.proto, Some(UDP));
        assert_eq!(conns("conns proto icmp").0.proto, Some(ICMP));
        assert_eq!(conns("conns proto icmpv6").0.proto, Some(ICMPV6));
        assert_eq!(conns("conns proto sctp").0.proto, Some(SCTP));
        assert_eq!(conns("conns proto 47").0.proto, Some(47));
        assert_eq!(
            conns("conns addr 2001:db8::1").0.addr,
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            conns("conns state udp_replied").0.state.as_deref(),
            Some("UDP_REPLIED")
        );
        assert_eq!(conns("conns limit 1000000").1, MAX_CONN_LIMIT);
    }

    /// One bad word at a time, each with its exact message.
    #[test]
    fn bad_requests_get_exact_errors() {
        let states = state_names().join(", ");
        let cases: Vec<(&str, String)> = vec![
            ("", "empty request; `help` lists the commands".into()),
            ("   ", "empty request; `help` lists the commands".into()),
            (
                "hainfo",
                "unknown command `hainfo`; commands: counters, conns, rules, sync, reload, help".into(),
            ),
            (
                "Counters",
                "unknown command `Counters`; commands: counters, conns, rules, sync, reload, help".into(),
            ),
            (
                "\u{1b}[2J",
                "unknown command `\\u{1b}[2J`; commands: counters, conns, rules, sync, reload, help"
                    .into(),
            ),
            ("rules all", "rules takes no arguments, got `all`".into()),
            ("reload now", "reload takes no arguments, got `now`".into()),
            ("help conns", "help takes no arguments, got `conns`".into()),
            (
                "counters a b",
                "counters takes one PATTERN, got `a` and `b`".into(),
            ),
            (
                "counters --zero",
                "counters: unknown option `--zero`; options: --nonzero".into(),
            ),
            (
                "conns udp",
                "conns: unknown filter `udp`; filters: proto, addr, port, state, limit".into(),
            ),
            ("conns port", "conns: `port` needs a value".into()),
            ("conns port 80 port 81", "conns: `port` given twice".into()),
            (
                "conns proto gre",
                "conns: bad proto `gre`: expected tcp, udp, icmp, icmpv6, sctp or a number 0-255"
                    .into(),
            ),
            (
                "conns proto 256",
                "conns: bad proto `256`: expected tcp, udp, icmp, icmpv6, sctp or a number 0-255"
                    .into(),
            ),
            (
                "conns addr 198.18.2",
                "conns: bad addr `198.18.2`: expected an IPv4 or IPv6 address".into(),
            ),
            (
                "conns addr 198.18.2.0/24",
                "conns: bad addr `198.18.2.0/24`: expected an IPv4 or IPv6 address".into(),
            ),
            (
                "conns port http",
                "conns: bad port `http`: expected 0-65535".into(),
            ),
            (
                "conns port 65536",
                "conns: bad port `65536`: expected 0-65535".into(),
            ),
            (
                "conns port -1",
                "conns: bad port `-1`: expected 0-65535".into(),
            ),
            (
                "conns state open",
                format!("conns: unknown state `open`; states: {states}"),
            ),
            (
                "conns limit 0",
                "conns: bad limit `0`: expected 1-1000000".into(),
            ),
            (
                "conns limit 1000001",
                "conns: bad limit `1000001`: expected 1-1000000".into(),
            ),
            (
                "conns limit many",
                "conns: bad limit `many`: expected 1-1000000".into(),
            ),
        ];
        let got: Vec<String> = cases.iter().map(|(line, _)| err(line)).collect();
        let want: Vec<String> = cases.iter().map(|(_, w)| w.clone()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn state_names_are_the_dataplanes() {
        let names = state_names();
        for n in [
            "ESTABLISHED",
            "TIME_WAIT",
            "SYN_SENT",
            "UDP_UNREPLIED",
            "UDP_REPLIED",
            "ICMP_REPLIED",
            "REPLIED",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn help_names_every_command() {
        for c in ["counters", "conns", "rules", "sync", "reload", "help"] {
            assert!(HELP.lines().any(|l| l.trim_start().starts_with(c)), "{c}");
            let parsed = parse(c);
            assert!(parsed.is_ok(), "{c}: {parsed:?}");
        }
    }
}
