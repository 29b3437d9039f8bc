//! Synchronisation with the partner: the HA link ports on one side, the sync
//! engine ([`syncd::engine`]) on the other, and the workers' queues behind
//! it. It runs on the profile's sync lcore ([`SyncTask::run_on`]) or, in
//! profiles without one (the lab's), as a task of the main lcore's loop.
//!
//! Per round: one burst of every HA port's received datagrams goes to the
//! engine, in the order they arrived, then the engine's poll sends the due
//! heartbeat first, hands the workers what arrived and sends what else is
//! due, each datagram on the link the engine names. Reading the ports every
//! round before anything is sent, and the poll's bounded work, are what keep
//! heartbeats from waiting behind sync traffic (see [`syncd::engine`]). What the engine wants logged
//! ([`Notice`]) becomes one log line each; its counters and a status text are
//! published every [`PUBLISH_EVERY_NS`] for the control plane, through a lock
//! this loop only ever *tries* (it never waits for the control plane).

use crate::config::HaConfig;
use crate::election_task::{ElectionTask, ForceCell, HaParams, HA_LOG};
use crate::ha_link::Addressing;
use crate::ha_port::{HaPort, HaPortError};
use crate::health::Health;
use crate::node::{HaNode, HaSnapshot, LinkStatus};
use crate::peer::PeerRelay;
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::forward::Ipv4Prefix;
use dpdk_sys::{lcore, DpdkError, LaunchHandle, LcoreId, Mempool};
use hw_profiles::Profile;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncd::bulk::IncomingState;
use syncd::engine::{DigestState, Engine, EngineConfig, Forced, Notice, Status};
use syncd::links::LinkState;
use syncd::psk::Psk;
use workers::Clock;

/// How often counters and status are published, in ns.
pub const PUBLISH_EVERY_NS: u64 = 100_000_000;

/// The firmware version the heartbeats carry, from the crate version.
pub fn firmware() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0).min(255);
    let mut it = env!("CARGO_PKG_VERSION").split('.');
    let (a, b, c) = (
        part(it.next().unwrap_or("0")),
        part(it.next().unwrap_or("0")),
        part(it.next().unwrap_or("0")),
    );
    a << 16 | b << 8 | c
}

/// What the control plane reads: counters and a status text.
#[derive(Debug, Default)]
pub struct Published {
    /// `sync.*` and `ha.*` counters.
    pub counters: Vec<(String, u64)>,
    /// The `sync` command's answer.
    pub status: String,
    /// The `hamode` command's answer.
    pub mode: String,
    /// The election's and the links' view, for `hainfo`.
    pub ha: Option<HaSnapshot>,
}

/// Why synchronisation could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The pre-shared key file.
    #[error("{0}")]
    Psk(#[from] syncd::psk::PskError),
    /// An HA link's port.
    #[error("{0}")]
    Port(#[from] HaPortError),
    /// The profile has no such port.
    #[error("HA link {0}: no such port in the profile")]
    NoPort(String),
    /// The engine's settings.
    #[error("sync settings: {0}")]
    Engine(#[from] syncd::channel::ChannelError),
    /// The sync lcore would not start.
    #[error("sync lcore {0}: {1}")]
    Lcore(u32, DpdkError),
}

/// Where synchronisation runs once started ([`SyncTask::place`]).
pub struct Placed {
    /// On the main lcore, between its other tasks (profiles without a sync
    /// lcore): hand it to the main loop.
    pub on_main: Option<SyncTask>,
    /// On the profile's sync lcore: wait for it after `stop`, before the unit
    /// shuts down (it closes the HA ports as it ends).
    pub on_lcore: Option<LaunchHandle>,
    /// What it publishes for the control plane.
    pub published: Arc<Mutex<Published>>,
}

/// The task.
pub struct SyncTask {
    engine: Engine,
    ports: Vec<HaPort>,
    names: Vec<String>,
    peer: String,
    published: Arc<Mutex<Published>>,
    next_publish_ns: u64,
    election: ElectionTask,
    relay: PeerRelay,
    /// This unit's address on each HA link.
    addresses: Vec<String>,
}

/// What the election needs besides the HA section: the workers' role
/// signals, this unit's health, and the role the console forces.
pub struct ElectionInputs {
    /// The workers' role, GARP and data-probe signals.
    pub signals: Arc<workers::HaSignals>,
    /// This unit's health.
    pub health: Arc<Health>,
    /// The role the console forces.
    pub force: Arc<ForceCell>,
    /// The priority and configuration revision the console changes.
    pub params: Arc<HaParams>,
    /// The daemons' conversation over the HA link.
    pub relay: PeerRelay,
}

impl SyncTask {
    /// Starts the HA ports of `ha` (packets from `pool`) and the engine over
    /// the workers' `events` and `inbound` queues, at `now_ns` of the unit's
    /// clock, and the election over `inputs`. `epoch` is this boot's.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        ha: &HaConfig,
        profile: &Profile,
        pool: &Mempool,
        interfaces: usize,
        epoch: u64,
        events: Vec<EventQueue>,
        inbound: Vec<InboundQueue>,
        inputs: ElectionInputs,
        now_ns: u64,
    ) -> Result<SyncTask, SyncError> {
        let psk = Psk::load(&ha.psk_file)?;
        let mut ports = Vec::new();
        for link in &ha.links {
            let spec = profile
                .port(&link.port)
                .ok_or_else(|| SyncError::NoPort(link.port.clone()))?;
            let addressing = Addressing {
                address: Ipv4Prefix::new(link.address, link.prefix_len)
                    .ok_or_else(|| SyncError::NoPort(link.port.clone()))?,
                peer: link.peer,
                port: ha.sync_port,
            };
            ports.push(HaPort::start(&link.port, spec, &addressing, pool)?);
        }
        let mtu = ports
            .iter()
            .map(|p| usize::from(p.mtu()))
            .min()
            .unwrap_or(1500);
        let mut cfg = EngineConfig::new(ha.serial, epoch, ha.peer_serial, ports.len(), mtu);
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        cfg.flush_delay_ns = ns(ha.sync.flush_delay);
        cfg.flush_updates = ha.sync.flush_updates;
        cfg.digest_interval_ns = ns(ha.sync.digest_interval);
        cfg.bulk_timeout_ns = ns(ha.sync.bulk_timeout);
        cfg.heartbeat_interval_ns = ns(ha.sync.heartbeat_interval);
        cfg.link_dead_ns = ns(ha.sync.link_dead);
        cfg.interfaces = u8::try_from(interfaces).unwrap_or(u8::MAX);
        cfg.firmware = firmware();
        let engine = Engine::new(cfg, psk, events, inbound, now_ns)?;
        let election = ElectionTask::new(
            ha,
            ns(ha.sync.link_dead),
            inputs.signals,
            inputs.health,
            inputs.force,
            inputs.params,
            firmware(),
            now_ns,
        );
        tracing::info!(
            "sync: {} with partner {} over {} on UDP port {}, MTU {mtu}",
            ha.serial_str(),
            ha.peer_serial_str(),
            ha.links
                .iter()
                .map(|l| format!("{} {} → {}", l.port, l.address, l.peer))
                .collect::<Vec<_>>()
                .join(", "),
            ha.sync_port
        );
        Ok(SyncTask {
            engine,
            names: ha.links.iter().map(|l| l.port.clone()).collect(),
            peer: ha.peer_serial_str().to_owned(),
            ports,
            published: Arc::default(),
            next_publish_ns: now_ns,
            election,
            relay: inputs.relay,
            addresses: ha.links.iter().map(|l| l.address.to_string()).collect(),
        })
    }

    /// What the control plane reads.
    pub fn published(&self) -> Arc<Mutex<Published>> {
        Arc::clone(&self.published)
    }

    /// One round at `now_ns`; returns how much work it found. The HA ports
    /// are read first, then the election decides, then the engine sends
    /// (heartbeats first): a heartbeat is answered in the same round.
    pub fn round(&mut self, now_ns: u64) -> usize {
        let mut work = 0;
        let engine = &mut self.engine;
        for (i, port) in self.ports.iter_mut().enumerate() {
            work += port.poll(now_ns, &mut |d| engine.receive(now_ns, i, d));
        }
        self.election.round(now_ns, &mut self.engine);
        self.relay.round(&mut self.engine);
        let ports = &mut self.ports;
        work += self.engine.poll(now_ns, &mut |link, d| {
            if let Some(p) = ports.get_mut(link) {
                // A refusal is counted by the port; the stream retransmits.
                let _ = p.send(now_ns, d);
            }
        });
        while let Some(n) = self.engine.take_notice() {
            self.log(n);
        }
        if now_ns >= self.next_publish_ns {
            self.next_publish_ns = now_ns.saturating_add(PUBLISH_EVERY_NS);
            self.publish(now_ns);
        }
        work
    }

    fn link_name(&self, link: usize) -> &str {
        self.names.get(link).map_or("?", String::as_str)
    }

    fn log(&self, n: Notice) {
        match n {
            Notice::PeerEpoch { old: None, new } => {
                tracing::info!(target: HA_LOG, "sync: partner {} found (boot epoch {new:016x})", self.peer);
            }
            Notice::PeerEpoch {
                old: Some(old),
                new,
            } => tracing::warn!(
                target: HA_LOG,
                "sync: partner {} restarted (boot epoch {old:016x} → {new:016x}): what it sent before is dropped, its table asked for again",
                self.peer
            ),
            Notice::Link { link, from, to } => {
                let line = format!(
                    "sync: HA link {} {} → {}",
                    self.link_name(link),
                    from.name(),
                    to.name()
                );
                // Coming up (at boot, after a repair) is news; losing a
                // direction is an alarm.
                if from == LinkState::Up || to == LinkState::Down {
                    tracing::warn!(target: HA_LOG, "{line}");
                } else {
                    tracing::info!(target: HA_LOG, "{line}");
                }
            }
            Notice::StreamMoved { from, to } => tracing::warn!(
                target: HA_LOG,
                "sync: the stream moved from HA link {} to {}",
                self.link_name(from),
                self.link_name(to)
            ),
            Notice::Version { link, version } => tracing::error!(
                target: HA_LOG,
                "sync: a datagram of protocol version {version} on HA link {} refused (this unit speaks {}); the partner runs other firmware",
                self.link_name(link),
                syncd::wire::VERSION
            ),
            Notice::BulkRequested { retry: false } => {
                tracing::info!(target: HA_LOG, "sync: asked {} for its whole table", self.peer);
            }
            Notice::BulkRequested { retry: true } => tracing::warn!(
                target: HA_LOG,
                "sync: the bulk from {} did not end in time; asked again",
                self.peer
            ),
            Notice::BulkReceived => {
                tracing::info!(target: HA_LOG, "sync: bulk from {} received", self.peer)
            }
            Notice::BulkSent => {
                tracing::info!(target: HA_LOG, "sync: bulk sent to {} and installed", self.peer)
            }
            Notice::DigestMismatch {
                shard,
                theirs,
                ours,
                refused: false,
            } => tracing::warn!(
                target: HA_LOG,
                "sync: shard {shard} differs from {} ({} entries there, {} here): asked for it again",
                self.peer,
                theirs.count,
                ours.count
            ),
            Notice::DigestMismatch {
                shard,
                theirs,
                ours,
                refused: true,
            } => tracing::warn!(
                target: HA_LOG,
                "sync: shard {shard} differs from {} ({} entries there, {} here) by records this unit refused (see sync.unknown_interface, worker{shard}.sync_table_full): not asked for again",
                self.peer,
                theirs.count,
                ours.count
            ),
            Notice::UnknownInterface { iface } => tracing::warn!(
                target: HA_LOG,
                "sync: a connection on interface {iface}, which this unit does not have, was not installed"
            ),
            Notice::GaveUp { shards } => tracing::warn!(
                target: HA_LOG,
                "sync: {} did not acknowledge a datagram; its shards ({shards:#x}) are sent again",
                self.peer
            ),
            Notice::Lost { datagrams } => tracing::warn!(
                target: HA_LOG,
                "sync: {datagrams} datagram(s) from {} were lost for good; its resync follows",
                self.peer
            ),
            Notice::WorkersDiffer { ours, theirs } => tracing::warn!(
                target: HA_LOG,
                "sync: {} runs {theirs} workers, this unit {ours}: tables are compared and resent whole",
                self.peer
            ),
        }
    }

    fn publish(&self, now_ns: u64) {
        let mut counters = Vec::new();
        self.engine.counters(now_ns, &mut counters);
        for p in &self.ports {
            p.counters(&mut counters);
        }
        self.election.counters(now_ns, &mut counters);
        self.relay.counters(&mut counters);
        let st = self.engine.status(now_ns);
        let status = self.status_text(&st, now_ns);
        let mode = self.election.mode_text(now_ns);
        let ha = self.snapshot(&st, now_ns);
        if let Ok(mut p) = self.published.try_lock() {
            p.counters = counters;
            p.status = status;
            p.mode = mode;
            p.ha = Some(ha);
        }
    }

    /// The view `hainfo` shows, times in Unix seconds.
    fn snapshot(&self, st: &Status, now_ns: u64) -> HaSnapshot {
        let unix_now = crate::node::unix_now();
        let at = |ns: u64| unix_now.saturating_sub(now_ns.saturating_sub(ns) / 1_000_000_000);
        let e = self.election.election();
        let waiting = matches!(
            st.bulk_in,
            IncomingState::Wanted { .. } | IncomingState::Receiving { .. }
        );
        let node = HaNode {
            mode: e.role().name().to_owned(),
            mode_since: at(e.since_ns()),
            reason: e.reason().text().to_owned(),
            forced: e.forced().map(|r| r.name().to_owned()),
            quality: self.election.quality().0,
            priority: e.priority(),
            state: if waiting && st.peer_epoch.is_some() {
                "waiting for the partner's table".into()
            } else {
                "ready".into()
            },
            links: st
                .links
                .iter()
                .enumerate()
                .map(|(i, (state, since))| LinkStatus {
                    port: self.link_name(i).to_owned(),
                    address: self.addresses.get(i).cloned().unwrap_or_default(),
                    ok: *state == LinkState::Up,
                    state: state.name().to_owned(),
                    since: at(*since),
                })
                .collect(),
            partner_config_revision: st.peer.map(|h| format!("{:08x}", h.config_revision)),
        };
        let bulk = match st.bulk_in {
            IncomingState::Idle => "idle".to_owned(),
            IncomingState::Wanted { .. } => "wanted".to_owned(),
            IncomingState::Receiving { .. } => "receiving".to_owned(),
            IncomingState::Done { at_ns } => format!(
                "received {} s ago",
                now_ns.saturating_sub(at_ns) / 1_000_000_000
            ),
        };
        let differ: Vec<String> = st
            .digests
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == DigestState::Mismatch)
            .map(|(i, _)| i.to_string())
            .collect();
        let digests = if !differ.is_empty() {
            format!("differ: shards {}", differ.join(", "))
        } else if st.digests.contains(&DigestState::Match) {
            "in sync".to_owned()
        } else {
            "not compared yet".to_owned()
        };
        HaSnapshot {
            node,
            bulk,
            digests,
        }
    }

    fn status_text(&self, st: &Status, now_ns: u64) -> String {
        let mut t = String::new();
        let secs = |ns: u64| now_ns.saturating_sub(ns) / 1_000_000_000;
        let _ = writeln!(
            t,
            "partner {}: {}",
            self.peer,
            match st.peer_epoch {
                Some(e) => format!("boot epoch {e:016x}"),
                None => "not heard yet".into(),
            }
        );
        let e = self.election.election();
        let _ = writeln!(
            t,
            "role: {} ({}) for {} s{}; quality {}%",
            e.role().name(),
            e.reason().text(),
            secs(e.since_ns()),
            e.forced()
                .map(|r| format!(", forced {}", r.name()))
                .unwrap_or_default(),
            self.election.quality().percent()
        );
        let _ = writeln!(t, "role changes: {}", e.changes());
        if let Some(h) = &st.peer {
            let heard = self.engine.partner().map_or(0, |(_, at)| at);
            let _ = writeln!(
                t,
                "heartbeat: {}, quality {}.{:02} %, priority {}, {}, bulk {}, {} workers, firmware {}.{}.{}, configuration {}, heard {} ms ago",
                if h.active { "active" } else { "passive" },
                h.quality / 100,
                h.quality % 100,
                h.priority,
                match h.forced {
                    Forced::No => "not forced",
                    Forced::Active => "forced active",
                    Forced::Passive => "forced passive",
                },
                if h.bulk_done { "done" } else if h.wants_bulk { "wanted" } else { "not done" },
                h.workers,
                h.firmware >> 16,
                (h.firmware >> 8) & 0xff,
                h.firmware & 0xff,
                h.config_revision,
                now_ns.saturating_sub(heard) / 1_000_000
            );
        }
        let _ = writeln!(t, "in sync: {}", if st.in_sync() { "yes" } else { "no" });
        for (i, (state, since)) in st.links.iter().enumerate() {
            let stream = if i == st.stream_link { " (stream)" } else { "" };
            let _ = writeln!(
                t,
                "link {} {}{stream}: {} for {} s",
                i,
                self.link_name(i),
                state.name(),
                secs(*since)
            );
        }
        let _ = writeln!(t, "bulk in: {:?}", st.bulk_in);
        let _ = writeln!(
            t,
            "bulk out: {}",
            if st.bulk_out { "in progress" } else { "idle" }
        );
        let _ = writeln!(t, "digests: {:?}", st.digests);
        let _ = writeln!(
            t,
            "stream out: {} unacknowledged; stream in: {}",
            st.sender.unacked,
            match st.receiver.gap_open_for_ns {
                Some(g) => format!("gap open for {} ms", g / 1_000_000),
                None => "no gap".into(),
            }
        );
        let _ = writeln!(t, "key age: {} s", st.key_age_ns / 1_000_000_000);
        t
    }

    /// Puts the task where the profile says: on its `cores.sync` lcore (until
    /// `stop`), else on the main lcore.
    pub fn place(
        self,
        profile: &Profile,
        clock: Clock,
        stop: &Arc<AtomicBool>,
    ) -> Result<Placed, SyncError> {
        let published = self.published();
        let Some(core) = profile.cores.sync else {
            return Ok(Placed {
                on_main: Some(self),
                on_lcore: None,
                published,
            });
        };
        let idle = match profile.idle {
            hw_profiles::Idle::BusyPoll => None,
            hw_profiles::Idle::Adaptive { .. } => Some(crate::main_lcore::MAX_IDLE_SLEEP),
        };
        let handle = self
            .run_on(LcoreId(core), clock, Arc::clone(stop), idle)
            .map_err(|e| SyncError::Lcore(core, e))?;
        Ok(Placed {
            on_main: None,
            on_lcore: Some(handle),
            published,
        })
    }

    /// Runs the task on its own lcore (the profile's `cores.sync`) until
    /// `stop` is set, then closes the HA ports. An idle round sleeps up to
    /// `idle_sleep` (adaptive profiles) or polls again at once (`None`).
    pub fn run_on(
        mut self,
        core: LcoreId,
        clock: Clock,
        stop: Arc<AtomicBool>,
        idle_sleep: Option<Duration>,
    ) -> Result<LaunchHandle, DpdkError> {
        lcore::launch(core, move || {
            while !stop.load(Ordering::Relaxed) {
                if self.round(clock.now_ns()) == 0 {
                    if let Some(d) = idle_sleep {
                        std::thread::sleep(d);
                    }
                }
            }
            self.close();
            0
        })
    }

    /// Closes the HA ports (before the unit's pool and EAL go).
    pub fn close(self) {
        for p in self.ports {
            let name = p.name().to_owned();
            if let Err(e) = p.close() {
                tracing::warn!("HA link {name}: {e}");
            }
        }
    }
}
