//! `hainfo`: both members side by side, as HA appliance operators know it
//! (the "Nodes status:" table: the local member first, marked `(local)`).
//! Pure: the member's figures in, text or JSON out.
//!
//! ```text
//! Nodes status:
//!                   TNDM-LAB-A (local)            TNDM-LAB-B
//! Model             lab                           lab
//! Mode              active                        passive
//! ...
//! Main link         198.18.254.1: OK              198.18.254.2: OK
//! Notice: TNDM-LAB-A has configuration changes not yet synchronised (hasync)
//! ```
//!
//! 78 columns: labels 18, each member 30 (longer values are cut with `~`).
//! A partner that cannot be reached is shown with `-` and the reason.
//!
//! # JSON (`hainfo --json`), schema `tandem.hainfo/1`
//!
//! ```json
//! { "schema": "tandem.hainfo/1",
//!   "nodes": [ { "local": true, ...NodeStatus }, { "local": false, ... } ],
//!   "unreachable": null | { "serial": "TNDM-LAB-B", "reason": "..." },
//!   "notice": [ "TNDM-LAB-A" ],           // members with unsynchronised changes
//!   "sync": [ SyncFigures, ... ] }        // with -v only, local first
//! ```
//!
//! `NodeStatus` and `SyncFigures` are [`crate::node`]'s, field for field
//! (times in Unix seconds, quality in hundredths of a percent). Fields are
//! only ever added to this schema; a removal or change of meaning is
//! `tandem.hainfo/2`.

use crate::node::{NodeStatus, SyncFigures, HAINFO_SCHEMA};
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

const LABEL: usize = 18;
const COLUMN: usize = 30;

/// The partner's side of the answer.
pub type PartnerSide<'a, T> = Result<&'a T, (&'a str, &'a str)>;

/// A Unix time as `2026-11-30T16:20:01Z`.
pub fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn cell(v: &str) -> String {
    if v.chars().count() < COLUMN {
        v.to_owned()
    } else {
        let cut: String = v.chars().take(COLUMN - 2).collect();
        format!("{cut}~")
    }
}

fn row(out: &mut String, label: &str, local: &str, remote: &str) {
    let line = format!("{label:<LABEL$}{:<COLUMN$}{}", cell(local), cell(remote));
    let _ = writeln!(out, "{}", line.trim_end());
}

/// Whether the two members' files agree: `yes`, `no`, or `unknown` without
/// the partner's revision.
fn conf_sync(local: &NodeStatus, partner: Option<&NodeStatus>) -> &'static str {
    let theirs = partner.map(|p| p.config.revision.clone()).or_else(|| {
        local
            .ha
            .as_ref()
            .and_then(|h| h.partner_config_revision.clone())
    });
    match theirs {
        Some(r) if r == local.config.revision => "yes",
        Some(_) => "no",
        None => "unknown",
    }
}

/// One member's value of each row, in row order.
fn column(n: &NodeStatus, is_sync: &str) -> Vec<(&'static str, String)> {
    let ha = n.ha.as_ref();
    let link = |i: usize| {
        ha.and_then(|h| h.links.get(i)).map_or_else(
            || "-".to_owned(),
            |l| format!("{}: {}", l.address, if l.ok { "OK" } else { "FAIL" }),
        )
    };
    let link_since = |i: usize| {
        ha.and_then(|h| h.links.get(i))
            .map_or_else(|| "-".to_owned(), |l| time(l.since))
    };
    let c = &n.config;
    vec![
        ("Model", n.model.clone()),
        ("Version", n.version.clone()),
        (
            "Forced",
            ha.and_then(|h| h.forced.clone())
                .unwrap_or_else(|| "no".into()),
        ),
        ("Mode", ha.map_or_else(|| "-".into(), |h| h.mode.clone())),
        (
            "Since",
            ha.map_or_else(|| "-".into(), |h| time(h.mode_since)),
        ),
        (
            "Quality",
            ha.map_or_else(
                || "-".into(),
                |h| format!("{}.{:02} %", h.quality / 100, h.quality % 100),
            ),
        ),
        (
            "Priority",
            ha.map_or_else(|| "-".into(), |h| h.priority.to_string()),
        ),
        (
            "File sync",
            c.last_result.clone().unwrap_or_else(|| "never".into()),
        ),
        ("Is conf sync", is_sync.to_owned()),
        (
            "Last conf sync",
            c.last_sync.map_or_else(|| "never".into(), time),
        ),
        ("Boot", time(n.boot)),
        ("State", ha.map_or_else(|| "-".into(), |h| h.state.clone())),
        ("Syncid", c.sync_id.to_string()),
        ("Main link", link(0)),
        ("Main link since", link_since(0)),
        ("Backup link", link(1)),
        ("Config revision", c.revision.clone()),
    ]
}

/// The members whose files changed since their last configuration sync.
pub fn notice<'a>(local: &'a NodeStatus, partner: Option<&'a NodeStatus>) -> Vec<&'a str> {
    std::iter::once(local)
        .chain(partner)
        .filter(|n| n.config.changed)
        .map(|n| n.serial.as_str())
        .collect()
}

/// The "Nodes status:" table, the notice, and with `sync` the sync figures.
pub fn text(
    local: &NodeStatus,
    partner: PartnerSide<'_, NodeStatus>,
    sync: Option<(&SyncFigures, PartnerSide<'_, SyncFigures>)>,
) -> String {
    let mut out = String::from("Nodes status:\n");
    let remote = partner.ok();
    let is_sync = conf_sync(local, remote);
    let (remote_serial, why) = match partner {
        Ok(p) => (p.serial.as_str(), None),
        Err((serial, why)) => (serial, Some(why)),
    };
    row(
        &mut out,
        "",
        &format!("{} (local)", local.serial),
        remote_serial,
    );
    let theirs = remote.map(|p| column(p, is_sync));
    for (i, (label, value)) in column(local, is_sync).into_iter().enumerate() {
        let r = theirs
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| t[i].1.clone());
        row(&mut out, label, &value, &r);
    }
    if let Some(why) = why {
        let _ = writeln!(out, "{remote_serial}: {why}");
    }
    let changed = notice(local, remote);
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "Notice: {} {} configuration changes not yet synchronised (hasync)",
            changed.join(" and "),
            if changed.len() > 1 { "have" } else { "has" }
        );
    }
    if let Some((ours, theirs)) = sync {
        out.push_str("Sync status:\n");
        sync_rows(&mut out, ours, theirs.ok());
    }
    out
}

fn sync_rows(out: &mut String, a: &SyncFigures, b: Option<&SyncFigures>) {
    let num = |f: Option<&SyncFigures>, get: fn(&SyncFigures) -> u64| {
        f.map_or_else(|| "-".to_owned(), |f| get(f).to_string())
    };
    let word = |f: Option<&SyncFigures>, get: fn(&SyncFigures) -> &str| {
        f.map_or_else(|| "-".to_owned(), |f| get(f).to_owned())
    };
    type Figure = fn(&SyncFigures) -> u64;
    let rows: [(&str, Figure); 5] = [
        ("Records sent", |f| f.records_sent),
        ("Records received", |f| f.records_received),
        ("Retransmitted", |f| f.retransmitted),
        ("Stale", |f| f.stale),
        ("Dropped", |f| f.dropped.values().sum()),
    ];
    for (label, get) in rows {
        row(out, label, &num(Some(a), get), &num(b, get));
    }
    let mut reasons: Vec<&String> = a
        .dropped
        .keys()
        .chain(b.into_iter().flat_map(|b| b.dropped.keys()))
        .collect();
    reasons.sort();
    reasons.dedup();
    for reason in reasons {
        let count = |f: Option<&SyncFigures>| {
            f.map_or_else(
                || "-".to_owned(),
                |f| f.dropped.get(reason).copied().unwrap_or(0).to_string(),
            )
        };
        row(out, &format!("  {reason}"), &count(Some(a)), &count(b));
    }
    row(out, "Bulk", &a.bulk, &word(b, |f| &f.bulk));
    row(out, "Digests", &a.digests, &word(b, |f| &f.digests));
    row(
        out,
        "Queue overflows",
        &a.queue_overflows.to_string(),
        &num(b, |f| f.queue_overflows),
    );
    let age = |f: &SyncFigures| format!("{} s", f.key_age_s);
    row(
        out,
        "Key age",
        &age(a),
        &b.map_or_else(|| "-".to_owned(), age),
    );
}

/// The same answer as JSON (schema in the module docs), one line.
pub fn json(
    local: &NodeStatus,
    partner: PartnerSide<'_, NodeStatus>,
    sync: Option<(&SyncFigures, PartnerSide<'_, SyncFigures>)>,
) -> String {
    let node = |n: &NodeStatus, is_local: bool| {
        let mut v = serde_json::to_value(n).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("local".into(), is_local.into());
        }
        v
    };
    let mut nodes = vec![node(local, true)];
    let mut unreachable = serde_json::Value::Null;
    match partner {
        Ok(p) => nodes.push(node(p, false)),
        Err((serial, reason)) => {
            unreachable = serde_json::json!({"serial": serial, "reason": reason});
        }
    }
    let mut v = serde_json::json!({
        "schema": HAINFO_SCHEMA,
        "nodes": nodes,
        "unreachable": unreachable,
        "notice": notice(local, partner.ok()),
    });
    if let Some((ours, theirs)) = sync {
        let mut all = vec![serde_json::to_value(ours).unwrap_or_default()];
        if let Ok(t) = theirs {
            all.push(serde_json::to_value(t).unwrap_or_default());
        }
        v["sync"] = all.into();
    }
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confsync::FileDigest;
    use crate::node::{ConfigState, HaNode, LinkStatus};

    const T0: u64 = 1_796_054_400; // 2026-11-30T16:00:00Z

    fn node(serial: &str, mode: &str, address: &str, revision: &str) -> NodeStatus {
        NodeStatus {
            serial: serial.into(),
            model: "lab".into(),
            version: "0.1.0".into(),
            boot: T0,
            ha: Some(HaNode {
                mode: mode.into(),
                mode_since: T0 + 2,
                reason: "priority".into(),
                forced: None,
                quality: 10_000,
                priority: 0,
                state: "ready".into(),
                links: vec![
                    LinkStatus {
                        port: "ha0".into(),
                        address: address.into(),
                        ok: true,
                        state: "up".into(),
                        since: T0 + 1,
                    },
                    LinkStatus {
                        port: "ha1".into(),
                        address: "198.18.254.5".into(),
                        ok: false,
                        state: "down".into(),
                        since: T0 + 1,
                    },
                ],
                partner_config_revision: Some("0badcafe".into()),
            }),
            config: ConfigState {
                revision: revision.into(),
                files: vec![FileDigest {
                    name: "rules.ron".into(),
                    bytes: 10,
                    sha256: "ab".into(),
                }],
                changed: false,
                last_sync: None,
                sync_id: 0,
                last_result: None,
            },
        }
    }

    #[test]
    fn two_members_side_by_side_at_78_columns() {
        let mut a = node("TNDM-LAB-A", "active", "198.18.254.1", "0badcafe");
        a.config.changed = true;
        let b = node("TNDM-LAB-B", "passive", "198.18.254.2", "0badcafe");
        let text = text(&a, Ok(&b), None);
        assert_eq!(
            text,
            "\
Nodes status:
                  TNDM-LAB-A (local)            TNDM-LAB-B
Model             lab                           lab
Version           0.1.0                         0.1.0
Forced            no                            no
Mode              active                        passive
Since             2026-11-30T16:00:02Z          2026-11-30T16:00:02Z
Quality           100.00 %                      100.00 %
Priority          0                             0
File sync         never                         never
Is conf sync      yes                           yes
Last conf sync    never                         never
Boot              2026-11-30T16:00:00Z          2026-11-30T16:00:00Z
State             ready                         ready
Syncid            0                             0
Main link         198.18.254.1: OK              198.18.254.2: OK
Main link since   2026-11-30T16:00:01Z          2026-11-30T16:00:01Z
Backup link       198.18.254.5: FAIL            198.18.254.5: FAIL
Config revision   0badcafe                      0badcafe
Notice: TNDM-LAB-A has configuration changes not yet synchronised (hasync)
"
        );
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
    }

    #[test]
    fn an_unreachable_partner_is_dashes_and_the_reason() {
        let a = node("TNDM-LAB-A", "active", "198.18.254.1", "12345678");
        let text = text(
            &a,
            Err(("TNDM-LAB-B", "partner unreachable: no answer in time")),
            None,
        );
        assert!(
            text.contains("Mode              active                        -\n"),
            "{text}"
        );
        assert!(
            text.contains("Is conf sync      no                            -\n"),
            "from the heartbeat's revision: {text}"
        );
        assert!(text.contains("TNDM-LAB-B: partner unreachable: no answer in time\n"));
        let v: serde_json::Value = serde_json::from_str(&json(
            &a,
            Err(("TNDM-LAB-B", "partner unreachable: no answer in time")),
            None,
        ))
        .unwrap();
        assert_eq!(v["schema"], "tandem.hainfo/1");
        assert_eq!(v["nodes"].as_array().unwrap().len(), 1);
        assert_eq!(v["nodes"][0]["local"], true);
        assert_eq!(v["unreachable"]["serial"], "TNDM-LAB-B");
    }

    #[test]
    fn the_sync_figures_show_every_drop_reason_of_either_member() {
        let a = node("A", "active", "x", "1");
        let b = node("B", "passive", "y", "1");
        let fa = SyncFigures {
            serial: "A".into(),
            records_sent: 5,
            bulk: "idle".into(),
            digests: "not compared yet".into(),
            key_age_s: 3,
            ..SyncFigures::default()
        };
        let mut fb = SyncFigures {
            serial: "B".into(),
            records_received: 5,
            bulk: "received 2 s ago".into(),
            digests: "in sync".into(),
            key_age_s: 3,
            ..SyncFigures::default()
        };
        fb.dropped.insert("replayed".into(), 2);
        let text = text(&a, Ok(&b), Some((&fa, Ok(&fb))));
        let sync = text.split("Sync status:\n").nth(1).unwrap();
        assert_eq!(
            sync,
            "\
Records sent      5                             0
Records received  0                             5
Retransmitted     0                             0
Stale             0                             0
Dropped           0                             2
  replayed        0                             2
Bulk              idle                          received 2 s ago
Digests           not compared yet              in sync
Queue overflows   0                             0
Key age           3 s                           3 s
"
        );
    }

    #[test]
    fn a_long_value_is_cut_to_its_column() {
        assert_eq!(cell(&"x".repeat(40)).chars().count(), COLUMN - 1);
        assert_eq!(cell("short"), "short");
    }
}
