//! The supervisor: the one owner of a running unit's configuration and
//! control-plane state, on a thread of its own, behind one command
//! interface ([`Command`]).
//!
//! Whoever wants something of the unit — the console through the control
//! socket, a signal, and later the partner over the HA link — submits a
//! command and gets its answer on a channel ([`SupervisorHandle::submit`]);
//! nobody else changes the unit's rules or role, so no two changes race.
//! Commands are carried out one at a time, in order:
//!
//! | command | what it does |
//! | --- | --- |
//! | [`Command::Console`] | a console request: answered from a look at the unit (help, counters, rules), or carried out (`reload`), or, for `conns`, collected from the workers over several of their loop iterations while other commands go on |
//! | [`Command::Reload`] | re-reads the rules file and puts it in force; a bad file changes nothing |
//! | [`Command::ApplyRules`] | validates a rules text (from this unit's console or from the partner), and only if it is valid writes it as the rules file (atomically) and puts it in force |
//! | [`Command::SetRole`] | forces this unit's role, or clears the force (the election acts on it at its next round) |
//!
//! Its own duties run between commands: the counters file, and its
//! Prometheus twin ([`crate::prometheus`]), are rewritten every
//! [`COUNTERS_FILE_EVERY`]; the latter is removed when the supervisor stops,
//! lest node_exporter go on exporting a stopped unit's last values (an
//! active role among them) as live. Nothing it does waits on a client: a
//! slow or silent client is the transport's problem ([`crate::control`]),
//! and a listing never waits for the workers (it is polled). A command's
//! answer is `Ok(text)` or `Err(why)`; the console shows the latter as
//! `error: why`.

use crate::console::{answer, request::Request, Target};
use crate::prometheus::UnitLabels;
use crate::rules;
use crate::unit::UnitHandle;
use crate::{atomic_file, counters_file, prometheus};
use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use dataplane::control::{ConnFilter, Listing, LiveConfig};
use dataplane::filter::RuleSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the counters file (and the Prometheus file) is rewritten.
pub const COUNTERS_FILE_EVERY: Duration = Duration::from_secs(1);
/// How long a `conns` listing waits for the workers before answering with
/// what it has.
pub const LISTING_WAIT: Duration = Duration::from_secs(2);
/// How often an unfinished listing is looked at.
const LISTING_POLL: Duration = Duration::from_millis(5);
/// Commands that may wait for the supervisor; more are refused at once.
pub const QUEUED_COMMANDS: usize = 256;
/// The refusal of a command the supervisor has no room for.
pub const BUSY: &str = "the unit is busy; try again";
/// The refusal of a command that comes while the unit stops.
pub const STOPPING: &str = "the unit is stopping";

/// Who asked for a change (logged with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A signal to the process (SIGHUP).
    Signal,
    /// This unit's console (the control socket).
    Console,
    /// The partner unit, over the HA link.
    Partner,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Signal => "signal",
            Origin::Console => "console",
            Origin::Partner => "partner",
        }
    }
}

/// A role of a unit in the pair: the one the configuration's `ha.role` names.
pub use crate::config::HaRole as Role;
use crate::election_task::ForceCell;

/// What the supervisor can be asked; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A console request.
    Console(Request),
    /// Re-read the rules file and put it in force.
    Reload {
        /// Who asked.
        origin: Origin,
    },
    /// Put this rules text in force, as the rules file.
    ApplyRules {
        /// Who sent it.
        origin: Origin,
        /// The rules file's new text.
        text: String,
    },
    /// Force the role (`Some`), or let the election decide (`None`).
    SetRole(Option<Role>),
    /// A question of the partner's daemon (the answer is JSON).
    Peer(crate::peer::Ask),
}

/// The answer to a command: the text, or why it was refused.
pub type Reply = Result<String, String>;

/// A status text another thread keeps (synchronisation's, from the main lcore).
pub type StatusSource = Box<dyn Fn() -> String + Send>;

/// Extra counters the supervisor reports beside the unit's (the control
/// socket's, the log's, the main lcore's).
pub type CounterSource = Box<dyn Fn(&mut Vec<(String, u64)>) + Send>;

/// What the supervisor needs of the unit it manages: a running unit's
/// [`UnitHandle`], or a stand-in in the supervisor's own tests.
pub trait Managed: Send + 'static {
    /// Every counter of the dataplane as `(name, value)`.
    fn counters(&self) -> Vec<(String, u64)>;
    /// Data interface names in index order.
    fn interface_names(&self) -> &[String];
    /// Puts rules in force on every worker.
    fn set_rules(&self, rules: &Arc<RuleSet>);
    /// Puts the shared part of a configuration in force on every worker.
    fn set_config(&self, config: &Arc<LiveConfig>);
    /// Asks the workers for a connection listing.
    fn list_connections(&self, filter: &ConnFilter, limit: usize) -> Listing;
}

impl Managed for UnitHandle {
    fn counters(&self) -> Vec<(String, u64)> {
        UnitHandle::counters(self)
    }
    fn interface_names(&self) -> &[String] {
        UnitHandle::interface_names(self)
    }
    fn set_rules(&self, rules: &Arc<RuleSet>) {
        UnitHandle::set_rules(self, rules);
    }
    fn set_config(&self, config: &Arc<LiveConfig>) {
        UnitHandle::set_config(self, config);
    }
    fn list_connections(&self, filter: &ConnFilter, limit: usize) -> Listing {
        UnitHandle::list_connections(self, filter, limit)
    }
}

/// What the supervisor starts from.
pub struct Settings<U> {
    /// The running unit.
    pub unit: U,
    /// The rules file (`None`: the unit routes without filtering).
    pub rules_path: Option<PathBuf>,
    /// The rules in force at start.
    pub rules: Option<Arc<RuleSet>>,
    /// Rewrite the counters into this file.
    pub counters_file: Option<PathBuf>,
    /// Rewrite the counters into this file in Prometheus' text format, and
    /// remove it at stop.
    pub prometheus_file: Option<PathBuf>,
    /// What the Prometheus file labels every sample with.
    pub unit_labels: UnitLabels,
    /// Counters of the rest of the control plane.
    pub extra_counters: Vec<CounterSource>,
    /// Synchronisation's status text (`None`: no partner configured).
    pub sync_status: Option<StatusSource>,
    /// `hamode`'s answer (`None`: no partner configured).
    pub ha_mode: Option<StatusSource>,
    /// The HA event log file (`tandemd --ha-log`), for `halog`.
    pub ha_log: Option<PathBuf>,
    /// The role the console forces, read by the election (`None`: no
    /// partner configured).
    pub force: Option<Arc<ForceCell>>,
    /// Who this unit is, for `hainfo`.
    pub identity: Identity,
    /// The HA side: the partner, the election's view, what `enha` changes
    /// (`None`: no partner configured).
    pub ha: Option<HaControl>,
    /// Where the configuration sync record is kept (`None`: not kept).
    pub state_dir: Option<PathBuf>,
    /// The unit's configuration files (`enha` and the shared file read them
    /// again; `None`: not known, as in tests).
    pub files: Option<UnitFiles>,
}

/// Who a unit is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// `ha.serial`, or the empty string for a unit alone.
    pub serial: String,
    /// The hardware profile's model.
    pub model: String,
    /// The firmware version.
    pub version: String,
    /// When the daemon started, Unix seconds.
    pub boot: u64,
}

/// The election's view as the sync task last published it.
pub type HaSource = Box<dyn Fn() -> Option<crate::node::HaSnapshot> + Send>;

/// What the supervisor reaches of the HA side.
pub struct HaControl {
    /// Questions to the partner's daemon.
    pub peer: crate::peer::PeerClient,
    /// The election's view.
    pub snapshot: HaSource,
    /// The priority and configuration revision the election reads.
    pub params: Arc<crate::election_task::HaParams>,
    /// Where the interface weights go (`enha`).
    pub health: Option<Arc<crate::health::Health>>,
    /// The HA section in force.
    pub running: crate::config::HaConfig,
}

enum Message {
    Command(Command, Sender<Reply>),
    Stop,
}

/// Where commands are submitted; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct SupervisorHandle {
    tx: Sender<Message>,
}

impl SupervisorHandle {
    /// Hands `command` to the supervisor and returns where its answer will
    /// arrive. Never blocks: when the supervisor is stopping or has
    /// [`QUEUED_COMMANDS`] waiting, the answer is a refusal, at once.
    pub fn submit(&self, command: Command) -> Receiver<Reply> {
        let (reply, answer) = channel::bounded(1);
        match self.tx.try_send(Message::Command(command, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Command(_, reply))) => {
                let _ = reply.send(Err(BUSY.into()));
            }
            Err(TrySendError::Disconnected(Message::Command(_, reply))) => {
                let _ = reply.send(Err(STOPPING.into()));
            }
            Err(_) => {}
        }
        answer
    }

    /// [`submit`](Self::submit), then waits up to `timeout` for the answer.
    pub fn ask(&self, command: Command, timeout: Duration) -> Reply {
        self.submit(command)
            .recv_timeout(timeout)
            .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
    }
}

/// The supervisor's thread.
pub struct Supervisor {
    handle: SupervisorHandle,
    thread: JoinHandle<()>,
}

impl Supervisor {
    /// Starts the supervisor on a thread of its own, on `cpus`.
    pub fn start<U: Managed>(settings: Settings<U>, cpus: &[u32]) -> std::io::Result<Supervisor> {
        let (tx, rx) = channel::bounded(QUEUED_COMMANDS);
        let thread = crate::thread::spawn("tandem-supervisor", cpus, move || {
            State::new(settings).run(&rx);
        })?;
        Ok(Supervisor {
            handle: SupervisorHandle { tx },
            thread,
        })
    }

    /// Where to submit commands.
    pub fn handle(&self) -> SupervisorHandle {
        self.handle.clone()
    }

    /// Finishes the command under way, answers the waiting ones with a
    /// refusal, and ends the thread (the unit's handle with it).
    pub fn stop(self) {
        let _ = self.handle.tx.send(Message::Stop);
        if self.thread.join().is_err() {
            tracing::error!("the supervisor thread panicked");
        }
    }
}

/// A `conns` request being collected.
struct PendingListing {
    listing: Listing,
    limit: usize,
    json: bool,
    deadline: Instant,
    reply: Sender<Reply>,
}

/// The supervisor's state, owned by its thread.
struct State<U> {
    settings: Settings<U>,
    rules: Option<Arc<RuleSet>>,
    forced_role: Option<Role>,
    listings: Vec<PendingListing>,
    next_counters_write: Instant,
    /// Questions to the partner waiting for its answers.
    asking: Vec<ha::Asking<U>>,
    /// What this member records of configuration syncs.
    record: crate::confsync::Record,
    /// Files the partner sent for a transfer not yet committed.
    staging: Option<crate::confsync::Staging>,
}

impl<U: Managed> Target for State<U> {
    fn counters(&self) -> Vec<(String, u64)> {
        let mut all = self.settings.unit.counters();
        for source in &self.settings.extra_counters {
            source(&mut all);
        }
        all
    }

    fn rules(&self) -> Option<Arc<RuleSet>> {
        self.rules.clone()
    }

    fn interface_names(&self) -> &[String] {
        self.settings.unit.interface_names()
    }

    fn sync_status(&self) -> Option<String> {
        self.settings.sync_status.as_ref().map(|f| f())
    }

    fn ha_mode(&self) -> Option<String> {
        self.settings.ha_mode.as_ref().map(|f| f())
    }
}

/// The most of the HA event log `halog` reads: its last 1 MiB.
pub const HALOG_TAIL_BYTES: u64 = 1 << 20;

/// The last `bytes` of the file at `path`, from its first whole line.
fn tail(path: &std::path::Path, bytes: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(if start > 0 {
        text.split_once('\n')
            .map_or(String::new(), |(_, rest)| rest.to_string())
    } else {
        text
    })
}

impl<U: Managed> State<U> {
    fn new(mut settings: Settings<U>) -> State<U> {
        State {
            rules: settings.rules.take(),
            settings,
            forced_role: None,
            listings: Vec::new(),
            next_counters_write: Instant::now(),
            asking: Vec::new(),
            record: crate::confsync::Record::default(),
            staging: None,
        }
        .with_record()
    }

    fn run(mut self, rx: &Receiver<Message>) {
        loop {
            let now = Instant::now();
            self.duties(now);
            let wait = if self.listings.is_empty() && self.asking.is_empty() {
                self.next_counters_write.saturating_duration_since(now)
            } else {
                LISTING_POLL
            };
            match rx.recv_timeout(wait) {
                Ok(Message::Command(command, reply)) => self.execute(command, reply),
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        for pending in self.listings.drain(..) {
            let _ = pending.reply.send(Err(STOPPING.into()));
        }
        for asking in self.asking.drain(..) {
            let _ = asking.reply.send(Err(STOPPING.into()));
        }
        while let Ok(Message::Command(_, reply)) = rx.try_recv() {
            let _ = reply.send(Err(STOPPING.into()));
        }
        if let Some(path) = &self.settings.prometheus_file {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("prometheus file {}: {e}", path.display()),
            }
        }
    }

    /// What is due at `now`: finished listings and partner questions
    /// answered, the counters files.
    fn duties(&mut self, now: Instant) {
        self.answered(now);
        let mut i = 0;
        while i < self.listings.len() {
            let done = self.listings[i].listing.poll();
            if done || now >= self.listings[i].deadline {
                let p = self.listings.swap_remove(i);
                let found = p.listing.into_found();
                let text = if p.json {
                    answer::conns_json(&found, p.limit, self.interface_names())
                } else {
                    answer::conns(found, p.limit, self.interface_names())
                };
                let _ = p.reply.send(Ok(text));
            } else {
                i += 1;
            }
        }
        if now >= self.next_counters_write {
            self.next_counters_write = now + COUNTERS_FILE_EVERY;
            self.write_counters();
        }
    }

    /// Rewrites the counters file and the Prometheus file, one look at the
    /// counters for both; a failure is logged and tried again next time.
    fn write_counters(&self) {
        let s = &self.settings;
        if s.counters_file.is_none() && s.prometheus_file.is_none() {
            return;
        }
        let counters = self.counters();
        if let Some(path) = &s.counters_file {
            if let Err(e) = counters_file::write(path, &counters) {
                tracing::warn!("counters file {}: {e}", path.display());
            }
        }
        if let Some(path) = &s.prometheus_file {
            if let Err(e) = prometheus::write(path, &counters, &s.unit_labels) {
                tracing::warn!("prometheus file {}: {e}", path.display());
            }
        }
    }

    fn execute(&mut self, command: Command, reply: Sender<Reply>) {
        let answer = match command {
            Command::Console(Request::Conns {
                filter,
                limit,
                json,
            }) => {
                let listing = self.settings.unit.list_connections(&filter, limit);
                self.listings.push(PendingListing {
                    listing,
                    limit,
                    json,
                    deadline: Instant::now() + LISTING_WAIT,
                    reply,
                });
                return;
            }
            Command::Console(Request::Reload) => self.reload(Origin::Console),
            Command::Console(Request::Force(role)) | Command::SetRole(role) => self.force(role),
            Command::Console(Request::HaLog { lines }) => self.ha_log(lines),
            Command::Console(
                r @ (Request::HaInfo { .. }
                | Request::Mode { json: true }
                | Request::Sync { json: true }
                | Request::HaSyncTest { .. }
                | Request::HaDiff { .. }
                | Request::HaSync(_)
                | Request::Enha),
            ) => match self.ha_console(r, reply) {
                Some((answer, reply)) => {
                    let _ = reply.send(answer);
                    return;
                }
                None => return,
            },
            Command::Peer(ask) => self.peer_asks(ask),
            Command::Console(request) => answer::immediate(&request, self)
                .ok_or_else(|| "that request has no immediate answer".to_string()),
            Command::Reload { origin } => self.reload(origin),
            Command::ApplyRules { origin, text } => self.apply_rules(origin, &text),
        };
        let _ = reply.send(answer);
    }

    /// The last `lines` lines of the HA event log file (at most its last
    /// [`HALOG_TAIL_BYTES`] are read).
    fn ha_log(&self, lines: usize) -> Reply {
        let Some(path) = &self.settings.ha_log else {
            return Err("no HA event log file: tandemd runs without --ha-log".into());
        };
        let text = tail(path, HALOG_TAIL_BYTES)
            .map_err(|e| format!("HA event log {}: {e}", path.display()))?;
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        Ok(all[from..].iter().map(|l| format!("{l}\n")).collect())
    }

    /// Forces the role (the election reads it at its next round), or
    /// removes the force.
    fn force(&mut self, role: Option<Role>) -> Reply {
        let Some(cell) = &self.settings.force else {
            return Err("this unit has no partner configured (no `ha` section)".into());
        };
        cell.set(role);
        self.forced_role = role;
        let text = match role {
            Some(Role::Active) => "role forced: active",
            Some(Role::Passive) => "role forced: passive",
            None => "role no longer forced",
        };
        tracing::info!("{text}");
        Ok(text.to_string())
    }

    /// Puts `set` in force on every worker (connections are kept).
    fn put_in_force(&mut self, set: RuleSet, origin: Origin, what: &str) -> String {
        let set = Arc::new(set);
        self.settings.unit.set_rules(&set);
        let text = format!(
            "rules {what}: {} rule(s), revision {}",
            set.rules().len(),
            set.revision().0
        );
        self.rules = Some(set);
        self.files_changed();
        tracing::info!("{text} (from the {})", origin.name());
        text
    }

    fn rules_path(&self) -> Result<PathBuf, String> {
        match (&self.settings.rules_path, &self.rules) {
            (Some(path), Some(_)) => Ok(path.clone()),
            _ => Err("the unit was started without --rules".into()),
        }
    }

    /// `reload` and SIGHUP: the shared file (if any), then the rules.
    fn reload(&mut self, origin: Origin) -> Reply {
        let Some(shared) = self.reload_shared(origin) else {
            return self.reload_rules(origin);
        };
        let shared = shared?;
        if self.settings.rules_path.is_none() {
            return Ok(shared);
        }
        match self.reload_rules(origin) {
            Ok(rules) => Ok(format!("{shared}\n{rules}")),
            Err(e) => Err(format!("{shared}; {e}")),
        }
    }

    fn reload_rules(&mut self, origin: Origin) -> Reply {
        let path = self.rules_path()?;
        let set = rules::load(&path, self.interface_names()).map_err(|e| refused(origin, e))?;
        Ok(self.put_in_force(set, origin, "reloaded"))
    }

    fn apply_rules(&mut self, origin: Origin, text: &str) -> Reply {
        let path = self.rules_path()?;
        let file = path.display().to_string();
        let set =
            rules::parse(text, &file, self.interface_names()).map_err(|e| refused(origin, e))?;
        atomic_file::write(&path, text.as_bytes())
            .map_err(|e| refused(origin, format!("{file}: {e}")))?;
        Ok(self.put_in_force(set, origin, "applied"))
    }
}

mod ha;
mod hasync;
mod shared;

pub use shared::UnitFiles;

/// A refused rules change, logged with who asked.
fn refused(origin: Origin, why: impl std::fmt::Display) -> String {
    let text = format!("rules refused, the rules in force stay: {why}");
    tracing::warn!("{text} (from the {})", origin.name());
    text
}

/// A unit without DPDK, for the tests of the supervisor and of the control
/// socket: fixed counters, the rules it was given, and worker inboxes that
/// the test answers itself.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use dataplane::control::WorkerInbox;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    pub(crate) struct FakeUnit {
        pub counters: Vec<(String, u64)>,
        pub names: Vec<String>,
        pub inboxes: Vec<Arc<WorkerInbox>>,
        pub rules_set: Arc<Mutex<Vec<Arc<RuleSet>>>>,
        pub configs_set: Arc<Mutex<Vec<Arc<LiveConfig>>>>,
    }

    impl FakeUnit {
        pub(crate) fn new(workers: usize) -> FakeUnit {
            FakeUnit {
                counters: vec![("worker0.rx_packets".into(), 7)],
                names: vec!["data0".into(), "data1".into()],
                inboxes: (0..workers).map(|_| Arc::default()).collect(),
                rules_set: Arc::default(),
                configs_set: Arc::default(),
            }
        }
    }

    impl Managed for FakeUnit {
        fn counters(&self) -> Vec<(String, u64)> {
            self.counters.clone()
        }
        fn interface_names(&self) -> &[String] {
            &self.names
        }
        fn set_rules(&self, rules: &Arc<RuleSet>) {
            self.rules_set.lock().unwrap().push(Arc::clone(rules));
        }
        fn set_config(&self, config: &Arc<LiveConfig>) {
            self.configs_set.lock().unwrap().push(Arc::clone(config));
        }
        fn list_connections(&self, filter: &ConnFilter, limit: usize) -> Listing {
            Listing::ask(self.inboxes.iter().map(|i| &**i), filter, limit)
        }
    }

    /// Settings over `unit` with no rules file, no files written.
    pub(crate) fn settings(unit: FakeUnit) -> Settings<FakeUnit> {
        Settings {
            unit,
            rules_path: None,
            rules: None,
            counters_file: None,
            prometheus_file: None,
            unit_labels: UnitLabels::default(),
            extra_counters: Vec::new(),
            sync_status: None,
            ha_mode: None,
            ha_log: None,
            force: None,
            identity: Identity::default(),
            ha: None,
            state_dir: None,
            files: None,
        }
    }

    /// A supervisor over `unit` with no rules file.
    pub(crate) fn start(unit: FakeUnit) -> Supervisor {
        Supervisor::start(settings(unit), &[]).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeUnit;
    use super::*;
    use dataplane::control::ConnInfo;

    const T: Duration = Duration::from_secs(10);

    struct Lab {
        dir: PathBuf,
        unit: FakeUnit,
        supervisor: Option<Supervisor>,
        _tmp: tempfile::TempDir,
    }

    const GOOD: &str =
        r#"(rules: [(action: Pass, in: Some("data0"), proto: Some(Tcp), dst_ports: Some("80"))])"#;
    const GOOD2: &str =
        r#"(rules: [(action: Pass, in: Some("data0")), (action: Pass, in: Some("data1"))])"#;
    const BAD: &str = r#"(rules: [(action: Pass, in: Some("data9"))])"#;

    impl Lab {
        /// A supervisor over a fake unit filtering with `GOOD` from a rules file,
        /// in a directory of its own.
        fn new() -> Lab {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().to_path_buf();
            let rules_path = dir.join("rules.ron");
            std::fs::write(&rules_path, GOOD).unwrap();
            let unit = FakeUnit::new(2);
            let rules = rules::load(&rules_path, &unit.names).unwrap();
            let settings = Settings {
                unit: unit.clone(),
                rules_path: Some(rules_path),
                rules: Some(Arc::new(rules)),
                counters_file: Some(dir.join("counters")),
                prometheus_file: Some(dir.join("tandem.prom")),
                unit_labels: UnitLabels {
                    serial: Some("TNDM-A".into()),
                },
                extra_counters: vec![Box::new(|out| out.push(("control.x".into(), 3)))],
                sync_status: Some(Box::new(|| "partner TNDM-B: not heard yet\n".into())),
                ha_mode: Some(Box::new(|| "mode: passive\n".into())),
                ha_log: None,
                force: Some(ForceCell::new(None)),
                identity: Identity::default(),
                ha: None,
                state_dir: None,
                files: None,
            };
            let supervisor = Some(Supervisor::start(settings, &[]).unwrap());
            Lab {
                dir,
                unit,
                supervisor,
                _tmp: tmp,
            }
        }

        fn ask(&self, command: Command) -> Reply {
            self.supervisor.as_ref().unwrap().handle().ask(command, T)
        }

        fn console(&self, line: &str) -> Reply {
            self.ask(Command::Console(
                crate::console::request::parse(line).unwrap(),
            ))
        }

        fn rules_file(&self) -> String {
            std::fs::read_to_string(self.dir.join("rules.ron")).unwrap()
        }

        fn pushed(&self) -> usize {
            self.unit.rules_set.lock().unwrap().len()
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            if let Some(s) = self.supervisor.take() {
                s.stop();
            }
        }
    }

    #[test]
    fn console_questions_are_answered_with_the_units_and_the_control_planes_counters() {
        let lab = Lab::new();
        assert_eq!(
            lab.console("counters"),
            Ok("worker0.rx_packets 7\ncontrol.x          3\n".into())
        );
        assert!(lab.console("rules").unwrap().contains("1 rule"));
        assert_eq!(
            lab.console("help"),
            Ok(crate::console::request::HELP.into())
        );
        assert_eq!(
            lab.console("sync"),
            Ok("partner TNDM-B: not heard yet\n".into())
        );
    }

    #[test]
    fn the_counters_file_is_written_without_being_asked() {
        let lab = Lab::new();
        let path = lab.dir.join("counters");
        let deadline = Instant::now() + T;
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "worker0.rx_packets 7\ncontrol.x 3\n"
        );
    }

    #[test]
    fn the_prometheus_file_is_written_beside_it_and_removed_at_stop() {
        let mut lab = Lab::new();
        let path = lab.dir.join("tandem.prom");
        let deadline = Instant::now() + T;
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\ntandem_worker_rx_packets_total{serial=\"TNDM-A\",worker=\"0\"} 7\n")
                && text.ends_with("\ntandem_control_x_total{serial=\"TNDM-A\"} 3\n"),
            "{text}"
        );
        lab.supervisor.take().unwrap().stop();
        assert!(!path.exists(), "removed at stop");
    }

    #[test]
    fn a_prometheus_file_that_cannot_be_written_stops_nothing() {
        let unit = FakeUnit::new(1);
        let settings = Settings {
            prometheus_file: Some("/nonexistent-dir/tandem.prom".into()),
            ..fake::settings(unit)
        };
        let supervisor = Supervisor::start(settings, &[]).unwrap();
        // The first write was tried before the first command was taken.
        assert_eq!(
            supervisor.handle().ask(
                Command::Console(crate::console::request::parse("counters").unwrap()),
                T
            ),
            Ok("worker0.rx_packets 7\n".into())
        );
        supervisor.stop();
    }

    #[test]
    fn reload_puts_a_good_file_in_force_and_refuses_a_bad_one_changing_nothing() {
        let lab = Lab::new();
        std::fs::write(lab.dir.join("rules.ron"), GOOD2).unwrap();
        let text = lab
            .ask(Command::Reload {
                origin: Origin::Signal,
            })
            .unwrap();
        assert!(
            text.starts_with("rules reloaded: 2 rule(s), revision "),
            "{text}"
        );
        assert_eq!(lab.pushed(), 1);
        std::fs::write(lab.dir.join("rules.ron"), BAD).unwrap();
        let why = lab.console("reload").unwrap_err();
        assert!(
            why.starts_with("rules refused, the rules in force stay: "),
            "{why}"
        );
        assert!(why.contains("rules.ron:1:"), "located: {why}");
        assert_eq!(lab.pushed(), 1, "nothing pushed to the workers");
        assert!(
            lab.console("rules").unwrap().contains("2 rules"),
            "the rules in force stay"
        );
    }

    #[test]
    fn applied_rules_are_validated_before_anything_changes_then_written_and_in_force() {
        let lab = Lab::new();
        let why = lab
            .ask(Command::ApplyRules {
                origin: Origin::Partner,
                text: BAD.into(),
            })
            .unwrap_err();
        assert!(
            why.contains("no data interface") || why.contains("data9"),
            "{why}"
        );
        assert_eq!(lab.rules_file(), GOOD, "the file is untouched");
        assert_eq!(lab.pushed(), 0, "the workers are untouched");
        let text = lab
            .ask(Command::ApplyRules {
                origin: Origin::Console,
                text: GOOD2.into(),
            })
            .unwrap();
        assert!(text.starts_with("rules applied: 2 rule(s)"), "{text}");
        assert_eq!(lab.rules_file(), GOOD2, "written as the rules file");
        assert_eq!(lab.pushed(), 1);
        assert!(
            !lab.dir.join("rules.ron.new").exists(),
            "no temporary file left"
        );
    }

    #[test]
    fn without_a_rules_file_reload_and_apply_are_refused() {
        let supervisor = fake::start(FakeUnit::new(1));
        let h = supervisor.handle();
        let no = Err("the unit was started without --rules".to_string());
        assert_eq!(
            h.ask(
                Command::Reload {
                    origin: Origin::Console
                },
                T
            ),
            no
        );
        assert_eq!(
            h.ask(
                Command::ApplyRules {
                    origin: Origin::Partner,
                    text: GOOD.into()
                },
                T
            ),
            no
        );
        supervisor.stop();
    }

    #[test]
    fn the_role_force_is_set_and_cleared() {
        let lab = Lab::new();
        assert_eq!(
            lab.ask(Command::SetRole(Some(Role::Passive))),
            Ok("role forced: passive".into())
        );
        assert_eq!(
            lab.ask(Command::Console(Request::Force(None))),
            Ok("role no longer forced".into())
        );
    }

    #[test]
    fn the_ha_log_tail_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ha.log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(tail(&path, 1 << 20).unwrap(), "first line\nsecond\nthird\n");
        assert_eq!(tail(&path, 10).unwrap(), "third\n");
        assert!(tail(&dir.path().join("none"), 10).is_err());
    }

    #[test]
    fn a_unit_without_a_partner_refuses_a_forced_role() {
        let supervisor = super::fake::start(FakeUnit::new(1));
        let h = supervisor.handle();
        assert_eq!(
            h.ask(Command::SetRole(Some(Role::Active)), T),
            Err("this unit has no partner configured (no `ha` section)".into())
        );
        assert_eq!(
            h.ask(Command::Console(Request::HaLog { lines: 5 }), T),
            Err("no HA event log file: tandemd runs without --ha-log".into())
        );
        supervisor.stop();
    }

    /// A listing waits for the workers without holding anything else up:
    /// while one worker has not answered, counters are answered, and the
    /// listing comes once both are done.
    #[test]
    fn a_listing_is_collected_while_other_commands_are_answered() {
        let lab = Lab::new();
        let h = lab.supervisor.as_ref().unwrap().handle();
        let listing = h.submit(Command::Console(
            crate::console::request::parse("conns").unwrap(),
        ));
        let query = |w: usize| loop {
            if let Some(q) = lab.unit.inboxes[w].queries.pop() {
                return q;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let q0 = query(0);
        let q1 = query(1);
        let info = ConnInfo {
            worker: 0,
            proto: 6,
            src: "198.18.1.2".parse().unwrap(),
            sport: 40000,
            dst: "198.18.2.2".parse().unwrap(),
            dport: 80,
            state: "ESTABLISHED",
            rule: 0,
            in_iface: 0,
            out_iface: 1,
            age: 1,
            expires_in: 9,
            flags: 0,
        };
        q0.reply.send(Some(info)).unwrap();
        q0.reply.send(None).unwrap();
        assert!(
            lab.console("counters").is_ok(),
            "answered while worker 1 lists"
        );
        assert!(
            listing.try_recv().is_err(),
            "not before every worker is done"
        );
        q1.reply.send(None).unwrap();
        let text = listing.recv_timeout(T).unwrap().unwrap();
        assert!(
            text.contains("198.18.1.2:40000") && text.ends_with("1 connection(s)\n"),
            "{text}"
        );
    }

    #[test]
    fn commands_after_stop_are_refused_at_once() {
        let supervisor = fake::start(FakeUnit::new(1));
        let h = supervisor.handle();
        supervisor.stop();
        assert_eq!(h.ask(Command::SetRole(None), T), Err(STOPPING.into()));
    }
}
