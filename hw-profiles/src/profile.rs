//! The profile types, loading, and what the runtime derives from a profile.

use crate::diagnostic::{self, ReadError};
use crate::error::ProfileError;
use crate::host::{self, HostFacts};
use crate::validate;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The hardware of one appliance model: its ports, how its cores are used, how much
/// packet memory it sets aside, and its health inputs (disks, TPM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Model name, e.g. `t4100` or `lab`; shown by the console.
    pub model: String,
    /// One line for people.
    pub description: String,
    /// Every port DPDK drives, in the order the runtime sets them up.
    pub ports: Vec<Port>,
    /// Which lcore does what.
    pub cores: Cores,
    /// Packet memory.
    pub memory: Memory,
    /// What polling cores do when there is nothing to poll.
    pub idle: Idle,
    /// Disks whose health counts towards this unit's quality in the election.
    pub disks: Vec<Disk>,
    /// Whether the model has a TPM, also a health input. Written out even when false, so
    /// a forgotten line cannot silently drop a health input.
    pub tpm: bool,
}

/// One port driven by DPDK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The name the configuration and the console use (`data0`, `ha0`).
    pub name: String,
    /// What the port is for.
    pub role: Role,
    /// Where DPDK finds it.
    pub device: Device,
    /// Number of rx queues. For a data port, one per worker (see [`Cores`]).
    pub rx_queues: u16,
    /// Number of tx queues. For a data port, one per worker: each worker transmits on
    /// its own queue, so no tx queue is ever shared between lcores.
    pub tx_queues: u16,
    /// Descriptors per rx queue.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// Descriptors per tx queue.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Largest IP packet, in bytes, without the Ethernet header.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

fn default_desc() -> u16 {
    1024
}

fn default_mtu() -> u16 {
    1500
}

/// What a port is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Role {
    /// Carries the traffic the firewall inspects; polled by the workers.
    Data,
    /// Links the two units of the pair: heartbeats and state sync. Not a health input
    /// of its own (the election watches it through heartbeats).
    HaLink,
    /// Out-of-band management.
    Management,
}

/// Where DPDK finds a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Device {
    /// A physical NIC function, by PCI address in DPDK's own spelling: `dddd:bb:dd.f`,
    /// lower-case hex (`0000:03:00.0`), so that logs, `dpdk-devbind` and the profile
    /// can be searched for the same text.
    Pci(String),
    /// A virtual device, as given to EAL's `--vdev`: the instance name, then
    /// comma-separated arguments (`net_af_packet0,iface=data0,qpairs=1`).
    Vdev(String),
}

impl Device {
    /// The ethdev name DPDK gives this port, for `rte_eth_dev_get_port_by_name`: the PCI
    /// address, or the vdev's instance name (the part before the first comma).
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Pci(addr) => addr,
            Device::Vdev(spec) => spec.split(',').next().unwrap_or(spec),
        }
    }

    /// Whether this is a physical (PCI) device.
    pub fn is_pci(&self) -> bool {
        matches!(self, Device::Pci(_))
    }

    /// The value of a vdev argument (`iface` in `net_af_packet0,iface=data0`); `None`
    /// for PCI devices and absent arguments.
    pub fn vdev_arg(&self, key: &str) -> Option<&str> {
        match self {
            Device::Pci(_) => None,
            Device::Vdev(spec) => spec
                .split(',')
                .skip(1)
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v),
        }
    }
}

impl Port {
    /// See [`Device::dpdk_name`].
    pub fn dpdk_name(&self) -> &str {
        self.device.dpdk_name()
    }
}

/// Which lcore does what. Lcore ids are CPU ids: [`Profile::eal_args`] passes them with
/// `-l`, which runs lcore N on CPU N, unless `cpu_of` moves some lcores onto other CPUs.
///
/// Queue mapping: worker `i` (the `i`-th entry of `workers`) polls rx queue `i` of every
/// data port and transmits on tx queue `i` of every data port. Hence every data port has
/// exactly `workers.len()` rx and tx queues; RSS spreads flows over the queues, so each
/// worker sees whole flows and owns their connection-table shard without locks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cores {
    /// The EAL main lcore: runs the control plane's DPDK work (port setup, stats).
    pub main: u32,
    /// Worker lcores, in queue order.
    pub workers: Vec<u32>,
    /// The sync lcore (drains the workers' sync queues, talks on the HA links). Lab
    /// profiles may leave it out (`None`): the main lcore then runs sync between its
    /// other tasks. Hardware profiles (any PCI port) must have one.
    #[serde(default)]
    pub sync: Option<u32>,
    /// CPUs for the threads that are not lcores (election, console socket). Empty means
    /// the main lcore's CPU. Never a worker or the sync core: a heartbeat waiting behind
    /// a poll loop is a false failover.
    #[serde(default)]
    pub control: Vec<u32>,
    /// `(lcore, cpu)` pairs: lcores that run on another CPU than the one of their number,
    /// e.g. `[(2, 1)]` runs lcore 2 on CPU 1. Lets a lab profile have more lcores than
    /// the machine has CPUs (two workers on a two-CPU box); lcores sharing a CPU should
    /// idle adaptively. Empty (the default) keeps lcore N on CPU N; when it is not,
    /// [`Profile::eal_args`] passes `--lcores` instead of `-l`.
    #[serde(default)]
    pub cpu_of: Vec<(u32, u32)>,
}

impl Cores {
    /// Every EAL lcore (main, workers, sync), sorted, without repeats.
    pub fn lcores(&self) -> Vec<u32> {
        let mut all: Vec<u32> = std::iter::once(self.main)
            .chain(self.workers.iter().copied())
            .chain(self.sync)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The queue index a worker lcore polls on every data port, `None` if it is not a
    /// worker.
    pub fn queue_of(&self, lcore: u32) -> Option<u16> {
        let i = self.workers.iter().position(|&w| w == lcore)?;
        u16::try_from(i).ok()
    }

    /// The CPU an lcore runs on: its `cpu_of` entry, else the CPU of its number.
    pub fn cpu(&self, lcore: u32) -> u32 {
        self.cpu_of
            .iter()
            .find(|&&(l, _)| l == lcore)
            .map_or(lcore, |&(_, cpu)| cpu)
    }

    /// The CPUs for the non-lcore threads: `control`, or the main lcore's CPU.
    pub fn control_cpus(&self) -> Vec<u32> {
        if self.control.is_empty() {
            vec![self.cpu(self.main)]
        } else {
            self.control.clone()
        }
    }
}

/// Packet memory: one mbuf pool shared by all ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Mbufs in the pool; `2^q - 1` is the size DPDK's mempool handles best.
    pub mbufs: u32,
    /// Per-lcore mbuf cache (at most 512, DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`).
    pub mbuf_cache: u32,
    /// EAL memory, in MiB (`-m`).
    pub eal_memory_mb: u32,
    /// Whether EAL uses hugepages. An explicit field rather than derived from the device
    /// kinds: a benchmark on appliance hardware may use vdevs *with* hugepages. `false`
    /// adds `--no-huge --no-shconf` and is refused when there is a PCI port (NICs need
    /// pinned DMA memory).
    #[serde(default = "default_true")]
    pub hugepages: bool,
    /// Connections the unit tracks, split evenly between the workers' shards.
    /// All of it is allocated at boot (about 134 bytes each); a full shard
    /// refuses new connections and never evicts one.
    pub connections: u32,
}

fn default_true() -> bool {
    true
}

/// What a polling lcore does when a poll finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Idle {
    /// Poll again at once: lowest latency, a whole CPU per polling lcore.
    BusyPoll,
    /// Sleep after empty polls, doubling up to `max_sleep_us`; any packet resets it.
    /// Lab profiles use it so that two units on a two-core machine do not starve each
    /// other.
    Adaptive {
        /// Longest sleep, in microseconds (1..=1000).
        max_sleep_us: u32,
    },
}

/// A disk watched as a health input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Name for the console and the quality breakdown (`nvme0`).
    pub name: String,
    /// Block device, absolute (`/dev/nvme0n1`): present, or the disk is lost.
    pub path: PathBuf,
    /// A directory on a file system of that disk where a small file is
    /// written, synced and removed every second (the write probe); without
    /// it, only presence is checked.
    #[serde(default)]
    pub probe_dir: Option<PathBuf>,
}

/// A profile file is at most this many bytes: the largest appliance's is a few KiB.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

impl Profile {
    /// Reads, parses and checks a profile file. Messages name the file as `path` is
    /// written here.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
        let (source, file) = read(path.as_ref())?;
        Profile::from_str_named(&source, &file)
    }

    /// [`Profile::load`], then checks the profile against this machine (see
    /// [`host`](crate::host)): what `tandemd` boots with, so that a CPU or port this
    /// machine lacks is refused at the profile's line before EAL starts.
    pub fn load_for_host(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
        let (source, file) = read(path.as_ref())?;
        Profile::from_str_for_host(&source, &file, &HostFacts::read())
    }

    /// [`Profile::from_str_named`], then [`host::check`] against `host`.
    pub fn from_str_for_host(
        source: &str,
        file_name: &str,
        host: &HostFacts,
    ) -> Result<Profile, ProfileError> {
        let profile = Profile::from_str_named(source, file_name)?;
        host::check(&profile, host).map_err(|v| {
            ProfileError::at(file_name, diagnostic::at_path(source, &v.field, v.reason))
        })?;
        Ok(profile)
    }

    /// Parses and checks a profile given as text; `file_name` is only used in messages.
    pub fn from_str_named(source: &str, file_name: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = ron::Options::default()
            .from_str(source)
            .map_err(|e| ProfileError::at(file_name, diagnostic::from_ron_error(source, &e)))?;
        profile.check().map_err(|v| {
            ProfileError::at(file_name, diagnostic::at_path(source, &v.field, v.reason))
        })?;
        Ok(profile)
    }

    /// The semantic checks alone, for profiles built in code (benchmarks, tests). The
    /// first problem found is returned, with its field path.
    pub fn check(&self) -> Result<(), validate::Invalid> {
        validate::check(self)
    }

    /// Ports with role [`Role::Data`], in profile order.
    pub fn data_ports(&self) -> impl Iterator<Item = &Port> {
        self.ports.iter().filter(|p| p.role == Role::Data)
    }

    /// Ports with role [`Role::HaLink`], in profile order.
    pub fn ha_ports(&self) -> impl Iterator<Item = &Port> {
        self.ports.iter().filter(|p| p.role == Role::HaLink)
    }

    /// Ports with role [`Role::Management`], in profile order.
    pub fn management_ports(&self) -> impl Iterator<Item = &Port> {
        self.ports.iter().filter(|p| p.role == Role::Management)
    }

    /// The port with this name.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The EAL arguments for this profile, without the program name (`argv[0]`), which
    /// the caller puts first.
    ///
    /// `-l` lists main, workers and sync (or, when `cores.cpu_of` is not empty,
    /// `--lcores=0@0,1@1,2@1` gives each its CPU); `--main-lcore` names the main one;
    /// `-m` sizes memory. Without hugepages: `--no-huge --no-shconf` (the combination that works
    /// without hugepages; `--in-memory` does not). Without PCI ports: `--no-pci`, so EAL
    /// does not probe NICs that belong to the host. Then one `-a <address>` per PCI
    /// port (allow-list: EAL touches no other NIC), one `--vdev=<spec>` per vdev port,
    /// and `--file-prefix=<file_prefix>` so that two units on one host never share EAL
    /// runtime files. `file_prefix` should be a plain name (no `/`); it is passed as is.
    pub fn eal_args(&self, file_prefix: &str) -> Vec<String> {
        let lcores = self.cores.lcores();
        let mut args = if self.cores.cpu_of.is_empty() {
            vec!["-l".to_string(), lcore_list(&lcores)]
        } else {
            let map: Vec<String> = lcores
                .iter()
                .map(|&l| format!("{l}@{}", self.cores.cpu(l)))
                .collect();
            vec![format!("--lcores={}", map.join(","))]
        };
        args.extend([
            "--main-lcore".to_string(),
            self.cores.main.to_string(),
            "-m".to_string(),
            self.memory.eal_memory_mb.to_string(),
        ]);
        if !self.memory.hugepages {
            args.push("--no-huge".to_string());
            args.push("--no-shconf".to_string());
        }
        if !self.ports.iter().any(|p| p.device.is_pci()) {
            args.push("--no-pci".to_string());
        }
        for port in &self.ports {
            match &port.device {
                Device::Pci(addr) => {
                    args.push("-a".to_string());
                    args.push(addr.clone());
                }
                Device::Vdev(spec) => args.push(format!("--vdev={spec}")),
            }
        }
        args.push(format!("--file-prefix={file_prefix}"));
        args
    }
}

/// A profile file's text and its name for messages.
fn read(path: &Path) -> Result<(String, String), ProfileError> {
    let file = path.display().to_string();
    match diagnostic::read_text(path, MAX_PROFILE_BYTES) {
        Ok(source) => Ok((source, file)),
        Err(ReadError::Io(source)) => Err(ProfileError::Io { file, source }),
        Err(ReadError::Invalid(d)) => Err(ProfileError::at(&file, d)),
    }
}

/// `0,2-10`: runs of three or more as ranges, the way `-l` is usually written.
pub(crate) fn lcore_list(sorted: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", sorted[i], sorted[j]));
        } else {
            parts.extend(sorted[i..=j].iter().map(u32::to_string));
        }
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcore_lists() {
        assert_eq!(lcore_list(&[]), "");
        assert_eq!(lcore_list(&[0]), "0");
        assert_eq!(lcore_list(&[0, 1]), "0,1");
        assert_eq!(lcore_list(&[0, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "0,2-10");
        assert_eq!(lcore_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7,8");
        assert_eq!(
            lcore_list(&[u32::MAX - 1, u32::MAX]),
            "4294967294,4294967295"
        );
    }

    #[test]
    fn device_names() {
        let v = Device::Vdev("net_af_packet0,iface=data0,qpairs=1".into());
        assert_eq!(v.dpdk_name(), "net_af_packet0");
        assert_eq!(v.vdev_arg("iface"), Some("data0"));
        assert_eq!(v.vdev_arg("qpairs"), Some("1"));
        assert_eq!(v.vdev_arg("net_af_packet0"), None);
        assert_eq!(Device::Vdev("net_null0".into()).dpdk_name(), "net_null0");
        let p = Device::Pci("0000:03:00.0".into());
        assert_eq!(p.dpdk_name(), "0000:03:00.0");
        assert_eq!(p.vdev_arg("iface"), None);
    }

    #[test]
    fn queue_mapping() {
        let c = Cores {
            main: 0,
            workers: vec![2, 3, 4],
            sync: Some(5),
            control: vec![],
            cpu_of: vec![],
        };
        assert_eq!(c.queue_of(2), Some(0));
        assert_eq!(c.queue_of(4), Some(2));
        assert_eq!(c.queue_of(5), None);
        assert_eq!(c.lcores(), vec![0, 2, 3, 4, 5]);
        assert_eq!(c.control_cpus(), vec![0]);
    }
}
