//! The text of the answers: what the unit says back, as plain text that
//! reads well on a serial console (aligned columns, no colour).
//!
//! What answers come from is reached through [`Target`], so every answer can
//! be checked against a made-up unit in tests, without DPDK.

use super::request::{proto_name, Request, HELP};
use dataplane::conntrack::conn::flag;
use dataplane::control::{ConnInfo, SyncState};
use dataplane::filter::meta::{ICMP, ICMPV6};
use dataplane::filter::RuleSet;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What the answers read from a unit.
pub trait Target {
    /// Every counter as `(name, value)`, in the unit's order.
    fn counters(&self) -> Vec<(String, u64)>;
    /// The rules in force; `None` when the unit does not filter.
    fn rules(&self) -> Option<Arc<RuleSet>>;
    /// Data interface names in index order.
    fn interface_names(&self) -> &[String];
    /// Synchronisation's status text; `None` for a unit without a partner.
    fn sync_status(&self) -> Option<String>;
    /// `hamode`'s answer; `None` when the unit has no partner configured.
    fn ha_mode(&self) -> Option<String>;
}

/// An error answer: `error: ` and the text, one line.
pub fn error(text: &str) -> String {
    let one_line = text.trim_end().replace('\n', " / ");
    format!("error: {one_line}\n")
}

/// The answer to a request that a look at the unit answers at once (help,
/// counters, rules), ending with a newline; `None` for the two the
/// supervisor carries out itself: `conns` (the workers answer over several
/// of their loop iterations, see [`conns`]) and `reload` (it changes the unit).
pub fn immediate(request: &Request, target: &dyn Target) -> Option<String> {
    Some(match request {
        Request::Help => HELP.to_string(),
        Request::Counters {
            pattern,
            nonzero,
            json: false,
        } => counters(&target.counters(), pattern.as_deref(), *nonzero),
        Request::Counters {
            pattern,
            nonzero,
            json: true,
        } => counters_json(&target.counters(), pattern.as_deref(), *nonzero),
        Request::Rules => match target.rules() {
            Some(set) => set.listing(target.interface_names()).to_string(),
            None => {
                "no rules: the unit routes without filtering (it was started without --rules)\n"
                    .to_string()
            }
        },
        Request::Sync { json: false } => target.sync_status().unwrap_or_else(|| {
            "no partner: the unit runs alone (its configuration has no `ha` section)\n".into()
        }),
        Request::Mode { json: false } => target.ha_mode().unwrap_or_else(|| error(NO_PARTNER)),
        Request::Conns { .. }
        | Request::Reload
        | Request::Force(_)
        | Request::HaLog { .. }
        | Request::Mode { json: true }
        | Request::Sync { json: true }
        | Request::HaInfo { .. }
        | Request::HaSyncTest { .. }
        | Request::HaDiff { .. }
        | Request::HaSync(_)
        | Request::Enha => return None,
    })
}

/// The refusal of an HA command on a unit without a partner.
pub const NO_PARTNER: &str =
    "no partner: the unit runs alone (its configuration has no `ha` section)";

/// The counters as one JSON object, `{"name": value, ...}`, in the unit's
/// order (the names and values of the text answer).
pub fn counters_json(all: &[(String, u64)], pattern: Option<&str>, nonzero: bool) -> String {
    let map: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .filter(|(n, v)| pattern.is_none_or(|p| n.contains(p)) && (!nonzero || *v != 0))
        .map(|(n, v)| (n.clone(), (*v).into()))
        .collect();
    format!("{}\n", serde_json::Value::Object(map))
}

/// `name value` lines, names padded so the values line up.
pub fn counters(all: &[(String, u64)], pattern: Option<&str>, nonzero: bool) -> String {
    let named: Vec<&(String, u64)> = all
        .iter()
        .filter(|(n, _)| pattern.is_none_or(|p| n.contains(p)))
        .collect();
    if let (Some(p), true) = (pattern, named.is_empty()) {
        return error(&format!("no counter name contains `{p}`"));
    }
    let shown: Vec<&&(String, u64)> = named.iter().filter(|(_, v)| !nonzero || *v != 0).collect();
    let width = shown.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    shown
        .iter()
        .map(|(n, v)| format!("{n:<width$} {v}\n"))
        .collect()
}

fn endpoint(proto: u8, addr: IpAddr, port: u16) -> String {
    match proto {
        // The echo identifier is not a port: it goes in the flags column.
        ICMP | ICMPV6 => addr.to_string(),
        _ if proto_name(proto).is_some() => SocketAddr::new(addr, port).to_string(),
        _ => addr.to_string(),
    }
}

fn iface(names: &[String], index: u8) -> String {
    names
        .get(usize::from(index))
        .cloned()
        .unwrap_or_else(|| format!("#{index}"))
}

fn flags(c: &ConnInfo) -> String {
    let mut out: Vec<String> = [
        (flag::SYNC, "sync"),
        (flag::RESEND, "resend"),
        (flag::LOG, "log"),
        (flag::LARVAL, "larval"),
        (flag::SYNC_LATER, "sync-later"),
    ]
    .iter()
    .filter(|(bit, _)| c.flags & bit != 0)
    .map(|(_, name)| (*name).to_string())
    .collect();
    if matches!(c.proto, ICMP | ICMPV6) {
        out.push(format!("id={}", c.sport));
    }
    if out.is_empty() {
        "-".to_string()
    } else {
        out.join(",")
    }
}

/// The workers whose listing reached `limit` (there may be more).
fn workers_at_limit(list: &[ConnInfo], limit: usize) -> Vec<usize> {
    let mut full: Vec<usize> = Vec::new();
    for c in list {
        let n = list.iter().filter(|d| d.worker == c.worker).count();
        if n >= limit && !full.contains(&c.worker) {
            full.push(c.worker);
        }
    }
    full
}

/// `conns --json`: `{"connections": [...], "count": N, "limit": L,
/// "workers_at_limit": [...]}`, each connection with the table's columns
/// (`worker`, `proto`, `src`, `sport`, `dst`, `dport`, `state`, `rule`
/// (null: none), `in`, `out`, `age_s`, `expires_s`, `sync`, `flags`).
pub fn conns_json(list: &[ConnInfo], limit: usize, interfaces: &[String]) -> String {
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            serde_json::json!({
                "worker": c.worker,
                "proto": proto_name(c.proto).map_or_else(|| c.proto.to_string(), str::to_string),
                "src": c.src.to_string(), "sport": c.sport,
                "dst": c.dst.to_string(), "dport": c.dport,
                "state": c.state,
                "rule": (c.rule != u16::MAX).then_some(c.rule),
                "in": iface(interfaces, c.in_iface), "out": iface(interfaces, c.out_iface),
                "age_s": c.age, "expires_s": c.expires_in,
                "sync": SyncState::of(c.flags).name(),
                "flags": flags(c).split(',').filter(|f| *f != "-").collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = serde_json::json!({
        "connections": rows,
        "count": list.len(),
        "limit": limit,
        "workers_at_limit": workers_at_limit(list, limit),
    });
    format!("{v}\n")
}

/// The `conns` table: a header, one aligned row per connection (sorted by
/// worker, then 5-tuple), and `N connection(s)`. Workers that hit `limit`
/// are named on a last line.
pub fn conns(mut list: Vec<ConnInfo>, limit: usize, interfaces: &[String]) -> String {
    list.sort_by(|a, b| {
        (a.worker, a.proto, a.src, a.sport, a.dst, a.dport)
            .cmp(&(b.worker, b.proto, b.src, b.sport, b.dst, b.dport))
    });
    let header = [
        "W",
        "PROTO",
        "SOURCE",
        "",
        "DESTINATION",
        "STATE",
        "RULE",
        "IN",
        "OUT",
        "AGE",
        "EXPIRES",
        "SYNC",
        "FLAGS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_string()).collect()];
    for c in &list {
        rows.push(vec![
            c.worker.to_string(),
            proto_name(c.proto).map_or_else(|| c.proto.to_string(), str::to_string),
            endpoint(c.proto, c.src, c.sport),
            "->".to_string(),
            endpoint(c.proto, c.dst, c.dport),
            c.state.to_string(),
            if c.rule == u16::MAX {
                "-".to_string()
            } else {
                c.rule.to_string()
            },
            iface(interfaces, c.in_iface),
            iface(interfaces, c.out_iface),
            format!("{}s", c.age),
            format!("{}s", c.expires_in),
            SyncState::of(c.flags).name().to_string(),
            flags(c),
        ]);
    }
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(out, "{} connection(s)", list.len());
    let full = workers_at_limit(&list, limit);
    if !full.is_empty() {
        let names: Vec<String> = full.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "limit {limit} per worker reached on worker(s) {}: there may be more (conns limit N)",
            names.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;
    use dataplane::filter::meta::{TCP, UDP};

    struct Fake {
        counters: Vec<(String, u64)>,
        rules: Option<Arc<RuleSet>>,
        names: Vec<String>,
    }

    impl Target for Fake {
        fn counters(&self) -> Vec<(String, u64)> {
            self.counters.clone()
        }
        fn rules(&self) -> Option<Arc<RuleSet>> {
            self.rules.clone()
        }
        fn interface_names(&self) -> &[String] {
            &self.names
        }
        fn sync_status(&self) -> Option<String> {
            None
        }
        fn ha_mode(&self) -> Option<String> {
            None
        }
    }

    fn conn(worker: usize, proto: u8, src: &str, sport: u16, dst: &str, dport: u16) -> ConnInfo {
        ConnInfo {
            worker,
            proto,
            src: src.parse().unwrap(),
            sport,
            dst: dst.parse().unwrap(),
            dport,
            state: "ESTABLISHED",
            rule: 0,
            in_iface: 0,
            out_iface: 1,
            age: 3,
            expires_in: 431_997,
            flags: flag::SYNC,
        }
    }

    fn fake() -> Fake {
        let names = vec!["data0".to_string(), "data1".to_string()];
        let set = rules::parse(
            r#"(rules: [(action: Pass, in: Some("data0"), proto: Some(Tcp), dst_ports: Some("80"), label: Some("web"))])"#,
            "rules.ron",
            &names,
        )
        .unwrap();
        Fake {
            counters: vec![
                ("worker0.rx_packets".into(), 12),
                ("worker0.drop.blocked_by_rule".into(), 0),
                ("worker0.accepted_new".into(), 2),
                ("port.data0.ipackets".into(), 12),
            ],
            rules: Some(Arc::new(set)),
            names,
        }
    }

    fn ask(target: &Fake, line: &str) -> String {
        let request = super::super::request::parse(line).unwrap();
        immediate(&request, target).expect("answered at once")
    }

    #[test]
    fn counters_are_name_value_lines_filtered_by_pattern() {
        let f = fake();
        assert_eq!(
            ask(&f, "counters"),
            "worker0.rx_packets           12\n\
             worker0.drop.blocked_by_rule 0\n\
             worker0.accepted_new         2\n\
             port.data0.ipackets          12\n"
        );
        assert_eq!(
            ask(&f, "counters --nonzero worker0"),
            "worker0.rx_packets   12\nworker0.accepted_new 2\n"
        );
        assert_eq!(ask(&f, "counters blocked --nonzero"), "");
        assert_eq!(
            ask(&f, "counters dorp"),
            "error: no counter name contains `dorp`\n"
        );
    }

    #[test]
    fn conns_table_is_aligned_sorted_and_counted() {
        let f = fake();
        let mut udp = conn(0, UDP, "198.18.1.2", 5353, "198.18.2.2", 5353);
        udp.state = "UDP_REPLIED";
        udp.rule = u16::MAX;
        udp.flags = 0;
        let mut ping = conn(0, ICMP, "198.18.1.2", 77, "198.18.2.2", 77);
        ping.state = "ICMP_REPLIED";
        ping.flags = flag::SYNC | flag::LOG;
        let list = vec![
            conn(1, TCP, "198.18.1.2", 40000, "198.18.2.2", 80),
            udp,
            ping,
        ];
        let json: serde_json::Value =
            serde_json::from_str(&conns_json(&list, 10, &f.names)).unwrap();
        assert_eq!(json["count"], 3);
        assert_eq!(json["connections"][1]["sync"], "no:rule");
        assert_eq!(json["connections"][1]["rule"], serde_json::Value::Null);
        assert_eq!(
            json["connections"][2]["flags"],
            serde_json::json!(["sync", "log", "id=77"])
        );
        let text = conns(list, 10, &f.names);
        let want = "\
W  PROTO  SOURCE                DESTINATION      STATE         RULE  IN     OUT    AGE  EXPIRES  SYNC     FLAGS
0  icmp   198.18.1.2        ->  198.18.2.2       ICMP_REPLIED  0     data0  data1  3s   431997s  live     sync,log,id=77
0  udp    198.18.1.2:5353   ->  198.18.2.2:5353  UDP_REPLIED   -     data0  data1  3s   431997s  no:rule  -
1  tcp    198.18.1.2:40000  ->  198.18.2.2:80    ESTABLISHED   0     data0  data1  3s   431997s  live     sync
3 connection(s)
";
        assert_eq!(text, want, "{text}");
        assert_eq!(
            immediate(&super::super::request::parse("conns").unwrap(), &f),
            None
        );
    }

    #[test]
    fn conns_says_when_a_worker_hit_the_limit() {
        let f = fake();
        let list = vec![
            conn(0, TCP, "198.18.1.2", 40000, "198.18.2.2", 80),
            conn(0, TCP, "198.18.1.2", 40001, "198.18.2.2", 80),
            conn(1, TCP, "198.18.1.2", 40002, "198.18.2.2", 80),
        ];
        let text = conns(list, 2, &f.names);
        assert!(
            text.ends_with("3 connection(s)\nlimit 2 per worker reached on worker(s) 0: there may be more (conns limit N)\n"),
            "{text}"
        );
        let text = conns(Vec::new(), 2, &f.names);
        assert_eq!(text.lines().last(), Some("0 connection(s)"), "{text}");
    }

    #[test]
    fn rules_are_listed_with_interface_names() {
        let mut f = fake();
        let text = ask(&f, "rules");
        let rev = f.rules.as_ref().unwrap().revision();
        assert_eq!(
            text,
            format!("rules {rev}: 1 rule, default block\n    0 pass in on data0 proto tcp to any port 80 label \"web\"\n")
        );
        f.rules = None;
        assert_eq!(
            ask(&f, "rules"),
            "no rules: the unit routes without filtering (it was started without --rules)\n"
        );
    }

    #[test]
    fn help_is_the_command_list() {
        assert_eq!(ask(&fake(), "help"), HELP);
    }
}
