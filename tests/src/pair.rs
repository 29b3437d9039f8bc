//! [`PairLab`]: two units, A (active) and B (passive), their HA links running
//! through a middle namespace where a test can impair them, a Linux client
//! and a Linux server on A's data ports. The one lab helper for every
//! two-unit test: synchronisation now, failover and the pair demo later.
//!
//! ```text
//!  ┌ client ┐      ┌─── unit A ───┐      ┌──────────── hamid ────────────┐      ┌─── unit B ───┐
//!  │ eth0 ──┼─veth─┼─ data0       │      │                               │      │ data0 ─ veth │
//!  └────────┘      │         ha0 ─┼─veth─┼─ a-ha0 ─ br-ha0 ─ b-ha0 ──────┼─veth─┼─ ha0         │
//!  ┌ server ┐      │         ha1 ─┼─veth─┼─ a-ha1 ─ br-ha1 ─ b-ha1 ──────┼─veth─┼─ ha1         │
//!  │ eth0 ──┼─veth─┼─ data1       │      │ nftables bridge table: loss,  │      │ data1 ─ veth │
//!  └────────┘      └──────────────┘      │ one-way cuts; or a relay      │      └──────────────┘
//!                                        └───────────────────────────────┘
//! ```
//!
//! A boots the lab profile (`lab.ron`, or `$TANDEM_LAB_PROFILE`: the sync
//! protocol runs on its main lcore) and B `lab-sync.ron` (a sync lcore of its
//! own), so every pair exercises both; [`PairBuilder::profile`] and
//! [`PairBuilder::profile_of`] choose others.
//!
//! Addresses are [`crate::plan`]'s (the client, the server and unit A as in
//! the one-unit lab; unit B's own data addresses and the HA links in
//! [`plan::pair`]). Both units boot `tandemd` with an `ha` section: serials
//! `TNDM-LAB-A` / `TNDM-LAB-B`, roles Active / Passive, one pre-shared key
//! file (mode 0600, in the lab directory), the main link 198.18.254.0/30 on
//! `ha0` and the backup 198.18.254.4/30 on `ha1`, the default sync port.
//!
//! # Data path
//!
//! [`DataWiring::ActiveOnly`] (the only one for now): A's `data0` and `data1`
//! go to the client and the server; B's data ports are veth pairs whose other
//! end stays in B's namespace (up, so the ports have carrier, but nothing
//! is there). A switch between both units and the hosts, for takeovers, is
//! a further [`DataWiring`]: the builder wires the data path in one place
//! ([`PairBuilder::build`] calls `wire_data`), and nothing else depends on it.
//!
//! # Impairing the HA links
//!
//! The unit's ports are DPDK `net_af_packet` sockets, which see a frame
//! before the receiving veth's own ingress hooks: a drop rule on a unit's
//! veth does not reach the unit. So each link runs through a Linux bridge in
//! `hamid`, and an nftables `bridge` table there drops frames in its forward
//! chain: [`PairLab::set_loss`] (random loss, `numgen random mod 100 < P`,
//! both directions), [`PairLab::cut`] (everything one way, matched on the
//! bridge port the frame came in by), [`PairLab::restore`]; and
//! [`PairLab::down`] sets the link's `hamid` ends down (the units' ports lose
//! carrier). Reordering needs delay, which this kernel cannot give (no
//! netem): [`PairLab::relay`] takes a link's ends off its bridge and puts a
//! small seeded relay between them (`scripts/ha_relay.py`, AF_PACKET) that
//! holds some frames back so that later ones overtake them, and drops some
//! if asked; [`PairLab::relay_stats`] says how many it reordered, and
//! [`PairLab::restore`] puts the bridge back.
//!
//! # Units
//!
//! Each unit runs in its namespace as a [`Tandemd`] (the pid held is the
//! daemon's own): [`PairLab::start`], [`PairLab::stop`] (SIGTERM),
//! [`PairLab::kill`] (SIGKILL), [`PairLab::restart`] and
//! [`PairLab::kill_and_restart`] — every start is a new process, so a new boot
//! epoch, as a real reboot. Each unit has its directory in the lab directory
//! (`a/`, `b/`: `unit.ron`, `rules.ron`, `control.sock`, `counters`, a log
//! pair per boot `tandemd-1.out/.err`, ...). [`PairLab::ctl`] runs
//! `tandemctl` on a unit's control socket; [`PairLab::conns`],
//! [`PairLab::sync_status`] and [`PairLab::counters`] read its answers.
//!
//! # Cleanup
//!
//! As the one-unit [`crate::Lab`]: names unique per lab (namespaces
//! `tdm-<pid>-<n>-<role>`, each unit's EAL file prefix is its namespace's
//! name), and everything removed on drop, also when a test panics: both
//! daemons first (with what a killed unit leaves: its EAL runtime directory
//! and lock files), then the namespaces (their veths, bridges and nftables
//! go with them), then the directory.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::command::{self, Output};
use crate::conns::{self, Entry, TableDiff};
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::lab::{RulesSource, CTL_TIMEOUT};
use crate::netns::Netns;
use crate::plan::{self, pair as addr, DATA_PORTS, HA_PORTS};
use crate::process::Proc;
use crate::tandemd::{self, Launch, Tandemd};
use crate::veth;
use crate::wait::poll_until_detail;

/// The rules both units start with (unless [`PairBuilder::rules`] says
/// otherwise): TCP to the server's [`SYNCED_PORT`] (label `held`) and
/// [`UNSYNCED_PORT`] (`sync: false`, label `unsynced`), TCP 80, UDP
/// [`UDP_PORT`], the failover probe's UDP 7001 and TCP 7002
/// ([`crate::failover`]), ICMP echo requests; all in on `data0`; block the rest.
pub const PAIR_RULES: &str = r#"// The pair lab: the client behind data0, the server 198.18.2.2 behind data1.
(
    default: Block,
    rules: [
        (action: Pass, in: Some("data0"), proto: Some(Tcp), dst: Some("198.18.2.2"),
         dst_ports: Some("5001"), label: Some("held")),
        (action: Pass, in: Some("data0"), proto: Some(Tcp), dst: Some("198.18.2.2"),
         dst_ports: Some("5002"), sync: false, label: Some("unsynced")),
        (action: Pass, in: Some("data0"), proto: Some(Tcp), dst: Some("198.18.2.2"),
         dst_ports: Some("80"), label: Some("web")),
        (action: Pass, in: Some("data0"), proto: Some(Udp), dst: Some("198.18.2.2"),
         dst_ports: Some("5353"), label: Some("udp")),
        (action: Pass, in: Some("data0"), proto: Some(Udp), dst: Some("198.18.2.2"),
         dst_ports: Some("7001"), label: Some("probe")),
        (action: Pass, in: Some("data0"), proto: Some(Tcp), dst: Some("198.18.2.2"),
         dst_ports: Some("7002"), label: Some("stream")),
        (action: Pass, proto: Some(Icmp), icmp_type: Some(8), label: Some("ping")),
    ],
)
"#;

/// The server's TCP port whose connections [`PAIR_RULES`] synchronise.
pub const SYNCED_PORT: u16 = 5001;
/// The server's TCP port of [`PAIR_RULES`]' rule with `sync: false`.
pub const UNSYNCED_PORT: u16 = 5002;
/// The server's UDP port [`PAIR_RULES`] pass.
pub const UDP_PORT: u16 = 5353;

/// The name of the nftables table in `hamid`.
const NFT_TABLE: &str = "tandem_ha";

/// One unit of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Serial `TNDM-LAB-A`, configured Active, on the client and server.
    A,
    /// Serial `TNDM-LAB-B`, configured Passive.
    B,
}

impl Unit {
    /// Both, A first.
    pub const BOTH: [Unit; 2] = [Unit::A, Unit::B];

    fn index(self) -> usize {
        match self {
            Unit::A => 0,
            Unit::B => 1,
        }
    }

    /// `a` or `b`: its directory, its end's prefix in `hamid`.
    pub fn letter(self) -> &'static str {
        match self {
            Unit::A => "a",
            Unit::B => "b",
        }
    }

    /// Its serial.
    pub fn serial(self) -> &'static str {
        match self {
            Unit::A => addr::SERIAL_A,
            Unit::B => addr::SERIAL_B,
        }
    }

    /// The other one.
    pub fn partner(self) -> Unit {
        match self {
            Unit::A => Unit::B,
            Unit::B => Unit::A,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::A => "unit A",
            Unit::B => "unit B",
        })
    }
}

/// One way along an HA link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// What A sends to B.
    AToB,
    /// What B sends to A.
    BToA,
}

impl Direction {
    /// The sending unit.
    pub fn from(self) -> Unit {
        match self {
            Direction::AToB => Unit::A,
            Direction::BToA => Unit::B,
        }
    }
}

/// How the data ports are wired (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DataWiring {
    /// A's data ports to the client and the server; B's are dead ends.
    #[default]
    ActiveOnly,
    /// A switch namespace with two Linux bridges: the client and both
    /// units' `data0` on one, the server and both units' `data1` on the
    /// other — the HA pair as it is cabled, for takeovers.
    Switched,
}

/// What is done to one HA link in `hamid` now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Impairment {
    loss_percent: u8,
    cut: Option<Direction>,
}

/// What [`PairLab::relay`] does to a link's frames (each way, each frame
/// decided on its own from the seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relay {
    /// Frames held back [`Relay::delay_ms`] (the ones behind overtake them), %.
    pub reorder_percent: f64,
    /// How long a held frame waits, ms.
    pub delay_ms: f64,
    /// Frames dropped, %.
    pub loss_percent: f64,
    /// The random generator's seed: the same seed, the same decisions.
    pub seed: u64,
}

impl Default for Relay {
    /// 20 % of the frames held back 10 ms, none lost, seed 1.
    fn default() -> Self {
        Relay {
            reorder_percent: 20.0,
            delay_ms: 10.0,
            loss_percent: 0.0,
            seed: 1,
        }
    }
}

/// What a relay did so far ([`PairLab::relay_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Frames sent from A to B.
    pub a_to_b: u64,
    /// Frames sent from B to A.
    pub b_to_a: u64,
    /// Frames held back.
    pub held: u64,
    /// Frames sent after a later one of the same direction: the reordering
    /// that happened.
    pub overtaken: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames the kernel refused to send (an end down).
    pub send_errors: u64,
}

/// A relay running on a link.
struct RelayProc {
    proc: Proc,
    stats: PathBuf,
}

/// Builds a [`PairLab`].
#[derive(Debug, Clone)]
pub struct PairBuilder {
    tandemd: Option<PathBuf>,
    profiles: [Option<PathBuf>; 2],
    rules: RulesSource,
    sync_tuning: Option<String>,
    election: Option<String>,
    data: DataWiring,
    start: bool,
    ready_timeout: Duration,
    narrate: bool,
    shared: bool,
}

impl Default for PairBuilder {
    fn default() -> Self {
        PairBuilder {
            tandemd: None,
            profiles: [None, None],
            rules: RulesSource::Text(PAIR_RULES.to_string()),
            sync_tuning: None,
            election: None,
            data: DataWiring::default(),
            start: true,
            ready_timeout: tandemd::READY_TIMEOUT,
            narrate: false,
            shared: false,
        }
    }
}

impl PairBuilder {
    /// The virtual addresses and the static route in a shared configuration
    /// file of each unit (`shared.ron`, `tandemd --shared`), as `hasync`
    /// synchronises it, instead of in `unit.ron`.
    pub fn shared_file(mut self, on: bool) -> Self {
        self.shared = on;
        self
    }

    /// The `tandemd` binary (default: [`tandemd::locate`]).
    pub fn tandemd(mut self, path: impl Into<PathBuf>) -> Self {
        self.tandemd = Some(path.into());
        self
    }

    /// The hardware profile of both units (default: see
    /// [`PairBuilder::profile_of`]).
    pub fn profile(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.profiles = [Some(path.clone()), Some(path)];
        self
    }

    /// The hardware profile of one unit. By default A boots
    /// [`tandemd::lab_profile`] (`lab.ron`: synchronisation on the main
    /// lcore, between its other tasks) and B [`sync_core_profile`]
    /// (`lab-sync.ron`: a sync lcore of its own), so a pair exercises both.
    pub fn profile_of(mut self, unit: Unit, path: impl Into<PathBuf>) -> Self {
        self.profiles[unit.index()] = Some(path.into());
        self
    }

    /// The rules both units start with (default [`PAIR_RULES`]); each unit
    /// gets its own copy (`a/rules.ron`, `b/rules.ron`).
    pub fn rules(mut self, rules: impl Into<RulesSource>) -> Self {
        self.rules = rules.into();
        self
    }

    /// The `ha` section's `sync` field, e.g. `"heartbeat_interval_ms: 20, link_dead_ms: 60"`
    /// (default: none, the defaults of `mgmt::config::ha`).
    pub fn sync_tuning(mut self, fields: &str) -> Self {
        self.sync_tuning = Some(fields.to_string());
        self
    }

    /// The `ha` section's `election` fields both units share, e.g.
    /// `"listen_ms: 500"`. Without it, the roles are forced (A active, B
    /// passive): a synchronisation test that never fails over. With it, the
    /// roles are elected (equal priorities: A's lower serial wins a
    /// simultaneous start) and, on a [`DataWiring::Switched`] lab, each unit
    /// probes the other's data addresses.
    pub fn election(mut self, fields: &str) -> Self {
        self.election = Some(fields.to_string());
        self
    }

    /// How the data ports are wired (default [`DataWiring::ActiveOnly`]).
    pub fn data(mut self, wiring: DataWiring) -> Self {
        self.data = wiring;
        self
    }

    /// Whether [`PairBuilder::build`] starts both units (default `true`);
    /// without, start them with [`PairLab::start`].
    pub fn start(mut self, start: bool) -> Self {
        self.start = start;
        self
    }

    /// How long each `tandemd` gets to log `ready` (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Print each step on stdout, for people watching (a demo).
    pub fn narrate(mut self, on: bool) -> Self {
        self.narrate = on;
        self
    }

    fn say(&self, text: impl fmt::Display) {
        if self.narrate {
            println!("{text}");
        }
    }

    /// Creates the namespaces, wires them, writes the files and (unless told
    /// not to) starts both units.
    pub fn build(self) -> Result<PairLab> {
        let binary = match &self.tandemd {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(Error::TandemdMissing {
                    path: p.clone(),
                    why: "as given".to_string(),
                })
            }
            None => tandemd::locate()?,
        };
        let profiles = [
            match &self.profiles[0] {
                Some(p) => p.clone(),
                None => tandemd::lab_profile()?,
            },
            match &self.profiles[1] {
                Some(p) => p.clone(),
                None => sync_core_profile()?,
            },
        ];
        let rules_text = match &self.rules {
            RulesSource::Text(t) => t.clone(),
            RulesSource::File(f) => std::fs::read_to_string(f).map_err(|source| Error::Io {
                context: "reading the rules file for the lab",
                path: f.clone(),
                source,
            })?,
        };
        let dir = tempfile::Builder::new()
            .prefix("tandem-pair-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "creating the lab directory",
                path: std::env::temp_dir(),
                source,
            })?;

        // Locals are dropped in reverse order if a step fails: nothing leaks.
        let client = Netns::new("cli")?;
        let server = Netns::new("srv")?;
        let ns_a = Netns::new("ua")?;
        let ns_b = Netns::new("ub")?;
        let hamid = Netns::new("hamid")?;
        for ns in [&client, &server, &ns_a, &ns_b, &hamid] {
            // IPv6 off before the interfaces exist, so they inherit it.
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        }
        self.say(format_args!(
            "namespaces: client {}, server {}, unit A {}, unit B {}, HA links {}",
            client.name(),
            server.name(),
            ns_a.name(),
            ns_b.name(),
            hamid.name()
        ));

        let switch = wire_data(self.data, &client, &server, &ns_a, &ns_b)?;
        self.say(match self.data {
            DataWiring::ActiveOnly => {
                "data: client eth0 <-> A data0, A data1 <-> server eth0; B data0, data1 dead ends"
            }
            DataWiring::Switched => {
                "data: client eth0, A data0, B data0 on br-client; server eth0, A data1, B data1 on br-server (switch namespace)"
            }
        });
        for (i, port) in HA_PORTS.iter().enumerate() {
            let bridge = bridge_name(i);
            hamid.ip(&["link", "add", &bridge, "type", "bridge", "stp_state", "0"])?;
            for unit in Unit::BOTH {
                let ns = if unit == Unit::A { &ns_a } else { &ns_b };
                let end = mid_end(unit, i);
                veth::pair(ns, port, &hamid, &end)?;
                hamid.ip(&["link", "set", &end, "master", &bridge])?;
            }
            hamid.ip(&["link", "set", &bridge, "up"])?;
        }
        hamid.exec_ok(["nft", "-f", &write_nft_setup(dir.path())?])?;
        self.say(format_args!(
            "HA links: A ha0 <-> {} <-> B ha0 (main), A ha1 <-> {} <-> B ha1 (backup), nftables table bridge {NFT_TABLE} in hamid",
            bridge_name(0),
            bridge_name(1)
        ));

        let psk_hex = random_hex(32)?;
        let psk = dir.path().join("cluster.key");
        write_secret(&psk, &format!("{psk_hex}\n"))?;

        let mut slots = Vec::new();
        for (unit, ns) in [(Unit::A, ns_a), (Unit::B, ns_b)] {
            let udir = dir.path().join(unit.letter());
            std::fs::create_dir(&udir).map_err(|source| Error::Io {
                context: "creating a unit's directory",
                path: udir.clone(),
                source,
            })?;
            let config = udir.join("unit.ron");
            let text = unit_config(
                unit,
                &psk,
                self.sync_tuning.as_deref(),
                self.election.as_deref(),
                self.data == DataWiring::Switched,
            );
            let shared = if self.shared {
                let (own, shared) = split_shared(&text);
                write_file(&config, &own)?;
                let path = udir.join("shared.ron");
                write_file(&path, &shared)?;
                Some(path)
            } else {
                write_file(&config, &text)?;
                None
            };
            let rules = udir.join("rules.ron");
            write_file(&rules, &rules_text)?;
            let launch = Launch {
                binary: binary.clone(),
                profile: profiles[unit.index()].clone(),
                config,
                file_prefix: ns.name().to_string(),
                counters: udir.join("counters"),
                logs: udir.join("tandemd-0"),
                control: udir.join("control.sock"),
                rules: Some(rules),
                ha_log: Some(udir.join("ha.log")),
                state_dir: udir.join("state"),
                prometheus: udir.join("tandem.prom"),
                shared,
            };
            slots.push(Slot {
                daemon: None,
                ns,
                launch,
                boots: 0,
                earlier: Vec::new(),
            });
        }
        let mut slots = slots.into_iter();
        let (Some(a), Some(b)) = (slots.next(), slots.next()) else {
            unreachable!("two units were made")
        };
        let mut lab = PairLab {
            units: [a, b],
            relays: [None, None],
            hamid,
            switch,
            client,
            server,
            impairments: [Impairment::default(); 2],
            psk_hex,
            psk,
            ready_timeout: self.ready_timeout,
            dir,
        };
        if self.start {
            lab.start_both()?;
            self.say(format_args!(
                "units ready: A tandemd pid {}, B tandemd pid {}",
                lab.units[0].daemon.as_ref().map_or(0, Tandemd::pid),
                lab.units[1].daemon.as_ref().map_or(0, Tandemd::pid)
            ));
        }
        Ok(lab)
    }
}

/// `hw-profiles/profiles/lab-sync.ron` in this workspace: the lab profile
/// with a sync lcore of its own (folded onto CPU 0).
pub fn sync_core_profile() -> Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles/profiles/lab-sync.ron");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::ProfileMissing(path))
    }
}

/// The switch's bridge towards the client (`data0`) and the server (`data1`).
pub const SWITCH_BRIDGES: [&str; 2] = ["br-client", "br-server"];

/// `unit`'s end of its data port `port` on the switch.
fn switch_end(unit: Unit, port: &str) -> String {
    format!("{}-{port}", unit.letter())
}

/// Wires the data ports and addresses the client and the server; returns
/// the switch's namespace, if the wiring has one.
fn wire_data(
    wiring: DataWiring,
    client: &Netns,
    server: &Netns,
    a: &Netns,
    b: &Netns,
) -> Result<Option<Netns>> {
    let mut switch = None;
    match wiring {
        DataWiring::ActiveOnly => {
            veth::pair(a, "data0", client, "eth0")?;
            veth::pair(a, "data1", server, "eth0")?;
            for port in DATA_PORTS {
                veth::pair(b, port, b, &format!("{port}end"))?;
            }
        }
        DataWiring::Switched => {
            let sw = Netns::new("sw")?;
            sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            for (bridge, (port, (host, host_end))) in SWITCH_BRIDGES.iter().zip(
                DATA_PORTS
                    .iter()
                    .zip([(client, "client"), (server, "server")]),
            ) {
                sw.ip(&["link", "add", bridge, "type", "bridge", "stp_state", "0"])?;
                veth::pair(host, "eth0", &sw, host_end)?;
                sw.ip(&["link", "set", host_end, "master", bridge])?;
                for (unit, ns) in [(Unit::A, a), (Unit::B, b)] {
                    let end = switch_end(unit, port);
                    veth::pair(ns, port, &sw, &end)?;
                    sw.ip(&["link", "set", &end, "master", bridge])?;
                }
                sw.ip(&["link", "set", bridge, "up"])?;
            }
            switch = Some(sw);
        }
    }
    let cidr = |ip: &str| format!("{ip}/{}", plan::PREFIX_LEN);
    client.ip(&["addr", "add", &cidr(plan::CLIENT_IP), "dev", "eth0"])?;
    client.ip(&["route", "add", "default", "via", plan::VIP0])?;
    server.ip(&["addr", "add", &cidr(plan::SERVER_IP), "dev", "eth0"])?;
    server.ip(&["route", "add", "default", "via", plan::VIP1])?;
    server.ip(&[
        "addr",
        "add",
        &format!("{}/32", plan::STATIC_TARGET),
        "dev",
        "lo",
    ])?;
    Ok(switch)
}

/// The bridge of HA link `link` in `hamid`.
fn bridge_name(link: usize) -> String {
    format!("br-ha{link}")
}

/// `unit`'s end of HA link `link` in `hamid` (a bridge port).
fn mid_end(unit: Unit, link: usize) -> String {
    format!("{}-ha{link}", unit.letter())
}

/// The nftables chain of HA link `link`.
fn nft_chain(link: usize) -> String {
    format!("link{link}")
}

/// The table: a forward chain sending each link's frames (by the bridge
/// ports they came in by) to that link's chain, empty until impaired.
fn write_nft_setup(dir: &Path) -> Result<String> {
    let mut text = format!("table bridge {NFT_TABLE} {{\n");
    for i in 0..HA_PORTS.len() {
        text.push_str(&format!("  chain {} {{\n  }}\n", nft_chain(i)));
    }
    text.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    for i in 0..HA_PORTS.len() {
        text.push_str(&format!(
            "    iifname {{ \"{}\", \"{}\" }} jump {}\n",
            mid_end(Unit::A, i),
            mid_end(Unit::B, i),
            nft_chain(i)
        ));
    }
    text.push_str("  }\n}\n");
    let path = dir.join("hamid.nft");
    write_file(&path, &text)?;
    Ok(path.display().to_string())
}

/// The `ha.sync` fields of a lab with forced roles when the builder names
/// none (see [`unit_config`]).
const FORCED_TUNING: &str = "link_dead_ms: 1000";

/// A unit's configuration: the one-unit lab's (with B's own data addresses)
/// and an `ha` section: forced roles without `election` fields, else
/// elected, probing the partner's data addresses when `probe`.
fn unit_config(
    unit: Unit,
    psk: &Path,
    tuning: Option<&str>,
    election: Option<&str>,
    probe: bool,
) -> String {
    let (d0, d1, role) = match unit {
        Unit::A => (plan::UNIT_DATA0_IP, plan::UNIT_DATA1_IP, "Active"),
        Unit::B => (addr::UNIT_B_DATA0_IP, addr::UNIT_B_DATA1_IP, "Passive"),
    };
    let (p0, p1) = match unit {
        Unit::A => (addr::UNIT_B_DATA0_IP, addr::UNIT_B_DATA1_IP),
        Unit::B => (plan::UNIT_DATA0_IP, plan::UNIT_DATA1_IP),
    };
    let forced = election.is_none();
    let election = match election {
        None => format!("        election: (forced: Some({role})),\n"),
        Some(fields) => {
            let probe = if probe {
                format!("probe: [\"{p0}\", \"{p1}\"], ")
            } else {
                String::new()
            };
            format!("        election: ({probe}{fields}),\n")
        }
    };
    let links: String = addr::HA_LINKS
        .iter()
        .zip(HA_PORTS)
        .map(|(&(a, b), port)| {
            let (mine, theirs) = if unit == Unit::A { (a, b) } else { (b, a) };
            format!(
                "            (port: \"{port}\", address: \"{mine}/{}\", peer: \"{theirs}\"),\n",
                addr::HA_PREFIX_LEN
            )
        })
        .collect();
    // Forced roles (the synchronisation tests): a link is down after 1 s of
    // silence, not the product's 30 ms, so that this shared machine's
    // scheduling delays do not flap the links under the tests' load.
    let tuning = tuning.or(forced.then_some(FORCED_TUNING));
    let sync = tuning
        .map(|t| format!("        sync: ({t}),\n"))
        .unwrap_or_default();
    format!(
        r#"(
    interfaces: [
        (port: "data0", address: "{d0}/{len}", virtual_ip: Some("{vip0}"), virtual_mac: Some("{vmac0}")),
        (port: "data1", address: "{d1}/{len}", virtual_ip: Some("{vip1}"), virtual_mac: Some("{vmac1}")),
    ],
    routes: [
        (prefix: "{sp}", via: "{sv}"),
    ],
    ha: Some((
        serial: "{serial}",
        peer_serial: "{peer}",
{election}        psk_file: "{psk}",
        sync_port: {port},
        links: [
{links}        ],
{sync}    )),
)
"#,
        len = plan::PREFIX_LEN,
        vip0 = plan::VIP0,
        vmac0 = plan::VMAC0,
        vip1 = plan::VIP1,
        vmac1 = plan::VMAC1,
        sp = plan::STATIC_PREFIX,
        sv = plan::STATIC_VIA,
        serial = unit.serial(),
        peer = unit.partner().serial(),
        psk = psk.display(),
        port = addr::SYNC_PORT,
    )
}

/// A unit configuration of [`unit_config`] split in two: the unit's own
/// part, and the shared file with the virtual addresses and the routes.
fn split_shared(text: &str) -> (String, String) {
    let virtuals = [(plan::VIP0, plan::VMAC0), (plan::VIP1, plan::VMAC1)];
    let mut own = text.to_string();
    for (ip, mac) in virtuals {
        own = own.replace(
            &format!(", virtual_ip: Some(\"{ip}\"), virtual_mac: Some(\"{mac}\")"),
            "",
        );
    }
    let routes = format!(
        "    routes: [\n        (prefix: \"{}\", via: \"{}\"),\n    ],\n",
        plan::STATIC_PREFIX,
        plan::STATIC_VIA
    );
    assert!(own.contains(&routes), "unit_config's routes moved: {own}");
    own = own.replace(&routes, "");
    let shared = format!(
        "// Shared by both units (tandemd --shared; hasync sends it to the partner).
(
    interfaces: [
        (port: \"data0\", virtual_ip: Some(\"{}\"), virtual_mac: Some(\"{}\")),
        (port: \"data1\", virtual_ip: Some(\"{}\"), virtual_mac: Some(\"{}\")),
    ],
{routes})
",
        plan::VIP0,
        plan::VMAC0,
        plan::VIP1,
        plan::VMAC1
    );
    (own, shared)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        context: "writing a lab file",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file only its owner may read (0600), as a key file must be.
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        context: "writing the pre-shared key file",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// `bytes` random bytes from the kernel, as lower-case hex.
fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|source| Error::Io {
            context: "reading random bytes",
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// One unit's namespace, files and daemon.
struct Slot {
    // Field order is drop order: the daemon before its namespace.
    daemon: Option<Tandemd>,
    ns: Netns,
    launch: Launch,
    boots: u32,
    /// The logs of earlier boots, for error messages.
    earlier: Vec<String>,
}

impl Slot {
    fn next_launch(&mut self) -> Launch {
        self.boots += 1;
        let mut launch = self.launch.clone();
        launch.logs = launch
            .logs
            .with_file_name(format!("tandemd-{}", self.boots));
        launch
    }

    /// Keeps the logs of a daemon that is gone, and drops it (which removes
    /// what a killed unit leaves behind).
    fn retire(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.earlier
                .push(format!("(boot {}, ended)\n{}", self.boots, d.logs()));
        }
    }
}

/// A running two-unit lab. See the module docs.
pub struct PairLab {
    // Field order is drop order (after `Drop::drop` stopped both daemons):
    // the units' namespaces, the relays, hamid, the hosts, the directory.
    units: [Slot; 2],
    relays: [Option<RelayProc>; 2],
    hamid: Netns,
    switch: Option<Netns>,
    client: Netns,
    server: Netns,
    impairments: [Impairment; 2],
    psk_hex: String,
    psk: PathBuf,
    ready_timeout: Duration,
    dir: tempfile::TempDir,
}

impl Drop for PairLab {
    fn drop(&mut self) {
        // Both at once: each gets its SIGTERM grace period in parallel.
        let [a, b] = &mut self.units;
        std::thread::scope(|s| {
            s.spawn(|| drop(a.daemon.take()));
            s.spawn(|| drop(b.daemon.take()));
        });
    }
}

impl PairLab {
    /// A builder.
    pub fn builder() -> PairBuilder {
        PairBuilder::default()
    }

    /// Both units running, with [`PAIR_RULES`].
    pub fn new() -> Result<PairLab> {
        PairLab::builder().build()
    }

    fn slot(&self, unit: Unit) -> &Slot {
        &self.units[unit.index()]
    }

    fn slot_mut(&mut self, unit: Unit) -> &mut Slot {
        &mut self.units[unit.index()]
    }

    /// The client's namespace (`eth0`, [`plan::CLIENT_IP`]).
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// The server's namespace (`eth0`, [`plan::SERVER_IP`]).
    pub fn server(&self) -> &Netns {
        &self.server
    }

    /// A unit's namespace (`data0`, `data1`, `ha0`, `ha1`).
    pub fn unit_ns(&self, unit: Unit) -> &Netns {
        &self.slot(unit).ns
    }

    /// The middle namespace the HA links run through.
    pub fn hamid(&self) -> &Netns {
        &self.hamid
    }

    /// Sets `unit`'s data port `port` (`data0`, `data1`) down or up at the
    /// switch: the unit's port loses or regains carrier, as a pulled cable.
    /// Only on a [`DataWiring::Switched`] lab.
    pub fn set_data_link(&self, unit: Unit, port: &str, up: bool) -> Result<()> {
        let sw = self.switch.as_ref().ok_or(Error::NoSwitch)?;
        sw.ip(&[
            "link",
            "set",
            &switch_end(unit, port),
            if up { "up" } else { "down" },
        ])?;
        Ok(())
    }

    /// The switch namespace of a [`DataWiring::Switched`] lab.
    pub fn switch(&self) -> Option<&Netns> {
        self.switch.as_ref()
    }

    /// Waits until exactly one unit is active (`ha.active`), and returns it.
    pub fn active_unit(&self, timeout: Duration) -> Result<Unit> {
        poll_until_detail("one unit active", timeout, || {
            let a = self.counters(Unit::A)?;
            let b = self.counters(Unit::B)?;
            Ok(match (a.value("ha.active"), b.value("ha.active")) {
                (1, 0) => Ok(Unit::A),
                (0, 1) => Ok(Unit::B),
                _ => Err(self.context()),
            })
        })
    }

    /// Waits until `active` is active and forwarding (`ha.active`,
    /// `ha.live`) and its partner passive, not forwarding, with the active's
    /// table (its bulk done).
    pub fn wait_roles(&self, active: Unit, timeout: Duration) -> Result<()> {
        let passive = active.partner();
        poll_until_detail(
            &format!("{active} active, {passive} passive"),
            timeout,
            || {
                let a = self.counters(active)?;
                let p = self.counters(passive)?;
                let st = self.sync_status(passive)?;
                let ok = a.value("ha.active") == 1
                    && a.value("ha.live") == 1
                    && p.value("ha.active") == 0
                    && p.value("ha.live") == 0
                    && st.bulk_done();
                Ok(if ok { Ok(()) } else { Err(self.context()) })
            },
        )
    }

    /// Waits until `unit` is active and forwarding (`ha.active`, `ha.live`),
    /// whatever its partner does (it may be gone).
    pub fn wait_active(&self, unit: Unit, timeout: Duration) -> Result<()> {
        poll_until_detail(&format!("{unit} active"), timeout, || {
            let c = self.counters(unit)?;
            let ok = c.value("ha.active") == 1 && c.value("ha.live") == 1;
            Ok(if ok { Ok(()) } else { Err(self.context()) })
        })
    }

    /// The names of all its namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        [
            &self.client,
            &self.server,
            &self.units[0].ns,
            &self.units[1].ns,
            &self.hamid,
        ]
        .into_iter()
        .chain(self.switch.as_ref())
        .map(|ns| ns.name().to_string())
        .collect()
    }

    /// `unit`'s HA event log (every boot appends to it).
    pub fn ha_log(&self, unit: Unit) -> String {
        std::fs::read_to_string(self.dir().join(unit.letter()).join("ha.log")).unwrap_or_default()
    }

    /// The lab's temporary directory, removed with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's pre-shared key, as the key file holds it (64 hex digits).
    pub fn psk_hex(&self) -> &str {
        &self.psk_hex
    }

    /// The key file both units read.
    pub fn psk_path(&self) -> &Path {
        &self.psk
    }

    /// A unit's configuration file.
    pub fn config_path(&self, unit: Unit) -> &Path {
        &self.slot(unit).launch.config
    }

    /// The unit's shared configuration file, when the lab has one
    /// ([`PairBuilder::shared_file`]).
    pub fn shared_path(&self, unit: Unit) -> Option<&Path> {
        self.slot(unit).launch.shared.as_deref()
    }

    /// The unit's Prometheus textfile (`tandemd --prometheus-file`).
    pub fn prometheus_path(&self, unit: Unit) -> &Path {
        &self.slot(unit).launch.prometheus
    }

    /// The unit's rules file.
    pub fn rules_path(&self, unit: Unit) -> &Path {
        self.slot(unit)
            .launch
            .rules
            .as_deref()
            .unwrap_or_else(|| Path::new(""))
    }

    /// How many times the unit was started.
    pub fn boots(&self, unit: Unit) -> u32 {
        self.slot(unit).boots
    }

    /// The running daemon of a unit.
    pub fn tandemd(&self, unit: Unit) -> Result<&Tandemd> {
        self.slot(unit)
            .daemon
            .as_ref()
            .ok_or(Error::NotTandemd("a unit that is not running"))
    }

    /// Whether the unit's daemon runs.
    pub fn is_running(&mut self, unit: Unit) -> bool {
        self.slot_mut(unit)
            .daemon
            .as_mut()
            .is_some_and(Tandemd::is_running)
    }

    fn start_both(&mut self) -> Result<()> {
        let timeout = self.ready_timeout;
        let launches = [self.units[0].next_launch(), self.units[1].next_launch()];
        let [a, b] = &self.units;
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| Tandemd::start(&a.ns, &launches[0], timeout));
            let hb = s.spawn(|| Tandemd::start(&b.ns, &launches[1], timeout));
            (join(ha), join(hb))
        });
        // A unit that started is kept even when the other failed: it is
        // stopped with the lab.
        match (ra, rb) {
            (Ok(a), Ok(b)) => {
                self.units[0].daemon = Some(a);
                self.units[1].daemon = Some(b);
                Ok(())
            }
            (Err(e), Ok(b)) => {
                self.units[1].daemon = Some(b);
                Err(e)
            }
            (Ok(a), Err(e)) => {
                self.units[0].daemon = Some(a);
                Err(e)
            }
            (Err(e), Err(f)) => Err(Error::Lab(format!("unit A: {e}\nunit B: {f}"))),
        }
    }

    /// Starts the unit (a new process: a new boot epoch) and waits until it
    /// says `ready`. An error when it runs already.
    pub fn start(&mut self, unit: Unit) -> Result<()> {
        if self.is_running(unit) {
            return Err(Error::Lab(format!("{unit} runs already")));
        }
        let timeout = self.ready_timeout;
        let slot = self.slot_mut(unit);
        slot.retire();
        let launch = slot.next_launch();
        slot.daemon = Some(Tandemd::start(&slot.ns, &launch, timeout)?);
        Ok(())
    }

    /// Stops the unit with SIGTERM (SIGKILL and an error if it does not
    /// exit in time) and returns its exit status.
    pub fn stop(&mut self, unit: Unit) -> Result<ExitStatus> {
        let slot = self.slot_mut(unit);
        let d = slot
            .daemon
            .as_mut()
            .ok_or(Error::NotTandemd("stopping a unit that is not running"))?;
        let status = d.stop();
        slot.retire();
        status
    }

    /// SIGKILLs the unit: nothing of it runs on, nothing of it is tidied by
    /// itself (the harness removes its runtime and lock files).
    pub fn kill(&mut self, unit: Unit) -> Result<()> {
        let slot = self.slot_mut(unit);
        let d = slot
            .daemon
            .as_mut()
            .ok_or(Error::NotTandemd("killing a unit that is not running"))?;
        d.kill();
        slot.retire();
        Ok(())
    }

    /// [`PairLab::stop`], then [`PairLab::start`]; the exit status of the
    /// stop.
    pub fn restart(&mut self, unit: Unit) -> Result<ExitStatus> {
        let status = self.stop(unit)?;
        self.start(unit)?;
        Ok(status)
    }

    /// [`PairLab::kill`], then [`PairLab::start`]: a crash and a reboot.
    pub fn kill_and_restart(&mut self, unit: Unit) -> Result<()> {
        self.kill(unit)?;
        self.start(unit)
    }

    /// Runs `tandemctl --socket <unit's control socket> args...` within
    /// [`CTL_TIMEOUT`]. A failure exit status is not an error: look at
    /// [`Output::success`].
    pub fn ctl(&self, unit: Unit, args: &[&str]) -> Result<Output> {
        let binary = tandemd::locate_tandemctl()?;
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("--socket")
            .arg(&self.slot(unit).launch.control)
            .args(args);
        command::run(&mut cmd, CTL_TIMEOUT)
    }

    /// [`PairLab::ctl`] that must succeed; its stdout.
    pub fn ctl_ok(&self, unit: Unit, args: &[&str]) -> Result<String> {
        let out = self.ctl(unit, args)?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(Error::Lab(format!("{unit}: {out}")))
        }
    }

    /// The unit's whole connection table (`tandemctl conns limit 1000000`).
    pub fn conns(&self, unit: Unit) -> Result<Vec<Entry>> {
        conns::parse(&self.ctl_ok(unit, &["conns", "limit", "1000000"])?)
            .map_err(|e| Error::Lab(format!("{unit}: {e}")))
    }

    /// The unit's counters, live (`tandemctl counters`).
    pub fn counters(&self, unit: Unit) -> Result<Counters> {
        let text = self.ctl_ok(unit, &["counters"])?;
        Counters::parse(&text).map_err(|(line, l)| {
            Error::Lab(format!(
                "{unit}: `tandemctl counters` line {line} is not `name value`: {l:?}"
            ))
        })
    }

    /// What the unit says of synchronisation (`tandemctl sync`).
    pub fn sync_status(&self, unit: Unit) -> Result<SyncStatus> {
        let text = self.ctl_ok(unit, &["sync"])?;
        SyncStatus::parse(&text).map_err(|e| Error::Lab(format!("{unit}: {e}")))
    }

    /// Polls `tandemctl sync` on the unit until `pred` holds (up to
    /// `timeout`); that status.
    pub fn wait_sync(
        &self,
        unit: Unit,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&SyncStatus) -> bool,
    ) -> Result<SyncStatus> {
        poll_until_detail(&format!("{unit}: {what}"), timeout, || {
            let st = self.sync_status(unit)?;
            Ok(if pred(&st) { Ok(st) } else { Err(st.text) })
        })
    }

    /// Polls both tables until the `passive`'s agrees with its partner's
    /// ([`conns::compare`] over the entries `keep` selects finds nothing);
    /// returns both (the active's first). The timeout error shows the last
    /// difference.
    pub fn wait_tables_match(
        &self,
        passive: Unit,
        timeout: Duration,
        keep: impl Fn(&Entry) -> bool,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let active = passive.partner();
        poll_until_detail(
            &format!("{passive}'s table to match {active}'s"),
            timeout,
            || {
                let a = self.conns(active)?;
                let p = self.conns(passive)?;
                let d: TableDiff = conns::compare(&a, &p, &keep);
                Ok(if d.is_empty() {
                    Ok((a, p))
                } else {
                    Err(d.to_string())
                })
            },
        )
    }

    /// [`PairLab::wait_tables_match`] after a takeover: the active may hold
    /// entries larval ([`TableDiff::agrees_after_takeover`]).
    pub fn wait_tables_agree(&self, passive: Unit, timeout: Duration) -> Result<()> {
        let active = passive.partner();
        poll_until_detail(
            &format!("{passive}'s table to agree with {active}'s"),
            timeout,
            || {
                let d = conns::compare(&self.conns(active)?, &self.conns(passive)?, |_| true);
                Ok(if d.agrees_after_takeover() {
                    Ok(())
                } else {
                    Err(d.to_string())
                })
            },
        )
    }

    /// A unit's logs, every boot's (earlier ones first, their ends only).
    pub fn logs(&self, unit: Unit) -> String {
        let slot = self.slot(unit);
        let mut text = slot.earlier.join("\n");
        if let Some(d) = &slot.daemon {
            text.push_str(&format!("\n(boot {}, running)\n{}", slot.boots, d.logs()));
        }
        text
    }

    /// What an assertion message needs: each unit's `tandemctl sync`, its
    /// logs, and the HA links' impairments.
    pub fn context(&self) -> String {
        let mut text = String::new();
        for unit in Unit::BOTH {
            let sync = match self.ctl(unit, &["sync"]) {
                Ok(out) if out.success() => out.stdout,
                Ok(out) => out.to_string(),
                Err(e) => e.to_string(),
            };
            text.push_str(&format!(
                "=== {unit}: tandemctl sync ===\n{sync}\n=== {unit}: logs ===\n{}\n",
                self.logs(unit)
            ));
        }
        text.push_str(&format!("=== HA links: {:?} ===\n", self.impairments));
        for link in 0..self.relays.len() {
            if let Ok(st) = self.relay_stats(link) {
                text.push_str(&format!("=== relay on HA link {link}: {st:?} ===\n"));
            }
        }
        text
    }

    /// Drops `percent` % of the frames on HA link `link` (0 main, 1 backup),
    /// both ways, at random; 0 stops it. A one-way cut stays as it is.
    pub fn set_loss(&mut self, link: usize, percent: u8) -> Result<()> {
        let mut imp = self.impairment(link)?;
        imp.loss_percent = percent.min(100);
        self.impair(link, imp)
    }

    /// Drops every frame one way on HA link `link` (the other way carries
    /// on); the loss set stays as it is.
    pub fn cut(&mut self, link: usize, direction: Direction) -> Result<()> {
        let mut imp = self.impairment(link)?;
        imp.cut = Some(direction);
        self.impair(link, imp)
    }

    /// HA link `link` as built: no relay, no loss, no cut, its `hamid` ends
    /// up and on its bridge.
    pub fn restore(&mut self, link: usize) -> Result<()> {
        self.impair(link, Impairment::default())?;
        if let Some(mut relay) = self.relays[link].take() {
            relay.proc.terminate(Duration::from_secs(10))?;
            for unit in Unit::BOTH {
                let end = mid_end(unit, link);
                self.hamid.ip(&["link", "set", &end, "promisc", "off"])?;
                self.hamid
                    .ip(&["link", "set", &end, "master", &bridge_name(link)])?;
            }
        }
        self.set_ends(link, "up")
    }

    /// Takes HA link `link`'s ends off its bridge and relays its frames
    /// through `scripts/ha_relay.py` instead, which reorders (and drops)
    /// them as `relay` says; a relay already there is replaced. While
    /// relayed, [`PairLab::set_loss`] and [`PairLab::cut`] do not apply to
    /// the link (they act on its bridge); [`PairLab::restore`] ends it.
    pub fn relay(&mut self, link: usize, relay: Relay) -> Result<()> {
        self.impairment(link)?;
        let (left, right) = (mid_end(Unit::A, link), mid_end(Unit::B, link));
        if let Some(mut old) = self.relays[link].take() {
            old.proc.terminate(Duration::from_secs(10))?;
        } else {
            for end in [&left, &right] {
                self.hamid.ip(&["link", "set", end, "nomaster"])?;
                self.hamid.ip(&["link", "set", end, "promisc", "on"])?;
            }
        }
        let stats = self.dir().join(format!("relay-ha{link}.json"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ha_relay.py");
        let args = [
            "python3".to_string(),
            script.display().to_string(),
            "--left".into(),
            left,
            "--right".into(),
            right,
            "--stats".into(),
            stats.display().to_string(),
            "--seed".into(),
            relay.seed.to_string(),
            "--reorder".into(),
            relay.reorder_percent.to_string(),
            "--delay-ms".into(),
            relay.delay_ms.to_string(),
            "--loss".into(),
            relay.loss_percent.to_string(),
        ];
        let mut proc = self
            .hamid
            .spawn(&args, Some(&self.dir().join(format!("relay-ha{link}"))))?;
        poll_until_detail(
            &format!("the relay on HA link {link} to start"),
            Duration::from_secs(30),
            || {
                if proc.stdout().contains("relaying") {
                    return Ok(Ok(()));
                }
                match proc.try_status() {
                    Some(s) => Err(Error::Lab(format!(
                        "the relay exited with {s}\n{}",
                        proc.logs()
                    ))),
                    None => Ok(Err(proc.logs())),
                }
            },
        )?;
        self.relays[link] = Some(RelayProc { proc, stats });
        Ok(())
    }

    /// The pid of the relay on HA link `link`, if there is one.
    pub fn relay_pid(&self, link: usize) -> Option<u32> {
        self.relays.get(link)?.as_ref().map(|r| r.proc.pid())
    }

    /// What the relay on HA link `link` did so far (an error when there is
    /// none).
    pub fn relay_stats(&self, link: usize) -> Result<RelayStats> {
        let relay = self
            .relays
            .get(link)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Lab(format!("no relay on HA link {link}")))?;
        let text = std::fs::read_to_string(&relay.stats).map_err(|source| Error::Io {
            context: "reading the relay's counts",
            path: relay.stats.clone(),
            source,
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Lab(format!("the relay's counts {text:?}: {e}")))?;
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Ok(RelayStats {
            a_to_b: n("left_to_right"),
            b_to_a: n("right_to_left"),
            held: n("held"),
            overtaken: n("overtaken"),
            dropped: n("dropped"),
            send_errors: n("send_errors"),
        })
    }

    /// Sets HA link `link`'s ends in `hamid` down: nothing crosses, and the
    /// units' ports lose carrier. [`PairLab::restore`] undoes it.
    pub fn down(&mut self, link: usize) -> Result<()> {
        self.impairment(link)?;
        self.set_ends(link, "down")
    }

    fn impairment(&self, link: usize) -> Result<Impairment> {
        self.impairments
            .get(link)
            .copied()
            .ok_or_else(|| Error::Lab(format!("no HA link {link} (there are {})", HA_PORTS.len())))
    }

    fn set_ends(&self, link: usize, state: &str) -> Result<()> {
        for unit in Unit::BOTH {
            self.hamid
                .ip(&["link", "set", &mid_end(unit, link), state])?;
        }
        Ok(())
    }

    /// Rewrites the link's chain (one `nft -f`, atomic) to do `imp`.
    fn impair(&mut self, link: usize, imp: Impairment) -> Result<()> {
        let chain = nft_chain(link);
        let mut text = format!("flush chain bridge {NFT_TABLE} {chain}\n");
        if let Some(dir) = imp.cut {
            text.push_str(&format!(
                "add rule bridge {NFT_TABLE} {chain} iifname \"{}\" drop\n",
                mid_end(dir.from(), link)
            ));
        }
        if imp.loss_percent > 0 {
            text.push_str(&format!(
                "add rule bridge {NFT_TABLE} {chain} numgen random mod 100 < {} drop\n",
                imp.loss_percent
            ));
        }
        let path = self.dir().join(format!("{chain}.nft"));
        write_file(&path, &text)?;
        self.hamid
            .exec_ok(["nft", "-f", &path.display().to_string()])?;
        self.impairments[link] = imp;
        Ok(())
    }

    /// Frames the link's nftables chain dropped so far, per rule, as
    /// `nft list chain` shows it (for assertion messages).
    pub fn impairment_rules(&self, link: usize) -> Result<String> {
        Ok(self
            .hamid
            .exec_ok([
                "nft",
                "list",
                "chain",
                "bridge",
                NFT_TABLE,
                &nft_chain(link),
            ])?
            .stdout)
    }

    /// Starts `tcpdump` in `hamid` on A's end of HA link `link` (so frames A
    /// sends are seen before the link's impairment, frames to A after it)
    /// and waits until it listens. [`Capture::stop`] gives the pcap file (in
    /// the lab directory).
    pub fn capture(&self, link: usize) -> Result<Capture> {
        self.impairment(link)?;
        let n = std::fs::read_dir(self.dir())
            .map(|d| d.count())
            .unwrap_or_default();
        let path = self.dir().join(format!("ha{link}-{n}.pcap"));
        let end = mid_end(Unit::A, link);
        let path_text = path.display().to_string();
        let logs = self.dir().join(format!("tcpdump-ha{link}-{n}"));
        // Immediate mode: without it libpcap hands frames over a ring block at
        // a time, and those still in the block when tcpdump is stopped are
        // never written.
        let mut proc = self.hamid.spawn(
            [
                "tcpdump",
                "--immediate-mode",
                "-i",
                &end,
                "-n",
                "-U",
                "-s",
                "0",
                "-Z",
                "root",
                "-w",
                &path_text,
            ],
            Some(&logs),
        )?;
        poll_until_detail(
            &format!("tcpdump to listen on {end}"),
            Duration::from_secs(30),
            || {
                if proc.stderr().contains("listening on") {
                    return Ok(Ok(()));
                }
                match proc.try_status() {
                    Some(s) => Err(Error::Lab(format!(
                        "tcpdump exited with {s}\n{}",
                        proc.logs()
                    ))),
                    None => Ok(Err(proc.logs())),
                }
            },
        )?;
        Ok(Capture { proc, path })
    }
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(Error::Lab("a unit's start panicked".to_string())))
}

/// A running `tcpdump` ([`PairLab::capture`]); stopped on drop.
pub struct Capture {
    proc: Proc,
    path: PathBuf,
}

impl Capture {
    /// The pcap file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Stops it (SIGTERM: it flushes and closes the file); the file.
    pub fn stop(mut self) -> Result<PathBuf> {
        self.proc.terminate(Duration::from_secs(10))?;
        Ok(self.path.clone())
    }
}

/// One HA link in `tandemctl sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// 0 the main link, 1 the backup.
    pub index: usize,
    /// Its port (`ha0`).
    pub port: String,
    /// `up`, `down`, `one-way (partner does not hear us)`, `one-way (we do
    /// not hear the partner)`.
    pub state: String,
    /// The stream uses it.
    pub stream: bool,
}

/// `tandemctl sync`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// The whole answer.
    pub text: String,
    /// The partner's boot epoch (hex), once heard.
    pub partner_epoch: Option<String>,
    /// `in sync: yes`.
    pub in_sync: bool,
    /// Each HA link.
    pub links: Vec<LinkStatus>,
    /// `bulk in: ...` (`Done { .. }` once the partner's bulk arrived).
    pub bulk_in: String,
    /// `bulk out: idle` or `in progress`.
    pub bulk_out: String,
    /// Datagrams of this unit's stream not acknowledged yet.
    pub unacked: Option<u64>,
}

impl SyncStatus {
    /// Reads the answer; an error names a line that has another shape.
    pub fn parse(text: &str) -> Result<SyncStatus, String> {
        let mut st = SyncStatus {
            text: text.to_string(),
            partner_epoch: None,
            in_sync: false,
            links: Vec::new(),
            bulk_in: String::new(),
            bulk_out: String::new(),
            unacked: None,
        };
        let bad =
            |line: &str| format!("`tandemctl sync`: a line of another shape: {line:?}\n{text}");
        let mut partner = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("partner ") {
                partner = true;
                st.partner_epoch = rest
                    .split_once("boot epoch ")
                    .map(|(_, e)| e.trim().to_string());
            } else if let Some(v) = line.strip_prefix("in sync: ") {
                st.in_sync = v.trim() == "yes";
            } else if let Some(rest) = line.strip_prefix("link ") {
                let (head, tail) = rest.split_once(": ").ok_or_else(|| bad(line))?;
                let mut words = head.split_whitespace();
                let index = words
                    .next()
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| bad(line))?;
                let port = words.next().ok_or_else(|| bad(line))?.to_string();
                let state = tail
                    .rsplit_once(" for ")
                    .map_or(tail, |(s, _)| s)
                    .to_string();
                st.links.push(LinkStatus {
                    index,
                    port,
                    state,
                    stream: head.ends_with("(stream)"),
                });
            } else if let Some(v) = line.strip_prefix("bulk in: ") {
                st.bulk_in = v.to_string();
            } else if let Some(v) = line.strip_prefix("bulk out: ") {
                st.bulk_out = v.to_string();
            } else if let Some(v) = line.strip_prefix("stream out: ") {
                st.unacked = v.split_whitespace().next().and_then(|n| n.parse().ok());
            }
        }
        if !partner {
            return Err(format!("`tandemctl sync`: no `partner` line\n{text}"));
        }
        Ok(st)
    }

    /// The link the stream uses.
    pub fn stream_link(&self) -> Option<usize> {
        self.links.iter().find(|l| l.stream).map(|l| l.index)
    }

    /// The state of link `index` (`""` when not listed).
    pub fn link_state(&self, index: usize) -> &str {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map_or("", |l| l.state.as_str())
    }

    /// The partner's last bulk arrived whole.
    pub fn bulk_done(&self) -> bool {
        self.bulk_in.starts_with("Done")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tandemctl_sync() {
        let text = "\
partner TNDM-LAB-B: boot epoch 0123456789abcdef
in sync: yes
link 0 ha0: one-way (partner does not hear us) for 2 s
link 1 ha1 (stream): up for 9 s
bulk in: Done { at_ns: 12 }
bulk out: idle
digests: [Match]
stream out: 3 unacknowledged; stream in: no gap
key age: 9 s
";
        let st = SyncStatus::parse(text).unwrap();
        assert_eq!(st.partner_epoch.as_deref(), Some("0123456789abcdef"));
        assert!(st.in_sync && st.bulk_done());
        assert_eq!(st.stream_link(), Some(1));
        assert_eq!(st.link_state(0), "one-way (partner does not hear us)");
        assert_eq!(st.link_state(1), "up");
        assert_eq!(st.links[1].port, "ha1");
        assert_eq!(st.unacked, Some(3));
        assert_eq!(st.bulk_out, "idle");
        let unheard =
            SyncStatus::parse("partner TNDM-LAB-A: not heard yet\nin sync: no\n").unwrap();
        assert_eq!(unheard.partner_epoch, None);
        assert!(!unheard.in_sync && !unheard.bulk_done());
        assert!(SyncStatus::parse("error: no ha section\n").is_err());
    }

    #[test]
    fn configurations_mirror_each_other() {
        let a = unit_config(Unit::A, Path::new("/k"), None, None, false);
        let b = unit_config(
            Unit::B,
            Path::new("/k"),
            Some("heartbeat_interval_ms: 20, link_dead_ms: 60"),
            None,
            false,
        );
        assert!(
            a.contains(r#"serial: "TNDM-LAB-A","#)
                && a.contains("election: (forced: Some(Active)),")
        );
        assert!(a.contains(r#"(port: "ha0", address: "198.18.254.1/30", peer: "198.18.254.2"),"#));
        assert!(a.contains(r#"(port: "ha1", address: "198.18.254.5/30", peer: "198.18.254.6"),"#));
        assert!(
            b.contains(r#"peer_serial: "TNDM-LAB-A","#)
                && b.contains("election: (forced: Some(Passive)),")
        );
        assert!(b.contains(r#"(port: "ha0", address: "198.18.254.2/30", peer: "198.18.254.1"),"#));
        assert!(b.contains(r#"address: "198.18.1.3/24", virtual_ip: Some("198.18.1.254")"#));
        assert!(b.contains("sync: (heartbeat_interval_ms: 20, link_dead_ms: 60),"));
        assert!(a.contains("sync: (link_dead_ms: 1000),"));
        let elected = unit_config(Unit::B, Path::new("/k"), None, Some("listen_ms: 500"), true);
        assert!(
            elected.contains(r#"election: (probe: ["198.18.1.1", "198.18.2.1"], listen_ms: 500),"#)
        );
    }
}
