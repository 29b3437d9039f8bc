//! The control socket: how `tandemctl` (and later the console) reaches a
//! running unit. A transport only: it reads request lines and writes the
//! answers that the supervisor ([`crate::supervisor`]) gives; what the lines
//! mean is [`crate::console`].
//!
//! # Protocol
//!
//! A unix stream socket, one request per connection, plain text both ways,
//! so that it works unchanged over a serial console relay:
//!
//! ```text
//!  tandemctl                                   tandemd (control thread)
//!     │ connect(/run/tandem/tandemd.sock)          │ accept
//!     │ ── "conns proto tcp port 80\n" ──────────► │ one line (≤ 1 KiB, ≤ 0.5 s)
//!     │                                            │ ─► supervisor ─► answer
//!     │ ◄──────────── answer text, any lines ───── │ (taken within 5 s)
//!     │ ◄──────────────────────────────── close ── │
//! ```
//!
//! The request is one line of words separated by whitespace, ended by `\n`
//! (a `\r` before it and a missing `\n` before end of input are accepted).
//! The answer is text lines, UTF-8, no colour, and ends when the unit closes
//! the connection. A connection closed without a byte is a liveness probe
//! (another unit checking the socket) and gets no answer.
//!
//! # Socket
//!
//! Only root may connect: the parent directory is created `0700` when it is
//! missing, and the socket file is set to `0600` right after `bind` (in the
//! moment between, root's usual umask 022 already leaves it unwritable, so
//! unconnectable, by others). A socket file left by a unit that died is
//! replaced; one that a live unit answers on is not — two units given the
//! same path fail to start rather than steal each other's socket. The file
//! is removed on drop, if it is still the one this server created.
//!
//! # Never in the way
//!
//! The socket has a thread of its own ([`ControlServer::spawn`]) with one
//! event loop (mio) over every client, so no client waits for another and
//! nothing the unit does waits for a client. Each client is bounded:
//! [`REQUEST_TIMEOUT`] to send its line, [`COMMAND_TIMEOUT`] for the unit to
//! answer, [`ANSWER_TIMEOUT`] to take the whole answer, then it is closed.
//! At most [`MAX_CLIENTS`] are served at once; when another connects, the
//! client that has been silent longest is closed to make room, so idle
//! connections can never lock the console out. Answers in flight hold at
//! most [`MAX_ANSWER_BYTES`] in all; past that a request is answered
//! `error: the unit is busy`. Every such event is counted (`control.*`).

use crate::console::answer;
use crate::console::request;
use crate::supervisor::{Command, Reply, SupervisorHandle, BUSY, STOPPING};
use crossbeam::channel::{Receiver, TryRecvError};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where `tandemd` binds and `tandemctl` connects unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/tandem/tandemd.sock";

/// The longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 1024;
/// How long a client gets to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the unit gets to answer a request (a `conns` listing waits up
/// to [`crate::supervisor::LISTING_WAIT`] for the workers).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client gets to take the whole answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once.
pub const MAX_CLIENTS: usize = 64;
/// Bytes of answers waiting to be taken, over all clients.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;
/// The bounds of the control socket; [`Limits::default`] is the constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// [`COMMAND_TIMEOUT`].
    pub command_timeout: Duration,
    /// [`ANSWER_TIMEOUT`].
    pub answer_timeout: Duration,
    /// [`MAX_CLIENTS`].
    pub max_clients: usize,
    /// [`MAX_ANSWER_BYTES`].
    pub max_answer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: REQUEST_TIMEOUT,
            command_timeout: COMMAND_TIMEOUT,
            answer_timeout: ANSWER_TIMEOUT,
            max_clients: MAX_CLIENTS,
            max_answer_bytes: MAX_ANSWER_BYTES,
        }
    }
}

/// The longest the event loop sleeps (it checks its stop flag this often).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often it looks for the supervisor's answers while some are due.
const ANSWER_POLL: Duration = Duration::from_millis(2);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

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

macro_rules! control_stats {
    ($($field:ident: $doc:literal,)*) => {
        /// What the control socket counted, shown as `control.<name>`.
        #[derive(Debug, Default)]
        pub struct ControlStats {
            $(#[doc = $doc] pub $field: AtomicU64,)*
        }

        impl ControlStats {
            /// Appends every count as `control.<name>`.
            pub fn snapshot(&self, out: &mut Vec<(String, u64)>) {
                $(out.push((
                    concat!("control.", stringify!($field)).to_string(),
                    self.$field.load(Ordering::Relaxed),
                ));)*
            }
        }
    };
}

control_stats! {
    clients_accepted: "Connections accepted.",
    requests_answered: "Answers taken whole by their client.",
    requests_refused: "Requests refused before the unit saw them (not a request line: too long, not text, unknown command).",
    request_timeouts: "Clients closed for not sending a request line in time.",
    clients_evicted: "Silent clients closed to make room for a new one (MAX_CLIENTS).",
    answers_abandoned: "Answers not taken whole in time; the client was closed.",
    answers_busy: "Requests answered `busy` because answers in flight held MAX_ANSWER_BYTES.",
    clients_now: "Clients connected now (a gauge).",
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The unit's end of the control socket, bound but not yet served.
pub struct ControlServer {
    listener: UnixListener,
    stats: Arc<ControlStats>,
    limits: Limits,
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
            stats: Arc::default(),
            limits: Limits::default(),
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

    /// Other bounds than the default ones (tests use long timeouts, so that
    /// what they show does not depend on the machine's speed).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What it counts, once served.
    pub fn stats(&self) -> Arc<ControlStats> {
        Arc::clone(&self.stats)
    }

    /// Serves on a thread of its own (on `cpus`), handing requests to
    /// `supervisor`, until [`ControlThread::stop`].
    pub fn spawn(self, supervisor: SupervisorHandle, cpus: &[u32]) -> io::Result<ControlThread> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = self.stats();
        let mut server = EventLoop {
            listener: mio::net::UnixListener::from_std(self.listener.try_clone()?),
            poll,
            supervisor,
            clients: HashMap::new(),
            next_token: 2,
            answer_bytes: 0,
            limits: self.limits,
            stats,
            stop: Arc::clone(&stop),
        };
        let thread = crate::thread::spawn("tandem-control", cpus, move || {
            if let Err(e) = server.run() {
                tracing::error!("control socket: {e}; the console is unavailable");
            }
            drop(self);
        })?;
        Ok(ControlThread {
            stop,
            waker,
            thread,
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!("control socket {}: removing it: {e}", self.path.display());
            }
        }
    }
}

/// The control socket's running thread.
pub struct ControlThread {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: JoinHandle<()>,
}

impl ControlThread {
    /// Closes every client, removes the socket file and ends the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if self.thread.join().is_err() {
            tracing::error!("the control thread panicked");
        }
    }
}

/// Where one client is.
enum Phase {
    /// Sending its request line, due by the deadline.
    Reading(Vec<u8>),
    /// Its request is with the supervisor.
    Waiting(Receiver<Reply>),
    /// Taking its answer: the bytes and how many were sent.
    Writing(Vec<u8>, usize),
}

struct Client {
    stream: mio::net::UnixStream,
    phase: Phase,
    deadline: Instant,
    /// When it connected (the oldest silent one is evicted first).
    since: Instant,
    /// The peer closed its writing side.
    eof: bool,
    /// Reading or writing failed (the peer went away).
    broken: bool,
}

/// What reading a request line came to.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// More bytes may come.
    Partial,
    /// End of input before a single byte: a liveness probe, not a request.
    Nothing,
    Complete(String),
    TooLong,
    NotText,
}

/// The request line in `buf`, if it is complete (`eof`: no more bytes come).
fn line_of(buf: &[u8], eof: bool) -> Line {
    let end = match buf.iter().position(|&b| b == b'\n') {
        Some(i) => i,
        None if buf.len() > MAX_REQUEST => return Line::TooLong,
        None if eof && buf.is_empty() => return Line::Nothing,
        None if eof => buf.len(),
        None => return Line::Partial,
    };
    if end > MAX_REQUEST {
        return Line::TooLong;
    }
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    String::from_utf8(line.to_vec()).map_or(Line::NotText, Line::Complete)
}

/// What [`EventLoop::advance`] does with a client.
enum Next<'a> {
    Stay,
    /// Answer this refusal, counted.
    Refuse(&'a AtomicU64, String),
    /// Answer the supervisor's reply.
    Answer(Reply),
    /// Close it, counted (`None`: a liveness probe, nothing to count).
    Close(Option<&'a AtomicU64>),
}

struct EventLoop {
    listener: mio::net::UnixListener,
    poll: Poll,
    supervisor: SupervisorHandle,
    clients: HashMap<Token, Client>,
    next_token: usize,
    /// Bytes of answers being written, over all clients.
    answer_bytes: usize,
    limits: Limits,
    stats: Arc<ControlStats>,
    stop: Arc<AtomicBool>,
}

impl EventLoop {
    fn run(&mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(256);
        while !self.stop.load(Ordering::Relaxed) {
            let timeout = self.next_wake(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    token => self.io(token),
                }
            }
            self.advance(Instant::now());
            self.stats
                .clients_now
                .store(self.clients.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// How long to sleep: until the next deadline, shorter while answers are due.
    fn next_wake(&self, now: Instant) -> Duration {
        let mut wake = IDLE_POLL;
        for c in self.clients.values() {
            if matches!(c.phase, Phase::Waiting(_)) {
                wake = wake.min(ANSWER_POLL);
            }
            wake = wake.min(c.deadline.saturating_duration_since(now));
        }
        wake
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("control socket: accept: {e}");
                    return;
                }
            };
            inc(&self.stats.clients_accepted);
            if self.clients.len() >= self.limits.max_clients && !self.evict_silent() {
                // Every slot is busy with an answer: this one is told so.
                let _ = stream.write(answer::error(BUSY).as_bytes());
                inc(&self.stats.answers_busy);
                continue;
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!("control socket: register: {e}");
                continue;
            }
            let now = Instant::now();
            self.clients.insert(
                token,
                Client {
                    stream,
                    phase: Phase::Reading(Vec::new()),
                    deadline: now + self.limits.request_timeout,
                    since: now,
                    eof: false,
                    broken: false,
                },
            );
            self.io(token);
        }
    }

    /// Closes the client that has been silent longest; `false` if none is.
    fn evict_silent(&mut self) -> bool {
        let oldest = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Reading(_)))
            .min_by_key(|(_, c)| c.since)
            .map(|(t, _)| *t);
        match oldest {
            Some(token) => {
                self.close(token);
                inc(&self.stats.clients_evicted);
                true
            }
            None => false,
        }
    }

    /// Reads what a client sent and writes what it can take.
    fn io(&mut self, token: Token) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        if let Phase::Reading(buf) = &mut c.phase {
            let mut chunk = [0u8; 512];
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => {
                        c.eof = true;
                        break;
                    }
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > MAX_REQUEST {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        c.broken = e.kind() != io::ErrorKind::WouldBlock;
                        break;
                    }
                }
            }
        }
        if let Phase::Writing(bytes, sent) = &mut c.phase {
            while *sent < bytes.len() {
                match c.stream.write(&bytes[*sent..]) {
                    Ok(0) => break,
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        c.broken = e.kind() != io::ErrorKind::WouldBlock;
                        break;
                    }
                }
            }
        }
    }

    /// Moves every client along: requests to the supervisor, its answers
    /// to the clients, and closes what is done or too late.
    fn advance(&mut self, now: Instant) {
        let stats = Arc::clone(&self.stats);
        let tokens: Vec<Token> = self.clients.keys().copied().collect();
        for token in tokens {
            let Some(c) = self.clients.get_mut(&token) else {
                continue;
            };
            let next = match &c.phase {
                _ if c.broken => Next::Close(Some(&stats.answers_abandoned)),
                Phase::Reading(buf) => match line_of(buf, c.eof) {
                    Line::Partial if now >= c.deadline => Next::Refuse(
                        &stats.request_timeouts,
                        format!(
                            "no request line within {} ms",
                            self.limits.request_timeout.as_millis()
                        ),
                    ),
                    Line::Partial => Next::Stay,
                    Line::Nothing => Next::Close(None),
                    Line::TooLong => Next::Refuse(
                        &stats.requests_refused,
                        format!("request longer than {MAX_REQUEST} bytes"),
                    ),
                    Line::NotText => Next::Refuse(
                        &stats.requests_refused,
                        "the request is not UTF-8 text".into(),
                    ),
                    Line::Complete(line) => match request::parse(&line) {
                        Ok(req) => {
                            c.phase = Phase::Waiting(self.supervisor.submit(Command::Console(req)));
                            c.deadline = now + self.limits.command_timeout;
                            Next::Stay
                        }
                        Err(e) => Next::Refuse(&stats.requests_refused, e.0),
                    },
                },
                Phase::Waiting(rx) => match rx.try_recv() {
                    Ok(reply) => Next::Answer(reply),
                    Err(TryRecvError::Disconnected) => Next::Answer(Err(STOPPING.into())),
                    Err(TryRecvError::Empty) if now >= c.deadline => Next::Answer(Err(format!(
                        "the unit did not answer within {} s",
                        self.limits.command_timeout.as_secs()
                    ))),
                    Err(TryRecvError::Empty) => Next::Stay,
                },
                Phase::Writing(bytes, sent) if *sent == bytes.len() => {
                    Next::Close(Some(&stats.requests_answered))
                }
                Phase::Writing(..) if now >= c.deadline => {
                    tracing::warn!(
                        "control socket: a client did not take its answer within {} s; closed",
                        self.limits.answer_timeout.as_secs()
                    );
                    Next::Close(Some(&stats.answers_abandoned))
                }
                Phase::Writing(..) => Next::Stay,
            };
            match next {
                Next::Stay => {}
                Next::Refuse(counter, why) => {
                    inc(counter);
                    self.answer(token, Err(why), now);
                }
                Next::Answer(reply) => self.answer(token, reply, now),
                Next::Close(counter) => {
                    counter.map(inc);
                    self.close(token);
                }
            }
        }
    }

    /// Starts writing `reply` to the client `token`.
    fn answer(&mut self, token: Token, reply: Reply, now: Instant) {
        let mut text = match reply {
            Ok(text) => text,
            Err(why) => answer::error(&why),
        };
        if self.answer_bytes + text.len() > self.limits.max_answer_bytes {
            inc(&self.stats.answers_busy);
            text = answer::error(BUSY);
        }
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        self.answer_bytes += text.len();
        c.phase = Phase::Writing(text.into_bytes(), 0);
        c.deadline = now + self.limits.answer_timeout;
        self.io(token);
        // A small answer is usually written at once: finish it now.
        if let Some(Client {
            phase: Phase::Writing(bytes, sent),
            ..
        }) = self.clients.get(&token)
        {
            if *sent == bytes.len() {
                inc(&self.stats.requests_answered);
                self.close(token);
            }
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut c) = self.clients.remove(&token) {
            if let Phase::Writing(bytes, _) = &c.phase {
                self.answer_bytes -= bytes.len();
            }
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
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
    use crate::supervisor::fake::{self, FakeUnit};
    use crate::supervisor::Supervisor;

    const T: Duration = Duration::from_secs(10);

    /// Bounds that no test outlives, so nothing it shows depends on speed.
    fn patient() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(120),
            answer_timeout: Duration::from_secs(120),
            ..Limits::default()
        }
    }

    /// A served socket over a fake unit.
    struct Served {
        path: PathBuf,
        stats: Arc<ControlStats>,
        thread: Option<ControlThread>,
        supervisor: Option<Supervisor>,
        _dir: tempfile::TempDir,
    }

    impl Served {
        fn new(unit: FakeUnit, limits: Limits) -> Served {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ctl.sock");
            let server = ControlServer::bind(&path).unwrap().with_limits(limits);
            let stats = server.stats();
            let supervisor = fake::start(unit);
            let thread = server.spawn(supervisor.handle(), &[]).unwrap();
            Served {
                path,
                stats,
                thread: Some(thread),
                supervisor: Some(supervisor),
                _dir: dir,
            }
        }

        fn ask(&self, line: &str) -> String {
            request(&self.path, line, T).unwrap()
        }

        fn count(&self, name: &str) -> u64 {
            let mut all = Vec::new();
            self.stats.snapshot(&mut all);
            all.into_iter()
                .find(|(n, _)| n == &format!("control.{name}"))
                .unwrap()
                .1
        }

        /// Waits (bounded) until `name` reaches `n`.
        fn wait_count(&self, name: &str, n: u64) {
            let deadline = Instant::now() + T;
            while self.count(name) < n {
                assert!(
                    Instant::now() < deadline,
                    "control.{name} stayed at {}",
                    self.count(name)
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    impl Drop for Served {
        fn drop(&mut self) {
            if let Some(t) = self.thread.take() {
                t.stop();
            }
            if let Some(s) = self.supervisor.take() {
                s.stop();
            }
        }
    }

    /// Connects and sends `bytes`, then keeps the connection open.
    fn connect(path: &Path, bytes: &[u8]) -> UnixStream {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(bytes).unwrap();
        s
    }

    /// Whether the unit closed `s` (reads are not waited for).
    fn closed_by_unit(s: &mut UnixStream) -> bool {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let closed = !matches!(s.read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        closed
    }

    #[test]
    fn binds_0600_in_a_new_0700_dir_answers_and_removes_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/tandem/ctl.sock");
        let server = ControlServer::bind(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let supervisor = fake::start(FakeUnit::new(1));
        let thread = server.spawn(supervisor.handle(), &[]).unwrap();
        assert_eq!(
            request(&path, "counters", T).unwrap(),
            "worker0.rx_packets 7\n"
        );
        assert_eq!(
            request(&path, "reload", T).unwrap(),
            "error: the unit was started without --rules\n"
        );
        assert_eq!(
            request(&path, "frobnicate", T).unwrap(),
            "error: unknown command `frobnicate`; `help` lists the commands\n"
        );
        thread.stop();
        supervisor.stop();
        assert!(
            !path.exists(),
            "the socket file is removed when the server ends"
        );
    }

    #[test]
    fn a_live_socket_is_never_taken_and_a_stale_one_is_replaced() {
        let served = Served::new(FakeUnit::new(1), Limits::default());
        let err = ControlServer::bind(&served.path)
            .err()
            .expect("a second bind must fail");
        assert!(matches!(err, BindError::InUse), "{err}");
        // The first unit still owns and answers on its socket.
        assert_eq!(served.ask("counters"), "worker0.rx_packets 7\n");

        // A unit that died without cleaning up leaves a socket file nobody
        // listens on: it is replaced.
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join("ctl.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let server = ControlServer::bind(&stale).unwrap();
        drop(server);

        // A file that is not a socket is left alone.
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, "keep me").unwrap();
        let err = ControlServer::bind(&file).err().expect("not a socket");
        assert!(matches!(err, BindError::NotASocket), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn drop_leaves_a_file_that_is_no_longer_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctl.sock");
        let server = ControlServer::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(server);
        assert!(path.exists(), "another listener's file was removed");
        drop(other);
    }

    #[test]
    fn request_lines_are_bounded_and_must_be_text() {
        let served = Served::new(FakeUnit::new(1), Limits::default());
        let raw = |bytes: &[u8], close: bool| -> String {
            let mut s = connect(&served.path, bytes);
            if close {
                s.shutdown(std::net::Shutdown::Write).unwrap();
            }
            let mut out = String::new();
            s.set_read_timeout(Some(T)).unwrap();
            s.read_to_string(&mut out).unwrap();
            out
        };
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
        assert_eq!(served.count("requests_refused"), 2);
        assert_eq!(served.count("request_timeouts"), 1);
    }

    /// Item 6 of the hardening issue: 40 clients that connect and say
    /// nothing made a normal request wait 21 s. Now it is answered while
    /// every one of them is still connected, waiting for its own deadline.
    #[test]
    fn silent_clients_never_delay_another() {
        let served = Served::new(FakeUnit::new(1), patient());
        let mut silent: Vec<UnixStream> = (0..40).map(|_| connect(&served.path, b"")).collect();
        served.wait_count("clients_now", 40);
        assert_eq!(served.ask("counters"), "worker0.rx_packets 7\n");
        assert!(
            silent.iter_mut().all(|s| !closed_by_unit(s)),
            "answered while every silent client is still connected"
        );
        assert_eq!(served.count("clients_evicted"), 0);
    }

    /// Clients are bounded: when every slot is taken by a silent client, the
    /// one silent longest is closed for a newcomer, which is answered.
    #[test]
    fn a_full_house_of_silent_clients_makes_room_for_a_request() {
        let limits = Limits {
            max_clients: 8,
            ..patient()
        };
        let served = Served::new(FakeUnit::new(1), limits);
        let mut silent: Vec<UnixStream> = Vec::new();
        for i in 0..8 {
            silent.push(connect(&served.path, b""));
            served.wait_count("clients_now", i + 1);
        }
        assert_eq!(served.ask("counters"), "worker0.rx_packets 7\n");
        assert_eq!(served.count("clients_evicted"), 1);
        assert!(
            closed_by_unit(&mut silent[0]),
            "the oldest silent client made room"
        );
        assert!(silent[1..].iter_mut().all(|s| !closed_by_unit(s)));
    }

    /// Item 6, second half: clients that ask for a large answer and never
    /// read it held the unit ~30 s. Now they wait in their own slots while
    /// others are answered; when they go away, their answers are dropped.
    #[test]
    fn clients_that_never_read_their_answer_hold_nobody_up() {
        let mut unit = FakeUnit::new(1);
        unit.counters = (0..100_000)
            .map(|i| (format!("worker0.some_counter_with_a_long_name_{i}"), i))
            .collect();
        let served = Served::new(unit, patient());
        let stalled: Vec<UnixStream> = (0..6)
            .map(|_| connect(&served.path, b"counters\n"))
            .collect();
        served.wait_count("clients_now", 6);
        let answer = served.ask("counters worker0.some_counter_with_a_long_name_99999");
        assert_eq!(
            answer,
            "worker0.some_counter_with_a_long_name_99999 99999\n"
        );
        assert_eq!(
            served.count("answers_abandoned"),
            0,
            "the six still wait, unread"
        );
        drop(stalled);
        served.wait_count("answers_abandoned", 6);
    }

    #[test]
    fn answers_in_flight_are_bounded_in_bytes() {
        let mut unit = FakeUnit::new(1);
        unit.counters = (0..1000).map(|i| (format!("c{i}"), i)).collect();
        let limits = Limits {
            max_answer_bytes: 1000,
            ..patient()
        };
        let served = Served::new(unit, limits);
        assert_eq!(
            served.ask("counters"),
            "error: the unit is busy; try again\n"
        );
        assert_eq!(
            served.ask("counters c999"),
            "c999 999\n",
            "a small answer fits"
        );
        assert_eq!(served.count("answers_busy"), 1);
    }
}
