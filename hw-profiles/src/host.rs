//! What this machine can tell about a profile before EAL starts.
//!
//! A profile can be right in itself and still name a CPU this machine does not have or
//! a port that is not plugged in. EAL then fails with pages of usage text and no word
//! of the profile; [`check`] says it first, as `file:line:column: field: reason` like
//! any other refusal. Every lcore the profile names (main, workers, sync) and every
//! control CPU must be online and allowed to this process; every PCI port must be
//! under `/sys/bus/pci/devices`; every interface a `net_af_packet` or `net_pcap` vdev
//! opens must be in `/sys/class/net` of this network namespace.
//!
//! The host is read once into [`HostFacts`]; the check itself is pure, so tests give it
//! the facts of any machine. A fact that cannot be read (no sysfs) is unknown and not
//! checked: EAL still has the last word.

use crate::profile::{lcore_list, Device, Profile};
use crate::validate::Invalid;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// The largest CPU id a CPU list may name: Linux's largest `NR_CPUS`. It bounds what a
/// list such as `0-4294967295` could make the parser allocate.
pub const MAX_CPU: u32 = 8191;

/// Parses a CPU list as the kernel and `taskset` write them (`0-3,8,10-11`): CPUs and
/// inclusive ranges, comma-separated, in the order written, no CPU twice.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    let mut seen = HashSet::new();
    for part in s.split(',').map(str::trim) {
        let bad = || format!("CPU list `{s}`: `{part}` is not a CPU or a range a-b");
        let cpu = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (cpu(a)?, cpu(b)?),
            None => (cpu(part)?, cpu(part)?),
        };
        if lo > hi {
            return Err(bad());
        }
        if hi > MAX_CPU {
            return Err(format!(
                "CPU list `{s}`: CPU {hi} is past the largest CPU id ({MAX_CPU})"
            ));
        }
        for c in lo..=hi {
            if !seen.insert(c) {
                return Err(format!("CPU list `{s}`: CPU {c} twice"));
            }
            cpus.push(c);
        }
    }
    Ok(cpus)
}

/// The CPUs online on this machine (`/sys/devices/system/cpu/online`); `None` when it
/// cannot be read.
pub fn online_cpus() -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    parse_cpu_list(text.trim()).ok()
}

/// What the profile check needs to know of a machine. `None`: not known, not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs online.
    pub online_cpus: Option<Vec<u32>>,
    /// CPUs this process may run on (its affinity: `taskset`, a cgroup's cpuset).
    pub allowed_cpus: Option<Vec<u32>>,
    /// PCI functions present, as DPDK writes them (`0000:03:00.0`).
    pub pci_devices: Option<BTreeSet<String>>,
    /// Network interfaces of this process's network namespace.
    pub interfaces: Option<BTreeSet<String>>,
}

/// The names in a directory; `None` if it cannot be listed.
fn names_in(dir: &str) -> Option<BTreeSet<String>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
    )
}

impl HostFacts {
    /// Reads this machine's facts from sysfs and procfs. Without sysfs (no CPU list)
    /// nothing is known: an absent directory then means no sysfs, not no devices.
    pub fn read() -> HostFacts {
        let Some(online) = online_cpus() else {
            return HostFacts::default();
        };
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let list = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
                parse_cpu_list(list.trim()).ok()
            });
        // No PCI bus at all (some VMs) is no PCI device; a missing sysfs was caught above.
        let pci = names_in("/sys/bus/pci/devices")
            .or_else(|| (!Path::new("/sys/bus/pci").exists()).then(BTreeSet::new));
        HostFacts {
            online_cpus: Some(online),
            allowed_cpus: allowed,
            pci_devices: pci,
            interfaces: names_in("/sys/class/net"),
        }
    }
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field: field.into(),
        reason: reason.into(),
    })
}

/// The vdev arguments that name a kernel interface the driver opens.
fn interface_args(device: &Device) -> &'static [&'static str] {
    let name = device.dpdk_name();
    if name.starts_with("net_af_packet") {
        &["iface"]
    } else if name.starts_with("net_pcap") {
        &["iface", "rx_iface", "rx_iface_in", "tx_iface"]
    } else {
        &[]
    }
}

/// Checks `profile` against a machine's facts; the first problem, with its field path.
/// Meant for a profile that passed [`Profile::check`].
pub fn check(profile: &Profile, host: &HostFacts) -> Result<(), Invalid> {
    check_cpus(profile, host)?;
    check_ports(profile, host)
}

fn check_cpus(profile: &Profile, host: &HostFacts) -> Result<(), Invalid> {
    let c = &profile.cores;
    // Each lcore with the field that says its CPU: its `cpu_of` entry if it has one.
    let mut lcores: Vec<(u32, String)> = vec![(c.main, "cores.main".to_string())];
    lcores.extend(
        c.workers
            .iter()
            .enumerate()
            .map(|(i, &w)| (w, format!("cores.workers[{i}]"))),
    );
    lcores.extend(c.sync.map(|s| (s, "cores.sync".to_string())));
    let mut cpus: Vec<(u32, String)> = lcores
        .into_iter()
        .map(
            |(lcore, field)| match c.cpu_of.iter().position(|&(l, _)| l == lcore) {
                Some(k) => (c.cpu_of[k].1, format!("cores.cpu_of[{k}][1]")),
                None => (lcore, field),
            },
        )
        .collect();
    cpus.extend(
        c.control
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, format!("cores.control[{i}]"))),
    );
    for (cpu, field) in cpus {
        if let Some(online) = host.online_cpus.as_ref().filter(|o| !o.contains(&cpu)) {
            return bad(
                field,
                format!(
                    "CPU {cpu} is not online on this machine (online: {})",
                    sorted_list(online)
                ),
            );
        }
        if let Some(allowed) = host.allowed_cpus.as_ref().filter(|a| !a.contains(&cpu)) {
            return bad(
                field,
                format!(
                    "CPU {cpu} is online but this process may not run on it (allowed: {})",
                    sorted_list(allowed)
                ),
            );
        }
    }
    Ok(())
}

fn sorted_list(cpus: &[u32]) -> String {
    let mut cpus = cpus.to_vec();
    cpus.sort_unstable();
    lcore_list(&cpus)
}

fn check_ports(profile: &Profile, host: &HostFacts) -> Result<(), Invalid> {
    for (i, port) in profile.ports.iter().enumerate() {
        let field = format!("ports[{i}].device");
        match &port.device {
            Device::Pci(addr) => {
                if host.pci_devices.as_ref().is_some_and(|d| !d.contains(addr)) {
                    return bad(
                        field,
                        format!("PCI device {addr} is not on this machine (/sys/bus/pci/devices)"),
                    );
                }
            }
            Device::Vdev(_) => {
                for arg in interface_args(&port.device) {
                    let Some(iface) = port.device.vdev_arg(arg) else {
                        continue;
                    };
                    if host.interfaces.as_ref().is_some_and(|n| !n.contains(iface)) {
                        return bad(
                            field,
                            format!(
                                "{arg}={iface}: no interface `{iface}` in this network namespace \
                                 (/sys/class/net)"
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_ranges() {
        assert_eq!(parse_cpu_list("1-3,5").unwrap(), vec![1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("1,0").unwrap(), vec![1, 0]);
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list(" 0-1 , 4 ").unwrap(), vec![0, 1, 4]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("1,1").unwrap_err().contains("twice"));
        assert!(parse_cpu_list("0-3,2").unwrap_err().contains("CPU 2 twice"));
        assert!(parse_cpu_list("x").unwrap_err().contains("`x`"));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("1-").is_err());
        assert!(parse_cpu_list("-1").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
        assert_eq!(parse_cpu_list("8191").unwrap(), vec![8191]);
        // A range past any machine is refused before anything is allocated for it.
        assert!(parse_cpu_list("0-4294967295")
            .unwrap_err()
            .contains("past the largest CPU id"));
    }

    #[test]
    fn this_machine_is_read() {
        let host = HostFacts::read();
        let online = host.online_cpus.expect("sysfs CPU list");
        assert!(!online.is_empty());
        assert_eq!(online, online_cpus().unwrap());
        // Every network namespace has a loopback interface.
        assert!(host.interfaces.expect("/sys/class/net").contains("lo"));
        assert!(!host.allowed_cpus.expect("Cpus_allowed_list").is_empty());
        assert!(host.pci_devices.is_some());
    }
}
