//! Running an external command with a time limit, keeping what it printed.
//!
//! Nothing in a lab may hang forever: every command runs under a deadline and
//! is killed (SIGKILL, by the pid this module started and nothing else) when
//! the deadline passes. Output is read on two threads while the command runs,
//! so a chatty command never blocks on a full pipe.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often a running command is checked for having exited.
const POLL: Duration = Duration::from_millis(10);

/// What a finished command left behind. `Display` shows everything, so it
/// makes a complete assertion message: `assert!(out.success(), "{out}")`.
#[derive(Clone)]
pub struct Output {
    /// The command line, as a person would type it.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout (lossily decoded as UTF-8).
    pub stdout: String,
    /// Its stderr (lossily decoded as UTF-8).
    pub stderr: String,
}

impl Output {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `Ok(self)` when it exited 0, else the whole output as an error.
    pub fn ok(self) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::Failed(Box::new(self)))
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "`{}` exited with {}", self.command, self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The command line of `cmd` as a person would type it (arguments with
/// spaces are quoted).
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        format!("'{}'", s.replace('\'', r"'\''"))
    } else {
        s.into_owned()
    }
}

/// Runs `cmd` to completion with stdin closed, or kills it after `timeout`.
///
/// A command that exits with a failure status is still `Ok`: look at
/// [`Output::success`] (or call [`Output::ok`]). Only failing to start and
/// running out of time are errors.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status = wait_deadline(&mut child, timeout);
    let status = match status {
        Some(status) => status,
        None => {
            // Ours, unreaped, so the pid cannot have been reused.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                command,
                timeout,
                stdout: join(stdout),
                stderr: join(stderr),
            });
        }
    };
    Ok(Output {
        command,
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

/// Waits for `child` until `timeout`; `None` if it is still running then.
pub(crate) fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) => return None,
            // try_wait only fails if the child was already reaped elsewhere;
            // treat it as still running and let the caller's kill/wait decide.
            Err(_) => return None,
        }
    }
}

/// How long to wait, after the command exited or was killed, for its pipes
/// to close. A grandchild that kept them open must not hang the harness.
const DRAIN: Duration = Duration::from_secs(2);

/// A pipe being read on its own thread into a shared buffer, so that what was
/// read so far can be taken even if the pipe never closes.
struct Reader {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> Reader {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let thread = pipe.map(|mut pipe| {
        let buf = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                buf.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]);
            }
        })
    });
    Reader { buf, thread }
}

fn join(reader: Reader) -> String {
    if let Some(thread) = reader.thread {
        let deadline = Instant::now() + DRAIN;
        while !thread.is_finished() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
        // Else: detached; it ends when the last holder of the pipe exits.
    }
    let buf = reader.buf.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
        assert!(!out.success());
        let text = out.clone().ok().unwrap_err().to_string();
        assert!(
            text.contains("exited with") && text.contains("err"),
            "{text}"
        );
    }

    #[test]
    fn kills_a_command_that_runs_too_long() {
        let err = run(
            Command::new("sh").args(["-c", "echo started; exec sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        match err {
            Error::Timeout { stdout, .. } => assert_eq!(stdout, "started\n"),
            other => panic!("expected a timeout, got: {other}"),
        }
    }

    #[test]
    fn a_grandchild_holding_the_pipe_does_not_hang_the_harness() {
        // `sh` exits at once; its background `sleep` keeps stdout open.
        let out = run(
            Command::new("sh").args(["-c", "echo hi; sleep 4 & exit 0"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout, "hi\n");
    }

    #[test]
    fn describes_with_quotes() {
        let mut cmd = Command::new("echo");
        cmd.args(["a b", "c"]);
        assert_eq!(describe(&cmd), "echo 'a b' c");
    }
}
