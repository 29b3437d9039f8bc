//! The checks a profile must pass after parsing.
//!
//! Each check names the field it is about by path (`cores.workers[1]`), so the loader can
//! point at the line. The first failure is reported: one clear message, fixed, then the
//! next. See [`check`] for the order.

use crate::profile::{Device, Idle, Port, Profile, Role};
use std::collections::HashMap;
use std::fmt;

/// DPDK's `RTE_MAX_LCORE` in the distribution build: lcore ids are below it.
pub const MAX_LCORE: u32 = 128;
/// DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`.
pub const MAX_MBUF_CACHE: u32 = 512;
/// The MTU range accepted: IPv4's minimum up to the largest jumbo frames NICs commonly take.
pub const MTU_RANGE: std::ops::RangeInclusive<u16> = 68..=9600;
/// Descriptor ring sizes accepted (and they must be powers of two). PMDs have their own
/// limits and the runtime still adjusts with `rte_eth_dev_adjust_nb_rx_tx_desc`; this
/// range catches typos.
pub const DESC_RANGE: std::ops::RangeInclusive<u16> = 64..=32768;
/// Longest adaptive sleep: past 1 ms the first packet of a burst waits that long.
pub const MAX_SLEEP_US: u32 = 1000;
/// Port names are at most this long, like Linux interface names, so that lab veths can
/// carry the same name and console columns stay aligned.
pub const MAX_PORT_NAME: usize = 15;

/// A profile field that does not make sense, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Field path, e.g. `ports[2].rx_queues`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field: field.into(),
        reason: reason.into(),
    })
}

/// EAL memory (MiB) that `mbufs` default-sized mbufs need without hugepages, with a few
/// MiB of headroom for the runtime's other pools and rings. Measured (DPDK-NOTES): 2047
/// mbufs need 12 MiB, 4095 need 24, 8191 need 48, 16383 need 80, i.e. at most 6 KiB per
/// mbuf. With hugepages the real need is lower; the same bound keeps one rule.
pub fn min_eal_memory_mb(mbufs: u32) -> u64 {
    (u64::from(mbufs) * 6).div_ceil(1024) + 4
}

/// Mbufs the pool must at least hold so that every descriptor ring can be full and every
/// lcore cache at its flush threshold (1.5 × cache size) at the same time; fewer and rx
/// stalls under load with the pool empty.
pub fn min_mbufs(profile: &Profile) -> u64 {
    let rings: u64 = profile
        .ports
        .iter()
        .map(|p| {
            u64::from(p.rx_queues) * u64::from(p.rx_desc)
                + u64::from(p.tx_queues) * u64::from(p.tx_desc)
        })
        .sum();
    let lcores = profile.cores.lcores().len() as u64;
    rings + lcores * u64::from(profile.memory.mbuf_cache) * 3 / 2
}

/// Runs every check; the first problem wins. Each value is checked on its own first
/// (a malformed PCI address), then the relations between values (a core used twice,
/// queues that do not match the workers), so that the message names the real mistake
/// rather than one of its consequences.
pub fn check(p: &Profile) -> Result<(), Invalid> {
    if p.model.trim().is_empty() {
        return bad("model", "must not be empty");
    }
    // Each value on its own.
    check_lcore_ids(p)?;
    check_memory_values(p)?;
    for (i, port) in p.ports.iter().enumerate() {
        check_port_values(i, port)?;
    }
    check_idle(p)?;
    check_disk_values(p)?;
    // Relations between values.
    check_core_relations(p)?;
    check_memory_relations(p)?;
    check_port_relations(p)?;
    let need = min_mbufs(p);
    if u64::from(p.memory.mbufs) < need {
        return bad(
            "memory.mbufs",
            format!(
                "{} mbufs cannot fill every rx/tx descriptor and lcore cache: at least {need} needed",
                p.memory.mbufs
            ),
        );
    }
    let workers = p.cores.workers.len();
    if (p.memory.connections as usize) < workers || p.memory.connections > MAX_CONNECTIONS {
        return bad(
            "memory.connections",
            format!("must be at least one per worker ({workers}) and at most {MAX_CONNECTIONS}"),
        );
    }
    check_disk_relations(p)
}

/// Connections per unit at most: ids are 32-bit and 2^28 × 128 bytes is 32 GiB.
pub const MAX_CONNECTIONS: u32 = 1 << 28;

/// "1 worker", "8 workers".
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn check_lcore_id(field: &str, core: u32) -> Result<(), Invalid> {
    if core >= MAX_LCORE {
        return bad(
            field,
            format!(
                "core {core} is beyond DPDK's limit (RTE_MAX_LCORE = {MAX_LCORE}, ids 0..={})",
                MAX_LCORE - 1
            ),
        );
    }
    Ok(())
}

fn check_lcore_ids(p: &Profile) -> Result<(), Invalid> {
    let c = &p.cores;
    check_lcore_id("cores.main", c.main)?;
    if c.workers.is_empty() {
        return bad("cores.workers", "at least one worker core is needed");
    }
    for (i, &w) in c.workers.iter().enumerate() {
        check_lcore_id(&format!("cores.workers[{i}]"), w)?;
    }
    if let Some(s) = c.sync {
        check_lcore_id("cores.sync", s)?;
    }
    for (i, &k) in c.control.iter().enumerate() {
        check_lcore_id(&format!("cores.control[{i}]"), k)?;
    }
    for (i, &(l, cpu)) in c.cpu_of.iter().enumerate() {
        check_lcore_id(&format!("cores.cpu_of[{i}]"), l)?;
        if cpu >= MAX_LCORE {
            return bad(
                format!("cores.cpu_of[{i}]"),
                format!(
                    "CPU {cpu} is beyond DPDK's limit (RTE_MAX_LCORE = {MAX_LCORE}, ids 0..={})",
                    MAX_LCORE - 1
                ),
            );
        }
    }
    Ok(())
}

fn check_core_relations(p: &Profile) -> Result<(), Invalid> {
    let c = &p.cores;
    for (i, &w) in c.workers.iter().enumerate() {
        let field = format!("cores.workers[{i}]");
        if w == c.main {
            return bad(field, format!("core {w} is already the main core"));
        }
        if let Some(j) = c.workers[..i].iter().position(|&x| x == w) {
            return bad(
                field,
                format!("core {w} is listed twice (also cores.workers[{j}])"),
            );
        }
    }
    if let Some(s) = c.sync {
        if s == c.main {
            return bad("cores.sync", format!("core {s} is already the main core"));
        }
        if let Some(j) = c.workers.iter().position(|&x| x == s) {
            return bad(
                "cores.sync",
                format!("core {s} is already a worker (cores.workers[{j}])"),
            );
        }
    } else if let Some(i) = p.ports.iter().position(|p| p.device.is_pci()) {
        return bad(
            "cores.sync",
            format!(
                "a hardware profile (ports[{i}] is a PCI device) needs a dedicated sync core; \
                 only lab profiles may leave it out"
            ),
        );
    }
    for (i, &k) in c.control.iter().enumerate() {
        let field = format!("cores.control[{i}]");
        if let Some(j) = c.workers.iter().position(|&x| x == k) {
            return bad(
                field,
                format!(
                    "core {k} is a worker (cores.workers[{j}]): heartbeats would wait behind its poll loop"
                ),
            );
        }
        if c.sync == Some(k) {
            return bad(
                field,
                format!("core {k} is the sync core: heartbeats would wait behind its poll loop"),
            );
        }
        if let Some(j) = c.control[..i].iter().position(|&x| x == k) {
            return bad(
                field,
                format!("core {k} is listed twice (also cores.control[{j}])"),
            );
        }
    }
    let lcores = c.lcores();
    for (i, &(l, _)) in c.cpu_of.iter().enumerate() {
        let field = format!("cores.cpu_of[{i}]");
        if !lcores.contains(&l) {
            return bad(
                field,
                format!("lcore {l} is not the main, a worker or the sync core"),
            );
        }
        if let Some(j) = c.cpu_of[..i].iter().position(|&(x, _)| x == l) {
            return bad(
                field,
                format!("lcore {l} is listed twice (also cores.cpu_of[{j}])"),
            );
        }
    }
    Ok(())
}

fn check_memory_values(p: &Profile) -> Result<(), Invalid> {
    let m = &p.memory;
    if m.mbufs == 0 {
        return bad("memory.mbufs", "zero mbufs: no packet could be received");
    }
    if m.mbuf_cache > MAX_MBUF_CACHE {
        return bad(
            "memory.mbuf_cache",
            format!(
                "{} is over DPDK's maximum of {MAX_MBUF_CACHE} (RTE_MEMPOOL_CACHE_MAX_SIZE)",
                m.mbuf_cache
            ),
        );
    }
    Ok(())
}

fn check_memory_relations(p: &Profile) -> Result<(), Invalid> {
    let m = &p.memory;
    let flush = u64::from(m.mbuf_cache) * 3 / 2;
    if flush > u64::from(m.mbufs) {
        return bad(
            "memory.mbuf_cache",
            format!(
                "a cache of {} needs a pool of at least {flush} mbufs (DPDK refuses a cache whose \
                 flush threshold, 1.5 × its size, exceeds the pool)",
                m.mbuf_cache
            ),
        );
    }
    let need = min_eal_memory_mb(m.mbufs);
    if u64::from(m.eal_memory_mb) < need {
        return bad(
            "memory.eal_memory_mb",
            format!(
                "{} MiB is too little for {} mbufs: at least {need} MiB",
                m.eal_memory_mb, m.mbufs
            ),
        );
    }
    if !m.hugepages {
        if let Some(i) = p.ports.iter().position(|p| p.device.is_pci()) {
            return bad(
                "memory.hugepages",
                format!(
                    "ports[{i}] is a PCI device, which needs hugepages (pinned DMA memory); \
                     only vdev profiles may run without"
                ),
            );
        }
    }
    Ok(())
}

/// Whether `s` is `dddd:bb:dd.f` in lower-case hex with device ≤ 0x1f and function ≤ 7.
pub fn is_pci_address(s: &str) -> bool {
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = s.split(':');
    let (Some(domain), Some(bus), Some(devfn), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && hex(func, 1)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d <= 0x1f)
        && u8::from_str_radix(func, 16).is_ok_and(|f| f <= 7)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check_device(field: &str, device: &Device) -> Result<(), Invalid> {
    match device {
        Device::Pci(addr) => {
            if !is_pci_address(addr) {
                return bad(
                    field,
                    format!(
                        "`{addr}` is not a PCI address as DPDK writes them: \
                         domain:bus:device.function in lower-case hex, e.g. 0000:03:00.0"
                    ),
                );
            }
        }
        Device::Vdev(spec) => {
            let name = device.dpdk_name();
            if name.is_empty() {
                return bad(
                    field,
                    format!("`{spec}` has an empty driver name (nothing before the first comma)"),
                );
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad(
                    field,
                    format!("vdev name `{name}` may only hold a-z, A-Z, 0-9 and `_`"),
                );
            }
            if spec.split(',').skip(1).any(str::is_empty) {
                return bad(
                    field,
                    format!(
                        "`{spec}` has an empty argument (two commas in a row, or one at the end)"
                    ),
                );
            }
            if name.starts_with("net_af_packet") {
                // net_af_packet makes `qpairs` queue pairs, 1 when not given.
                if let Some(q) = device.vdev_arg("qpairs") {
                    if q.parse::<u16>().map_or(true, |q| q == 0) {
                        return bad(field, format!("qpairs=`{q}` is not a positive number"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The queue pairs a net_af_packet device offers (its `qpairs`, 1 by default); `None`
/// for other devices, which take what the port asks for.
fn af_packet_qpairs(device: &Device) -> Option<u16> {
    if !device.dpdk_name().starts_with("net_af_packet") {
        return None;
    }
    Some(
        device
            .vdev_arg("qpairs")
            .and_then(|q| q.parse().ok())
            .unwrap_or(1),
    )
}

fn check_port_values(i: usize, port: &Port) -> Result<(), Invalid> {
    let at = |f: &str| format!("ports[{i}].{f}");
    let name = &port.name;
    if name.is_empty() {
        return bad(at("name"), "must not be empty");
    }
    if !name.chars().all(is_name_char) {
        return bad(
            at("name"),
            format!("`{name}` may only hold a-z, A-Z, 0-9, `-` and `_`"),
        );
    }
    if name.chars().count() > MAX_PORT_NAME {
        return bad(
            at("name"),
            format!("`{name}` is longer than {MAX_PORT_NAME} characters"),
        );
    }
    check_device(&at("device"), &port.device)?;
    for (field, n) in [("rx_queues", port.rx_queues), ("tx_queues", port.tx_queues)] {
        if n == 0 {
            return bad(at(field), "must be at least 1");
        }
    }
    for (field, n) in [("rx_desc", port.rx_desc), ("tx_desc", port.tx_desc)] {
        if !DESC_RANGE.contains(&n) || !n.is_power_of_two() {
            return bad(
                at(field),
                format!(
                    "{n} descriptors: must be a power of two from {} to {}",
                    DESC_RANGE.start(),
                    DESC_RANGE.end()
                ),
            );
        }
    }
    if !MTU_RANGE.contains(&port.mtu) {
        return bad(
            at("mtu"),
            format!(
                "mtu {} is out of range {}..={}",
                port.mtu,
                MTU_RANGE.start(),
                MTU_RANGE.end()
            ),
        );
    }
    Ok(())
}

fn check_port_relations(p: &Profile) -> Result<(), Invalid> {
    let workers = p.cores.workers.len();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    for (i, port) in p.ports.iter().enumerate() {
        let at = |f: &str| format!("ports[{i}].{f}");
        if let Some(j) = names.insert(&port.name, i) {
            return bad(
                at("name"),
                format!("duplicate port name `{}` (also ports[{j}])", port.name),
            );
        }
        if let Some(j) = devices.insert(port.dpdk_name(), i) {
            return bad(
                at("device"),
                format!(
                    "device `{}` is already port `{}` (ports[{j}])",
                    port.dpdk_name(),
                    p.ports[j].name
                ),
            );
        }
        for (field, n) in [("rx_queues", port.rx_queues), ("tx_queues", port.tx_queues)] {
            if port.role == Role::Data && usize::from(n) != workers {
                return bad(
                    at(field),
                    format!(
                        "{} but {}: a data port needs one queue per worker (worker i polls queue i)",
                        count(n.into(), "queue"),
                        count(workers, "worker")
                    ),
                );
            }
            if let Some(qpairs) = af_packet_qpairs(&port.device).filter(|&q| n > q) {
                return bad(
                    at(field),
                    format!(
                        "{} but the net_af_packet device has qpairs={qpairs}",
                        count(n.into(), "queue")
                    ),
                );
            }
        }
    }
    if p.data_ports().next().is_none() {
        return bad("ports", "no data port: at least one port needs role `Data`");
    }
    Ok(())
}

fn check_idle(p: &Profile) -> Result<(), Invalid> {
    if let Idle::Adaptive { max_sleep_us } = p.idle {
        if max_sleep_us == 0 || max_sleep_us > MAX_SLEEP_US {
            return bad(
                "idle.max_sleep_us",
                format!(
                    "{max_sleep_us} µs is out of range 1..={MAX_SLEEP_US} (longer sleeps delay \
                     the first packet of every burst that much)"
                ),
            );
        }
    }
    Ok(())
}

fn check_disk_values(p: &Profile) -> Result<(), Invalid> {
    for (i, d) in p.disks.iter().enumerate() {
        if d.name.is_empty() {
            return bad(format!("disks[{i}].name"), "must not be empty");
        }
        if !d.path.is_absolute() {
            return bad(
                format!("disks[{i}].path"),
                format!("`{}` is not an absolute path", d.path.display()),
            );
        }
    }
    Ok(())
}

fn check_disk_relations(p: &Profile) -> Result<(), Invalid> {
    for (i, d) in p.disks.iter().enumerate() {
        if let Some(j) = p.disks[..i].iter().position(|o| o.name == d.name) {
            return bad(
                format!("disks[{i}].name"),
                format!("duplicate disk name `{}` (also disks[{j}])", d.name),
            );
        }
        if let Some(j) = p.disks[..i].iter().position(|o| o.path == d.path) {
            return bad(
                format!("disks[{i}].path"),
                format!("`{}` is already disks[{j}]", d.path.display()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        for ok in ["0000:03:00.0", "0000:ff:1f.7", "abcd:00:00.1"] {
            assert!(is_pci_address(ok), "{ok}");
        }
        for no in [
            "",
            "03:00.0",
            "0000:03:00",
            "0000:03:00.8",
            "0000:03:20.0",
            "0000:3:00.0",
            "0000:03:00.0.1",
            "0000:03:0g.0",
            "0000:03:00.00",
            "0000:03:00:0",
            "0000:0A:00.0",
            "00000:03:00.0",
            "+000:03:00.0",
        ] {
            assert!(!is_pci_address(no), "{no}");
        }
    }

    #[test]
    fn memory_need_matches_measurements_with_headroom() {
        for (mbufs, measured) in [(2047, 12), (4095, 24), (8191, 48), (16383, 80)] {
            assert!(min_eal_memory_mb(mbufs) > measured, "{mbufs}");
        }
        assert!(min_eal_memory_mb(u32::MAX) > 0);
    }
}
