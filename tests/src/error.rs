//! The harness's one error type.
//!
//! Every variant carries what a person needs to see when a lab fails to come
//! up: the command, its exit status and its output. `Debug` prints the same
//! text as `Display`, so `.unwrap()` and `.expect()` in a test show the full
//! story instead of a struct dump.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::command::Output;

/// Result of every fallible harness call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a harness step failed.
#[derive(thiserror::Error)]
pub enum Error {
    /// A command could not be started at all (missing binary, bad path).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line, as a person would type it.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command ran and exited with a failure status.
    #[error("{0}")]
    Failed(Box<Output>),
    /// A command did not finish within its time limit and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit that ran out.
        timeout: Duration,
        /// What it printed before it was killed.
        stdout: String,
        /// What it printed on stderr before it was killed.
        stderr: String,
    },
    /// A condition polled for did not come true within its time limit.
    #[error("gave up after {timeout:?} waiting for {what}{detail}")]
    WaitTimeout {
        /// What was awaited, in words.
        what: String,
        /// The limit that ran out.
        timeout: Duration,
        /// The last state seen (may be empty), starting with a newline.
        detail: String,
    },
    /// A file operation failed.
    #[error("{context}: {path}: {source}")]
    Io {
        /// What the harness was doing.
        context: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `tandemd` binary is not where it should be.
    #[error("tandemd not found at {path} ({why}); build it first: cargo build --bins (or set TANDEMD=/path/to/tandemd)")]
    TandemdMissing {
        /// Where it was looked for.
        path: PathBuf,
        /// Why that path was chosen.
        why: String,
    },
    /// The hardware profile for labs is missing.
    #[error("lab hardware profile not found at {0} (set TANDEM_LAB_PROFILE to override)")]
    ProfileMissing(PathBuf),
    /// A switch operation on a lab without a switch.
    #[error("this lab has no switch: build it with DataWiring::Switched")]
    NoSwitch,
    /// `tandemd` exited before it said `ready`.
    #[error("tandemd exited with {status} before it logged `tandemd ready`\n{logs}")]
    TandemdExited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its stdout and stderr.
        logs: String,
    },
    /// `tandemd` did not say `ready` in time (it was killed).
    #[error("tandemd did not log `tandemd ready` within {timeout:?}\n{logs}")]
    TandemdNotReady {
        /// The limit that ran out.
        timeout: Duration,
        /// Its stdout and stderr.
        logs: String,
    },
    /// A process did not exit after SIGTERM within its grace period (it was
    /// killed with SIGKILL).
    #[error("{label} did not exit within {grace:?} of SIGTERM and was killed\n{logs}")]
    StopTimeout {
        /// Which process.
        label: String,
        /// The grace period.
        grace: Duration,
        /// Its stdout and stderr, when logged.
        logs: String,
    },
    /// The counters file did not follow the `name value` format.
    #[error("counters file {path}, line {line}: expected `name value`, got {text:?}")]
    CountersFormat {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A lab step did not give what it must (a flow not made, an answer of
    /// an unexpected shape); the text says what, with the evidence.
    #[error("{0}")]
    Lab(String),
    /// The lab does not run `tandemd` (it is kernel-routed), so it has no
    /// counters and no daemon to stop.
    #[error("this lab is routed by the Linux kernel, not tandemd: {0} is not available")]
    NotTandemd(&'static str),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
