//! The supervisor's side of configuration sync ([`crate::confsync`]): the
//! record of the last sync, the steps of `hasync` on the sending member
//! ([`crate::console::hasync`]), and the commit on the receiving one —
//! every staged file validated together, then put in force.

use super::ha::{json, parse};
use super::*;
use crate::confsync::{self, Record, SyncedFile};
use crate::console::hasync::{Row, StepAnswer};
use crate::console::request::SyncStep;
use crate::node::{unix_now, ConfigState, NodeStatus};
use crate::peer::{Ask, PEER_TIMEOUT};

/// How long a file's staging or a commit may take on the partner (a full
/// rules file is 32 MiB); within the control socket's [`COMMAND_TIMEOUT`].
///
/// [`COMMAND_TIMEOUT`]: crate::control::COMMAND_TIMEOUT
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(8);

/// Why a unit has no file to synchronise.
const NO_FILES: &str = "this unit synchronises none (it runs without --rules and --shared)";

impl<U: Managed> State<U> {
    /// Loads the configuration sync record; at the first start the files of
    /// that moment are the reference. Tells the election the revision.
    pub(super) fn with_record(mut self) -> Self {
        if let Some(dir) = &self.settings.state_dir {
            self.record = Record::load(dir);
        }
        if self.record.reference.is_none() {
            self.record.reference = Some(self.revision());
            self.save_record();
        }
        self.files_changed();
        self
    }

    pub(super) fn save_record(&self) {
        if let Some(dir) = &self.settings.state_dir {
            if let Err(e) = self.record.save(dir) {
                tracing::warn!("configuration sync record in {}: {e}", dir.display());
            }
        }
    }

    pub(super) fn files(&self) -> Vec<SyncedFile> {
        let shared = self
            .settings
            .files
            .as_ref()
            .and_then(|f| f.shared.as_deref());
        confsync::files(self.settings.rules_path.as_deref(), shared)
    }

    pub(super) fn revision(&self) -> String {
        confsync::revision(&confsync::digests(&self.files()))
    }

    /// The synchronised files changed (or may have): the heartbeats carry
    /// the new revision.
    pub(super) fn files_changed(&self) {
        if let Some(ha) = &self.settings.ha {
            ha.params
                .set_config_revision(confsync::revision_u32(&self.revision()));
        }
    }

    pub(super) fn config_state(&self) -> ConfigState {
        let files = confsync::digests(&self.files());
        let revision = confsync::revision(&files);
        let r = &self.record;
        ConfigState {
            changed: r.reference.as_deref() != Some(revision.as_str()),
            revision,
            files,
            last_sync: r.last_sync,
            sync_id: r.sync_id,
            last_result: r.last_result.clone(),
        }
    }

    pub(super) fn no_such_file(&self, name: &str) -> String {
        let names: Vec<String> = self.files().into_iter().map(|f| f.name).collect();
        if names.is_empty() {
            format!("no synchronised file `{name}`: {NO_FILES}")
        } else {
            format!(
                "no synchronised file `{name}`; the files: {}",
                names.join(", ")
            )
        }
    }

    /// One step of `hasync` (see [`crate::console::hasync`]).
    pub(super) fn hasync_step(
        &mut self,
        step: SyncStep,
        reply: Sender<Reply>,
    ) -> Option<(Reply, Sender<Reply>)> {
        let me = self.settings.identity.serial.clone();
        let peer = self.peer_serial();
        if self.settings.ha.is_none() {
            return Some((Err(answer::NO_PARTNER.into()), reply));
        }
        match step {
            SyncStep::Begin => {
                let files = self.files();
                if files.is_empty() {
                    return Some((Err(format!("nothing to synchronise: {NO_FILES}")), reply));
                }
                for f in &files {
                    if let Err(e) = self.validate(&f.name, None) {
                        return Some((Err(format!("{e} (fix it here before hasync)")), reply));
                    }
                }
                let names: Vec<String> = files.into_iter().map(|f| f.name).collect();
                let answer = StepAnswer {
                    transfer: Some(transfer_id()),
                    files: names.clone(),
                    rows: vec![Row::ok(
                        &me,
                        "pre-commands",
                        format!("{} file(s) valid: {}", names.len(), names.join(", ")),
                    )],
                    ..StepAnswer::default()
                };
                Some((json(&answer), reply))
            }
            SyncStep::Link => {
                self.ask_partner(
                    vec![Ask::Node],
                    PEER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| {
                        let p: NodeStatus = parse(&got[0])?;
                        let local = s.local_node();
                        let link = local
                            .ha
                            .as_ref()
                            .and_then(|h| h.links.iter().find(|l| l.ok))
                            .map_or_else(
                                || "an HA link".to_owned(),
                                |l| format!("HA link {}", l.port),
                            );
                        let differ = confsync::differing(&local.config.files, &p.config.files);
                        let mut rows = vec![Row::ok(
                            &me,
                            "link evaluation",
                            format!("{} reached over {link}", p.serial),
                        )];
                        rows.push(Row::ok(
                            &me,
                            "link evaluation",
                            if differ.is_empty() {
                                "the files agree already".to_owned()
                            } else {
                                format!(
                                    "differ: {}",
                                    differ
                                        .iter()
                                        .map(|(n, _)| n.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                        ));
                        json(&StepAnswer {
                            sync_id: Some(local.config.sync_id.max(p.config.sync_id) + 1),
                            rows,
                            ..StepAnswer::default()
                        })
                    }),
                );
                None
            }
            SyncStep::File { transfer, name } => {
                let text = match self.read_synced(&name) {
                    Ok(t) => t,
                    Err(e) => return Some((Err(e), reply)),
                };
                let (bytes, sha) = (text.len(), confsync::sha256(text.as_bytes()));
                self.ask_partner(
                    vec![Ask::Stage {
                        transfer,
                        name: name.clone(),
                        text,
                    }],
                    TRANSFER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| match &got[0] {
                        Ok(_) => json(&StepAnswer {
                            rows: vec![Row::ok(
                                &me,
                                "file",
                                format!(
                                    "{name}: {bytes} bytes, sha256 {}…, valid on {peer}",
                                    &sha[..12]
                                ),
                            )],
                            ..StepAnswer::default()
                        }),
                        Err(e) => Err(s.sync_failed(format!("{name}: refused by {peer}: {e}"))),
                    }),
                );
                None
            }
            SyncStep::Commit { transfer, sync_id } => {
                self.ask_partner(
                    vec![Ask::Commit { transfer, sync_id }],
                    TRANSFER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| {
                        let rows: Vec<Row> = match parse(&got[0]) {
                            Ok(rows) => rows,
                            Err(e) => {
                                return Err(
                                    s.sync_failed(format!("service reactivation on {peer}: {e}"))
                                )
                            }
                        };
                        json(&StepAnswer {
                            rows,
                            ..StepAnswer::default()
                        })
                    }),
                );
                None
            }
            SyncStep::Post { sync_id, .. } => {
                self.synced(sync_id);
                tracing::info!(target: crate::election_task::HA_LOG, "configuration sync {sync_id} to {peer}: done");
                let answer = StepAnswer {
                    rows: vec![Row::ok(
                        &me,
                        "post-commands",
                        format!("configuration sync {sync_id} recorded"),
                    )],
                    ..StepAnswer::default()
                };
                Some((json(&answer), reply))
            }
        }
    }

    /// Configuration sync `sync_id` done: recorded, with the files of now as
    /// the reference.
    pub(super) fn synced(&mut self, sync_id: u64) {
        self.record = Record {
            sync_id,
            last_sync: Some(unix_now()),
            last_result: Some("ok".into()),
            reference: Some(self.revision()),
        };
        self.save_record();
    }

    /// A failed sync, recorded and logged; returns the error text.
    pub(super) fn sync_failed(&mut self, why: String) -> String {
        self.record.last_result = Some("failed".into());
        self.save_record();
        tracing::warn!(target: crate::election_task::HA_LOG, "configuration sync failed: {why}");
        why
    }

    /// The text of this member's synchronised file `name`.
    pub(super) fn read_synced(&self, name: &str) -> Result<String, String> {
        let path = self
            .files()
            .into_iter()
            .find(|f| f.name == name)
            .map(|f| f.path)
            .ok_or_else(|| self.no_such_file(name))?;
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks a synchronised file's text (this member's own when `None`)
    /// the way putting it in force would.
    pub(super) fn validate(&self, name: &str, text: Option<&str>) -> Result<(), String> {
        let own;
        let text = match text {
            Some(t) => t,
            None => {
                own = self.read_synced(name)?;
                &own
            }
        };
        if self.is_shared_file(name) {
            return self.read_config(Some(text)).map(|_| ());
        }
        rules::parse(text, name, self.interface_names())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Puts every file staged for `transfer` in force, all or nothing.
    pub(super) fn commit(&mut self, transfer: u64, sync_id: u64) -> Reply {
        let me = self.settings.identity.serial.clone();
        let staged = match self.staging.take() {
            Some(s) if s.is(transfer, Instant::now()) => s.into_files(),
            _ => {
                return Err(
                    "nothing staged for this transfer (it timed out or another began)".into(),
                )
            }
        };
        // Validated when staged; checked again all together before anything is written.
        for (name, text) in &staged {
            self.validate(name, Some(text))?;
        }
        // The shared file first (the HA parameters are read with it), then
        // the rules: all were validated together above.
        let mut rows = Vec::new();
        let (shared, rules): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .partition(|(name, _)| self.is_shared_file(name));
        for (name, text) in shared {
            let done = self.apply_shared(Origin::Partner, &text)?;
            rows.push(Row::ok(
                &me,
                "service reactivation",
                format!("{name}: {done}"),
            ));
        }
        rows.push(Row::ok(&me, "service reactivation", self.reread_ha()?));
        for (name, text) in rules {
            let done = self.apply_rules(Origin::Partner, &text)?;
            rows.push(Row::ok(
                &me,
                "service reactivation",
                format!("{name}: {done}"),
            ));
        }
        self.synced(sync_id);
        tracing::info!(target: crate::election_task::HA_LOG, "configuration sync {sync_id} received from the partner: in force");
        json(&rows)
    }
}

/// A number for a transfer, unlikely to repeat across restarts.
fn transfer_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or(0) ^ u64::from(std::process::id()) << 40
}
