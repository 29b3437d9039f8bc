//! Many long-lived flows through a unit: TCP connections held open and UDP
//! flows answered, made by real Linux sockets (`scripts/held_flows.py`, a
//! python3 standard-library program started as a [`Proc`]).
//!
//! ```no_run
//! use tandem_tests::flows::{FlowServer, HeldFlows, Open};
//! use tandem_tests::{plan, Lab};
//! let lab = Lab::routed().unwrap();
//! let _server = FlowServer::start(lab.server(), plan::SERVER_IP, &[5001], Some(5353), &lab.dir().join("srv")).unwrap();
//! let held = HeldFlows::open(lab.client(), &Open::new(plan::SERVER_IP).tcp(100, 5001).udp(20, 5353), &lab.dir().join("cli")).unwrap();
//! assert_eq!(held.tcp_ports().len(), 100);
//! drop(held); // every TCP connection closes (FIN), the UDP sockets go
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conns::ConnKey;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Proc;
use crate::wait::poll_until_detail;

/// How long a client gets to open its connections and hear its UDP echoes.
/// Bounds a hang; never a measure (a thousand connections take a second or
/// two through a lab unit).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the server gets to bind its sockets.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The script, in this crate.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/held_flows.py")
}

/// Waits until `proc` printed a line starting with `word`; returns it.
fn wait_line(proc: &mut Proc, word: &str, timeout: Duration) -> Result<String> {
    poll_until_detail(&format!("`{word}` from {}", proc.label()), timeout, || {
        if let Some(line) = proc.stdout().lines().find(|l| l.starts_with(word)) {
            return Ok(Ok(line.to_string()));
        }
        match proc.try_status() {
            Some(status) => Err(Error::Lab(format!(
                "{} exited with {status}\n{}",
                proc.label(),
                proc.logs()
            ))),
            None => Ok(Err(proc.logs())),
        }
    })
}

/// The server side: TCP listeners that keep every connection until its
/// peer closes it, and a UDP echo. Stopped on drop.
pub struct FlowServer {
    proc: Proc,
}

impl FlowServer {
    /// Starts it in `ns`, bound to `bind`, listening on every port of `tcp`
    /// and echoing UDP on `udp`; waits until it is bound. Logs go to
    /// `logs.out` / `logs.err`.
    pub fn start(
        ns: &Netns,
        bind: &str,
        tcp: &[u16],
        udp: Option<u16>,
        logs: &Path,
    ) -> Result<FlowServer> {
        FlowServer::start_with(ns, bind, tcp, udp, false, logs)
    }

    /// [`FlowServer::start`], echoing what arrives on TCP too when `echo`
    /// (for [`HeldFlows::poke`]).
    pub fn start_with(
        ns: &Netns,
        bind: &str,
        tcp: &[u16],
        udp: Option<u16>,
        echo: bool,
        logs: &Path,
    ) -> Result<FlowServer> {
        let ports: Vec<String> = tcp.iter().map(u16::to_string).collect();
        let script = script();
        let mut args = vec![
            "python3".to_string(),
            script.display().to_string(),
            "server".into(),
            "--bind".into(),
            bind.into(),
            "--tcp-ports".into(),
            ports.join(","),
        ];
        if let Some(port) = udp {
            args.extend(["--udp-port".into(), port.to_string()]);
        }
        if echo {
            args.push("--echo".into());
        }
        let mut proc = ns.spawn(&args, Some(logs))?;
        wait_line(&mut proc, "listening", LISTEN_TIMEOUT)?;
        Ok(FlowServer { proc })
    }

    /// The process (its logs, its pid).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

/// What a client opens ([`HeldFlows::open`]).
#[derive(Debug, Clone)]
pub struct Open {
    server: String,
    tcp: (usize, u16),
    send_every: usize,
    udp: (usize, u16),
}

impl Open {
    /// Nothing yet, towards `server`.
    pub fn new(server: &str) -> Open {
        Open {
            server: server.to_string(),
            tcp: (0, 5001),
            send_every: 0,
            udp: (0, 5353),
        }
    }

    /// `count` TCP connections to `port`.
    pub fn tcp(mut self, count: usize, port: u16) -> Open {
        self.tcp = (count, port);
        self
    }

    /// 100 bytes sent on every `k`-th connection (0: none, the default).
    pub fn send_every(mut self, k: usize) -> Open {
        self.send_every = k;
        self
    }

    /// `count` UDP flows (one socket each) to `port`, each answered.
    pub fn udp(mut self, count: usize, port: u16) -> Open {
        self.udp = (count, port);
        self
    }
}

/// Flows a client opened and holds; closed when dropped (the client exits:
/// a FIN on every TCP connection). The server closes its end when it reads
/// the FIN; its kernel then sends an ACK (in softirq) and a FIN (from the
/// server's `close`), and when two CPUs sent them the veth may deliver them
/// out of order: the client ACKs twice and the server's kernel answers the
/// second ACK with a RST. So a few closed connections end in CLOSE rather
/// than TIME_WAIT, on every router.
pub struct HeldFlows {
    proc: Proc,
    server: String,
    tcp_port: u16,
    udp_port: u16,
    tcp: Vec<u16>,
    udp: Vec<u16>,
    pokes: usize,
}

/// What [`HeldFlows::poke`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poked {
    /// Connections whose 16 bytes came back.
    pub answered: usize,
    /// The client's local ports of those whose bytes did not.
    pub unanswered: Vec<u16>,
}

impl HeldFlows {
    /// Opens what `what` says from `ns` and waits until every TCP connection
    /// is established and every UDP flow answered. A flow that could not be
    /// made is an error (with the client's output).
    pub fn open(ns: &Netns, what: &Open, logs: &Path) -> Result<HeldFlows> {
        let script = script();
        let args = [
            "python3".to_string(),
            script.display().to_string(),
            "client".into(),
            "--server".into(),
            what.server.clone(),
            "--tcp".into(),
            what.tcp.0.to_string(),
            "--tcp-port".into(),
            what.tcp.1.to_string(),
            "--send-every".into(),
            what.send_every.to_string(),
            "--udp".into(),
            what.udp.0.to_string(),
            "--udp-port".into(),
            what.udp.1.to_string(),
        ];
        let mut proc = ns.spawn(&args, Some(logs))?;
        let line = wait_line(&mut proc, "{", OPEN_TIMEOUT)?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| Error::Lab(format!("held_flows.py printed {line:?}: {e}")))?;
        let ports = |name: &str| -> Vec<u16> {
            v.get(name)
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let unanswered = ports("udp_unanswered");
        if !unanswered.is_empty() {
            return Err(Error::Lab(format!(
                "{} UDP flow(s) got no echo: from ports {unanswered:?}\n{}",
                unanswered.len(),
                proc.logs()
            )));
        }
        let held = HeldFlows {
            server: what.server.clone(),
            tcp_port: what.tcp.1,
            udp_port: what.udp.1,
            tcp: ports("tcp"),
            udp: ports("udp"),
            proc,
            pokes: 0,
        };
        if held.tcp.len() != what.tcp.0 || held.udp.len() != what.udp.0 {
            return Err(Error::Lab(format!(
                "held_flows.py opened {} TCP and {} UDP flows, not {} and {}\n{}",
                held.tcp.len(),
                held.udp.len(),
                what.tcp.0,
                what.udp.0,
                held.proc.logs()
            )));
        }
        Ok(held)
    }

    /// The client's local ports of its TCP connections.
    pub fn tcp_ports(&self) -> &[u16] {
        &self.tcp
    }

    /// The client's local ports of its UDP flows.
    pub fn udp_ports(&self) -> &[u16] {
        &self.udp
    }

    /// Every flow's key as a unit's `conns` lists it, for a client at
    /// `client_ip`: TCP first, in the order they were opened, then UDP.
    pub fn keys(&self, client_ip: &str) -> Vec<ConnKey> {
        let tcp_dst = format!("{}:{}", self.server, self.tcp_port);
        let udp_dst = format!("{}:{}", self.server, self.udp_port);
        let tcp = self
            .tcp
            .iter()
            .map(|p| ConnKey::new("tcp", &format!("{client_ip}:{p}"), &tcp_dst));
        let udp = self
            .udp
            .iter()
            .map(|p| ConnKey::new("udp", &format!("{client_ip}:{p}"), &udp_dst));
        tcp.chain(udp).collect()
    }

    /// Sends 16 bytes on every held TCP connection and waits for each to
    /// come back (the server must echo: [`FlowServer::start_with`]): which
    /// connections still carry data, e.g. after a takeover.
    pub fn poke(&mut self) -> Result<Poked> {
        const WORD: &str = "{\"poked\"";
        self.proc.signal("USR1");
        let n = self.pokes + 1;
        let proc = &mut self.proc;
        let line = poll_until_detail("the client's poke answer", OPEN_TIMEOUT, || {
            if let Some(line) = proc
                .stdout()
                .lines()
                .filter(|l| l.starts_with(WORD))
                .nth(n - 1)
            {
                return Ok(Ok(line.to_string()));
            }
            match proc.try_status() {
                Some(status) => Err(Error::Lab(format!(
                    "held_flows.py exited with {status}\n{}",
                    proc.logs()
                ))),
                None => Ok(Err(proc.logs())),
            }
        })?;
        self.pokes = n;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| Error::Lab(format!("held_flows.py printed {line:?}: {e}")))?;
        Ok(Poked {
            answered: v["poked"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            unanswered: v["unanswered"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The client process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// Closes every flow now: SIGTERM, the client exits (a FIN on every TCP
    /// connection) and is reaped.
    pub fn close(mut self) -> Result<()> {
        self.proc.terminate(Duration::from_secs(10)).map(drop)
    }
}
