//! Finding, starting and stopping `tandemd`, the daemon that boots one unit.
//!
//! The contract the harness relies on:
//! - `tandemd --profile P --config C --file-prefix X --counters-file F
//!   --control S [--rules R]`, run inside the unit's namespace, in the
//!   foreground; every unit gets a control socket `S` of its own (in its
//!   lab's directory), so labs run side by side;
//! - a log line containing `tandemd ready` once its ports are started (on
//!   stderr; stdout is looked at too, where units before the log moved
//!   printed it);
//! - the counters file `F` rewritten (write + rename) about once a second
//!   and at exit, see [`crate::counters`];
//! - SIGTERM/SIGINT stop the ports, and it exits 0; SIGHUP reloads `R`;
//! - `tandemctl --socket S ...` asks it things (see [`locate_tandemctl`]).
//!
//! `tandemd` belongs to another package (`mgmt`), so cargo does not provide
//! `CARGO_BIN_EXE_tandemd` here. It is found next to the running executable,
//! in the same profile directory (`target/<profile>/tandemd` for
//! `target/<profile>/deps/<test>` and for `target/<profile>/lab-demo`), or
//! wherever the `TANDEMD` environment variable points. `tandemctl` is found
//! the same way (`TANDEMCTL`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Proc;
use crate::wait::poll_until_detail;

/// Environment variable naming the `tandemd` binary to use.
pub const TANDEMD_ENV: &str = "TANDEMD";
/// Environment variable naming the `tandemctl` binary to use.
pub const TANDEMCTL_ENV: &str = "TANDEMCTL";
/// Environment variable naming the hardware profile labs boot with.
pub const PROFILE_ENV: &str = "TANDEM_LAB_PROFILE";
/// How long `tandemd` gets to log `ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `tandemd` gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The `tandemd` binary: `$TANDEMD`, else the sibling of this executable.
pub fn locate() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        context: "finding the running executable",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    locate_from(std::env::var_os(TANDEMD_ENV), &exe)
}

/// [`locate`] with its inputs explicit: the value of `$TANDEMD` and the path
/// of the running executable.
pub fn locate_from(env: Option<OsString>, exe: &Path) -> Result<PathBuf> {
    let (path, why) = sibling("tandemd", TANDEMD_ENV, env, exe);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::TandemdMissing { path, why })
    }
}

/// The `tandemctl` binary: `$TANDEMCTL`, else the sibling of this
/// executable (like [`locate`]).
pub fn locate_tandemctl() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        context: "finding the running executable",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    locate_tandemctl_from(std::env::var_os(TANDEMCTL_ENV), &exe)
}

/// [`locate_tandemctl`] with its inputs explicit.
pub fn locate_tandemctl_from(env: Option<OsString>, exe: &Path) -> Result<PathBuf> {
    let (path, _) = sibling("tandemctl", TANDEMCTL_ENV, env, exe);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Io {
            context: "tandemctl not found; build it first: cargo build --bins (or set TANDEMCTL=/path/to/tandemctl)",
            path,
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

/// Where binary `name` is: `$env_name` when set, else beside `exe` in its
/// cargo profile directory (`target/<profile>/deps/<test>` and
/// `target/<profile>/<bin>` both give `target/<profile>/<name>`). Also says
/// why that path.
fn sibling(name: &str, env_name: &str, env: Option<OsString>, exe: &Path) -> (PathBuf, String) {
    match env.filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), format!("from ${env_name}")),
        None => {
            let mut dir = exe.parent().unwrap_or(Path::new("."));
            if dir.file_name().is_some_and(|n| n == "deps") {
                dir = dir.parent().unwrap_or(dir);
            }
            (
                dir.join(name),
                format!("beside {} in its cargo profile directory", exe.display()),
            )
        }
    }
}

/// The hardware profile labs boot with: `$TANDEM_LAB_PROFILE`, else
/// `hw-profiles/profiles/lab.ron` in this workspace.
pub fn lab_profile() -> Result<PathBuf> {
    let path = match std::env::var_os(PROFILE_ENV).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles/profiles/lab.ron"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::ProfileMissing(path))
    }
}

/// What a `tandemd` run needs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary.
    pub binary: PathBuf,
    /// The hardware profile (RON).
    pub profile: PathBuf,
    /// The unit configuration (RON).
    pub config: PathBuf,
    /// DPDK's `--file-prefix`, unique per running unit.
    pub file_prefix: String,
    /// Where it writes its counters.
    pub counters: PathBuf,
    /// Its stdout / stderr go to `logs.out` / `logs.err`.
    pub logs: PathBuf,
    /// Its control socket (`--control`), unique per running unit.
    pub control: PathBuf,
    /// The rules file (`--rules`); without it the unit routes unfiltered.
    pub rules: Option<PathBuf>,
    /// The HA event log file (`--ha-log`), for a unit of a pair.
    pub ha_log: Option<PathBuf>,
    /// Where it keeps its state between boots (`--state-dir`), in the lab's
    /// own directory.
    pub state_dir: PathBuf,
    /// Where it writes its counters for Prometheus (`--prometheus-file`).
    pub prometheus: PathBuf,
    /// The shared configuration file (`--shared`), if any.
    pub shared: Option<PathBuf>,
}

/// A running `tandemd`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Tandemd {
    proc: Proc,
    counters: PathBuf,
    control: PathBuf,
    file_prefix: String,
    /// The inode of the network namespace it runs in (its port locks are
    /// named by it), when it could be read.
    netns_inode: Option<u64>,
}

/// Where DPDK (run as root) keeps a process's runtime files, by file prefix.
pub const DPDK_RUNTIME_DIR: &str = "/var/run/dpdk";

/// Where `tandemd` keeps its lock files (`mgmt::lock::LOCK_DIR`).
pub const LOCK_DIR: &str = "/run/tandem/locks";

impl Drop for Tandemd {
    fn drop(&mut self) {
        // Stopped first. A unit that could not clean up after itself (killed,
        // or one that died) leaves EAL's runtime directory and its lock files
        // behind: its prefix is this unit's alone, so the directory goes too,
        // and so do the lock files that name its prefix or its namespace's
        // ports and hold its pid.
        let _ = self.proc.terminate(STOP_GRACE);
        let _ = std::fs::remove_dir_all(Path::new(DPDK_RUNTIME_DIR).join(&self.file_prefix));
        self.remove_lock_files();
    }
}

impl Tandemd {
    /// Starts it inside `ns` and waits (up to `ready_timeout`) for `ready`.
    /// If it exits or stays silent, the error shows its output.
    pub fn start(ns: &Netns, launch: &Launch, ready_timeout: Duration) -> Result<Tandemd> {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            launch.binary.as_os_str(),
            "--profile".as_ref(),
            launch.profile.as_os_str(),
            "--config".as_ref(),
            launch.config.as_os_str(),
            "--file-prefix".as_ref(),
            launch.file_prefix.as_ref(),
            "--counters-file".as_ref(),
            launch.counters.as_os_str(),
            "--control".as_ref(),
            launch.control.as_os_str(),
            "--state-dir".as_ref(),
            launch.state_dir.as_os_str(),
            "--prometheus-file".as_ref(),
            launch.prometheus.as_os_str(),
        ];
        if let Some(rules) = &launch.rules {
            args.extend(["--rules".as_ref(), rules.as_os_str()]);
        }
        if let Some(shared) = &launch.shared {
            args.extend(["--shared".as_ref(), shared.as_os_str()]);
        }
        if let Some(log) = &launch.ha_log {
            args.extend(["--ha-log".as_ref(), log.as_os_str()]);
        }
        let netns_inode = std::fs::metadata(Path::new("/run/netns").join(ns.name()))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let proc = ns.spawn(args, Some(&launch.logs))?;
        let mut unit = Tandemd {
            proc,
            counters: launch.counters.clone(),
            control: launch.control.clone(),
            file_prefix: launch.file_prefix.clone(),
            netns_inode,
        };
        unit.wait_ready(ready_timeout)?;
        Ok(unit)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let waited = poll_until_detail("tandemd to log `ready`", timeout, || {
            let ready = |text: String| text.lines().any(|l| l.contains("tandemd ready"));
            if ready(self.proc.stderr()) || ready(self.proc.stdout()) {
                return Ok(Ok(()));
            }
            match self.proc.try_status() {
                Some(status) => Err(Error::TandemdExited {
                    status,
                    logs: self.proc.logs(),
                }),
                None => Ok(Err(String::new())),
            }
        });
        match waited {
            Err(Error::WaitTimeout { timeout, .. }) => {
                self.proc.kill();
                Err(Error::TandemdNotReady {
                    timeout,
                    logs: self.proc.logs(),
                })
            }
            other => other,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        self.proc.label()
    }

    /// Its stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The counters file's path.
    pub fn counters_path(&self) -> &Path {
        &self.counters
    }

    /// The counters as last written.
    pub fn counters(&self) -> Result<Counters> {
        Counters::read(&self.counters)
    }

    /// Its control socket's path.
    pub fn control_path(&self) -> &Path {
        &self.control
    }

    /// Sends it SIGHUP (reload the rules file). Only while it runs: a pid is
    /// signalled only while it is ours and unreaped.
    pub fn sighup(&mut self) -> Result<()> {
        if let Some(status) = self.proc.try_status() {
            return Err(Error::TandemdExited {
                status,
                logs: self.proc.logs(),
            });
        }
        let mut cmd = std::process::Command::new("kill");
        cmd.arg("-HUP").arg(self.pid().to_string());
        crate::command::run(&mut cmd, Duration::from_secs(10))?
            .ok()
            .map(drop)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_status().is_none()
    }

    /// Sends SIGTERM and waits (up to [`STOP_GRACE`]) for it to exit;
    /// returns its exit status. Stopping it again returns the same status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.proc.terminate(STOP_GRACE)
    }

    /// SIGKILLs it (a crash or a power cut, as far as the unit can tell) and
    /// reaps it. What it leaves behind goes when this is dropped.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Its exit status once it has exited (reaping it), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.proc.try_status()
    }

    /// Removes the lock files a unit that could not clean up left: those for
    /// its file prefix or for a port of its namespace, holding its pid. Only
    /// once it has exited.
    fn remove_lock_files(&mut self) {
        if self.proc.try_status().is_none() {
            return;
        }
        let prefix_file = format!("prefix-{}.lock", self.file_prefix);
        let netdev = self.netns_inode.map(|ino| format!("netdev-{ino}-"));
        let pid = self.pid().to_string();
        for entry in std::fs::read_dir(LOCK_DIR).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = name == prefix_file
                || netdev
                    .as_deref()
                    .is_some_and(|n| name.starts_with(n) && name.ends_with(".lock"));
            if ours
                && std::fs::read_to_string(entry.path()).is_ok_and(|holder| holder.trim() == pid)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_beside_a_test_executable_and_beside_a_binary() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("debug");
        std::fs::create_dir_all(profile.join("deps")).unwrap();
        std::fs::write(profile.join("tandemd"), b"").unwrap();
        let expected = profile.join("tandemd");
        let from_test = locate_from(None, &profile.join("deps/routing-0123abcd")).unwrap();
        assert_eq!(from_test, expected);
        let from_bin = locate_from(None, &profile.join("lab-demo")).unwrap();
        assert_eq!(from_bin, expected);
    }

    #[test]
    fn env_override_wins_and_missing_binary_says_how_to_build() {
        let dir = tempfile::tempdir().unwrap();
        let custom = dir.path().join("my-tandemd");
        std::fs::write(&custom, b"").unwrap();
        let got = locate_from(Some(custom.clone().into()), Path::new("/nowhere/deps/x")).unwrap();
        assert_eq!(got, custom);

        let err = locate_from(None, &dir.path().join("release/deps/t")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cargo build --bins"), "{text}");
        assert!(text.contains("release/tandemd"), "{text}");
    }

    #[test]
    fn tandemctl_is_found_like_tandemd() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("debug");
        std::fs::create_dir_all(profile.join("deps")).unwrap();
        std::fs::write(profile.join("tandemctl"), b"").unwrap();
        let got = locate_tandemctl_from(None, &profile.join("deps/firewall-0123abcd")).unwrap();
        assert_eq!(got, profile.join("tandemctl"));
        let custom = dir.path().join("my-ctl");
        std::fs::write(&custom, b"").unwrap();
        let got = locate_tandemctl_from(Some(custom.clone().into()), &profile.join("x")).unwrap();
        assert_eq!(got, custom);
        let err = locate_tandemctl_from(None, &dir.path().join("release/deps/t")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cargo build --bins") && text.contains("release/tandemctl"),
            "{text}"
        );
    }
}
