//! The supervisor's HA console commands (`hainfo`, `hamode --json`,
//! `sync --json`, `hasynctest`, `hadiff`, `enha`) and its answers to the
//! partner daemon's questions ([`crate::peer::Ask`]); `hasync`'s steps are
//! [`super::hasync`]'s.
//!
//! A command that needs the partner's figures asks through the peer relay
//! and waits for the answers without holding up the supervisor (like a
//! `conns` listing): [`Asking`] keeps the question until the answers came or
//! their time ran out, then the command's answer is composed.

use super::*;
use crate::confsync::{self, FileDigest, Staging};
use crate::console::hainfo;
use crate::node::{HaSnapshot, NodeStatus, SyncFigures};
use crate::peer::{Ask, PEER_TIMEOUT};
use std::fmt::Write as _;

/// What composes a command's answer once the partner answered (or not).
type Finish<U> = Box<dyn FnOnce(&mut State<U>, Vec<Reply>) -> Reply + Send>;

/// A command waiting for the partner's answers.
pub(super) struct Asking<U> {
    waits: Vec<Receiver<Reply>>,
    got: Vec<Option<Reply>>,
    deadline: Instant,
    pub(super) reply: Sender<Reply>,
    finish: Finish<U>,
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Reply {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(r: &Reply) -> Result<T, String> {
    let text = r.as_ref().map_err(Clone::clone)?;
    serde_json::from_str(text).map_err(|e| format!("the partner's answer did not parse: {e}"))
}

fn text_answer(text: String) -> Reply {
    Ok(if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    })
}

impl<U: Managed> State<U> {
    /// What the sync task last published (`None`: no partner configured).
    fn ha_snapshot(&self) -> Option<HaSnapshot> {
        self.settings.ha.as_ref().and_then(|h| (h.snapshot)())
    }

    /// This member's status; reads and hashes its synchronised files.
    pub(super) fn local_node(&self) -> NodeStatus {
        let id = &self.settings.identity;
        NodeStatus {
            serial: id.serial.clone(),
            model: id.model.clone(),
            version: id.version.clone(),
            boot: id.boot,
            ha: self.ha_snapshot().map(|s| s.node),
            config: self.config_state(),
        }
    }

    pub(super) fn local_sync(&self) -> SyncFigures {
        let snapshot = self.ha_snapshot();
        let (bulk, digests) =
            snapshot.map_or_else(|| ("-".to_owned(), "-".to_owned()), |s| (s.bulk, s.digests));
        SyncFigures::of(
            &self.settings.identity.serial,
            &self.counters(),
            &bulk,
            &digests,
        )
    }

    pub(super) fn peer_serial(&self) -> String {
        self.settings
            .ha
            .as_ref()
            .map_or_else(String::new, |h| h.running.peer_serial_str().to_owned())
    }

    /// Asks the partner `asks` (in order), then answers `reply` with what
    /// `finish` makes of the answers.
    pub(super) fn ask_partner(
        &mut self,
        asks: Vec<Ask>,
        timeout: Duration,
        reply: Sender<Reply>,
        finish: Finish<U>,
    ) {
        let Some(ha) = &self.settings.ha else {
            let answer = finish(self, vec![Err(answer::NO_PARTNER.into()); asks.len()]);
            let _ = reply.send(answer);
            return;
        };
        let waits: Vec<Receiver<Reply>> =
            asks.into_iter().map(|a| ha.peer.ask(a, timeout)).collect();
        self.asking.push(Asking {
            got: vec![None; waits.len()],
            waits,
            // The relay answers every question by its own deadline; this
            // one only guards against a relay that stopped.
            deadline: Instant::now() + timeout + Duration::from_secs(1),
            reply,
            finish,
        });
    }

    /// Commands whose partner answers all came (or whose time ran out).
    pub(super) fn answered(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.asking.len() {
            let a = &mut self.asking[i];
            for (wait, got) in a.waits.iter().zip(a.got.iter_mut()) {
                if got.is_none() {
                    match wait.try_recv() {
                        Ok(r) => *got = Some(r),
                        Err(crossbeam::channel::TryRecvError::Empty) => {}
                        Err(crossbeam::channel::TryRecvError::Disconnected) => {
                            *got = Some(Err(crate::peer::unreachable("the sync task stopped")));
                        }
                    }
                }
            }
            if a.got.iter().all(Option::is_some) || now >= a.deadline {
                let a = self.asking.swap_remove(i);
                let got = a
                    .got
                    .into_iter()
                    .map(|g| {
                        g.unwrap_or_else(|| Err(crate::peer::unreachable("no answer in time")))
                    })
                    .collect();
                let answer = (a.finish)(self, got);
                let _ = a.reply.send(answer);
            } else {
                i += 1;
            }
        }
    }

    /// A console command of the HA side: answered now (`Some`), or later
    /// once the partner answered (`None`).
    pub(super) fn ha_console(
        &mut self,
        request: Request,
        reply: Sender<Reply>,
    ) -> Option<(Reply, Sender<Reply>)> {
        match request {
            Request::Mode { .. } => {
                let serial = &self.settings.identity.serial;
                let answer = match self.ha_snapshot() {
                    Some(HaSnapshot { node: ha, .. }) => json(&serde_json::json!({
                        "serial": serial, "mode": ha.mode, "forced": ha.forced,
                        "reason": ha.reason, "since": ha.mode_since,
                    }))
                    .map(|t| t + "\n"),
                    None => Err(answer::NO_PARTNER.into()),
                };
                Some((answer, reply))
            }
            Request::Sync { .. } => {
                let answer = json(&serde_json::json!({
                    "serial": self.settings.identity.serial,
                    "ha": self.ha_snapshot().map(|s| s.node),
                    "sync": self.local_sync(),
                }))
                .map(|t| t + "\n");
                Some((answer, reply))
            }
            Request::HaInfo { verbose, json } => {
                let asks = if verbose {
                    vec![Ask::Node, Ask::SyncStats]
                } else {
                    vec![Ask::Node]
                };
                self.ask_partner(
                    asks,
                    PEER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| s.hainfo(verbose, json, &got)),
                );
                None
            }
            Request::HaSyncTest { json } => {
                self.ask_partner(
                    vec![Ask::Files],
                    PEER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| s.hasynctest(json, &got[0])),
                );
                None
            }
            Request::HaDiff { file } => {
                if !self.files().iter().any(|f| f.name == file) {
                    return Some((Err(self.no_such_file(&file)), reply));
                }
                self.ask_partner(
                    vec![Ask::File { name: file.clone() }],
                    PEER_TIMEOUT,
                    reply,
                    Box::new(move |s, got| s.hadiff(&file, &got[0])),
                );
                None
            }
            Request::HaSync(step) => self.hasync_step(step, reply),
            Request::Enha => Some((self.enha(), reply)),
            _ => Some((Err("not an HA console command".into()), reply)),
        }
    }

    fn hainfo(&mut self, verbose: bool, as_json: bool, got: &[Reply]) -> Reply {
        let local = self.local_node();
        let peer = self.peer_serial();
        let partner: Result<NodeStatus, String> = parse(&got[0]);
        let mut progress = String::new();
        if verbose {
            progress.push_str("requesting node status\nrequesting sync stats\n");
            let _ = writeln!(
                progress,
                "{} node(s) connected",
                1 + usize::from(partner.is_ok())
            );
            let _ = writeln!(progress, "got node status from {}", local.serial);
            match &partner {
                Ok(p) => {
                    let _ = writeln!(progress, "got node status from {}", p.serial);
                }
                Err(e) => {
                    let _ = writeln!(progress, "{peer}: {e}");
                }
            }
        }
        let partner_ref = partner.as_ref().map_err(|e| (peer.as_str(), e.as_str()));
        let ours = verbose.then(|| self.local_sync());
        let theirs: Option<Result<SyncFigures, String>> = verbose.then(|| parse(&got[1]));
        if let (Some(_), Some(t)) = (&ours, &theirs) {
            let _ = writeln!(progress, "got sync status from {}", local.serial);
            if t.is_ok() {
                let _ = writeln!(progress, "got sync status from {peer}");
            }
        }
        let sync = match (&ours, &theirs) {
            (Some(o), Some(t)) => Some((o, t.as_ref().map_err(|e| (peer.as_str(), e.as_str())))),
            _ => None,
        };
        if as_json {
            return Ok(hainfo::json(&local, partner_ref, sync));
        }
        text_answer(progress + &hainfo::text(&local, partner_ref, sync))
    }

    fn hasynctest(&self, as_json: bool, got: &Reply) -> Reply {
        let theirs: Vec<FileDigest> = parse(got)?;
        let ours = confsync::digests(&self.files());
        let differ = confsync::differing(&ours, &theirs);
        if as_json {
            let list: Vec<_> = differ
                .iter()
                .map(|(name, how)| serde_json::json!({"name": name, "how": how}))
                .collect();
            return json(&serde_json::json!({ "differ": list })).map(|t| t + "\n");
        }
        Ok(differ
            .iter()
            .map(|(name, how)| format!("{name}: {how}\n"))
            .collect())
    }

    fn hadiff(&self, name: &str, got: &Reply) -> Reply {
        let theirs: Option<String> = parse(got)?;
        let ours = self.read_synced(name)?;
        let theirs = theirs.unwrap_or_default();
        let local = format!("{}:{name}", self.settings.identity.serial);
        let remote = format!("{}:{name}", self.peer_serial());
        Ok(similar::TextDiff::from_lines(&ours, &theirs)
            .unified_diff()
            .header(&local, &remote)
            .to_string())
    }

    /// The partner daemon's question; the answer is JSON.
    pub(super) fn peer_asks(&mut self, ask: Ask) -> Reply {
        match ask {
            Ask::Node => json(&self.local_node()),
            Ask::SyncStats => json(&self.local_sync()),
            Ask::Files => json(&confsync::digests(&self.files())),
            Ask::File { name } => json(&self.read_synced(&name).ok()),
            Ask::Stage {
                transfer,
                name,
                text,
            } => {
                if !self.files().iter().any(|f| f.name == name) {
                    return Err(self.no_such_file(&name));
                }
                self.validate(&name, Some(&text))?;
                let now = Instant::now();
                if !self.staging.as_ref().is_some_and(|s| s.is(transfer, now)) {
                    self.staging = Some(Staging::begin(transfer, now));
                }
                if let Some(s) = self.staging.as_mut() {
                    s.keep(&name, text);
                }
                json(&"staged")
            }
            Ask::Commit { transfer, sync_id } => self.commit(transfer, sync_id),
        }
    }

    /// Puts new interface weights in force (the health probes weigh with
    /// them from their next round) and keeps them as running; says the
    /// change, if any.
    pub(super) fn put_weights(&mut self, weights: &[u16]) -> Option<String> {
        let ha = self.settings.ha.as_mut()?;
        let running = &mut ha.running.election.weights;
        if running.as_slice() == weights {
            return None;
        }
        let said = format!("interface weights {running:?} → {weights:?}");
        if let Some(h) = &ha.health {
            h.set_weights(weights.to_vec());
        }
        *running = weights.to_vec();
        Some(said)
    }

    /// `enha`: the HA parameters re-read, then the one-line status.
    fn enha(&mut self) -> Reply {
        let what = self.reread_ha()?;
        let node = self.local_node();
        // The election takes the new priority at its next round; the
        // published view may be older than that.
        let priority = self.settings.ha.as_ref().map_or(0, |h| h.params.priority());
        let status = node.ha.map_or_else(
            || "no election yet".to_owned(),
            |h| {
                format!(
                    "{} ({}), quality {}.{:02} %, priority {}",
                    h.mode,
                    h.reason,
                    h.quality / 100,
                    h.quality % 100,
                    priority
                )
            },
        );
        text_answer(format!(
            "{what}\nsupervisor: running; unit {}: {status}",
            node.serial
        ))
    }

    /// Reads the unit configuration file again and puts its HA parameters
    /// that change without a restart in force (priority, interface
    /// weights); says what changed, and what needs a restart.
    pub(super) fn reread_ha(&mut self) -> Result<String, String> {
        if self.settings.ha.is_none() {
            return Err(answer::NO_PARTNER.into());
        }
        let config = self
            .read_config(None)
            .map_err(|e| format!("HA parameters not re-read, nothing changed: {e}"))?;
        let path = self.unit_file_name();
        let Some(new) = config.ha else {
            return Err(format!(
                "HA parameters not re-read, nothing changed: {path} has no `ha` section any more (that needs a restart)"
            ));
        };
        let mut said = Vec::new();
        if let Some(ha) = self.settings.ha.as_mut() {
            let running = &mut ha.running.election.priority;
            if new.election.priority != *running {
                said.push(format!("priority {running} → {}", new.election.priority));
                ha.params.set_priority(new.election.priority);
                *running = new.election.priority;
            }
        }
        said.extend(self.put_weights(&new.election.weights));
        let Some(ha) = self.settings.ha.as_mut() else {
            return Err(answer::NO_PARTNER.into());
        };
        let old = &ha.running;
        let restart = new.serial != old.serial
            || new.peer_serial != old.peer_serial
            || new.links != old.links
            || new.psk_file != old.psk_file
            || new.sync_port != old.sync_port
            || new.sync != old.sync
            || new.election.listen != old.election.listen
            || new.election.probe != old.election.probe;
        // Only what was applied counts as running: with a change that needs
        // a restart, the priority and weights just put in force.
        if !restart {
            ha.running = new;
        }
        let mut text = format!(
            "HA parameters re-read from {path}: {}",
            if said.is_empty() {
                "nothing changed".to_owned()
            } else {
                said.join(", ")
            }
        );
        if restart {
            text.push_str("; serials, HA links, key, sync tuning, listen time and probes change at the next restart");
        }
        tracing::info!(target: crate::election_task::HA_LOG, "{text}");
        Ok(text)
    }
}
