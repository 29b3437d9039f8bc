//! Instructions per cycle of one thread, from `perf stat` run as a child process
//! (`perf stat -x, -e instructions:u,cycles:u -t <tid>`, stopped with SIGINT by its pid).
//!
//! IPC is a ratio of two counts over the same window, so it does not depend on when
//! exactly perf attached; instructions per packet are then IPC × cycles per packet.
//! Absent `perf` (or without permission), the figure is simply left out.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `perf stat`.
pub struct Ipc {
    child: Child,
}

impl Ipc {
    /// Starts counting thread `tid` of this process; `None` if perf cannot run.
    pub fn start(tid: u32) -> Option<Ipc> {
        if tid == 0 {
            return None;
        }
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "instructions:u,cycles:u", "-t"])
            .arg(tid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        Some(Ipc { child })
    }

    /// Stops it and returns instructions / cycles.
    pub fn finish(mut self) -> Option<f64> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let t = Instant::now();
        let mut exited = false;
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return None;
        }
        let mut text = String::new();
        self.child.stderr.take()?.read_to_string(&mut text).ok()?;
        let count = |event: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.split(',').nth(2).is_some_and(|e| e.starts_with(event)))
                .and_then(|l| l.split(',').next()?.trim().parse().ok())
        };
        let (i, c) = (count("instructions")?, count("cycles")?);
        (c > 0.0).then(|| i / c)
    }
}
