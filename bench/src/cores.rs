//! Which CPUs the workers run on: a CPU list (`1-3,5`), as `taskset` and the kernel
//! write them, so the same command runs on a 2-CPU lab VM and a 16-core appliance.
//!
//! The main lcore (setup, the syncd stand-in, sampling) sits on the first online CPU
//! that no worker takes, or on CPU 0 beside a worker when every CPU is one; it sleeps
//! while the workers are measured.

pub use hw_profiles::host::parse_cpu_list as parse_list;

/// The CPUs this process may run on (`/sys/devices/system/cpu/online`), CPU 0 alone
/// when that cannot be read.
pub fn online() -> Vec<u32> {
    hw_profiles::host::online_cpus().unwrap_or_else(|| vec![0])
}

/// Default workers: every online CPU but the first, then the first too when that
/// leaves fewer than two (so a 2-CPU machine still shows two workers).
pub fn default_workers(online: &[u32]) -> Vec<u32> {
    let mut w: Vec<u32> = online.iter().copied().skip(1).collect();
    if w.len() < 2 {
        w.extend(online.first());
    }
    w
}

/// The main lcore's CPU: the first online one no worker takes, else the first online.
pub fn main_cpu(online: &[u32], workers: &[u32]) -> u32 {
    online
        .iter()
        .copied()
        .find(|c| !workers.contains(c))
        .or(online.first().copied())
        .unwrap_or(0)
}

/// EAL's `--lcores`: lcore 0 (main) on `main`, lcore `i + 1` on `workers[i]`.
pub fn eal_lcores(main: u32, workers: &[u32]) -> String {
    let map: Vec<String> = std::iter::once(main)
        .chain(workers.iter().copied())
        .enumerate()
        .map(|(lcore, cpu)| format!("{lcore}@{cpu}"))
        .collect();
    format!("--lcores={}", map.join(","))
}

/// Worker counts to measure: 1, 2, 4, … and all of them.
pub fn steps(workers: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n < workers)
        .collect();
    v.push(workers);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_on_two_and_sixteen_cpus() {
        assert_eq!(default_workers(&[0, 1]), vec![1, 0]);
        assert_eq!(main_cpu(&[0, 1], &[1, 0]), 0);
        let big: Vec<u32> = (0..16).collect();
        assert_eq!(default_workers(&big), (1..16).collect::<Vec<_>>());
        assert_eq!(main_cpu(&big, &default_workers(&big)), 0);
        assert_eq!(default_workers(&[0]), vec![0]);
    }

    #[test]
    fn lcore_map_and_steps() {
        assert_eq!(eal_lcores(0, &[1, 0]), "--lcores=0@0,1@1,2@0");
        assert_eq!(steps(1), vec![1]);
        assert_eq!(steps(2), vec![1, 2]);
        assert_eq!(steps(15), vec![1, 2, 4, 8, 15]);
        assert_eq!(steps(16), vec![1, 2, 4, 8, 16]);
    }
}
