//! The Linux side: a real kernel's conntrack as the reference firewall.
//!
//! ```text
//!  ┌─ ns a ───────┐        ┌──────────────── ns fw ─────────────────┐        ┌─ ns b ───────┐
//!  │ a0 (no addr) ├─ veth ─┤ fwa 198.18.10.1/24   fwb 198.18.20.1/24 ├─ veth ─┤ b0 (no addr) │
//!  └──────────────┘        │ ip_forward=1, conntrack, nft:           │        └──────────────┘
//!   C 198.18.10.2          │   forward: ct state invalid drop        │         S 198.18.20.2
//!   (frames sent on a0)    │ neigh C -> a0's MAC, S -> b0's MAC      │   (frames sent on b0)
//!                          └─────────────────────────────────────────┘
//! ```
//!
//! C and S are not configured anywhere: their segments are whole Ethernet
//! frames written on `a0` / `b0` by `tests/scripts/ct_replay.py` (scapy),
//! and the namespaces `a` and `b` have no addresses and no forwarding, so
//! their kernels drop what `fw` forwards to them silently (no RST, no ICMP).
//! `fw` has permanent neighbour entries for C and S and never sends ARP.
//!
//! `fw` runs conntrack with `nf_conntrack_tcp_loose=0` (no mid-stream
//! pickup), `nf_conntrack_tcp_be_liberal=0`, `nf_conntrack_checksum=1` and
//! `nf_conntrack_tcp_ignore_invalid_rst=0`, and [`RULESET`]: invalid packets
//! are dropped, everything else is accepted, so the verdict is conntrack's
//! alone.
//!
//! Fresh state per trace: every trace uses its own client port (a tuple of
//! its own), and the conntrack table of `fw` is flushed (`conntrack -F`)
//! before each trace.
//!
//! Both verdicts are observed (see the script's docs): *pass* when the frame
//! comes out on the far side, *drop* when conntrack's `invalid` counter
//! moves. A packet with neither within [`PACKET_TIMEOUT_MS`] is an error of
//! the harness, not a verdict; so is a run where the nft rule's counter
//! disagrees with the drops the script saw.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::{Trace, Verdict};
use crate::command::{self, Output};
use crate::netns::Netns;
use crate::veth;

/// C's address (configured nowhere; only in the frames).
pub const CLIENT_IP: &str = "198.18.10.2";
/// S's address (configured nowhere; only in the frames).
pub const SERVER_IP: &str = "198.18.20.2";
/// The firewall's address on C's side.
pub const FW_A_IP: &str = "198.18.10.1";
/// The firewall's address on S's side.
pub const FW_B_IP: &str = "198.18.20.1";
/// Prefix length of both links.
const PREFIX_LEN: u8 = 24;

/// Interface names: `a0` in ns a, `fwa`/`fwb` in fw, `b0` in ns b.
const A_IF: &str = "a0";
const FW_A_IF: &str = "fwa";
const FW_B_IF: &str = "fwb";
const B_IF: &str = "b0";

/// The firewall's ruleset: drop what conntrack calls invalid, accept the rest.
pub const RULESET: &str = "table inet t {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state invalid counter drop
    }
}
";

/// The conntrack settings of the firewall namespace.
pub const SYSCTLS: [(&str, &str); 4] = [
    ("net.netfilter.nf_conntrack_tcp_loose", "0"),
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "0"),
    ("net.netfilter.nf_conntrack_checksum", "1"),
    ("net.netfilter.nf_conntrack_tcp_ignore_invalid_rst", "0"),
];

/// How long one segment may take to be either forwarded or counted invalid.
/// Only a broken harness waits this long.
pub const PACKET_TIMEOUT_MS: u32 = 2000;

/// Environment variable naming the Python interpreter (it needs scapy).
pub const PYTHON_ENV: &str = "TANDEM_PYTHON";

/// Why the Linux side failed.
#[derive(thiserror::Error)]
pub enum Error {
    /// A harness step (namespaces, veth, a command) failed.
    #[error(transparent)]
    Harness(#[from] crate::Error),
    /// No interpreter with scapy.
    #[error("no python3 with scapy found (tried {tried}); install python3-scapy (scripts/setup) or set {PYTHON_ENV}")]
    NoScapy {
        /// The interpreters tried.
        tried: String,
    },
    /// Setting the firewall up failed.
    #[error("setting up the Linux firewall: {0}")]
    Setup(String),
    /// The replay script failed or said something unexpected.
    #[error("replaying trace {trace}: {why}\n{output}")]
    Replay {
        /// The trace.
        trace: String,
        /// What went wrong.
        why: String,
        /// The script's run.
        output: Box<Output>,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Result of the Linux side.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What Linux did with one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Forwarded or dropped.
    pub verdict: Verdict,
    /// The TCP header and payload that went on the wire.
    pub tcp: Vec<u8>,
    /// From sending to the verdict, in milliseconds.
    pub ms: f64,
}

/// The three namespaces, set up; removed on drop (also on panic).
pub struct LinuxFirewall {
    a: Netns,
    fw: Netns,
    b: Netns,
    macs: Macs,
    python: String,
    script: PathBuf,
    dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
struct Macs {
    a: String,
    fw_a: String,
    fw_b: String,
    b: String,
}

impl LinuxFirewall {
    /// Creates and configures the namespaces.
    pub fn new() -> Result<LinuxFirewall> {
        let python = find_python()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ct_replay.py");
        if !script.is_file() {
            return Err(Error::Setup(format!("{} is missing", script.display())));
        }
        let dir = tempfile::Builder::new()
            .prefix("tandem-ctdiff-")
            .tempdir()
            .map_err(|e| Error::Setup(format!("creating a temporary directory: {e}")))?;

        // Locals drop in reverse order if a step fails: nothing leaks.
        let a = Netns::new("cta")?;
        let fw = Netns::new("ctfw")?;
        let b = Netns::new("ctb")?;
        for ns in [&a, &fw, &b] {
            // No IPv6 chatter (RS, MLD, DAD) on the wires.
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        }
        veth::pair(&a, A_IF, &fw, FW_A_IF)?;
        veth::pair(&fw, FW_B_IF, &b, B_IF)?;
        for ns in [&a, &b] {
            // The endpoints drop what they get: not theirs, and no routing.
            ns.sysctl("net.ipv4.ip_forward", "0")?;
        }

        let cidr = |ip: &str| format!("{ip}/{PREFIX_LEN}");
        fw.ip(&["addr", "add", &cidr(FW_A_IP), "dev", FW_A_IF])?;
        fw.ip(&["addr", "add", &cidr(FW_B_IP), "dev", FW_B_IF])?;
        fw.sysctl("net.ipv4.ip_forward", "1")?;

        // The ruleset first: its `ct` expression loads conntrack into the
        // namespace (and the module, if need be), which creates the sysctls.
        let rules = dir.path().join("ruleset.nft");
        std::fs::write(&rules, RULESET)
            .map_err(|e| Error::Setup(format!("writing {}: {e}", rules.display())))?;
        fw.exec_ok(["nft", "-f", &rules.to_string_lossy()])?;
        if !fw.exec(["sysctl", "-n", SYSCTLS[0].0])?.success() {
            fw.exec_ok(["modprobe", "nf_conntrack"])?;
        }
        for (key, value) in SYSCTLS {
            fw.sysctl(key, value)?;
        }

        let macs = Macs {
            a: mac(&a, A_IF)?,
            fw_a: mac(&fw, FW_A_IF)?,
            fw_b: mac(&fw, FW_B_IF)?,
            b: mac(&b, B_IF)?,
        };
        for (ip, lladdr, dev) in [(CLIENT_IP, &macs.a, FW_A_IF), (SERVER_IP, &macs.b, FW_B_IF)] {
            fw.ip(&[
                "neigh",
                "replace",
                ip,
                "lladdr",
                lladdr,
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
        Ok(LinuxFirewall {
            a,
            fw,
            b,
            macs,
            python,
            script,
            dir,
        })
    }

    /// The firewall namespace (for looking around: `conntrack -L`, `nft`).
    pub fn fw(&self) -> &Netns {
        &self.fw
    }

    /// The names of the three namespaces.
    pub fn namespaces(&self) -> [&str; 3] {
        [self.a.name(), self.fw.name(), self.b.name()]
    }

    /// The Python interpreter in use.
    pub fn python(&self) -> &str {
        &self.python
    }

    /// Packets the nft rule dropped so far.
    pub fn dropped(&self) -> Result<u64> {
        let out = self
            .fw
            .exec_ok(["nft", "-j", "list", "chain", "inet", "t", "forward"])?;
        let json: serde_json::Value = serde_json::from_str(&out.stdout)
            .map_err(|e| Error::Setup(format!("nft -j printed no JSON ({e}):\n{out}")))?;
        counter_packets(&json)
            .ok_or_else(|| Error::Setup(format!("no counter in the forward chain:\n{out}")))
    }

    /// Sends every segment of `trace` through the firewall, from a fresh
    /// conntrack table, and reports what happened to each.
    pub fn replay(&self, trace: &Trace) -> Result<Vec<Observed>> {
        self.fw.exec_ok(["conntrack", "-F"])?;
        let before = self.dropped()?;

        let run = serde_json::json!({
            "a_netns": netns_path(self.a.name()),
            "b_netns": netns_path(self.b.name()),
            "a_if": A_IF,
            "b_if": B_IF,
            "a_mac": self.macs.a,
            "fw_a_mac": self.macs.fw_a,
            "fw_b_mac": self.macs.fw_b,
            "b_mac": self.macs.b,
            "client_ip": CLIENT_IP,
            "server_ip": SERVER_IP,
            "client_port": trace.client_port,
            "server_port": trace.server_port,
            "timeout_ms": PACKET_TIMEOUT_MS,
            "packets": trace.packets,
        });
        let path = self.dir.path().join(format!("{}.json", trace.name));
        std::fs::write(&path, run.to_string())
            .map_err(|e| Error::Setup(format!("writing {}: {e}", path.display())))?;

        let packets = u32::try_from(trace.packets.len()).unwrap_or(u32::MAX);
        let limit = Duration::from_secs(30)
            + Duration::from_millis(u64::from(PACKET_TIMEOUT_MS) + 1000) * packets;
        let mut cmd = self.fw.command([
            OsStr::new(&self.python),
            self.script.as_os_str(),
            path.as_os_str(),
        ]);
        let output = command::run(&mut cmd, limit)?;
        let fail = |why: String| Error::Replay {
            trace: trace.name.to_string(),
            why,
            output: Box::new(output.clone()),
        };
        if !output.success() {
            return Err(fail("the script failed".to_string()));
        }
        let printed: Printed = serde_json::from_str(output.stdout.trim())
            .map_err(|e| fail(format!("unexpected output ({e})")))?;
        if printed.results.len() != trace.packets.len() {
            return Err(fail(format!(
                "{} results for {} packets",
                printed.results.len(),
                trace.packets.len()
            )));
        }
        let mut observed = Vec::with_capacity(printed.results.len());
        for (i, r) in printed.results.into_iter().enumerate() {
            let verdict = match r.verdict.as_str() {
                "pass" => Verdict::Pass,
                "drop" => Verdict::Drop,
                other => {
                    return Err(fail(format!(
                        "packet #{} ({}) was {other}: neither forwarded nor counted invalid within {PACKET_TIMEOUT_MS} ms",
                        i + 1,
                        trace.summary(&trace.packets[i])
                    )))
                }
            };
            let tcp = hex(&r.tcp).ok_or_else(|| fail(format!("bad hex for packet #{}", i + 1)))?;
            observed.push(Observed {
                verdict,
                tcp,
                ms: r.ms,
            });
        }

        let after = self.dropped()?;
        let drops = observed
            .iter()
            .filter(|o| o.verdict == Verdict::Drop)
            .count();
        if after.checked_sub(before) != u64::try_from(drops).ok() {
            return Err(fail(format!(
                "the nft rule dropped {} packets, the script saw {drops} counted invalid",
                after.wrapping_sub(before)
            )));
        }
        Ok(observed)
    }
}

/// What the script prints.
#[derive(Deserialize)]
struct Printed {
    results: Vec<PrintedResult>,
}

#[derive(Deserialize)]
struct PrintedResult {
    verdict: String,
    tcp: String,
    ms: f64,
}

/// The first `python3`-like interpreter that has scapy: `$TANDEM_PYTHON`,
/// else `python3`, else the system's `/usr/bin/python3`.
pub fn find_python() -> Result<String> {
    let candidates = match std::env::var(PYTHON_ENV) {
        Ok(p) => vec![p],
        // A pyenv or venv `python3` first in PATH may lack the system's
        // python3-scapy.
        Err(_) => vec!["python3".to_string(), "/usr/bin/python3".to_string()],
    };
    for c in &candidates {
        let probe = command::run(
            Command::new(c).args(["-c", "import scapy.layers.inet"]),
            Duration::from_secs(60),
        );
        if probe.is_ok_and(|o| o.success()) {
            return Ok(c.clone());
        }
    }
    Err(Error::NoScapy {
        tried: candidates.join(", "),
    })
}

/// The MAC address of `dev` in `ns`.
fn mac(ns: &Netns, dev: &str) -> Result<String> {
    let out = ns.ip(&["-br", "link", "show", "dev", dev])?;
    out.stdout
        .split_whitespace()
        .nth(2)
        .filter(|m| m.len() == 17 && m.chars().filter(|&c| c == ':').count() == 5)
        .map(str::to_string)
        .ok_or_else(|| Error::Setup(format!("no MAC address for {dev}:\n{out}")))
}

/// Where `ip netns` keeps the namespace's handle.
fn netns_path(name: &str) -> PathBuf {
    let run = Path::new("/run/netns").join(name);
    if run.exists() {
        run
    } else {
        Path::new("/var/run/netns").join(name)
    }
}

/// The `packets` of the first `counter` in nft's JSON.
fn counter_packets(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(n) = map
                .get("counter")
                .and_then(|c| c.get("packets"))
                .and_then(serde_json::Value::as_u64)
            {
                return Some(n);
            }
            map.values().find_map(counter_packets)
        }
        serde_json::Value::Array(items) => items.iter().find_map(counter_packets),
        _ => None,
    }
}

/// Lower-case hex to bytes.
fn hex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok().filter(|d| d.len() == 2)?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counter_from_nft_json() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"chain": {"name": "forward"}},
               {"rule": {"expr": [{"match": {"op": "in"}}, {"counter": {"packets": 7, "bytes": 420}}, {"drop": null}]}}]}"#,
        )
        .unwrap();
        assert_eq!(counter_packets(&json), Some(7));
    }

    #[test]
    fn decodes_hex() {
        assert_eq!(hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(hex("0"), None);
        assert_eq!(hex("zz"), None);
    }
}
