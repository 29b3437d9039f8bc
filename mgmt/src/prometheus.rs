//! The counters in Prometheus' text exposition format (version 0.0.4), for
//! node_exporter's textfile collector (`tandemd --prometheus-file`).
//!
//! The counters file names a value by a dotted path whose segments mix what
//! is counted with which worker, port or link counted it
//! (`worker1.drop.no_route`). Prometheus wants one metric family per thing
//! counted, with the "which" as labels, so that `sum by (reason)` or a
//! per-worker graph needs no regular expression. [`render`] does that
//! translation, from the name alone:
//!
//! | counters file | metric (a counter's then ends `_total`) | labels |
//! | --- | --- | --- |
//! | `workerN.drop.REASON` | `tandem_worker_drops_total` | `worker="N"`, `reason` |
//! | `workerN.NAME` | `tandem_worker_NAME` | `worker="N"` |
//! | `port.PORT.NAME` | `tandem_port_NAME` | `port` |
//! | `sync.drop.REASON` | `tandem_sync_drops_total` | `reason` |
//! | `sync.linkN.drop.REASON` | `tandem_sync_link_drops_total` | `link="N"`, `reason` |
//! | `sync.linkN.NAME` | `tandem_sync_link_NAME` | `link="N"` |
//! | `sync.NAME` | `tandem_sync_NAME` | |
//! | `ha.PORT.REASON` (an HA link's [drop reason](crate::ha_link::DropReason)) | `tandem_ha_link_drops_total` | `port`, `reason` |
//! | `ha.PORT.NAME` | `tandem_ha_link_NAME` | `port` |
//! | `ha.NAME` | `tandem_ha_NAME` | |
//! | `control.NAME`, `log.NAME`, `main.NAME` | `tandem_control_NAME`, ... | |
//! | anything else | `tandem_` and the name, `.` and every other character not allowed made `_`, typed `untyped` | |
//!
//! `N` is the index as written (`worker="0"`, `link="1"`: the link's place in
//! the configuration's `ha.links`); `PORT` is the profile's port name
//! (`port="data0"`, `port="ha0"`), the same label for data and HA ports.
//! Every sample also carries `serial="..."` when the unit has a serial (the
//! configuration's `ha.serial`), so the two units of a pair stay apart
//! wherever their metrics meet.
//!
//! `NAME` is typed by what the counter's doc comment says it is: a gauge (a
//! value that goes up and down: [`GAUGES`], and every `*_now`) keeps its
//! name; anything else only grows and is a counter, named with `_total`.
//! Units go to Prometheus' base units, in the name: `_ms` becomes
//! `_seconds` and `_percent` becomes `_ratio` (0 to 1), their values scaled
//! to match; `_bytes` stays. A name of no known shape is still exported,
//! typed `untyped`: a new counter shows up before this table learns it.
//!
//! Families come in the order of their first counter, each with its
//! `# HELP` (the counters file's name, where the counter is documented) and
//! `# TYPE` once, its samples together. Should two counters come out as the
//! same sample (only names of no known shape can: `new.one` and `new_one`),
//! the first is kept: node_exporter would refuse the whole file otherwise.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// What every sample of the unit is labelled with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitLabels {
    /// The unit's serial, as `serial="..."` (`None`: no `ha` section, no
    /// label).
    pub serial: Option<String>,
}

/// Writes `counters` to `path` in the exposition format, atomically (see
/// [`crate::atomic_file`]): the collector never reads half a file, and
/// ignores the `<path>.tmp` it is written through, which does not end `.prom`.
pub fn write(path: &Path, counters: &[(String, u64)], unit: &UnitLabels) -> std::io::Result<()> {
    crate::atomic_file::write(path, render(counters, unit).as_bytes())
}

/// One segment of a counter name's shape.
#[derive(Debug, Clone, Copy)]
enum Seg {
    /// This text.
    Lit(&'static str),
    /// This text then a decimal index, the index taken as this label.
    Indexed(&'static str, &'static str),
    /// Any text, taken as this label.
    Label(&'static str),
    /// An HA link's drop reason, taken as `reason`.
    HaLinkReason,
    /// The counter's own name, which ends the metric's.
    Name,
}

/// A shape of counter name, and the metric family it becomes.
struct Shape {
    segs: &'static [Seg],
    /// The family, after `tandem_`; `_NAME` follows when `segs` has [`Seg::Name`].
    family: &'static str,
}

use Seg::{HaLinkReason, Indexed, Label, Lit, Name};

/// The module docs' table; the first that fits a name is taken.
const SHAPES: &[Shape] = &[
    Shape {
        segs: &[Indexed("worker", "worker"), Lit("drop"), Label("reason")],
        family: "worker_drops",
    },
    Shape {
        segs: &[Indexed("worker", "worker"), Name],
        family: "worker",
    },
    Shape {
        segs: &[Lit("port"), Label("port"), Name],
        family: "port",
    },
    Shape {
        segs: &[Lit("sync"), Lit("drop"), Label("reason")],
        family: "sync_drops",
    },
    Shape {
        segs: &[
            Lit("sync"),
            Indexed("link", "link"),
            Lit("drop"),
            Label("reason"),
        ],
        family: "sync_link_drops",
    },
    Shape {
        segs: &[Lit("sync"), Indexed("link", "link"), Name],
        family: "sync_link",
    },
    Shape {
        segs: &[Lit("sync"), Name],
        family: "sync",
    },
    Shape {
        segs: &[Lit("ha"), Label("port"), HaLinkReason],
        family: "ha_link_drops",
    },
    Shape {
        segs: &[Lit("ha"), Label("port"), Name],
        family: "ha_link",
    },
    Shape {
        segs: &[Lit("ha"), Name],
        family: "ha",
    },
    Shape {
        segs: &[Lit("control"), Name],
        family: "control",
    },
    Shape {
        segs: &[Lit("log"), Name],
        family: "log",
    },
    Shape {
        segs: &[Lit("main"), Name],
        family: "main",
    },
];

/// The values of a known shape that go up and down, as (family, `NAME`),
/// from their doc comments; `*_now` are gauges too. Everything else of a
/// known shape only grows (or starts again with the unit).
pub const GAUGES: &[(&str, &str)] = &[
    // Entries in the worker's table, and waiting to be sent again, now.
    ("worker", "conn_active"),
    ("worker", "resend_pending"),
    ("worker", "deletes_pending"),
    // Queue depths, the key's age, and yes/no states of synchronisation.
    ("sync", "unacked"),
    ("sync", "staged"),
    ("sync", "key_age_ms"),
    ("sync", "peer_known"),
    ("sync", "in_sync"),
    // A link's state, one yes/no each.
    ("sync_link", "up"),
    ("sync_link", "hearing"),
    ("sync_link", "heard"),
    // The role, the quality factor, the force (0 none, 1 active, 2 passive).
    ("ha", "active"),
    ("ha", "live"),
    ("ha", "quality_percent"),
    ("ha", "forced"),
    ("ha", "partner_present"),
];

/// A metric type of the exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// What one counter becomes.
#[derive(Debug)]
struct Metric<'a> {
    /// The family's (and the sample's) name.
    name: String,
    kind: Kind,
    help: String,
    labels: Vec<(&'static str, &'a str)>,
    /// The counter's value is divided by this (a unit made a base unit).
    scale: u64,
}

/// The metric the counter `name` becomes (see the module docs).
fn classify(name: &str) -> Metric<'_> {
    let parts: Vec<&str> = name.split('.').collect();
    SHAPES
        .iter()
        .find_map(|shape| fit(shape, &parts))
        .unwrap_or_else(|| Metric {
            name: format!("tandem_{}", sanitise(name)),
            kind: Kind::Untyped,
            help: format!("{name} in tandemd's counters file (no known shape)."),
            labels: Vec::new(),
            scale: 1,
        })
}

/// `parts` as the metric of `shape`, if they have that shape.
fn fit<'a>(shape: &Shape, parts: &[&'a str]) -> Option<Metric<'a>> {
    if parts.len() != shape.segs.len() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut labels = Vec::new();
    let mut own = None;
    let mut pattern = Vec::new();
    for (seg, &part) in shape.segs.iter().zip(parts) {
        match *seg {
            Lit(text) if part == text => pattern.push(text.to_string()),
            Indexed(text, label) => {
                let index = part.strip_prefix(text)?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                labels.push((label, index));
                pattern.push(format!("{text}N"));
            }
            Label(label) => {
                labels.push((label, part));
                pattern.push(label.to_ascii_uppercase());
            }
            HaLinkReason => {
                crate::ha_link::DropReason::ALL
                    .iter()
                    .find(|r| r.name() == part)?;
                labels.push(("reason", part));
                pattern.push("REASON".into());
            }
            Name => {
                own = Some(part);
                pattern.push(part.to_string());
            }
            Lit(_) => return None,
        }
    }
    let mut name = format!("tandem_{}", shape.family);
    let (mut kind, mut scale, mut unit) = (Kind::Counter, 1, "");
    if let Some(own) = own {
        if own.ends_with("_now") || GAUGES.contains(&(shape.family, own)) {
            kind = Kind::Gauge;
        }
        let (stem, suffix) = if let Some(stem) = own.strip_suffix("_ms") {
            (scale, unit) = (1000, ", in seconds");
            (stem, "_seconds")
        } else if let Some(stem) = own.strip_suffix("_percent") {
            (scale, unit) = (100, ", as a ratio (0 to 1)");
            (stem, "_ratio")
        } else {
            (own, "")
        };
        let _ = write!(name, "_{}{suffix}", sanitise(stem));
    }
    if kind == Kind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    Some(Metric {
        name,
        kind,
        help: format!("{} in tandemd's counters file{unit}.", pattern.join(".")),
        labels,
        scale,
    })
}

/// `text` as part of a metric name: lower case, `_` for whatever a name
/// cannot hold (`.` first of all).
fn sanitise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `value / scale` as the exposition format writes a number, exactly: no
/// float rounds it on the way.
fn number(value: u64, scale: u64) -> String {
    let (whole, part) = (value / scale, value % scale);
    if part == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let frac = format!("{part:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A label value as the format quotes it: `\`, `"` and the newline escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A `# HELP` text as the format wants it: `\` and the newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// One family being gathered.
struct Family {
    name: String,
    kind: Kind,
    help: String,
    samples: String,
}

/// `counters` in the exposition format, every sample labelled with `unit`'s
/// labels (see the module docs for the names).
pub fn render(counters: &[(String, u64)], unit: &UnitLabels) -> String {
    let mut families: Vec<Family> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut series: HashSet<String> = HashSet::new();
    for (counter, value) in counters {
        let metric = classify(counter);
        let mut labels: Vec<(&str, &str)> = Vec::new();
        if let Some(serial) = &unit.serial {
            labels.push(("serial", serial));
        }
        labels.extend(&metric.labels);
        let mut sample = metric.name.clone();
        if !labels.is_empty() {
            let inside: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(sample, "{{{}}}", inside.join(","));
        }
        if !series.insert(sample.clone()) {
            continue;
        }
        let at = *by_name.entry(metric.name.clone()).or_insert_with(|| {
            families.push(Family {
                name: metric.name.clone(),
                kind: metric.kind,
                help: metric.help.clone(),
                samples: String::new(),
            });
            families.len() - 1
        });
        let _ = writeln!(
            families[at].samples,
            "{sample} {}",
            number(*value, metric.scale)
        );
    }
    let mut text = String::new();
    for f in &families {
        let _ = writeln!(text, "# HELP {} {}", f.name, escape_help(&f.help));
        let _ = writeln!(text, "# TYPE {} {}", f.name, f.kind.name());
        text.push_str(&f.samples);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    fn serial(s: &str) -> UnitLabels {
        UnitLabels {
            serial: Some(s.into()),
        }
    }

    #[test]
    fn a_units_counters_come_out_exactly_so() {
        let list = counters(&[
            ("worker0.rx_packets", 12),
            ("worker0.conn_active", 3),
            ("worker0.drop.no_route", 2),
            ("worker1.rx_packets", 5),
            ("worker1.conn_active", 0),
            ("worker1.drop.no_route", 0),
            ("worker1.drop.ttl_expired", 1),
            ("port.data0.ipackets", 17),
            ("sync.key_age_ms", 1500),
            ("sync.link0.up", 1),
            ("ha.active", 1),
            ("ha.quality_percent", 87),
        ]);
        assert_eq!(
            render(&list, &serial("TNDM-A")),
            "\
# HELP tandem_worker_rx_packets_total workerN.rx_packets in tandemd's counters file.
# TYPE tandem_worker_rx_packets_total counter
tandem_worker_rx_packets_total{serial=\"TNDM-A\",worker=\"0\"} 12
tandem_worker_rx_packets_total{serial=\"TNDM-A\",worker=\"1\"} 5
# HELP tandem_worker_conn_active workerN.conn_active in tandemd's counters file.
# TYPE tandem_worker_conn_active gauge
tandem_worker_conn_active{serial=\"TNDM-A\",worker=\"0\"} 3
tandem_worker_conn_active{serial=\"TNDM-A\",worker=\"1\"} 0
# HELP tandem_worker_drops_total workerN.drop.REASON in tandemd's counters file.
# TYPE tandem_worker_drops_total counter
tandem_worker_drops_total{serial=\"TNDM-A\",worker=\"0\",reason=\"no_route\"} 2
tandem_worker_drops_total{serial=\"TNDM-A\",worker=\"1\",reason=\"no_route\"} 0
tandem_worker_drops_total{serial=\"TNDM-A\",worker=\"1\",reason=\"ttl_expired\"} 1
# HELP tandem_port_ipackets_total port.PORT.ipackets in tandemd's counters file.
# TYPE tandem_port_ipackets_total counter
tandem_port_ipackets_total{serial=\"TNDM-A\",port=\"data0\"} 17
# HELP tandem_sync_key_age_seconds sync.key_age_ms in tandemd's counters file, in seconds.
# TYPE tandem_sync_key_age_seconds gauge
tandem_sync_key_age_seconds{serial=\"TNDM-A\"} 1.5
# HELP tandem_sync_link_up sync.linkN.up in tandemd's counters file.
# TYPE tandem_sync_link_up gauge
tandem_sync_link_up{serial=\"TNDM-A\",link=\"0\"} 1
# HELP tandem_ha_active ha.active in tandemd's counters file.
# TYPE tandem_ha_active gauge
tandem_ha_active{serial=\"TNDM-A\"} 1
# HELP tandem_ha_quality_ratio ha.quality_percent in tandemd's counters file, as a ratio (0 to 1).
# TYPE tandem_ha_quality_ratio gauge
tandem_ha_quality_ratio{serial=\"TNDM-A\"} 0.87
"
        );
    }

    #[test]
    fn without_a_serial_a_sample_without_labels_has_no_braces() {
        let text = render(&counters(&[("ha.active", 0)]), &UnitLabels::default());
        assert!(text.ends_with("\ntandem_ha_active 0\n"), "{text}");
    }

    /// One name of every shape, and the sample it becomes (no serial).
    #[test]
    fn every_shape_has_its_family_and_labels() {
        // The counter, its type, its sample.
        let cases = r#"
            worker3.drop.tcp_bad_flags  counter  tandem_worker_drops_total{worker="3",reason="tcp_bad_flags"}
            worker12.rx_bytes           counter  tandem_worker_rx_bytes_total{worker="12"}
            worker0.resend_pending      gauge    tandem_worker_resend_pending{worker="0"}
            port.data1.rx_nombuf        counter  tandem_port_rx_nombuf_total{port="data1"}
            sync.drop.forged            counter  tandem_sync_drops_total{reason="forged"}
            sync.link1.drop.replayed    counter  tandem_sync_link_drops_total{link="1",reason="replayed"}
            sync.link1.datagrams_sent   counter  tandem_sync_link_datagrams_sent_total{link="1"}
            sync.link0.hearing          gauge    tandem_sync_link_hearing{link="0"}
            sync.inserts_sent           counter  tandem_sync_inserts_sent_total
            sync.unacked                gauge    tandem_sync_unacked
            ha.ha0.bad_ttl              counter  tandem_ha_link_drops_total{port="ha0",reason="bad_ttl"}
            ha.ha1.rx_frames            counter  tandem_ha_link_rx_frames_total{port="ha1"}
            ha.role_changes             counter  tandem_ha_role_changes_total
            ha.forced                   gauge    tandem_ha_forced
            control.clients_now         gauge    tandem_control_clients_now
            control.requests_answered   counter  tandem_control_requests_answered_total
            log.lines_dropped           counter  tandem_log_lines_dropped_total
            main.events_drained         counter  tandem_main_events_drained_total
            health.Disk-Errors          untyped  tandem_health_disk_errors
            worker.rx_packets           untyped  tandem_worker_rx_packets
            workerx1.rx_packets         untyped  tandem_workerx1_rx_packets
            sync.link0.drop.a.b         untyped  tandem_sync_link0_drop_a_b
            ha..active                  untyped  tandem_ha__active
            uptime                      untyped  tandem_uptime
        "#;
        // The last six have no known shape: an unknown subsystem, a worker
        // without its index or with more than one, a segment too many, an
        // empty one, a single one.
        for case in cases.trim().lines() {
            let [counter, kind, sample] = case.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("{case}");
            };
            let text = render(&counters(&[(counter, 7)]), &UnitLabels::default());
            let family = sample.split('{').next().unwrap();
            let want = format!("# TYPE {family} {kind}\n{sample} 7\n");
            assert!(text.ends_with(&want), "{counter}:\n{text}");
        }
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let list = counters(&[("port.a\"b\\c\nd.ipackets", 1), ("odd\\name", 2)]);
        let text = render(&list, &serial("S\"1\\"));
        assert!(
            text.contains(
                "tandem_port_ipackets_total{serial=\"S\\\"1\\\\\",port=\"a\\\"b\\\\c\\nd\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP tandem_odd_name odd\\\\name in tandemd's counters file"),
            "{text}"
        );
        assert_eq!(
            text.lines().count(),
            6,
            "one line each, none broken:\n{text}"
        );
    }

    #[test]
    fn units_become_base_units_exactly() {
        assert_eq!(number(0, 1000), "0");
        assert_eq!(number(1, 1000), "0.001");
        assert_eq!(number(1500, 1000), "1.5");
        assert_eq!(number(120_000, 1000), "120");
        assert_eq!(number(100, 100), "1");
        assert_eq!(number(5, 100), "0.05");
        assert_eq!(number(u64::MAX, 1), u64::MAX.to_string());
    }

    #[test]
    fn help_and_type_come_once_per_family_and_series_once() {
        let mut list = Vec::new();
        for w in 0..4 {
            for (n, v) in dataplane::counters::WorkerCounters::default().snapshot() {
                list.push((format!("worker{w}.{n}"), v));
            }
        }
        // Two names of no known shape that come out as the same sample.
        list.extend(counters(&[("new.one", 1), ("new_one", 2)]));
        let text = render(&list, &serial("TNDM-A"));
        let mut seen = HashSet::new();
        for line in text.lines().filter(|l| l.starts_with('#')) {
            assert!(seen.insert(line), "twice: {line}");
        }
        assert!(
            text.ends_with("tandem_new_one{serial=\"TNDM-A\"} 1\n"),
            "the first kept"
        );
        check_exposition(&text).unwrap();
    }

    /// The workers' gauges named here exist under those names (the other
    /// sources' lists need a running engine or election).
    #[test]
    fn the_gauges_named_exist() {
        let worker: Vec<String> = dataplane::counters::WorkerCounters::default()
            .snapshot()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for (family, name) in GAUGES.iter().filter(|(f, _)| *f == "worker") {
            assert!(worker.iter().any(|n| n == name), "{family}.{name}");
        }
    }

    /// Every counter a unit of a pair has (its sources' own lists where they
    /// can be had without a running unit) is of a known shape, and the whole
    /// is valid exposition format.
    #[test]
    fn a_pair_units_whole_list_is_of_known_shapes_and_valid() {
        let mut list = Vec::new();
        for w in 0..2 {
            for (n, v) in dataplane::counters::WorkerCounters::default().snapshot() {
                list.push((format!("worker{w}.{n}"), v));
            }
        }
        for port in ["data0", "data1"] {
            for n in [
                "ipackets",
                "opackets",
                "imissed",
                "ierrors",
                "oerrors",
                "rx_nombuf",
            ] {
                list.push((format!("port.{port}.{n}"), 1));
            }
        }
        crate::ha_link::HaLinkStats::default().counters("ha0", &mut list);
        crate::control::ControlStats::default().snapshot(&mut list);
        for n in [
            "inserts_sent",
            "retransmitted",
            "unacked",
            "staged",
            "key_age_ms",
            "in_sync",
        ] {
            list.push((format!("sync.{n}"), 2));
        }
        for n in syncd::session::Drop::NAMES {
            list.push((format!("sync.drop.{n}"), 0));
            list.push((format!("sync.link1.drop.{n}"), 0));
        }
        for n in ["up", "hearing", "heard", "datagrams_sent", "bytes_received"] {
            list.push((format!("sync.link1.{n}"), 1));
        }
        for n in [
            "active",
            "live",
            "role_changes",
            "quality_percent",
            "forced",
            "partner_present",
        ] {
            list.push((format!("ha.{n}"), 1));
        }
        list.extend(counters(&[
            ("log.lines_dropped", 0),
            ("main.events_drained", 9),
        ]));
        let text = render(&list, &serial("TNDM-LAB-A"));
        assert!(!text.contains(" untyped\n"), "{text}");
        check_exposition(&text).unwrap();
    }

    #[test]
    fn the_checker_refuses_what_the_format_does_not_allow() {
        for bad in [
            "tandem_x 1\ntandem_y 2\ntandem_x 3\n",
            "# TYPE tandem_x counter\n# TYPE tandem_x counter\ntandem_x 1\n",
            "# HELP tandem_x a\n# HELP tandem_x a\ntandem_x 1\n",
            "tandem_x 1\n# TYPE tandem_x counter\n",
            "tandem_x{a=\"1\"} 1\ntandem_x{a=\"1\"} 2\n",
            "tandem_x{a=\"\\q\"} 1\n",
            "# HELP tandem_x a \\q\n",
            "tandem_x{a=\"b} 1\n",
            "tandem_x{a=b} 1\n",
            "tandem_x{1a=\"b\"} 1\n",
            "tandem.x 1\n",
            "tandem_x one\n",
            "tandem_x\n",
            "# TYPE tandem_x countr\n",
            "tandem_x 1",
        ] {
            assert!(check_exposition(bad).is_err(), "{bad:?}");
        }
        check_exposition(
            "# HELP tandem_x a \\\\ b\\n\n# TYPE tandem_x gauge\ntandem_x{a=\"\\\"\",b=\"\"} 1.5\ntandem_x{a=\"c\",} 2\n",
        )
        .unwrap();
    }

    fn is_name(s: &str, colon: bool) -> bool {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
        s.chars()
            .next()
            .is_some_and(|c| ok(c) && !c.is_ascii_digit())
            && s.chars().all(ok)
    }

    /// A sample's labels, unescaped.
    type Labels = Vec<(String, String)>;

    /// `{name="value",...}` at the start of `s`, and what follows.
    fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
        let mut rest = &s[1..];
        let mut labels = Vec::new();
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                return Ok((labels, after));
            }
            let eq = rest.find('=').ok_or("no '='")?;
            let name = &rest[..eq];
            if !is_name(name, false) {
                return Err(format!("bad label name {name:?}"));
            }
            rest = rest[eq + 1..].strip_prefix('"').ok_or("unquoted value")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().ok_or("unclosed value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape".into()),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((name.to_string(), value));
            rest = &rest[end + 1..];
            // The format allows a comma after the last label.
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("bad label list".into());
            }
        }
    }

    /// A strict reader of the text format, version 0.0.4
    /// (prometheus.io/docs/instrumenting/exposition_formats), written from
    /// the format's description rather than from [`render`]: every line a
    /// `# HELP`, a `# TYPE` or a sample, the last one ended too; names and
    /// label names of the allowed characters; label values quoted, with
    /// only `\\`, `\"` and `\n` escaped (HELP: `\\` and `\n`); a value a
    /// number; a family's HELP and TYPE at most once, before its samples,
    /// its lines together; no series twice. Where it is stricter than the
    /// format (no spaces between tokens) it only refuses more.
    fn check_exposition(text: &str) -> Result<(), String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("no line feed after the last line".into());
        }
        let mut finished: HashSet<String> = HashSet::new();
        let mut current = String::new();
        let (mut help, mut typed, mut sampled) = (HashSet::new(), HashSet::new(), HashSet::new());
        let mut series: HashSet<String> = HashSet::new();
        for line in text.lines() {
            let fail = |why: &str| format!("{why}: {line:?}");
            let family;
            if let Some(rest) = line.strip_prefix("# ") {
                let mut words = rest.splitn(3, ' ');
                let (keyword, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let tail = words.next().unwrap_or("");
                match keyword {
                    "HELP" => {
                        let mut chars = tail.chars();
                        while let Some(c) = chars.next() {
                            if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                                return Err(fail("bad escape"));
                            }
                        }
                        if !help.insert(name.to_string()) {
                            return Err(fail("HELP twice"));
                        }
                    }
                    "TYPE" => {
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail)
                        {
                            return Err(fail("bad type"));
                        }
                        if sampled.contains(name) || !typed.insert(name.to_string()) {
                            return Err(fail("TYPE twice or after a sample"));
                        }
                    }
                    _ => continue,
                }
                if !is_name(name, true) {
                    return Err(fail("bad name"));
                }
                family = name;
            } else if line.starts_with('#') {
                continue;
            } else {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                let name = &line[..end];
                if !is_name(name, true) {
                    return Err(fail("bad name"));
                }
                let (mut labels, rest) = if line[end..].starts_with('{') {
                    parse_labels(&line[end..]).map_err(|why| fail(&why))?
                } else {
                    (Vec::new(), &line[end..])
                };
                let Some(value) = rest.strip_prefix(' ') else {
                    return Err(fail("no value"));
                };
                let number = value.split(' ').next().unwrap_or("");
                if number.parse::<f64>().is_err() {
                    return Err(fail("bad value"));
                }
                labels.sort();
                if !series.insert(format!("{name}{labels:?}")) {
                    return Err(fail("series twice"));
                }
                sampled.insert(name.to_string());
                family = name;
            }
            if family != current {
                if !finished.insert(family.to_string()) {
                    return Err(fail("family not together"));
                }
                current = family.to_string();
            }
        }
        Ok(())
    }
}
