//! What a failover costs a client: `scripts/failover_probe.py` (a python3
//! standard-library program) as a server — a UDP echo and a paced TCP
//! stream of checked bytes — and as a client that probes and reads for a
//! while and then says what it saw ([`Seen`]).
//!
//! ```no_run
//! use tandem_tests::failover::{Probe, ProbeServer};
//! use tandem_tests::{plan, Lab};
//! use std::time::Duration;
//! let lab = Lab::routed().unwrap();
//! let _server = ProbeServer::start(lab.server(), plan::SERVER_IP, &lab.dir().join("ps")).unwrap();
//! let probe = Probe::start(lab.client(), plan::SERVER_IP, Duration::from_secs(3), &lab.dir().join("pc")).unwrap();
//! let seen = probe.finish().unwrap();
//! assert!(seen.tcp_intact);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Proc;
use crate::wait::poll_until_detail;

/// The probe's UDP echo port on the server.
pub const UDP_PORT: u16 = 7001;
/// The probe's TCP stream port on the server.
pub const TCP_PORT: u16 = 7002;

/// The script, in this crate.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/failover_probe.py")
}

/// The server side; stopped on drop.
pub struct ProbeServer {
    proc: Proc,
}

impl ProbeServer {
    /// Starts it in `ns` on `bind`; waits until it is bound.
    pub fn start(ns: &Netns, bind: &str, logs: &Path) -> Result<ProbeServer> {
        let script = script();
        let mut proc = ns.spawn(
            [
                "python3",
                &script.display().to_string(),
                "server",
                "--bind",
                bind,
                "--udp-port",
                &UDP_PORT.to_string(),
                "--tcp-port",
                &TCP_PORT.to_string(),
            ],
            Some(logs),
        )?;
        poll_until_detail(
            "the probe server listening",
            Duration::from_secs(30),
            || {
                if proc.stdout().contains("listening") {
                    return Ok(Ok(()));
                }
                match proc.try_status() {
                    Some(s) => Err(Error::Lab(format!(
                        "failover_probe.py server exited with {s}\n{}",
                        proc.logs()
                    ))),
                    None => Ok(Err(proc.logs())),
                }
            },
        )?;
        Ok(ProbeServer { proc })
    }

    /// The process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

/// A client run in progress.
pub struct Probe {
    proc: Proc,
    duration: Duration,
}

/// What the client saw (see the script's docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Probes sent.
    pub udp_sent: u64,
    /// Echoes received.
    pub udp_answered: u64,
    /// The longest time without an answered probe, ms.
    pub udp_outage_ms: f64,
    /// Runs of unanswered probes.
    pub udp_lost_runs: u64,
    /// Stream bytes received.
    pub tcp_bytes: u64,
    /// Every byte right, in order, and the connection never broke.
    pub tcp_intact: bool,
    /// Why not.
    pub tcp_error: Option<String>,
    /// The longest time between two reads of stream data, ms.
    pub tcp_stall_ms: f64,
}

impl Probe {
    /// Starts a run of `duration` from `ns` towards the server at `server`
    /// (a [`ProbeServer`]); the TCP stream is connected when this returns.
    pub fn start(ns: &Netns, server: &str, duration: Duration, logs: &Path) -> Result<Probe> {
        let script = script();
        let proc = ns.spawn(
            [
                "python3",
                &script.display().to_string(),
                "client",
                "--server",
                server,
                "--udp-port",
                &UDP_PORT.to_string(),
                "--tcp-port",
                &TCP_PORT.to_string(),
                "--duration",
                &format!("{:.3}", duration.as_secs_f64()),
            ],
            Some(logs),
        )?;
        Ok(Probe { proc, duration })
    }

    /// Waits for the run to end and reads what it saw.
    pub fn finish(mut self) -> Result<Seen> {
        let limit = self.duration + Duration::from_secs(30);
        let Some(status) = self.proc.wait_timeout(limit) else {
            self.proc.kill();
            return Err(Error::Lab(format!(
                "failover_probe.py client did not end within {limit:?}\n{}",
                self.proc.logs()
            )));
        };
        let out = self.proc.stdout();
        let line = out.lines().find(|l| l.starts_with('{')).ok_or_else(|| {
            Error::Lab(format!(
                "failover_probe.py client exited with {status} and no result\n{}",
                self.proc.logs()
            ))
        })?;
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::Lab(format!("failover_probe.py printed {line:?}: {e}")))?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Ok(Seen {
            udp_sent: n("udp_sent"),
            udp_answered: n("udp_answered"),
            udp_outage_ms: f("udp_outage_ms"),
            udp_lost_runs: n("udp_lost_runs"),
            tcp_bytes: n("tcp_bytes"),
            tcp_intact: v["tcp_intact"].as_bool().unwrap_or(false),
            tcp_error: v["tcp_error"].as_str().map(str::to_owned),
            tcp_stall_ms: f("tcp_stall_ms"),
        })
    }
}

/// `ping` from `ns` to `target` every 10 ms, `count` times (1 s deadline
/// per reply); returns how many were lost.
pub fn pings_lost(ns: &Netns, target: &str, count: u32) -> Result<u32> {
    let out = ns.exec([
        "ping",
        "-n",
        "-q",
        "-i",
        "0.01",
        "-W",
        "1",
        "-c",
        &count.to_string(),
        target,
    ])?;
    // "N packets transmitted, M received, ..."
    let nums: Vec<u32> = out
        .stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match nums.as_slice() {
        [sent, received, ..] => Ok(sent.saturating_sub(*received)),
        _ => Err(Error::Lab(format!("no ping summary in {out}"))),
    }
}
