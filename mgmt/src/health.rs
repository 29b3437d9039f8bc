//! This unit's health inputs and its quality factor ([`electiond::quality`]),
//! probed on a control-plane thread of their own, so that file and device
//! I/O never runs on the lcore that sends heartbeats: it reads the result,
//! one atomic.
//!
//! * every data interface's link, every [`LINK_EVERY`]: DPDK's link state
//!   (`rte_eth_link_get_nowait`). The lab's `net_af_packet` ports always say
//!   up (the PMD has no link update in DPDK 22.11), so for them the kernel
//!   carrier of the interface they read (`/sys/class/net/IFACE/carrier`,
//!   which a cable pull or `ip link set … down` on the far end clears) must
//!   say up too;
//! * every disk of the profile, every [`DISK_EVERY`]: the device is present,
//!   and where the profile names a directory on it, a write probe (a small
//!   file created, written, synced and removed) succeeds;
//! * the TPM, when the profile has one, every [`DISK_EVERY`]: the device is
//!   present and answers a `TPM2_GetRandom` command.
//!
//! HA links are not inputs: heartbeats watch them.

use electiond::quality::{Input, InputKind, Quality};
use hw_profiles::{Device, Profile};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the links are read.
pub const LINK_EVERY: Duration = Duration::from_millis(50);
/// How often disks and the TPM are probed.
pub const DISK_EVERY: Duration = Duration::from_secs(1);
/// The TPM device probed (the kernel's resource manager).
pub const TPM_DEVICE: &str = "/dev/tpmrm0";

/// What the probes found last, for the election and the console.
#[derive(Debug)]
pub struct Health {
    quality: AtomicU16,
    inputs: Mutex<Vec<Input>>,
    /// New interface weights (`enha`), taken at the next probe.
    weights: Mutex<Option<Vec<u16>>>,
}

impl Health {
    /// The quality factor now.
    pub fn quality(&self) -> Quality {
        Quality(self.quality.load(Ordering::Relaxed))
    }

    /// Every input with its state.
    pub fn inputs(&self) -> Vec<Input> {
        self.inputs.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Weighs the data interfaces anew (in interface order) from the next
    /// probe on, a few ms from now.
    pub fn set_weights(&self, weights: Vec<u16>) {
        if let Ok(mut w) = self.weights.lock() {
            *w = Some(weights);
        }
    }

    fn take_weights(&self) -> Option<Vec<u16>> {
        self.weights.lock().ok().and_then(|mut w| w.take())
    }

    fn publish(&self, inputs: Vec<Input>) {
        self.quality
            .store(Quality::of(&inputs).0, Ordering::Relaxed);
        if let Ok(mut i) = self.inputs.lock() {
            *i = inputs;
        }
    }
}

/// A data interface to watch.
pub struct WatchedLink {
    /// Its name (`data0`).
    pub name: String,
    /// Its weight.
    pub weight: u16,
    /// The kernel interface an `net_af_packet` port reads, if it is one.
    pub kernel_iface: Option<String>,
}

/// The kernel interface of an `net_af_packet` vdev (`iface=` argument).
pub fn af_packet_iface(device: &Device) -> Option<String> {
    let Device::Vdev(spec) = device else {
        return None;
    };
    if !spec.starts_with("net_af_packet") {
        return None;
    }
    spec.split(',')
        .find_map(|arg| arg.strip_prefix("iface="))
        .map(str::to_owned)
}

/// Whether a kernel interface has carrier (a missing interface has none).
fn carrier(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/carrier"))
        .is_ok_and(|s| s.trim() == "1")
}

/// A disk: present, and the write probe in `probe_dir` succeeds.
fn disk_ok(path: &Path, probe_dir: Option<&Path>) -> bool {
    if std::fs::metadata(path).is_err() {
        return false;
    }
    let Some(dir) = probe_dir else {
        return true;
    };
    let file = dir.join(".tandem-health-probe");
    let written = std::fs::File::create(&file)
        .and_then(|mut f| {
            f.write_all(&[0x5a; 512])?;
            f.sync_all()
        })
        .is_ok();
    let removed = std::fs::remove_file(&file).is_ok();
    written && removed
}

/// `TPM2_GetRandom` of 8 bytes (TPM 2.0 Part 3 §16.1): tag
/// `TPM_ST_NO_SESSIONS`, size 12, command code 0x17B, bytes requested.
const TPM2_GET_RANDOM: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8];

/// The TPM answers `TPM2_GetRandom` with response code 0 (`TPM_RC_SUCCESS`).
fn tpm_ok(device: &Path) -> bool {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
    else {
        return false;
    };
    let mut answer = [0u8; 64];
    f.write_all(&TPM2_GET_RANDOM).is_ok()
        && f.read(&mut answer).is_ok_and(|n| n >= 10)
        && answer[6..10] == [0, 0, 0, 0]
}

/// What the health thread watches.
pub struct Watched {
    /// Data interfaces, in interface order.
    pub links: Vec<WatchedLink>,
    /// DPDK's link state of data interface `i`.
    pub link_up: Box<dyn Fn(usize) -> bool + Send>,
    /// Disks: name, device, write-probe directory.
    pub disks: Vec<(String, PathBuf, Option<PathBuf>)>,
    /// The TPM device, if the model has one.
    pub tpm: Option<PathBuf>,
}

impl Watched {
    /// The disks and TPM of `profile`, with `links`.
    pub fn of(
        profile: &Profile,
        links: Vec<WatchedLink>,
        link_up: Box<dyn Fn(usize) -> bool + Send>,
    ) -> Watched {
        Watched {
            links,
            link_up,
            disks: profile
                .disks
                .iter()
                .map(|d| (d.name.clone(), d.path.clone(), d.probe_dir.clone()))
                .collect(),
            tpm: profile.tpm.then(|| PathBuf::from(TPM_DEVICE)),
        }
    }

    fn probe(&self, slow: &mut Vec<Input>, slow_due: bool) -> Vec<Input> {
        if slow_due {
            slow.clear();
            for (name, path, dir) in &self.disks {
                slow.push(Input {
                    name: name.clone(),
                    kind: InputKind::Disk,
                    weight: electiond::quality::DEFAULT_WEIGHT,
                    ok: disk_ok(path, dir.as_deref()),
                });
            }
            if let Some(tpm) = &self.tpm {
                slow.push(Input {
                    name: "tpm".into(),
                    kind: InputKind::Tpm,
                    weight: electiond::quality::DEFAULT_WEIGHT,
                    ok: tpm_ok(tpm),
                });
            }
        }
        let mut inputs: Vec<Input> = self
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| Input {
                name: l.name.clone(),
                kind: InputKind::Interface,
                weight: l.weight,
                ok: (self.link_up)(i) && l.kernel_iface.as_deref().is_none_or(carrier),
            })
            .collect();
        inputs.extend(slow.iter().cloned());
        inputs
    }
}

/// Probes once now (so the first heartbeat carries the real quality), then
/// starts the thread that keeps probing until `stop`.
pub fn start(
    watched: Watched,
    cpus: &[u32],
    stop: Arc<AtomicBool>,
) -> std::io::Result<(Arc<Health>, std::thread::JoinHandle<()>)> {
    let health = Arc::new(Health {
        quality: AtomicU16::new(Quality::FULL.0),
        inputs: Mutex::default(),
        weights: Mutex::default(),
    });
    let mut slow = Vec::new();
    health.publish(watched.probe(&mut slow, true));
    let h = Arc::clone(&health);
    let thread = crate::thread::spawn("tandem-health", cpus, move || {
        let mut watched = watched;
        let mut next_slow = Instant::now() + DISK_EVERY;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(LINK_EVERY);
            if let Some(weights) = h.take_weights() {
                for (link, w) in watched.links.iter_mut().zip(weights) {
                    link.weight = w;
                }
            }
            let due = Instant::now() >= next_slow;
            if due {
                next_slow = Instant::now() + DISK_EVERY;
            }
            h.publish(watched.probe(&mut slow, due));
        }
    })?;
    Ok((health, thread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_interface_of_an_af_packet_port() {
        let d = |s: &str| Device::Vdev(s.into());
        assert_eq!(
            af_packet_iface(&d("net_af_packet0,iface=data0,qpairs=1")),
            Some("data0".into())
        );
        assert_eq!(af_packet_iface(&d("net_ring0")), None);
        assert_eq!(af_packet_iface(&Device::Pci("0000:03:00.0".into())), None);
    }

    #[test]
    fn a_disk_is_healthy_while_present_and_writable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(disk_ok(dir.path(), Some(dir.path())));
        assert!(disk_ok(dir.path(), None));
        // Nothing is left behind by the probe.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let gone = dir.path().join("gone");
        assert!(!disk_ok(&gone, None));
        assert!(!disk_ok(dir.path(), Some(&gone)));
    }

    #[test]
    fn no_tpm_device_is_an_unhealthy_tpm() {
        assert!(!tpm_ok(Path::new("/nonexistent/tpm")));
        // A device that answers nothing like a TPM.
        assert!(!tpm_ok(Path::new("/dev/null")));
    }

    #[test]
    fn a_missing_interface_has_no_carrier() {
        assert!(!carrier("tandem-no-such-iface"));
    }
}
