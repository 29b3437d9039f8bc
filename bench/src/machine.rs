//! What a results table is stamped with: machine, commit, DPDK version, date, load.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The facts a result is meaningless without.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// `/proc/cpuinfo` model name.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// Hypervisor, if `/proc/cpuinfo` says the CPU is virtual.
    pub virtualised: bool,
    /// Kernel release.
    pub kernel: String,
    /// `git rev-parse --short HEAD`, `+dirty` when the tree has changes.
    pub commit: String,
    /// The DPDK the bindings were built against.
    pub dpdk: String,
    /// UTC date and time of the run, `YYYY-MM-DD HH:MM`.
    pub date: String,
    /// `YYYY-MM-DD` for file names.
    pub day: String,
    /// `/proc/loadavg` when the run started.
    pub load_before: String,
    /// Transparent huge pages policy (`always`, `madvise`, `never`).
    pub thp: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(0),
        u32::try_from(d).unwrap_or(0),
    )
}

impl Stamp {
    /// Reads everything now (before EAL init: `git` is a child process).
    pub fn collect() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let cpu = field("model name").unwrap_or_else(|| "unknown".into());
        let virtualised = field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let commit = match git(&["rev-parse", "--short", "HEAD"]) {
            Some(c) => {
                let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{c}+dirty")
                } else {
                    c
                }
            }
            None => "unknown".into(),
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let secs = i64::try_from(secs).unwrap_or(0);
        let (y, m, d) = civil(secs.div_euclid(86_400));
        let tod = secs.rem_euclid(86_400);
        let thp = read("/sys/kernel/mm/transparent_hugepage/enabled");
        let thp = thp
            .split_whitespace()
            .find(|w| w.starts_with('['))
            .map(|w| w.trim_matches(['[', ']']).to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cores,
            virtualised,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            commit,
            dpdk: dpdk_sys::DPDK_VERSION.to_string(),
            date: format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
                tod / 3600,
                tod % 3600 / 60
            ),
            day: format!("{y:04}-{m:02}-{d:02}"),
            load_before: load(),
            thp,
        }
    }

    /// The commit without `+dirty`, for file names.
    pub fn short_commit(&self) -> &str {
        self.commit.trim_end_matches("+dirty")
    }
}

/// CPU `cpu`'s steal time so far (hypervisor), in seconds (`/proc/stat`, USER_HZ 100).
pub fn steal_secs(cpu: usize) -> f64 {
    let stat = read("/proc/stat");
    let name = format!("cpu{cpu}");
    stat.lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .and_then(|l| l.split_whitespace().nth(8)?.parse::<u64>().ok())
        .map_or(0.0, |ticks| ticks as f64 / 100.0)
}

/// The first three fields of `/proc/loadavg`.
pub fn load() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(19_723), (2024, 1, 1));
    }
}
