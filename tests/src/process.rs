//! [`Proc`]: a long-running process that the harness started and owns.
//!
//! On drop it stops exactly the pid it started — SIGTERM, a short grace
//! period, then SIGKILL — and reaps it. Nothing is ever killed by name. A pid
//! is only signalled while its `Child` is unreaped, so it cannot have been
//! reused by an unrelated process.
//!
//! Output goes to log files (never to pipes nobody reads, which would stall a
//! chatty daemon), and the logs are shown in error messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::command::{describe, wait_deadline};
use crate::error::{Error, Result};

/// How long a process gets between SIGTERM and SIGKILL when dropped.
pub const DROP_GRACE: Duration = Duration::from_secs(5);

/// How much of a log's end goes into error messages.
const LOG_TAIL: usize = 8 * 1024;

/// A started process, stopped and reaped on drop.
pub struct Proc {
    label: String,
    child: Child,
    status: Option<ExitStatus>,
    logs: Option<(PathBuf, PathBuf)>,
}

impl Proc {
    /// Starts `cmd`. With `logs = Some(base)`, stdout goes to `base.out` and
    /// stderr to `base.err`; otherwise both are discarded. Stdin is closed.
    pub fn spawn(mut cmd: Command, logs: Option<&Path>) -> Result<Proc> {
        let label = describe(&cmd);
        cmd.stdin(Stdio::null());
        let logs = match logs {
            Some(base) => {
                let out = base.with_extension("out");
                let err = base.with_extension("err");
                cmd.stdout(create(&out)?).stderr(create(&err)?);
                Some((out, err))
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                None
            }
        };
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: label.clone(),
            source,
        })?;
        Ok(Proc {
            label,
            child,
            status: None,
            logs,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its exit status if it has exited (reaping it), `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_deadline(&mut self.child, timeout);
        }
        self.status
    }

    /// Sends SIGTERM and waits up to `grace` for it to exit, then SIGKILLs
    /// it. Returns the exit status when it exited within the grace period,
    /// [`Error::StopTimeout`] when it had to be killed.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_status() {
            return Ok(status);
        }
        self.sigterm();
        if let Some(status) = self.wait_timeout(grace) {
            return Ok(status);
        }
        self.kill();
        Err(Error::StopTimeout {
            label: self.label.clone(),
            grace,
            logs: self.logs(),
        })
    }

    /// SIGKILLs it (if still running) and reaps it.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    fn sigterm(&mut self) {
        self.signal("TERM");
    }

    /// Sends it signal `name` (`USR1`), if it still runs. The std library
    /// offers only SIGKILL; `kill(1)` sends the pid we own (unreaped, hence
    /// not reused) the signal, and the crate stays free of FFI.
    pub fn signal(&mut self, name: &str) {
        if self.try_status().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Everything it wrote to stdout so far (empty when not logged).
    pub fn stdout(&self) -> String {
        self.logs
            .as_ref()
            .map(|(out, _)| read_lossy(out))
            .unwrap_or_default()
    }

    /// Everything it wrote to stderr so far (empty when not logged).
    pub fn stderr(&self) -> String {
        self.logs
            .as_ref()
            .map(|(_, err)| read_lossy(err))
            .unwrap_or_default()
    }

    /// The ends of its stdout and stderr, labelled, for error messages.
    pub fn logs(&self) -> String {
        match &self.logs {
            None => format!("({} was started without logs)", self.label),
            Some((out, err)) => format!(
                "--- {} stdout ({}) ---\n{}\n--- stderr ({}) ---\n{}",
                self.label,
                out.display(),
                tail(&read_lossy(out)),
                err.display(),
                tail(&read_lossy(err)),
            ),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            // Outcome does not matter: it is stopped and reaped either way.
            let _ = self.terminate(DROP_GRACE);
        }
    }
}

fn create(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).map_err(|source| Error::Io {
        context: "creating a log file",
        path: path.to_path_buf(),
        source,
    })
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str) -> &str {
    let text = text.trim_end();
    if text.len() <= LOG_TAIL {
        return text;
    }
    let mut start = text.len() - LOG_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_stops_and_reaps_the_process() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let proc = Proc::spawn(cmd, None).unwrap();
        let pid = proc.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(proc);
        // Reaped, so no zombie is left either.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn terminate_reports_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        // Exits 0 on SIGTERM, like a well-behaved daemon.
        cmd.args([
            "-c",
            "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done",
        ]);
        let mut proc = Proc::spawn(cmd, Some(&dir.path().join("sh"))).unwrap();
        crate::wait::poll_until("sh to start", Duration::from_secs(10), || {
            Ok(proc.stdout().contains("up").then_some(()))
        })
        .unwrap();
        let status = proc.terminate(Duration::from_secs(10)).unwrap();
        assert!(status.success(), "{status}\n{}", proc.logs());
        assert!(proc.stdout().contains("bye"), "{}", proc.logs());
    }

    #[test]
    fn a_process_ignoring_sigterm_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"]);
        let mut proc = Proc::spawn(cmd, Some(&dir.path().join("sh"))).unwrap();
        crate::wait::poll_until("sh to start", Duration::from_secs(10), || {
            Ok(proc.stdout().contains("up").then_some(()))
        })
        .unwrap();
        let err = proc.terminate(Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, Error::StopTimeout { .. }), "{err}");
        assert!(proc.try_status().is_some());
    }
}
