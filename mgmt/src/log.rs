//! The unit's log: `tracing` events, to the systemd journal when the unit
//! runs as a service whose stderr is the journal, else to stderr as plain
//! lines (`2026-11-30T10:00:00.123456Z  INFO rules reloaded: ...`: UTC, no
//! colour, for serial consoles and files). Events from DPDK's bindings
//! (through the `log` facade) land in the same place.
//!
//! A unit never stops because a line could not be written: stderr lines go
//! through a bounded queue to a writer thread (`tracing-appender`, lossy),
//! so a closed pipe, a full disk or a reader that stopped reading costs log
//! lines — counted, see [`LogGuard::counters`] — and never blocks or aborts
//! the thread that logs. Write errors are not reported in the log by design
//! (`log_internal_errors(false)`: that would mean writing to the very
//! stream that failed); they are counted.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Level;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Lines queued for the writer before new ones are dropped.
pub const QUEUED_LINES: usize = 16_384;

/// Keeps the log working; dropping it flushes what is queued (bounded).
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
    _ha_writer: Option<WorkerGuard>,
    dropped: Option<ErrorCounter>,
    write_errors: Arc<AtomicU64>,
    /// Where the lines go, for the first line of the log.
    pub sink: &'static str,
}

impl LogGuard {
    /// `log.lines_dropped` (the queue was full: the writer stalled) and
    /// `log.write_errors` (a line the stream refused: closed, full).
    pub fn counters(&self, out: &mut Vec<(String, u64)>) {
        let dropped = self
            .dropped
            .as_ref()
            .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX));
        out.push(("log.lines_dropped".into(), dropped));
        out.push((
            "log.write_errors".into(),
            self.write_errors.load(Ordering::Relaxed),
        ));
    }
}

/// stderr, counting the writes it refuses.
struct CountingStderr(Arc<AtomicU64>);

impl Write for CountingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write(buf).inspect_err(|_| {
            self.0.fetch_add(1, Ordering::Relaxed);
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

/// The HA event log file's layer: lines of target `ha`
/// ([`crate::election_task::HA_LOG`]) appended to `path` through a writer
/// thread of their own (lossy, as stderr's). `None` if the file cannot be
/// opened (said on stderr: the unit runs on without it).
fn ha_file<S>(path: &Path) -> Option<(impl Layer<S> + Send + Sync + 'static, WorkerGuard)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "HA log {}: {e}; HA events go to the log only",
                path.display()
            );
            return None;
        }
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("tandem-halog")
        .finish(file);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .log_internal_errors(false)
        .with_filter(Targets::new().with_target(crate::election_task::HA_LOG, Level::INFO));
    Some((layer, guard))
}

/// Installs the log for this process (once; later calls change nothing).
/// `RUST_LOG`-style filtering is not offered: a unit logs at `info`. With
/// `ha_log`, the HA events are also appended to that file.
pub fn init(ha_log: Option<&Path>) -> LogGuard {
    let level = tracing_subscriber::filter::LevelFilter::INFO;
    let (ha_layer, ha_guard) = match ha_log.and_then(ha_file) {
        Some((l, g)) => (Some(l), Some(g)),
        None => (None, None),
    };
    if stderr_is_journal() {
        if let Ok(journal) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(ha_layer)
                .with(journal.with_filter(level))
                .try_init();
            return LogGuard {
                _writer: None,
                _ha_writer: ha_guard,
                dropped: None,
                write_errors: Arc::default(),
                sink: "the systemd journal",
            };
        }
    }
    let write_errors = Arc::new(AtomicU64::new(0));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("tandem-log")
        .finish(CountingStderr(Arc::clone(&write_errors)));
    let dropped = writer.error_counter();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .log_internal_errors(false);
    let _ = tracing_subscriber::registry()
        .with(ha_layer)
        .with(layer.with_filter(level))
        .try_init();
    LogGuard {
        _writer: Some(guard),
        _ha_writer: ha_guard,
        dropped: Some(dropped),
        write_errors,
        sink: "stderr",
    }
}
