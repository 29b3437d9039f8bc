//! [`Lab`]: one unit between a Linux client and a Linux server, each in its
//! own network namespace (the picture is in [`crate::plan`]).
//!
//! Everything a lab creates is removed when it is dropped, also when a test
//! panics: first `tandemd` (SIGTERM, then SIGKILL), then the namespaces
//! (which takes their veth pairs with them), then the temporary directory
//! holding the unit config, the counters file and the logs. Names are unique
//! per lab, so labs run side by side in parallel test threads.
//!
//! A `tandemd` lab gets a control socket of its own in the lab directory
//! ([`Lab::ctl`] runs `tandemctl` against it) and, when built with
//! [`LabBuilder::rules`], a rules file there too (`rules.ron`), which a test
//! may rewrite ([`Lab::write_rules`]) and have reloaded (`tandemctl reload`
//! or [`Lab::sighup`]).
//!
//! Two routers can sit in the unit namespace:
//! - [`RouterKind::Tandemd`]: the real unit. Linux in the unit namespace has
//!   no addresses and no forwarding; `tandemd` owns `data0`/`data1` through
//!   DPDK `net_af_packet` (or `net_pcap` with the `lab-pcap` profile, which
//!   lets IPv4 fragments reach the unit as they are).
//! - [`RouterKind::Kernel`]: Linux routes instead (addresses and virtual IPs
//!   on `data0`/`data1`, `ip_forward=1`, the same static route). It validates
//!   the harness and the test scripts without the firmware.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::command::{self, Output};
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::plan::{self, HA_PORTS};
use crate::tandemd::{self, Launch, Tandemd};
use crate::veth;
use crate::wait::poll_until_detail;

/// Environment variable that picks the router of [`RouterKind::from_env`].
pub const ROUTER_ENV: &str = "TANDEM_LAB_ROUTER";

/// Who routes between the client and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// `tandemd` on DPDK: the system under test.
    Tandemd,
    /// The Linux kernel: for checking the harness itself.
    Kernel,
}

impl RouterKind {
    /// `Kernel` when `$TANDEM_LAB_ROUTER` is `kernel`, else `Tandemd`. Lets
    /// the routing tests be run against Linux to check their scripting.
    pub fn from_env() -> RouterKind {
        match std::env::var(ROUTER_ENV).as_deref() {
            Ok("kernel") => RouterKind::Kernel,
            _ => RouterKind::Tandemd,
        }
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouterKind::Tandemd => "tandemd",
            RouterKind::Kernel => "the Linux kernel",
        })
    }
}

/// Time limit of one `tandemctl` run ([`Lab::ctl`]).
pub const CTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The rules a lab's unit starts with: the file's text, or a file to copy.
/// Either way the unit reads `rules.ron` in the lab directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// The rules file's text (RON).
    Text(String),
    /// A rules file, copied into the lab (the original is never changed).
    File(PathBuf),
}

impl From<&str> for RulesSource {
    fn from(text: &str) -> Self {
        RulesSource::Text(text.to_string())
    }
}

impl From<String> for RulesSource {
    fn from(text: String) -> Self {
        RulesSource::Text(text)
    }
}

impl From<&Path> for RulesSource {
    fn from(path: &Path) -> Self {
        RulesSource::File(path.to_path_buf())
    }
}

impl From<PathBuf> for RulesSource {
    fn from(path: PathBuf) -> Self {
        RulesSource::File(path)
    }
}

/// Builds a [`Lab`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    router: RouterKind,
    tandemd: Option<PathBuf>,
    profile: Option<PathBuf>,
    rules: Option<RulesSource>,
    ready_timeout: Duration,
    narrate: bool,
}

impl Default for LabBuilder {
    fn default() -> Self {
        LabBuilder {
            router: RouterKind::Tandemd,
            tandemd: None,
            profile: None,
            rules: None,
            ready_timeout: tandemd::READY_TIMEOUT,
            narrate: false,
        }
    }
}

impl LabBuilder {
    /// Who routes (default: `tandemd`).
    pub fn router(mut self, router: RouterKind) -> Self {
        self.router = router;
        self
    }

    /// The `tandemd` binary (default: [`tandemd::locate`]).
    pub fn tandemd(mut self, path: impl Into<PathBuf>) -> Self {
        self.tandemd = Some(path.into());
        self
    }

    /// The hardware profile (default: [`tandemd::lab_profile`]).
    pub fn profile(mut self, path: impl Into<PathBuf>) -> Self {
        self.profile = Some(path.into());
        self
    }

    /// Start the unit with these firewall rules: the text of a rules file
    /// (`&str`, `String`) or a file (`&Path`, `PathBuf`). It is written to
    /// `rules.ron` in the lab directory and passed as `--rules`. Without
    /// rules the unit routes unfiltered. Needs `tandemd` as the router.
    pub fn rules(mut self, rules: impl Into<RulesSource>) -> Self {
        self.rules = Some(rules.into());
        self
    }

    /// How long `tandemd` gets to log `ready` (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Print each step on stdout, for people watching (the demo).
    pub fn narrate(mut self, on: bool) -> Self {
        self.narrate = on;
        self
    }

    fn say(&self, text: impl fmt::Display) {
        if self.narrate {
            println!("{text}");
        }
    }

    /// Creates the namespaces, wires them, and starts the router.
    pub fn build(self) -> Result<Lab> {
        // Fail before creating anything when the daemon cannot be started.
        let binaries = match self.router {
            RouterKind::Tandemd => Some((
                match &self.tandemd {
                    Some(p) if p.is_file() => p.clone(),
                    Some(p) => {
                        return Err(Error::TandemdMissing {
                            path: p.clone(),
                            why: "as given".to_string(),
                        })
                    }
                    None => tandemd::locate()?,
                },
                match &self.profile {
                    Some(p) => p.clone(),
                    None => tandemd::lab_profile()?,
                },
            )),
            RouterKind::Kernel => None,
        };
        if binaries.is_none() && self.rules.is_some() {
            return Err(Error::NotTandemd("filtering with a rules file"));
        }
        let dir = tempfile::Builder::new()
            .prefix("tandem-lab-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "creating the lab directory",
                path: std::env::temp_dir(),
                source,
            })?;

        // Locals are dropped in reverse order if a step fails: nothing leaks.
        let client = Netns::new("cli")?;
        let server = Netns::new("srv")?;
        let unit = Netns::new("unit")?;
        self.say(format_args!(
            "namespaces: client {}, server {}, unit {}",
            client.name(),
            server.name(),
            unit.name()
        ));
        for ns in [&client, &server, &unit] {
            // IPv6 off before the interfaces exist, so they inherit it: no
            // router solicitations, MLD or DAD on the lab's wires.
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        }

        veth::pair(&unit, "data0", &client, "eth0")?;
        veth::pair(&unit, "data1", &server, "eth0")?;
        // The HA links go nowhere in a one-unit lab: their peers stay down.
        for port in HA_PORTS {
            let peer = format!("{port}peer");
            unit.ip(&["link", "add", port, "type", "veth", "peer", "name", &peer])?;
            veth::disable_offloads(&unit, port)?;
            veth::disable_offloads(&unit, &peer)?;
            unit.ip(&["link", "set", port, "up"])?;
        }
        self.say(format_args!(
            "wires: client eth0 <-> unit data0, unit data1 <-> server eth0, unit {} (HA links, unconnected); offloads off on every end",
            HA_PORTS.join(", ")
        ));

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
        self.say(format_args!(
            "client {} (gateway {}), server {} (gateway {}, also {} on lo)",
            plan::CLIENT_IP,
            plan::VIP0,
            plan::SERVER_IP,
            plan::VIP1,
            plan::STATIC_TARGET
        ));

        let config = dir.path().join("unit.ron");
        std::fs::write(&config, plan::unit_config()).map_err(|source| Error::Io {
            context: "writing the unit config",
            path: config.clone(),
            source,
        })?;

        let rules = match &self.rules {
            None => None,
            Some(source) => {
                let path = dir.path().join("rules.ron");
                let text = match source {
                    RulesSource::Text(t) => t.clone(),
                    RulesSource::File(f) => {
                        std::fs::read_to_string(f).map_err(|source| Error::Io {
                            context: "reading the rules file for the lab",
                            path: f.clone(),
                            source,
                        })?
                    }
                };
                write_atomically(&path, &text)?;
                Some(path)
            }
        };
        let control = dir.path().join("control.sock");

        let daemon = match binaries {
            None => {
                for (port, ip, vip) in [
                    ("data0", plan::UNIT_DATA0_IP, plan::VIP0),
                    ("data1", plan::UNIT_DATA1_IP, plan::VIP1),
                ] {
                    unit.ip(&["addr", "add", &cidr(ip), "dev", port])?;
                    unit.ip(&["addr", "add", &cidr(vip), "dev", port])?;
                }
                unit.ip(&["route", "add", plan::STATIC_PREFIX, "via", plan::STATIC_VIA])?;
                unit.sysctl("net.ipv4.ip_forward", "1")?;
                self.say("router: the Linux kernel (addresses on data0/data1, ip_forward=1)");
                None
            }
            Some((binary, profile)) => {
                let launch = Launch {
                    binary,
                    profile,
                    config: config.clone(),
                    file_prefix: unit.name().to_string(),
                    counters: dir.path().join("counters"),
                    logs: dir.path().join("tandemd"),
                    control: control.clone(),
                    rules: rules.clone(),
                    ha_log: None,
                    state_dir: dir.path().join("state"),
                    prometheus: dir.path().join("tandem.prom"),
                    shared: None,
                };
                self.say(format_args!(
                    "booting the unit in {}: {} --profile {} --config {} --file-prefix {} --counters-file {} --control {}{}",
                    unit.name(),
                    launch.binary.display(),
                    launch.profile.display(),
                    launch.config.display(),
                    launch.file_prefix,
                    launch.counters.display(),
                    launch.control.display(),
                    launch
                        .rules
                        .as_ref()
                        .map(|r| format!(" --rules {}", r.display()))
                        .unwrap_or_default(),
                ));
                let daemon = Tandemd::start(&unit, &launch, self.ready_timeout)?;
                self.say(format_args!("unit ready (tandemd pid {})", daemon.pid()));
                Some(daemon)
            }
        };

        Ok(Lab {
            tandemd: daemon,
            unit,
            client,
            server,
            router: self.router,
            config,
            rules,
            dir,
        })
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Io {
            context: "writing the rules file",
            path: path.to_path_buf(),
            source,
        })
}

/// A running lab. See the module docs.
pub struct Lab {
    // Field order is drop order: the daemon, then the namespaces, then the
    // directory its files live in.
    tandemd: Option<Tandemd>,
    unit: Netns,
    client: Netns,
    server: Netns,
    router: RouterKind,
    config: PathBuf,
    rules: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Lab {
    /// A builder, for choices beyond [`Lab::routed`] and
    /// [`Lab::kernel_routed`].
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The system under test: `tandemd` routes between client and server.
    pub fn routed() -> Result<Lab> {
        Lab::builder().build()
    }

    /// Linux routes between client and server (no `tandemd` needed).
    pub fn kernel_routed() -> Result<Lab> {
        Lab::builder().router(RouterKind::Kernel).build()
    }

    /// The router picked by `$TANDEM_LAB_ROUTER` (see
    /// [`RouterKind::from_env`]); `tandemd` unless it says `kernel`.
    pub fn from_env() -> Result<Lab> {
        Lab::builder().router(RouterKind::from_env()).build()
    }

    /// The client's namespace (`eth0`, [`plan::CLIENT_IP`]).
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// The server's namespace (`eth0`, [`plan::SERVER_IP`]).
    pub fn server(&self) -> &Netns {
        &self.server
    }

    /// The unit's namespace (`data0`, `data1`, `ha0`, `ha1`).
    pub fn unit(&self) -> &Netns {
        &self.unit
    }

    /// The names of all its namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        [&self.client, &self.server, &self.unit]
            .iter()
            .map(|ns| ns.name().to_string())
            .collect()
    }

    /// Who routes.
    pub fn router(&self) -> RouterKind {
        self.router
    }

    /// Whether `tandemd` routes (so counters and stopping are available).
    pub fn is_tandemd(&self) -> bool {
        self.router == RouterKind::Tandemd
    }

    /// A temporary directory for this lab's files, removed with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The unit configuration file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The rules file the unit was started with (`rules.ron` in the lab
    /// directory), if it was started with rules.
    pub fn rules_path(&self) -> Option<&Path> {
        self.rules.as_deref()
    }

    /// Replaces the rules file's text (write, then rename, so the unit never
    /// reads half a file). It takes effect on `tandemctl reload` or SIGHUP.
    pub fn write_rules(&self, text: &str) -> Result<()> {
        let path = self
            .rules
            .as_deref()
            .ok_or(Error::NotTandemd("a rules file (build the lab with rules)"))?;
        write_atomically(path, text)
    }

    /// Sends the unit SIGHUP: it reloads its rules file.
    pub fn sighup(&mut self) -> Result<()> {
        self.tandemd
            .as_mut()
            .ok_or(Error::NotTandemd("SIGHUP"))?
            .sighup()
    }

    /// Runs `tandemctl --socket <this unit's control socket> args...` (from
    /// the root namespace: a unix socket is a file, not a network address)
    /// within [`CTL_TIMEOUT`]. A failure exit status is not an error: look at
    /// [`Output::success`]; `tandemctl` exits 1 on an `error:` answer.
    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        let socket = self.tandemd()?.control_path().to_path_buf();
        let binary = tandemd::locate_tandemctl()?;
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("--socket").arg(socket).args(args);
        command::run(&mut cmd, CTL_TIMEOUT)
    }

    /// The running daemon.
    pub fn tandemd(&self) -> Result<&Tandemd> {
        self.tandemd.as_ref().ok_or(Error::NotTandemd("tandemd"))
    }

    /// `tandemd`'s output so far (for assertion messages); empty for a
    /// kernel-routed lab.
    pub fn unit_logs(&self) -> String {
        self.tandemd.as_ref().map(Tandemd::logs).unwrap_or_default()
    }

    /// `out` with the unit's logs and its non-zero counters (when `tandemd`
    /// routes): what an assertion message about a command needs.
    pub fn context(&self, out: &Output) -> String {
        let counters = match self.counters() {
            Ok(c) => format!("--- unit counters (non-zero) ---\n{}", c.nonzero()),
            Err(_) => String::new(),
        };
        format!("{out}\n{}\n{counters}", self.unit_logs())
    }

    /// The unit's counters as last written.
    pub fn counters(&self) -> Result<Counters> {
        self.tandemd()?.counters()
    }

    /// Polls the counters file until `pred` holds (up to `timeout`) and
    /// returns that snapshot. A file not written yet counts as "not yet".
    pub fn wait_counters(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Counters) -> bool,
    ) -> Result<Counters> {
        let daemon = self.tandemd()?;
        poll_until_detail(what, timeout, || {
            Ok(match daemon.counters() {
                Ok(c) if pred(&c) => Ok(c),
                Ok(c) => Err(format!("{}\n(zero counters not shown)", c.nonzero())),
                Err(e @ Error::Io { .. }) => Err(e.to_string()),
                Err(e) => return Err(e),
            })
        })
    }

    /// Stops `tandemd` with SIGTERM and returns its exit status (SIGKILL and
    /// an error if it does not exit in time). The namespaces stay up.
    pub fn stop_unit(&mut self) -> Result<ExitStatus> {
        self.tandemd
            .as_mut()
            .ok_or(Error::NotTandemd("stopping the unit"))?
            .stop()
    }
}
