//! Parsing one request line of the console (see [`crate::console`]).
//!
//! Pure logic, no socket: `tandemctl` runs the same parser before it connects,
//! so a typo is refused the same way whether or not a unit is running.

use dataplane::conntrack::conn::{L4State, Pseudo};
use dataplane::conntrack::tcp::TcpState;
use dataplane::control::{ConnFilter, SyncState};
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
        /// Answer in JSON (an object of name: value).
        json: bool,
    },
    /// `conns [proto P] [addr IP] [port N] [state S] [sync S] [limit N] [--json]`.
    Conns {
        /// Which connections.
        filter: ConnFilter,
        /// At most this many per worker.
        limit: usize,
        /// Answer in JSON.
        json: bool,
    },
    /// `rules`.
    Rules,
    /// `sync [--json]`.
    Sync {
        /// Answer in JSON: this member's election view and sync figures.
        json: bool,
    },
    /// `reload`.
    Reload,
    /// `hamode [--json]`: this unit's role, and whether it is forced.
    Mode {
        /// Answer in JSON.
        json: bool,
    },
    /// `hainfo [-v] [--json]`: both members' status side by side.
    HaInfo {
        /// Progress lines first, and the sync figures.
        verbose: bool,
        /// Answer in JSON ([`crate::node::HAINFO_SCHEMA`]).
        json: bool,
    },
    /// `hasynctest [--json]`: the synchronised files that differ.
    HaSyncTest {
        /// Answer in JSON.
        json: bool,
    },
    /// `hadiff FILE`: a unified diff of one synchronised file, this member
    /// against the partner.
    HaDiff {
        /// The file's name (`hasynctest` lists them).
        file: String,
    },
    /// One step of `hasync` (the console runs them in order, printing each
    /// answer as it comes; answers are JSON, see [`crate::console::hasync`]).
    HaSync(SyncStep),
    /// `enha`: re-read the HA parameters from the unit configuration.
    Enha,
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

/// The steps of `hasync`, each a request of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStep {
    /// `hasync begin`: check this member's files, number the transfer.
    Begin,
    /// `hasync link`: reach the partner, compare the files.
    Link,
    /// `hasync file TRANSFER NAME`: stage one file on the partner.
    File {
        /// The transfer.
        transfer: u64,
        /// The file.
        name: String,
    },
    /// `hasync commit TRANSFER SYNC_ID`: the partner puts the files in force.
    Commit {
        /// The transfer.
        transfer: u64,
        /// The configuration sync's number.
        sync_id: u64,
    },
    /// `hasync post TRANSFER SYNC_ID`: this member records the sync.
    Post {
        /// The transfer.
        transfer: u64,
        /// The configuration sync's number.
        sync_id: u64,
    },
}

/// The control protocol version this code speaks: a request line may start
/// with `@N`, the version its sender speaks (a line without it is version
/// 1, as a person typing on the socket writes it).
pub const CONTROL_PROTOCOL: u32 = 1;

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
commands (on the console each is a command of its own: hainfo, hamode, ...):
  hainfo [-v] [--json]   both members side by side; -v adds the sync figures
  hamode [--json]        this unit's role, whether forced, why, since when
  haactive | hapassive   force this unit's role (hapassive on the active unit
                         is the planned switchover)
  hareset                remove the force: the election decides again
  hasync [-v]            send this unit's configuration files to the partner
  hasynctest [--json]    the configuration files that differ (none: nothing)
  hadiff FILE            unified diff of FILE: this unit (---), partner (+++)
  enha                   re-read the HA parameters without a restart
  halog [-n N]           the last N lines of the HA event log (default 50)
  sync [--json]          synchronisation: links, bulks, digests, key age
  counters [--nonzero] [--json] [PATTERN]
                         the counters whose names contain PATTERN
  conns [proto P] [addr IP] [port N] [state S] [sync live|larval|no:rule|
        no:young] [limit N] [--json]   tracked connections, their sync state
  rules                  the rules in force, numbered as conns shows them
  reload                 read the rules file again (as SIGHUP does)
  help                   this list
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
    let mut words = line.split_whitespace().peekable();
    if let Some(version) = words.peek().and_then(|w| w.strip_prefix('@')) {
        match version.parse::<u32>() {
            Ok(CONTROL_PROTOCOL) => {}
            _ => {
                return bad(format!(
                    "control protocol version `{}` is not spoken here (this unit speaks {CONTROL_PROTOCOL}); use the tandemctl of the unit's firmware",
                    printable(version)
                ))
            }
        }
        words.next();
    }
    let Some(command) = words.next() else {
        return bad("empty request; `help` lists the commands");
    };
    let args: Vec<&str> = words.collect();
    match command {
        "counters" => parse_counters(&args),
        "conns" => parse_conns(&args),
        "rules" => no_args("rules", &args, Request::Rules),
        "sync" => with_json("sync", &args, &[], |json, _| Request::Sync { json }),
        "reload" => no_args("reload", &args, Request::Reload),
        "hamode" => with_json("hamode", &args, &[], |json, _| Request::Mode { json }),
        "hainfo" => with_json("hainfo", &args, &["-v"], |json, v| Request::HaInfo {
            verbose: v,
            json,
        }),
        "hasynctest" => with_json("hasynctest", &args, &[], |json, _| Request::HaSyncTest {
            json,
        }),
        "hadiff" => match args[..] {
            [file] if !file.starts_with('-') => Ok(Request::HaDiff { file: file.into() }),
            _ => bad("hadiff takes one FILE (`hasynctest` lists them)"),
        },
        "hasync" => parse_hasync(&args),
        "enha" => no_args("enha", &args, Request::Enha),
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
            "unknown command `{}`; `help` lists the commands",
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

/// A command whose only options are `--json` and the `flags` given:
/// `make(json, flag given)`.
fn with_json(
    command: &str,
    args: &[&str],
    flags: &[&str],
    make: impl FnOnce(bool, bool) -> Request,
) -> Result<Request, BadRequest> {
    let (mut json, mut flag) = (false, false);
    for &arg in args {
        match arg {
            "--json" => json = true,
            a if flags.contains(&a) => flag = true,
            a => {
                let options: Vec<&str> = flags.iter().copied().chain(["--json"]).collect();
                return bad(format!(
                    "{command}: unknown argument `{}`; options: {}",
                    printable(a),
                    options.join(", ")
                ));
            }
        }
    }
    Ok(make(json, flag))
}

fn parse_hasync(args: &[&str]) -> Result<Request, BadRequest> {
    let number = |w: &str| {
        w.parse::<u64>()
            .map_err(|_| BadRequest(format!("hasync: `{}` is not a number", printable(w))))
    };
    let step = match args {
        ["begin"] => SyncStep::Begin,
        ["link"] => SyncStep::Link,
        ["file", t, name] => SyncStep::File {
            transfer: number(t)?,
            name: (*name).to_owned(),
        },
        ["commit", t, id] => SyncStep::Commit {
            transfer: number(t)?,
            sync_id: number(id)?,
        },
        ["post", t, id] => SyncStep::Post {
            transfer: number(t)?,
            sync_id: number(id)?,
        },
        _ => return bad("hasync runs from the console (`hasync [-v]`); its steps are begin, link, file T NAME, commit T ID, post T ID"),
    };
    Ok(Request::HaSync(step))
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
    let (mut nonzero, mut json) = (false, false);
    for &arg in args {
        if arg == "--nonzero" {
            nonzero = true;
        } else if arg == "--json" {
            json = true;
        } else if arg.starts_with("--") {
            return bad(format!(
                "counters: unknown option `{}`; options: --nonzero, --json",
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
        json,
    })
}

fn parse_conns(args: &[&str]) -> Result<Request, BadRequest> {
    const FILTERS: &str = "proto, addr, port, state, sync, limit";
    let mut filter = ConnFilter::default();
    let mut limit: Option<usize> = None;
    let mut seen: Vec<&str> = Vec::new();
    let json = args.contains(&"--json");
    let mut words = args.iter().filter(|w| **w != "--json");
    while let Some(&key) = words.next() {
        if !["proto", "addr", "port", "state", "sync", "limit"].contains(&key) {
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
            "sync" => match SyncState::ALL.iter().find(|s| s.name() == value) {
                Some(s) => filter.sync = Some(*s),
                None => {
                    let names: Vec<&str> = SyncState::ALL.iter().map(|s| s.name()).collect();
                    return bad(format!(
                        "conns: unknown sync state `{shown}`; sync states: {}",
                        names.join(", ")
                    ));
                }
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
        json,
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
            Ok(Request::Conns { filter, limit, .. }) => (filter, limit),
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
        assert_eq!(parse("hamode"), Ok(Request::Mode { json: false }));
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
                nonzero: false,
                json: false,
            })
        );
        assert_eq!(
            parse("counters drop."),
            Ok(Request::Counters {
                pattern: Some("drop.".into()),
                nonzero: false,
                json: false,
            })
        );
        let both = Ok(Request::Counters {
            pattern: Some("tcp".into()),
            nonzero: true,
            json: false,
        });
        assert_eq!(parse("counters --nonzero tcp"), both);
        assert_eq!(parse("counters tcp --nonzero"), both);
        assert_eq!(
            parse("@1 counters --json"),
            Ok(Request::Counters {
                pattern: None,
                nonzero: false,
                json: true,
            })
        );
    }

    #[test]
    fn another_control_protocol_version_is_refused_by_name() {
        let why = parse("@2 hainfo").unwrap_err().0;
        assert_eq!(
            why,
            "control protocol version `2` is not spoken here (this unit speaks 1); use the tandemctl of the unit's firmware"
        );
        assert!(parse("@x hainfo").is_err());
        assert_eq!(
            parse("@1"),
            Err(BadRequest(
                "empty request; `help` lists the commands".into()
            ))
        );
    }

    #[test]
    fn the_ha_console_commands() {
        assert_eq!(
            parse("hainfo -v --json"),
            Ok(Request::HaInfo {
                verbose: true,
                json: true
            })
        );
        assert_eq!(
            parse("hainfo -x").unwrap_err().0,
            "hainfo: unknown argument `-x`; options: -v, --json"
        );
        assert_eq!(
            parse("hadiff rules.ron"),
            Ok(Request::HaDiff {
                file: "rules.ron".into()
            })
        );
        assert!(parse("hadiff").is_err());
        assert_eq!(
            parse("hasync file 7 rules.ron"),
            Ok(Request::HaSync(SyncStep::File {
                transfer: 7,
                name: "rules.ron".into()
            }))
        );
        assert!(parse("hasync -v").is_err(), "the console runs the steps");
        assert_eq!(parse("enha"), Ok(Request::Enha));
        assert_eq!(
            parse("hasynctest --json"),
            Ok(Request::HaSyncTest { json: true })
        );
    }

    #[test]
    fn help_fits_one_screen_of_80_columns() {
        assert!(HELP.lines().count() <= 24, "{}", HELP.lines().count());
        assert!(HELP.lines().all(|l| l.len() <= 80));
    }

    #[test]
    fn conns_defaults_and_every_filter() {
        assert_eq!(conns("conns"), (ConnFilter::default(), DEFAULT_CONN_LIMIT));
        let (f, limit) =
            conns("conns proto tcp addr 198.18.2.2 port 80 state established sync larval limit 5");
        assert_eq!(
            f,
            ConnFilter {
                proto: Some(TCP),
                addr: Some("198.18.2.2".parse().unwrap()),
                port: Some(80),
                state: Some("ESTABLISHED".into()),
                sync: Some(SyncState::Larval),
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
                "hastatus",
                "unknown command `hastatus`; `help` lists the commands".into(),
            ),
            (
                "Counters",
                "unknown command `Counters`; `help` lists the commands".into(),
            ),
            (
                "\u{1b}[2J",
                "unknown command `\\u{1b}[2J`; `help` lists the commands".into(),
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
                "counters: unknown option `--zero`; options: --nonzero, --json".into(),
            ),
            (
                "conns udp",
                "conns: unknown filter `udp`; filters: proto, addr, port, state, sync, limit"
                    .into(),
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
