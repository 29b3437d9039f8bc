//! `hasync [-v]`: configuration sync from this member to the partner, one
//! table row per step as it happens, in the console's shape:
//!
//! ```text
//! Source       | Step                 | P | Info
//! TNDM-LAB-A   | pre-commands         | + | 1 file(s) valid: rules.ron
//! TNDM-LAB-A   | link evaluation      | + | TNDM-LAB-B reached over HA link ha0
//! TNDM-LAB-A   | link evaluation      | + | differ: rules.ron
//! TNDM-LAB-A   | file                 | + | rules.ron: 310 bytes, sha256 5f1c…, valid on TNDM-LAB-B
//! TNDM-LAB-B   | service reactivation | + | rules.ron: rules applied: 3 rule(s), revision 9
//! TNDM-LAB-B   | service reactivation | + | HA parameters re-read from ...: nothing changed
//! TNDM-LAB-A   | post-commands        | + | configuration sync 4 recorded
//! OK
//! ```
//!
//! `P` is `+` for a step done, `!` for the step that failed; a failure ends
//! the sync with `FAILED: <why>` (and exit status 1), the partner's
//! configuration unchanged: files are staged and validated there, and only
//! the commit puts them in force, all together ([`crate::confsync`]).
//!
//! The console runs the steps, each a request of its own to the local unit
//! (`hasync begin`, `link`, `file T NAME`, `commit T ID`, `post T ID`), so
//! every row is printed the moment its step ends. Each step's answer is a
//! [`StepAnswer`] in JSON. `-v` adds each step's duration; `--json` prints
//! each step's answer as one JSON line instead of the table.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The member where the step ran (its serial).
    pub source: String,
    /// The step.
    pub step: String,
    /// It succeeded.
    pub ok: bool,
    /// What came of it.
    pub info: String,
}

impl Row {
    /// A step done.
    pub fn ok(source: &str, step: &str, info: String) -> Row {
        Row {
            source: source.to_owned(),
            step: step.to_owned(),
            ok: true,
            info,
        }
    }
}

/// A step's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StepAnswer {
    /// `begin`: the transfer's number.
    pub transfer: Option<u64>,
    /// `begin`: the files to send.
    pub files: Vec<String>,
    /// `link`: the configuration sync's number.
    pub sync_id: Option<u64>,
    /// What to show.
    pub rows: Vec<Row>,
}

/// The table's header line.
pub const HEADER: &str = "Source       | Step                 | P | Info";

/// A row as the table shows it.
pub fn row_text(r: &Row) -> String {
    format!(
        "{:<12} | {:<20} | {} | {}",
        r.source,
        r.step,
        if r.ok { '+' } else { '!' },
        r.info
    )
}

/// Runs the steps: `ask(request line)` asks the local unit (its answer, or
/// the error text); `out(line)` prints one line. A failed step's row names
/// the local unit by the serial its first answer gave (`local` before).
/// Returns whether the sync succeeded.
pub fn run(
    ask: &mut dyn FnMut(&str) -> Result<String, String>,
    out: &mut dyn FnMut(&str),
    verbose: bool,
    json: bool,
) -> bool {
    if !json {
        out(HEADER);
    }
    let mut me = "local".to_owned();
    let mut step = |request: &str, name: &str| -> Option<StepAnswer> {
        let started = Instant::now();
        let answer = ask(request).and_then(|text| {
            serde_json::from_str::<StepAnswer>(&text)
                .map_err(|e| format!("the unit's answer to `{request}` did not parse: {e}"))
        });
        let took = started.elapsed().as_millis();
        match answer {
            Ok(a) => {
                if let Some(first) = a.rows.first().filter(|_| name == "pre-commands") {
                    me.clone_from(&first.source);
                }
                if json {
                    out(&serde_json::to_string(&a).unwrap_or_default());
                } else {
                    for r in &a.rows {
                        let mut line = row_text(r);
                        if verbose {
                            line.push_str(&format!(" ({took} ms)"));
                        }
                        out(&line);
                    }
                }
                Some(a)
            }
            Err(why) => {
                let why = why
                    .strip_prefix("error: ")
                    .unwrap_or(&why)
                    .trim_end()
                    .to_owned();
                if json {
                    out(&serde_json::json!({"failed": name, "error": why}).to_string());
                } else {
                    out(&row_text(&Row {
                        source: me.clone(),
                        step: name.to_owned(),
                        ok: false,
                        info: why.clone(),
                    }));
                    out(&format!("FAILED: {why}"));
                }
                None
            }
        }
    };
    let Some(begin) = step("hasync begin", "pre-commands") else {
        return false;
    };
    let transfer = begin.transfer.unwrap_or(0);
    let Some(link) = step("hasync link", "link evaluation") else {
        return false;
    };
    let sync_id = link.sync_id.unwrap_or(1);
    for file in &begin.files {
        if step(&format!("hasync file {transfer} {file}"), "file").is_none() {
            return false;
        }
    }
    if step(
        &format!("hasync commit {transfer} {sync_id}"),
        "service reactivation",
    )
    .is_none()
    {
        return false;
    }
    if step(
        &format!("hasync post {transfer} {sync_id}"),
        "post-commands",
    )
    .is_none()
    {
        return false;
    }
    if !json {
        out("OK");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(a: StepAnswer) -> Result<String, String> {
        Ok(serde_json::to_string(&a).unwrap())
    }

    #[test]
    fn the_steps_run_in_order_and_each_row_is_printed() {
        let mut asked = Vec::new();
        let mut lines = Vec::new();
        let ok = run(
            &mut |req| {
                asked.push(req.to_owned());
                match req {
                    "hasync begin" => answer(StepAnswer {
                        transfer: Some(7),
                        files: vec!["rules.ron".into()],
                        rows: vec![Row::ok("A", "pre-commands", "1 file(s) valid".into())],
                        ..StepAnswer::default()
                    }),
                    "hasync link" => answer(StepAnswer {
                        sync_id: Some(3),
                        ..StepAnswer::default()
                    }),
                    _ => answer(StepAnswer::default()),
                }
            },
            &mut |l| lines.push(l.to_owned()),
            false,
            false,
        );
        assert!(ok);
        assert_eq!(
            asked,
            [
                "hasync begin",
                "hasync link",
                "hasync file 7 rules.ron",
                "hasync commit 7 3",
                "hasync post 7 3"
            ]
        );
        assert_eq!(
            lines,
            [
                HEADER,
                "A            | pre-commands         | + | 1 file(s) valid",
                "OK"
            ]
        );
    }

    #[test]
    fn a_failed_step_ends_the_sync_with_its_reason() {
        let mut lines = Vec::new();
        let ok = run(
            &mut |req| match req {
                "hasync begin" => answer(StepAnswer {
                    transfer: Some(1),
                    files: vec!["rules.ron".into()],
                    rows: vec![Row::ok("A", "pre-commands", "1 file(s) valid".into())],
                    ..StepAnswer::default()
                }),
                "hasync link" => answer(StepAnswer::default()),
                _ => Err("error: rules.ron: refused by B: rules.ron:3:7: bad\n".into()),
            },
            &mut |l| lines.push(l.to_owned()),
            false,
            false,
        );
        assert!(!ok);
        assert_eq!(
            lines[2..],
            [
                "A            | file                 | ! | rules.ron: refused by B: rules.ron:3:7: bad",
                "FAILED: rules.ron: refused by B: rules.ron:3:7: bad"
            ]
        );
    }
}
