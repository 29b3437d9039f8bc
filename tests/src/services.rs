//! Real Linux services for traffic through the unit: an HTTP server
//! (Python's `http.server`) and `iperf3`, with what their clients report.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Proc;

/// How long a server gets to start listening.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `python3 -m http.server` serving `root` on `bind:port` inside `ns`
/// and waits until it listens. Logs go to `logs.out` / `logs.err`.
pub fn http_server(ns: &Netns, root: &Path, bind: &str, port: u16, logs: &Path) -> Result<Proc> {
    let port = port.to_string();
    let args: [&std::ffi::OsStr; 8] = [
        "python3".as_ref(),
        "-m".as_ref(),
        "http.server".as_ref(),
        port.as_ref(),
        "--bind".as_ref(),
        bind.as_ref(),
        "--directory".as_ref(),
        root.as_os_str(),
    ];
    let proc = ns.spawn(args, Some(logs))?;
    listening(ns, proc, &port)
}

/// Starts an `iperf3` server for one test (`-s -1`) on `bind:port` inside
/// `ns` and waits until it listens.
pub fn iperf3_server(ns: &Netns, bind: &str, port: u16, logs: &Path) -> Result<Proc> {
    let port = port.to_string();
    let proc = ns.spawn(["iperf3", "-s", "-1", "-B", bind, "-p", &port], Some(logs))?;
    listening(ns, proc, &port)
}

fn listening(ns: &Netns, mut proc: Proc, port: &str) -> Result<Proc> {
    let port_num: u16 = port.parse().unwrap_or_default();
    match ns.wait_tcp_listening(port_num, LISTEN_TIMEOUT) {
        Ok(()) => Ok(proc),
        Err(e) => {
            let status = proc.try_status();
            Err(Error::WaitTimeout {
                what: format!("`{}` to listen", proc.label()),
                timeout: LISTEN_TIMEOUT,
                detail: format!(
                    "\n{e}\nexit status: {}\n{}",
                    status.map_or("still running".to_string(), |s| s.to_string()),
                    proc.logs()
                ),
            })
        }
    }
}

/// What an `iperf3 -J` client run reports, in total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iperf3Totals {
    /// Bytes the client sent.
    pub sent_bytes: u64,
    /// Bytes the server received.
    pub received_bytes: u64,
    /// Receiver throughput, bits per second.
    pub received_bits_per_second: f64,
}

/// Reads the totals out of `iperf3 -J` output; `Err` explains what is
/// missing (including iperf3's own `error` field).
pub fn iperf3_totals(json: &str) -> Result<Iperf3Totals, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not iperf3 JSON ({e})"))?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3 reported an error: {err}"));
    }
    let end = v.get("end").ok_or("no `end` section")?;
    let field = |section: &str, name: &str| {
        end.get(section)
            .and_then(|s| s.get(name))
            .ok_or(format!("no end.{section}.{name}"))
    };
    Ok(Iperf3Totals {
        sent_bytes: field("sum_sent", "bytes")?
            .as_u64()
            .ok_or("bad sent bytes")?,
        received_bytes: field("sum_received", "bytes")?
            .as_u64()
            .ok_or("bad received bytes")?,
        received_bits_per_second: field("sum_received", "bits_per_second")?
            .as_f64()
            .ok_or("bad bits_per_second")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iperf3_totals() {
        let json = r#"{"start":{},"intervals":[],"end":{
            "sum_sent":{"bytes":1000,"bits_per_second":8000.0},
            "sum_received":{"bytes":990,"bits_per_second":7920.5}}}"#;
        assert_eq!(
            iperf3_totals(json).unwrap(),
            Iperf3Totals {
                sent_bytes: 1000,
                received_bytes: 990,
                received_bits_per_second: 7920.5
            }
        );
        let failed =
            r#"{"start":{},"intervals":[],"end":{},"error":"unable to connect to server"}"#;
        assert!(iperf3_totals(failed)
            .unwrap_err()
            .contains("unable to connect"));
        assert!(iperf3_totals("garbage").is_err());
    }
}
