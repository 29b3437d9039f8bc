//! The control plane's threads: named, and placed on the profile's control
//! CPUs (`cores.control`, else the main lcore's CPU), never beside a worker
//! or the sync core, where a poll loop would delay them (and they the loop).

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::io;
use std::thread::JoinHandle;

/// Spawns `f` as thread `name`, pinned to `cpus` (all of them at once; the
/// scheduler picks). A CPU that cannot be set is logged, and the thread runs
/// where it was born (the main lcore's CPU, after EAL started).
pub fn spawn<T, F>(name: &str, cpus: &[u32], f: F) -> io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let cpus = cpus.to_vec();
    let label = name.to_string();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(e) = pin(&cpus) {
                tracing::warn!("thread {label}: CPUs {cpus:?}: {e}; left where it started");
            }
            f()
        })
}

fn pin(cpus: &[u32]) -> nix::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(usize::try_from(c).unwrap_or(usize::MAX))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_on_the_cpus_it_is_given() {
        let got = spawn("t", &[0], || {
            nix::sched::sched_getaffinity(Pid::from_raw(0)).map(|s| (s.is_set(0), s.is_set(1)))
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
        assert_eq!(got, (Ok(true), Ok(false)));
    }
}
