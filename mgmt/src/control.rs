//! The control socket: how `tandemctl` (and later the console) talks to a
//! running unit.
//!
//! # Protocol
//!
//! A unix stream socket, one request per connection, plain text both ways,
//! so that it works unchanged over a serial console relay:
//!
//! ```text
//!  tandemctl                                   tandemd (main thread, every 20 ms)
//!     │ connect(/run/tandem/tandemd.sock)          │ accept (non-blocking)
//!     │ ── "conns proto tcp port 80\n" ──────────► │ read one line (≤ 1 KiB, ≤ 0.5 s)
//!     │                                            │ parse, answer
//!     │ ◄──────────── answer text, any lines ───── │
//!     │ ◄──────────────────────────────── close ── │
//! ```
//!
//! The request is one line of words separated by whitespace, ended by `\n`
//! (a `\r` before it and a missing `\n` before end of input are accepted).
//! The answer is text lines, UTF-8, no colour, and ends when the unit closes
//! the connection. An answer that starts with `error: ` is a refusal and is
//! one line; any other answer is a success. Commands ([`request::HELP`]):
//!
//! | request | answer |
//! | --- | --- |
//! | `counters [--nonzero] [PATTERN]` | `name value` per counter, names padded so values line up; only names containing PATTERN |
//! | `conns [proto P] [addr IP] [port N] [state S] [limit N]` | a header, one aligned row per connection (`W PROTO SOURCE -> DESTINATION STATE RULE IN OUT AGE EXPIRES FLAGS`), then `N connection(s)` |
//! | `rules` | the rules in force, as `RuleSet::listing` shows them |
//! | `reload` | reads the rules file again, like SIGHUP: the result, or `error: ...` with `file:line:column` |
//! | `help` | the command list |
//!
//! In `conns`, `addr` and `port` match either end; `limit` is per worker
//! (default 1000), and a worker that reached it is named on a last line.
//! Addresses are shown `ip:port` for TCP, UDP and SCTP; an ICMP echo's
//! identifier is shown as `id=N` among the flags. `RULE` is the index of the
//! rule that admitted the connection in the rule set of that moment (`-`:
//! none, e.g. the default policy).
//!
//! # Socket
//!
//! Only root may connect: the parent directory is created `0700` when it is
//! missing, and the socket file is set to `0600` right after `bind` (in the
//! moment between, root's usual umask 022 already leaves it unwritable, so
//! unconnectable, by others). A socket file left by a unit that died is
//! replaced; one that a live unit answers on is not — two units given the
//! same path fail to start rather than steal each other's socket. (Only two
//! units started in the same instant over a stale file could both find it
//! stale; the later bind then wins. Unit start-up is serialised by the
//! service manager, so this is left unlocked.) The file is removed on drop,
//! if it is still the one this server created.
//!
//! # Never in the way
//!
//! [`ControlServer::serve`] runs on the daemon's main thread: it accepts
//! without blocking, gives each request [`REQUEST_TIMEOUT`] to arrive and each
//! answer [`ANSWER_TIMEOUT`] to be taken, and serves at most
//! [`MAX_PER_SERVE`] connections per call, none after [`SERVE_BUDGET`] went
//! by (the rest wait in the backlog for the next call). `conns` waits up to
//! [`answer::CONNS_WAIT`] for the workers. A failure of one connection is
//! logged on stderr and the unit carries on.

pub mod answer;
pub mod request;

pub use answer::Target;

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where `tandemd` binds and `tandemctl` connects unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/tandem/tandemd.sock";

/// The longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 1024;
/// How long a client gets to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a client gets to take the whole answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served per [`ControlServer::serve`] call; more wait for the next.
pub const MAX_PER_SERVE: usize = 4;
/// No further connection is taken in a [`ControlServer::serve`] call once
/// this much time went to the earlier ones.
pub const SERVE_BUDGET: Duration = Duration::from_millis(200);

/// Why the control socket could not be bound. The daemon names the path.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A live process answers on the path.
    #[error("another process answers on it (is a unit already running with this --control?)")]
    InUse,
    /// Something other than a socket is at the path.
    #[error("it exists and is not a socket; not replacing it")]
    NotASocket,
    /// A system call failed.
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// What the OS said.
        source: io::Error,
    },
}

fn io_err(step: &'static str) -> impl FnOnce(io::Error) -> BindError {
    move |source| BindError::Io { step, source }
}

/// The unit's end of the control socket.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file bound, so that drop removes only
    /// this server's own file.
    file: (u64, u64),
}

impl ControlServer {
    /// Binds the socket at `path` (see the module docs).
    pub fn bind(path: &Path) -> Result<Self, BindError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_err("creating its directory"))?;
            }
        }
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                Self::remove_stale(path)?;
                UnixListener::bind(path).map_err(io_err("bind"))?
            }
            Err(e) => {
                return Err(BindError::Io {
                    step: "bind",
                    source: e,
                })
            }
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod 0600"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("set non-blocking"))?;
        let meta = std::fs::symlink_metadata(path).map_err(io_err("stat"))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
        })
    }

    /// Removes the socket file at `path` if nobody answers on it.
    fn remove_stale(path: &Path) -> Result<(), BindError> {
        let meta = std::fs::symlink_metadata(path).map_err(io_err("stat"))?;
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket);
        }
        match UnixStream::connect(path) {
            Ok(_) => Err(BindError::InUse),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io_err("removing the stale socket file"))
            }
            Err(e) => Err(BindError::Io {
                step: "checking whether the existing socket is alive",
                source: e,
            }),
        }
    }

    /// Where it is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers the requests that are waiting (at most [`MAX_PER_SERVE`]),
    /// without waiting for new ones. `reload` re-reads the rules.
    pub fn serve(&self, target: &dyn Target, reload: answer::Reload<'_>) {
        let start = Instant::now();
        for _ in 0..MAX_PER_SERVE {
            if start.elapsed() >= SERVE_BUDGET {
                return;
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = handle(stream, target, reload) {
                        eprintln!("tandemd: control socket {}: {e}", self.path.display());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!(
                        "tandemd: control socket {}: accept: {e}",
                        self.path.display()
                    );
                    return;
                }
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                eprintln!(
                    "tandemd: control socket {}: removing it: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// What reading a request line came to.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// End of input before a single byte: a liveness probe (another unit
    /// checking whether this socket is alive), not a request.
    Nothing,
    Complete(String),
    TooLong,
    NotText,
    TimedOut,
}

/// Serves one connection: one request line, one answer, close.
fn handle(
    mut stream: UnixStream,
    target: &dyn Target,
    reload: answer::Reload<'_>,
) -> io::Result<()> {
    // Accepted sockets do not inherit O_NONBLOCK on Linux; be explicit.
    stream.set_nonblocking(false)?;
    let text = match read_line(&mut stream, Instant::now() + REQUEST_TIMEOUT)? {
        Line::Nothing => return Ok(()),
        Line::Complete(line) => match request::parse(&line) {
            Ok(req) => {
                let text = answer::answer(&req, target, reload);
                if req == request::Request::Reload {
                    eprintln!("tandemd: control: reload: {}", text.trim_end());
                }
                text
            }
            Err(e) => answer::error(&e.0),
        },
        Line::TooLong => answer::error(&format!("request longer than {MAX_REQUEST} bytes")),
        Line::NotText => answer::error("the request is not UTF-8 text"),
        Line::TimedOut => answer::error(&format!(
            "no request line within {} ms",
            REQUEST_TIMEOUT.as_millis()
        )),
    };
    write_all_by(
        &mut stream,
        text.as_bytes(),
        Instant::now() + ANSWER_TIMEOUT,
    )?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn read_line(stream: &mut UnixStream, deadline: Instant) -> io::Result<Line> {
    let mut buf: Vec<u8> = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    let end = loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(Line::TooLong);
        }
        let Some(left) = remaining(deadline) else {
            return Ok(Line::TimedOut);
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(Line::Nothing),
            Ok(0) => break buf.len(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Line::TimedOut)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    if end > MAX_REQUEST {
        return Ok(Line::TooLong);
    }
    buf.truncate(end);
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8(buf).map_or(Line::NotText, Line::Complete))
}

fn write_all_by(stream: &mut UnixStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let Some(left) = remaining(deadline) else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client did not take the answer within {} s; {} bytes not sent",
                    ANSWER_TIMEOUT.as_secs(),
                    bytes.len()
                ),
            ));
        };
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The client's side: sends `line` to the socket at `path` and returns the
/// whole answer. `timeout` bounds the wait for the answer.
pub fn request(path: &Path, line: &str, timeout: Duration) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let deadline = Instant::now() + timeout;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Some(left) = remaining(deadline) else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete answer within {} s", timeout.as_secs()),
            ));
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::control::{ConnFilter, ConnInfo};
    use dataplane::filter::RuleSet;
    use std::sync::Arc;

    struct Empty(Vec<String>);

    impl Target for Empty {
        fn counters(&self) -> Vec<(String, u64)> {
            vec![("worker0.rx_packets".into(), 7)]
        }
        fn connections(&self, _: &ConnFilter, _: usize, _: Duration) -> Vec<ConnInfo> {
            Vec::new()
        }
        fn rules(&self) -> Option<Arc<RuleSet>> {
            None
        }
        fn interface_names(&self) -> &[String] {
            &self.0
        }
    }

    fn reload() -> Result<String, String> {
        Ok("rules reloaded".into())
    }

    /// A fresh directory under the system's temporary directory, removed on
    /// drop (mgmt has no dev-dependencies; this is all the tests need).
    struct TmpDir(PathBuf);

    impl TmpDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("tandem-control-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Serves on another thread until `n` requests were answered.
    fn serve_n(server: &ControlServer, n: usize) {
        let target = Empty(vec!["data0".into()]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        while served < n && Instant::now() < deadline {
            match server.listener.accept() {
                Ok((stream, _)) => {
                    handle(stream, &target, &reload).unwrap();
                    served += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        assert_eq!(served, n, "served in time");
    }

    #[test]
    fn binds_0600_in_a_new_0700_dir_answers_and_removes_its_file() {
        let tmp = TmpDir::new("bind");
        let path = tmp.path().join("run/tandem/ctl.sock");
        let server = ControlServer::bind(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::thread::scope(|s| {
            s.spawn(|| serve_n(&server, 3));
            let t = Duration::from_secs(10);
            assert_eq!(
                request(&path, "counters", t).unwrap(),
                "worker0.rx_packets 7\n"
            );
            assert_eq!(request(&path, "reload", t).unwrap(), "rules reloaded\n");
            assert_eq!(
                request(&path, "frobnicate", t).unwrap(),
                "error: unknown command `frobnicate`; commands: counters, conns, rules, reload, help\n"
            );
        });
        drop(server);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[test]
    fn a_live_socket_is_never_taken_and_a_stale_one_is_replaced() {
        let tmp = TmpDir::new("live");
        let path = tmp.path().join("ctl.sock");
        let first = ControlServer::bind(&path).unwrap();
        let err = ControlServer::bind(&path)
            .err()
            .expect("a second bind must fail");
        assert!(matches!(err, BindError::InUse), "{err}");
        // The first unit still owns and answers on its socket.
        std::thread::scope(|s| {
            // The second bind's liveness probe is the first connection.
            s.spawn(|| serve_n(&first, 2));
            assert_eq!(
                request(&path, "counters", Duration::from_secs(10)).unwrap(),
                "worker0.rx_packets 7\n"
            );
        });

        // A unit that died without cleaning up leaves a socket file nobody
        // listens on: it is replaced.
        let tmp2 = TmpDir::new("live2");
        let stale = tmp2.path().join("ctl.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let server = ControlServer::bind(&stale).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| serve_n(&server, 1));
            assert_eq!(
                request(&stale, "help", Duration::from_secs(10)).unwrap(),
                request::HELP
            );
        });

        // A file that is not a socket is left alone.
        let file = tmp2.path().join("notes.txt");
        std::fs::write(&file, "keep me").unwrap();
        let err = ControlServer::bind(&file).err().expect("not a socket");
        assert!(matches!(err, BindError::NotASocket), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn drop_leaves_a_file_that_is_no_longer_its_own() {
        let tmp = TmpDir::new("dropother");
        let path = tmp.path().join("ctl.sock");
        let server = ControlServer::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(server);
        assert!(path.exists(), "another listener's file was removed");
        drop(other);
    }

    #[test]
    fn serve_returns_at_once_when_nobody_asks() {
        let tmp = TmpDir::new("idle");
        let server = ControlServer::bind(&tmp.path().join("ctl.sock")).unwrap();
        server.serve(&Empty(Vec::new()), &reload);
    }

    #[test]
    fn request_lines_are_bounded_and_must_be_text() {
        let tmp = TmpDir::new("lines");
        let path = tmp.path().join("ctl.sock");
        let server = ControlServer::bind(&path).unwrap();
        let raw = |bytes: &[u8], close: bool| -> String {
            let mut s = UnixStream::connect(&path).unwrap();
            s.write_all(bytes).unwrap();
            if close {
                s.shutdown(std::net::Shutdown::Write).unwrap();
            }
            let mut out = String::new();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.read_to_string(&mut out).unwrap();
            out
        };
        std::thread::scope(|s| {
            s.spawn(|| serve_n(&server, 6));
            // Connected and closed without a word: a liveness probe, no answer.
            assert_eq!(raw(b"", true), "");
            // No newline, but end of input: still one request.
            assert_eq!(raw(b"counters", true), "worker0.rx_packets 7\n");
            // CRLF, as a serial terminal may send.
            assert_eq!(raw(b"counters\r\n", false), "worker0.rx_packets 7\n");
            assert_eq!(
                raw(&[b'x'; MAX_REQUEST + 10], false),
                "error: request longer than 1024 bytes\n"
            );
            assert_eq!(
                raw(b"\xff\xfe\n", false),
                "error: the request is not UTF-8 text\n"
            );
            // Connected, says nothing, keeps the connection open.
            assert_eq!(raw(b"", false), "error: no request line within 500 ms\n");
        });
    }
}
