//! One unit per EAL file prefix and per port: advisory locks held for the
//! unit's whole life.
//!
//! Two `tandemd` on the same ports both forward (every frame twice), and with
//! the same `--file-prefix` the second one's exit removes the first one's EAL
//! runtime directory. So before EAL starts, a unit takes an exclusive
//! `flock(2)` on a file per resource in [`LOCK_DIR`], without waiting:
//!
//! | resource | lock file |
//! | --- | --- |
//! | the EAL file prefix `X` | `prefix-X.lock` |
//! | a PCI port `0000:03:00.0` | `pci-0000:03:00.0.lock` |
//! | a vdev bound to a kernel interface (`iface=` of `net_af_packet`, `net_pcap`, `net_af_xdp`, `net_tap`) | `netdev-<netns inode>-<iface>.lock` (the same name in another network namespace is another interface) |
//!
//! Other vdevs (`net_ring`, `net_null`) are private to their process and take
//! no lock. A lock that is held refuses the start with the holder's pid (the
//! file holds it) and changes nothing; the kernel releases every lock when the
//! process ends, however it ends, so a crashed unit never blocks the next one.
//!
//! A unit that stops removes its lock files while it still holds them. So
//! that this never lets two units in, a unit that locked a file checks that
//! the path still names the file it locked (another unit may have removed it
//! meanwhile) and otherwise takes the new one.

use hw_profiles::{Device, Profile};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the lock files live.
pub const LOCK_DIR: &str = "/run/tandem/locks";

/// Vdev drivers whose ports are a kernel interface named by `iface=`.
const IFACE_DRIVERS: [&str; 4] = ["net_af_packet", "net_pcap", "net_af_xdp", "net_tap"];

/// Why the locks could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{what} is in use by another unit{holder} (lock {path})")]
    Held {
        /// The resource, for a person (`EAL file prefix lab1`, `port data0 (...)`).
        what: String,
        /// ` (pid N)` when the file names its holder.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file or its directory could not be opened.
    #[error("lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// The locks a running unit holds; dropping it removes the files, then
/// releases the locks.
#[derive(Debug)]
pub struct UnitLocks {
    files: Vec<(PathBuf, File)>,
}

impl Drop for UnitLocks {
    fn drop(&mut self) {
        for (path, _) in &self.files {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What one lock is for, and its file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// For a person.
    pub what: String,
    /// The lock file's name in the lock directory.
    pub file: String,
}

/// The resources a unit booting `profile` with `prefix` must own alone,
/// prefix first. `netns` identifies this process's network namespace (the
/// target of `/proc/self/ns/net`, `net:[4026531840]`).
pub fn resources(profile: &Profile, prefix: &str, netns: &str) -> Vec<Resource> {
    let ns_id: String = netns.chars().filter(char::is_ascii_digit).collect();
    let mut out = vec![Resource {
        what: format!("EAL file prefix `{prefix}`"),
        file: format!("prefix-{}.lock", file_safe(prefix)),
    }];
    for port in &profile.ports {
        let file = match &port.device {
            Device::Pci(addr) => Some(format!("pci-{}.lock", file_safe(addr))),
            Device::Vdev(_) => {
                let driver = port
                    .device
                    .dpdk_name()
                    .trim_end_matches(|c: char| c.is_ascii_digit());
                let iface = port.device.vdev_arg("iface");
                match (IFACE_DRIVERS.contains(&driver), iface) {
                    (true, Some(iface)) => {
                        Some(format!("netdev-{ns_id}-{}.lock", file_safe(iface)))
                    }
                    _ => None,
                }
            }
        };
        if let Some(file) = file {
            out.push(Resource {
                what: format!("port {} ({})", port.name, port.device.dpdk_name()),
                file,
            });
        }
    }
    out
}

/// A name that is safe as one path component.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Locks the file at `path` for `r`, creating it, and writes our pid in it.
fn lock_file(path: &Path, r: &Resource) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                return Err(LockError::Held {
                    what: r.what.clone(),
                    holder,
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The unit that held it may have removed the file between our open
        // and our lock: then we hold a file nobody else will find.
        let still_there = std::fs::metadata(path)
            .is_ok_and(|m| file.metadata().is_ok_and(|f| f.ino() == m.ino()));
        if !still_there {
            continue;
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        return Ok(file);
    }
}

/// This process's network namespace, as `/proc/self/ns/net` names it.
pub fn current_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

impl UnitLocks {
    /// Takes every lock of `resources` in `dir` (created `0700` if missing),
    /// or none: the first one held refuses the start.
    pub fn acquire(dir: &Path, resources: &[Resource]) -> Result<UnitLocks, LockError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| LockError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        // Built as it goes: a refusal drops (and removes) what was taken.
        let mut locks = UnitLocks {
            files: Vec::with_capacity(resources.len()),
        };
        for r in resources {
            let path = dir.join(&r.file);
            let file = lock_file(&path, r)?;
            locks.files.push((path, file));
        }
        Ok(locks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(ports: &str) -> Profile {
        let pci = ports.contains("Pci(");
        let text = format!(
            r#"(
    model: "t", description: "", ports: [{ports}],
    cores: (main: 0, workers: [1], sync: Some(2)),
    memory: (mbufs: 8191, mbuf_cache: 256, eal_memory_mb: 64, hugepages: {pci}, connections: 1024),
    idle: BusyPoll, disks: [], tpm: false,
)"#
        );
        Profile::from_str_named(&text, "t.ron").unwrap()
    }

    #[test]
    fn the_prefix_and_every_kernel_bound_port_are_resources() {
        let p = profile(
            r#"(name: "data0", role: Data, device: Vdev("net_af_packet0,iface=data0,qpairs=1"), rx_queues: 1, tx_queues: 1),
               (name: "data1", role: Data, device: Vdev("net_pcap1,iface=data1"), rx_queues: 1, tx_queues: 1),
               (name: "ring", role: Data, device: Vdev("net_ring0"), rx_queues: 1, tx_queues: 1)"#,
        );
        let got = resources(&p, "lab/1", "net:[4026531840]");
        let files: Vec<&str> = got.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "prefix-lab_1.lock",
                "netdev-4026531840-data0.lock",
                "netdev-4026531840-data1.lock"
            ],
            "net_ring is private to its process"
        );
        assert_eq!(got[1].what, "port data0 (net_af_packet0)");
        let other_ns = resources(&p, "lab/1", "net:[4026532000]");
        assert_ne!(other_ns[1].file, got[1].file, "data0 of another namespace");
    }

    #[test]
    fn a_pci_port_is_locked_by_its_address() {
        let p = profile(
            r#"(name: "data0", role: Data, device: Pci("0000:03:00.0"), rx_queues: 1, tx_queues: 1)"#,
        );
        assert_eq!(resources(&p, "u", "")[1].file, "pci-0000:03:00.0.lock");
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_takes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        let a = Resource {
            what: "A".into(),
            file: "a.lock".into(),
        };
        let b = Resource {
            what: "B".into(),
            file: "b.lock".into(),
        };
        let first = UnitLocks::acquire(&dir, std::slice::from_ref(&b)).unwrap();
        // flock locks belong to the open file: a second open in this process
        // conflicts exactly as another process would.
        let err = UnitLocks::acquire(&dir, &[a.clone(), b.clone()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "B is in use by another unit (pid {})",
                std::process::id()
            )),
            "{text}"
        );
        // `a` was taken, then released and removed when the start was refused.
        assert!(!dir.join("a.lock").exists());
        drop(UnitLocks::acquire(&dir, std::slice::from_ref(&a)).unwrap());
        drop(first);
        assert!(
            !dir.join("b.lock").exists(),
            "a unit removes its lock files"
        );
        let again = UnitLocks::acquire(&dir, &[a, b]).unwrap();
        drop(again);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
