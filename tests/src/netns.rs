//! [`Netns`]: a network namespace the harness created, deleted on drop.
//!
//! Names are `tdm-<pid>-<n>-<role>`: the pid and a process-wide counter make
//! them unique, so labs can run side by side — in parallel test threads and
//! in parallel test processes — without ever touching the root namespace.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::command::{run, Output};
use crate::error::{Error, Result};
use crate::process::Proc;
use crate::wait::poll_until_detail;

/// Prefix of every namespace this harness creates.
pub const NAME_PREFIX: &str = "tdm-";

/// Time limit of [`Netns::exec`] and of the `ip` plumbing commands.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limit of one probe inside a polling loop.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `ip netns add` mounts `/run/netns` on first use; concurrent first calls
/// race in iproute2. One at a time per process is cheap and avoids it.
static NETNS_ADD: Mutex<()> = Mutex::new(());

static STALE: Once = Once::new();

/// A network namespace, deleted (`ip netns del`) when dropped.
///
/// Processes started in it are not owned by it: drop them first (a [`Proc`]
/// declared after the namespace it runs in is dropped before it).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace whose name ends in `role` (keep it short), with
    /// `lo` up.
    pub fn new(role: &str) -> Result<Netns> {
        STALE.call_once(remove_stale);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NAME_PREFIX}{}-{n}-{role}", std::process::id());
        {
            let _one_at_a_time = NETNS_ADD.lock().unwrap_or_else(|e| e.into_inner());
            let out = ip(&["netns", "add", &name])?;
            if !out.success() && out.stderr.contains("File exists") {
                // Left by an earlier process with our pid that was killed
                // before it could clean up: no live process owns it.
                let _ = ip(&["netns", "del", &name]);
                ip(&["netns", "add", &name])?.ok()?;
            } else {
                out.ok()?;
            }
        }
        let ns = Netns { name };
        ns.isolate_resolver()?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Gives the namespace a resolver configuration of its own: `ip netns
    /// exec` bind-mounts `/etc/netns/<name>/resolv.conf` over
    /// `/etc/resolv.conf`. Lab processes that look names up (Python's
    /// `http.server` resolves its own address at start) then ask `lo` in
    /// their namespace and fail at once, instead of sending DNS queries
    /// towards the host's resolver through the unit.
    fn isolate_resolver(&self) -> Result<()> {
        let dir = etc_dir(&self.name);
        let path = dir.join("resolv.conf");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, RESOLV_CONF))
            .map_err(|source| Error::Io {
                context: "writing the namespace's resolv.conf",
                path,
                source,
            })
    }

    /// Its name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `args` inside the namespace
    /// (`ip netns exec <name> args...`, which execs, so the pid is the
    /// command's own).
    pub fn command<I>(&self, args: I) -> Command
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs `args` inside the namespace to completion (killed after
    /// [`EXEC_TIMEOUT`]). A failure exit status is not an error: look at
    /// [`Output::success`].
    pub fn exec<I>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.exec_timeout(args, EXEC_TIMEOUT)
    }

    /// [`Netns::exec`] with its own time limit.
    pub fn exec_timeout<I>(&self, args: I, timeout: Duration) -> Result<Output>
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        run(&mut self.command(args), timeout)
    }

    /// [`Netns::exec`], and an exit status other than 0 is an error.
    pub fn exec_ok<I>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.exec(args)?.ok()
    }

    /// Runs `ip -n <name> args...`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)?.ok()
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec_ok(["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Starts `args` inside the namespace as a [`Proc`] (stopped on drop).
    /// With `logs = Some(base)`, its output goes to `base.out` / `base.err`.
    pub fn spawn<I>(&self, args: I, logs: Option<&Path>) -> Result<Proc>
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        Proc::spawn(self.command(args), logs)
    }

    /// Waits until something listens on TCP `port` in the namespace.
    pub fn wait_tcp_listening(&self, port: u16, timeout: Duration) -> Result<()> {
        let filter = format!("sport = :{port}");
        poll_until_detail(
            &format!("a TCP listener on port {port} in {}", self.name),
            timeout,
            || {
                let out = self
                    .exec_timeout(["ss", "-Hltn", &filter], PROBE_TIMEOUT)?
                    .ok()?;
                Ok(if out.stdout.trim().is_empty() {
                    Err(String::new())
                } else {
                    Ok(())
                })
            },
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match ip(&["netns", "del", &self.name]) {
            Ok(out) if out.success() => {}
            Ok(out) => eprintln!("warning: could not delete namespace {}:\n{out}", self.name),
            Err(e) => eprintln!("warning: could not delete namespace {}: {e}", self.name),
        }
        let _ = std::fs::remove_dir_all(etc_dir(&self.name));
    }
}

/// Where `ip netns exec` looks for files to bind-mount over `/etc`.
const ETC_NETNS: &str = "/etc/netns";

/// A resolver that asks the namespace's own `lo` (where nothing listens).
const RESOLV_CONF: &str =
    "# tandem lab namespace: no DNS\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

fn etc_dir(name: &str) -> PathBuf {
    Path::new(ETC_NETNS).join(name)
}

fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args), EXEC_TIMEOUT)
}

/// The names of all network namespaces (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?.ok()?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Deletes namespaces of this harness (and their `/etc/netns` files) whose
/// creating process is gone (a test run killed with SIGKILL leaves them
/// behind). Namespaces of live processes are never touched. Runs once per
/// process, before the first namespace is created.
pub fn remove_stale() {
    let orphaned = |name: &str| {
        name.strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    for name in list().unwrap_or_default() {
        if orphaned(&name) {
            let _ = ip(&["netns", "del", &name]);
        }
    }
    for entry in std::fs::read_dir(ETC_NETNS).into_iter().flatten().flatten() {
        if entry.file_name().to_str().is_some_and(orphaned) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
