//! A unit's connection table as `tandemctl conns` lists it, parsed, and the
//! comparison of an active unit's table with its passive partner's.
//!
//! The listing is one header line, one row per connection
//! (`W PROTO SOURCE -> DESTINATION STATE RULE IN OUT AGE EXPIRES SYNC FLAGS`), and
//! `N connection(s)`; a last line says when a worker had more connections
//! than the `limit` asked for, which [`parse`] refuses (a table cut short
//! cannot be compared).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

/// What names a connection: its protocol and both ends, as listed
/// (`198.18.1.2:40000`; ICMP ends have no port, an echo's identifier is
/// listed among the flags as `id=N` and is part of the key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnKey {
    /// `tcp`, `udp`, `icmp`, ...
    pub proto: String,
    /// The end that opened it.
    pub src: String,
    /// The other end.
    pub dst: String,
    /// An ICMP echo's identifier.
    pub icmp_id: Option<u16>,
}

impl ConnKey {
    /// A key from its parts (no ICMP identifier).
    pub fn new(proto: &str, src: &str, dst: &str) -> ConnKey {
        ConnKey {
            proto: proto.to_string(),
            src: src.to_string(),
            dst: dst.to_string(),
            icmp_id: None,
        }
    }
}

impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.proto, self.src, self.dst)?;
        match self.icmp_id {
            Some(id) => write!(f, " id {id}"),
            None => Ok(()),
        }
    }
}

/// One row of `tandemctl conns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The worker holding it.
    pub worker: usize,
    /// Protocol and ends.
    pub key: ConnKey,
    /// `ESTABLISHED`, `UDP_REPLIED`, ...
    pub state: String,
    /// The rule that let it in (`None`: the default, listed `-`).
    pub rule: Option<u16>,
    /// The interface it came in by.
    pub in_iface: String,
    /// The interface it leaves by.
    pub out_iface: String,
    /// Its synchronisation: `live`, `larval`, `no:rule`, `no:young`.
    pub sync: String,
    /// Its flags: `sync`, `resend`, `log`, `larval`, `sync-later`, `id=N`.
    pub flags: Vec<String>,
}

impl Entry {
    /// Held larval: received from the partner, not forwarding.
    pub fn larval(&self) -> bool {
        self.has_flag("larval")
    }

    /// Told to the partner (its rule syncs).
    pub fn synced(&self) -> bool {
        self.has_flag("sync")
    }

    /// Whether it has this flag.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {}  rule {}  {} -> {}  [{}]  (worker {})",
            self.key,
            self.state,
            self.rule.map_or("-".to_string(), |r| r.to_string()),
            self.in_iface,
            self.out_iface,
            self.flags.join(","),
            self.worker
        )
    }
}

/// Parses a `tandemctl conns` answer. A row that does not have the listed
/// shape, a count that disagrees with the rows, or a table cut short by its
/// limit is an error showing the text.
pub fn parse(text: &str) -> Result<Vec<Entry>> {
    let bad = |why: String| Error::Lab(format!("`tandemctl conns`: {why}\n{text}"));
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.split_whitespace().next() == Some("W") => {}
        other => return Err(bad(format!("no header line (first line {other:?})"))),
    }
    let mut entries = Vec::new();
    let mut count = None;
    for line in lines {
        if let Some(n) = line.strip_suffix(" connection(s)") {
            count = Some(
                n.trim()
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad count line {line:?}")))?,
            );
            continue;
        }
        if line.starts_with("limit ") {
            return Err(bad("the listing was cut short by its limit".to_string()));
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() != 13 || w[3] != "->" {
            return Err(bad(format!("a row of another shape: {line:?}")));
        }
        let flags: Vec<String> = match w[12] {
            "-" => Vec::new(),
            f => f.split(',').map(str::to_string).collect(),
        };
        let mut key = ConnKey::new(w[1], w[2], w[4]);
        key.icmp_id = flags
            .iter()
            .find_map(|f| f.strip_prefix("id=").and_then(|id| id.parse().ok()));
        entries.push(Entry {
            worker: w[0]
                .parse()
                .map_err(|_| bad(format!("bad worker in {line:?}")))?,
            key,
            state: w[5].to_string(),
            rule: match w[6] {
                "-" => None,
                r => Some(
                    r.parse()
                        .map_err(|_| bad(format!("bad rule in {line:?}")))?,
                ),
            },
            in_iface: w[7].to_string(),
            out_iface: w[8].to_string(),
            sync: w[11].to_string(),
            flags,
        });
    }
    match count {
        Some(n) if n == entries.len() => Ok(entries),
        Some(n) => Err(bad(format!(
            "{n} connection(s) said, {} listed",
            entries.len()
        ))),
        None => Err(bad("no `N connection(s)` line".to_string())),
    }
}

/// Entries by key (a key listed twice is kept once, the last).
pub fn by_key(entries: &[Entry]) -> BTreeMap<&ConnKey, &Entry> {
    entries.iter().map(|e| (&e.key, e)).collect()
}

/// How a passive unit's table differs from its active partner's. Empty
/// ([`TableDiff::is_empty`]) when they hold the same connections in the same
/// states (same rule, same interfaces), every one larval on the passive and
/// none on the active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    /// Entries on the active the passive does not hold.
    pub missing: Vec<Entry>,
    /// Entries on the passive the active does not hold.
    pub extra: Vec<Entry>,
    /// Entries both hold, differing: (active's, passive's).
    pub differ: Vec<(Entry, Entry)>,
    /// Entries the active holds larval.
    pub larval_on_active: Vec<Entry>,
    /// Entries the passive holds that are not larval.
    pub live_on_passive: Vec<Entry>,
    /// Connections on each side.
    pub counts: (usize, usize),
}

impl TableDiff {
    /// The tables agree after a takeover: as [`TableDiff::is_empty`], but the
    /// active may hold entries larval — idle connections of the unit that
    /// died, which go live at their first packet.
    pub fn agrees_after_takeover(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.differ.is_empty()
            && self.live_on_passive.is_empty()
    }

    /// The tables agree (see the type's docs).
    pub fn is_empty(&self) -> bool {
        self.agrees_after_takeover() && self.larval_on_active.is_empty()
    }
}

/// Compares `active`'s table with `passive`'s, considering only the entries
/// `keep` selects on both sides (`|_| true` for all; a rule whose connections
/// are not synchronised is left out with it).
pub fn compare(active: &[Entry], passive: &[Entry], keep: impl Fn(&Entry) -> bool) -> TableDiff {
    let a: BTreeMap<_, _> = by_key(active)
        .into_iter()
        .filter(|(_, e)| keep(e))
        .collect();
    let p: BTreeMap<_, _> = by_key(passive)
        .into_iter()
        .filter(|(_, e)| keep(e))
        .collect();
    let same = |x: &Entry, y: &Entry| {
        x.state == y.state
            && x.rule == y.rule
            && x.in_iface == y.in_iface
            && x.out_iface == y.out_iface
    };
    let mut d = TableDiff {
        counts: (a.len(), p.len()),
        ..TableDiff::default()
    };
    for (k, e) in &a {
        match p.get(k) {
            None => d.missing.push((*e).clone()),
            Some(q) if !same(e, q) => d.differ.push(((*e).clone(), (*q).clone())),
            Some(_) => {}
        }
        if e.larval() {
            d.larval_on_active.push((*e).clone());
        }
    }
    for (k, e) in &p {
        if !a.contains_key(k) {
            d.extra.push((*e).clone());
        }
        if !e.larval() {
            d.live_on_passive.push((*e).clone());
        }
    }
    d
}

/// At most this many entries of each kind are shown.
const SHOWN: usize = 10;

impl fmt::Display for TableDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "active holds {}, passive {}",
            self.counts.0, self.counts.1
        )?;
        let list = |f: &mut fmt::Formatter<'_>, what: &str, v: &[Entry]| -> fmt::Result {
            if v.is_empty() {
                return Ok(());
            }
            writeln!(f, "{} {what}:", v.len())?;
            for e in v.iter().take(SHOWN) {
                writeln!(f, "  {e}")?;
            }
            if v.len() > SHOWN {
                writeln!(f, "  ...")?;
            }
            Ok(())
        };
        list(f, "on the active, not on the passive", &self.missing)?;
        list(f, "on the passive, not on the active", &self.extra)?;
        if !self.differ.is_empty() {
            writeln!(f, "{} differing (active / passive):", self.differ.len())?;
            for (a, p) in self.differ.iter().take(SHOWN) {
                writeln!(f, "  {a}\n  {p}")?;
            }
        }
        list(f, "larval on the active", &self.larval_on_active)?;
        list(f, "not larval on the passive", &self.live_on_passive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "\
W  PROTO  SOURCE                DESTINATION      STATE         RULE  IN     OUT    AGE  EXPIRES  SYNC     FLAGS
0  icmp   198.18.1.2        ->  198.18.2.2       ICMP_REPLIED  0     data0  data1  3s   431997s  live     sync,log,id=77
0  udp    198.18.1.2:5353   ->  198.18.2.2:5353  UDP_REPLIED   -     data0  data1  3s   431997s  no:rule  -
1  tcp    198.18.1.2:40000  ->  198.18.2.2:80    ESTABLISHED   0     data0  data1  3s   431997s  live     sync
3 connection(s)
";

    #[test]
    fn parses_a_listing() {
        let e = parse(A).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].key.to_string(), "icmp 198.18.1.2 -> 198.18.2.2 id 77");
        assert_eq!(
            e[2].key,
            ConnKey::new("tcp", "198.18.1.2:40000", "198.18.2.2:80")
        );
        assert_eq!(e[0].flags, ["sync", "log", "id=77"]);
        assert_eq!(
            (e[0].sync.as_str(), e[1].sync.as_str()),
            ("live", "no:rule")
        );
        assert_eq!(e[1].rule, None);
        assert!(e[1].flags.is_empty());
        assert_eq!(e[2].worker, 1);
        assert_eq!(e[2].state, "ESTABLISHED");
        assert!(e[2].synced() && !e[2].larval());
        assert_eq!(
            parse("W  PROTO\n0 connection(s)\n").unwrap(),
            Vec::<Entry>::new()
        );
    }

    #[test]
    fn refuses_a_cut_or_miscounted_listing() {
        let cut = A.replace(
            "3 connection(s)\n",
            "3 connection(s)\nlimit 2 per worker reached on worker(s) 0: there may be more (conns limit N)\n",
        );
        assert!(parse(&cut).unwrap_err().to_string().contains("cut short"));
        let miscounted = A.replace("3 connection(s)", "4 connection(s)");
        assert!(parse(&miscounted).is_err());
        assert!(parse("error: no\n").is_err());
    }

    #[test]
    fn compares_an_active_with_its_passive() {
        let active = parse(A).unwrap();
        let mut passive = active.clone();
        for e in &mut passive {
            e.flags.push("larval".into());
        }
        assert!(compare(&active, &passive, |_| true).is_empty());
        passive[2].state = "SYN_SENT".into();
        passive[1].flags.clear();
        passive.remove(0);
        let d = compare(&active, &passive, |_| true);
        assert_eq!(d.missing.len(), 1);
        assert_eq!(d.differ.len(), 1);
        assert_eq!(d.live_on_passive.len(), 1);
        assert!(!d.is_empty());
        let text = d.to_string();
        assert!(
            text.contains("1 on the active, not on the passive"),
            "{text}"
        );
        let only_tcp = compare(&active, &passive, |e| e.key.proto == "udp");
        assert_eq!(only_tcp.live_on_passive.len(), 1);
        assert!(only_tcp.missing.is_empty() && only_tcp.differ.is_empty());
    }
}
