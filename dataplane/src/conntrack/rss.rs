//! Which worker owns a flow: the Toeplitz RSS hash, computed in software
//! exactly as the NIC computes it in hardware.
//!
//! The NIC hashes each packet's `(src, dst, sport, dport)` (TCP and UDP) or
//! `(src, dst)` (everything else), takes `hash % RETA_SIZE` as an index into
//! its redirection table (RETA), and delivers the packet to that queue. One
//! worker polls one queue, so the queue *is* the shard.
//!
//! With the symmetric key ([`SYMMETRIC_KEY`], `0x6d5a` repeated), the key
//! repeats every 16 bits; the addresses sit 32 bits apart and the ports 16,
//! so swapping both pairs leaves every contribution in place:
//! `hash(a, b, p, q) == hash(b, a, q, p)`. Both directions of a connection
//! land on one queue, which is what lets one worker own its entry outright.
//! (The price: the hash depends only on `src ⊕ dst` and `sport ⊕ dport`.
//! That still spreads real traffic well, and the connection table uses its
//! own seeded hash, so nothing here needs to resist crafted inputs.)
//!
//! The invariant holds on real hardware only if the port setup
//! * programs this key;
//! * enables the hash types this module mirrors: IPv4/IPv6 with TCP and UDP
//!   ports, IP only for everything else (`RTE_ETH_RSS_IP |
//!   RTE_ETH_RSS_NONFRAG_IPV4_TCP | .._UDP | RTE_ETH_RSS_NONFRAG_IPV6_TCP |
//!   .._UDP`, no SCTP-with-ports, no `IPV6_EX` types);
//! * programs the RETA as entry `i` → queue `i % queues` over
//!   [`RETA_SIZE`] = 128 entries (many PMDs default to this, but not all,
//!   and sizes differ: write it explicitly).
//!
//! Fragments of a TCP or UDP packet carry no ports the NIC can see and are
//! hashed IP-only, so they may arrive at another worker than
//! [`Toeplitz::owner_of`] names; the worker must hand those over (or drop
//! them) rather than track them itself.
//!
//! The software hash uses one 256-entry table of 32-bit contributions per
//! input byte position (36 × 1 KiB): an IPv4 4-tuple costs 12 lookups.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::key::FlowKey;

/// Length of an RSS key.
pub const KEY_LEN: usize = 40;

/// The symmetric key: `0x6d5a` repeated (see the module docs).
pub const SYMMETRIC_KEY: [u8; KEY_LEN] = {
    let mut key = [0; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        key[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    key
};

/// Entries in the redirection table the port setup must program.
pub const RETA_SIZE: usize = 128;

/// The longest input: an IPv6 4-tuple (16 + 16 + 2 + 2 bytes).
const MAX_INPUT: usize = 36;

const TCP: u8 = 6;
const UDP: u8 = 17;

/// A Toeplitz hasher for one key, with its lookup tables precomputed.
pub struct Toeplitz {
    /// `table[p][b]`: the hash contribution of byte value `b` at input
    /// position `p`.
    table: Box<[[u32; 256]; MAX_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

/// The worker (queue) the NIC delivers a packet with RSS hash `hash` to,
/// given the default RETA (`i % workers`, [`RETA_SIZE`] entries).
///
/// # Panics
/// If `workers` is 0.
#[inline]
pub fn owner(hash: u32, workers: usize) -> usize {
    (hash as usize % RETA_SIZE) % workers
}

impl Toeplitz {
    /// A hasher for `key`; builds 36 KiB of tables (do it once, at boot).
    pub fn new(key: &[u8; KEY_LEN]) -> Toeplitz {
        // Bit `i` of the key, most significant first; zero past the end.
        let key_bit = |i: usize| i < KEY_LEN * 8 && key[i / 8] >> (7 - i % 8) & 1 == 1;
        // The 32-bit key window that input bit `i` selects.
        let window = |i: usize| (0..32).fold(0u32, |w, j| (w << 1) | u32::from(key_bit(i + j)));
        let mut table: Box<[[u32; 256]; MAX_INPUT]> = vec![[0u32; 256]; MAX_INPUT]
            .into_boxed_slice()
            .try_into()
            .expect("MAX_INPUT rows");
        for (p, row) in table.iter_mut().enumerate() {
            let windows: [u32; 8] = std::array::from_fn(|j| window(8 * p + j));
            for (byte, cell) in row.iter_mut().enumerate() {
                *cell = (0..8)
                    .filter(|j| byte >> (7 - j) & 1 == 1)
                    .fold(0, |h, j| h ^ windows[j]);
            }
        }
        Toeplitz { table }
    }

    /// The hasher for [`SYMMETRIC_KEY`].
    pub fn symmetric() -> Toeplitz {
        Toeplitz::new(&SYMMETRIC_KEY)
    }

    /// The hash of raw input bytes (at most 36).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        assert!(
            input.len() <= MAX_INPUT,
            "RSS input of {} bytes",
            input.len()
        );
        self.table
            .iter()
            .zip(input)
            .fold(0, |h, (row, &b)| h ^ row[usize::from(b)])
    }

    /// IPv4 with TCP or UDP ports, as the NIC hashes it.
    #[inline]
    pub fn hash_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        input[8..10].copy_from_slice(&sport.to_be_bytes());
        input[10..12].copy_from_slice(&dport.to_be_bytes());
        self.hash(&input)
    }

    /// IPv4, addresses only (protocols without ports, fragments).
    #[inline]
    pub fn hash_ipv4_ip_only(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let mut input = [0u8; 8];
        input[0..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        self.hash(&input)
    }

    /// IPv6 with TCP or UDP ports, as the NIC hashes it.
    #[inline]
    pub fn hash_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; 36];
        input[0..16].copy_from_slice(&src.octets());
        input[16..32].copy_from_slice(&dst.octets());
        input[32..34].copy_from_slice(&sport.to_be_bytes());
        input[34..36].copy_from_slice(&dport.to_be_bytes());
        self.hash(&input)
    }

    /// IPv6, addresses only.
    #[inline]
    pub fn hash_ipv6_ip_only(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let mut input = [0u8; 32];
        input[0..16].copy_from_slice(&src.octets());
        input[16..32].copy_from_slice(&dst.octets());
        self.hash(&input)
    }

    /// The RSS hash of a flow as the NIC computes it for either direction
    /// (only with a symmetric key): TCP and UDP with ports, the rest
    /// addresses only.
    #[inline]
    pub fn hash_flow(&self, key: &FlowKey) -> u32 {
        let ports = matches!(key.proto, TCP | UDP);
        if key.family == 4 {
            let v4 = |a: &[u8; 16]| Ipv4Addr::new(a[12], a[13], a[14], a[15]);
            let (lo, hi) = (v4(&key.lo_addr), v4(&key.hi_addr));
            if ports {
                self.hash_ipv4(lo, hi, key.lo_port, key.hi_port)
            } else {
                self.hash_ipv4_ip_only(lo, hi)
            }
        } else {
            let (lo, hi) = (Ipv6Addr::from(key.lo_addr), Ipv6Addr::from(key.hi_addr));
            if ports {
                self.hash_ipv6(lo, hi, key.lo_port, key.hi_port)
            } else {
                self.hash_ipv6_ip_only(lo, hi)
            }
        }
    }

    /// The worker that owns the flow `key` among `workers`: the queue the NIC
    /// delivers both of its directions to (symmetric key, default RETA).
    #[inline]
    pub fn owner_of(&self, key: &FlowKey, workers: usize) -> usize {
        owner(self.hash_flow(key), workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// The key of the Microsoft RSS verification suite (also Intel's
    /// datasheets and DPDK's `test_thash.c`).
    const MS_KEY: [u8; KEY_LEN] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// xorshift64*: deterministic test randomness.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            std::array::from_fn(|_| self.next().to_le_bytes()[0])
        }
    }

    /// The textbook bit-at-a-time Toeplitz hash, as a reference.
    fn reference(key: &[u8; KEY_LEN], input: &[u8]) -> u32 {
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        let mut result = 0;
        for (i, &byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte >> (7 - bit) & 1 == 1 {
                    result ^= window;
                }
                // Shift in the key bit that follows the window.
                let pos = 32 + 8 * i + bit;
                let in_bit = key.get(pos / 8).map_or(0, |k| k >> (7 - pos % 8) & 1);
                window = (window << 1) | u32::from(in_bit);
            }
        }
        result
    }

    #[test]
    fn microsoft_ipv4_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        // (destination, dport, source, sport, IP only, with TCP)
        let vectors: [(&str, u16, &str, u16, u32, u32); 5] = [
            (
                "161.142.100.80",
                1766,
                "66.9.149.187",
                2794,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                "65.69.140.83",
                4739,
                "199.92.111.2",
                14230,
                0xd718_262a,
                0xc626_b0ea,
            ),
            (
                "12.22.207.184",
                38024,
                "24.19.198.95",
                12898,
                0xd2d0_a5de,
                0x5c2b_394a,
            ),
            (
                "209.142.163.6",
                2217,
                "38.27.205.30",
                48228,
                0x8298_9176,
                0xafc7_327f,
            ),
            (
                "202.188.127.2",
                1303,
                "153.39.163.191",
                44251,
                0x5d18_09c5,
                0x10e8_28a2,
            ),
        ];
        for (dst, dport, src, sport, ip_only, with_tcp) in vectors {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(t.hash_ipv4_ip_only(src, dst), ip_only, "{src} -> {dst}");
            assert_eq!(
                t.hash_ipv4(src, dst, sport, dport),
                with_tcp,
                "{src} -> {dst}"
            );
        }
    }

    #[test]
    fn microsoft_ipv6_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        let vectors: [(&str, u16, &str, u16, u32, u32); 3] = [
            (
                "3ffe:2501:200:3::1",
                1766,
                "3ffe:2501:200:1fff::7",
                2794,
                0x2cc1_8cd5,
                0x4020_7d3d,
            ),
            (
                "ff02::1",
                4739,
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                0x0f0c_461c,
                0xdde5_1bbf,
            ),
            (
                "fe80::200:f8ff:fe21:67cf",
                38024,
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                0x4b61_e985,
                0x02d1_feef,
            ),
        ];
        for (dst, dport, src, sport, ip_only, with_tcp) in vectors {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(t.hash_ipv6_ip_only(src, dst), ip_only, "{src} -> {dst}");
            assert_eq!(
                t.hash_ipv6(src, dst, sport, dport),
                with_tcp,
                "{src} -> {dst}"
            );
        }
    }

    #[test]
    fn tables_match_the_bitwise_definition() {
        let mut rng = Rng(0x1234_5678);
        for key in [MS_KEY, SYMMETRIC_KEY, rng.bytes()] {
            let t = Toeplitz::new(&key);
            for len in [0, 1, 8, 12, 32, 36] {
                let input: [u8; 36] = rng.bytes();
                assert_eq!(t.hash(&input[..len]), reference(&key, &input[..len]));
            }
        }
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let t = Toeplitz::symmetric();
        let mut rng = Rng(0xfeed_beef);
        for _ in 0..10_000 {
            let (a, b) = (
                Ipv4Addr::from(rng.bytes::<4>()),
                Ipv4Addr::from(rng.bytes::<4>()),
            );
            let (p, q) = (
                u16::from_be_bytes(rng.bytes()),
                u16::from_be_bytes(rng.bytes()),
            );
            assert_eq!(t.hash_ipv4(a, b, p, q), t.hash_ipv4(b, a, q, p));
            assert_eq!(t.hash_ipv4_ip_only(a, b), t.hash_ipv4_ip_only(b, a));
            let (a, b) = (
                Ipv6Addr::from(rng.bytes::<16>()),
                Ipv6Addr::from(rng.bytes::<16>()),
            );
            assert_eq!(t.hash_ipv6(a, b, p, q), t.hash_ipv6(b, a, q, p));
            assert_eq!(t.hash_ipv6_ip_only(a, b), t.hash_ipv6_ip_only(b, a));
        }
        // The standard key is not symmetric: the test above means something.
        let ms = Toeplitz::new(&MS_KEY);
        let (a, b) = (
            "66.9.149.187".parse().unwrap(),
            "161.142.100.80".parse().unwrap(),
        );
        assert_ne!(
            ms.hash_ipv4(a, b, 2794, 1766),
            ms.hash_ipv4(b, a, 1766, 2794)
        );
    }

    #[test]
    fn owner_of_a_flow_is_where_the_nic_sends_each_direction() {
        let t = Toeplitz::symmetric();
        let mut rng = Rng(77);
        for i in 0..2_000u32 {
            let (a, b): (IpAddr, IpAddr) = if i % 2 == 0 {
                (
                    Ipv4Addr::from(rng.bytes::<4>()).into(),
                    Ipv4Addr::from(rng.bytes::<4>()).into(),
                )
            } else {
                (
                    Ipv6Addr::from(rng.bytes::<16>()).into(),
                    Ipv6Addr::from(rng.bytes::<16>()).into(),
                )
            };
            let (p, q) = (
                u16::from_be_bytes(rng.bytes()),
                u16::from_be_bytes(rng.bytes()),
            );
            let proto = [TCP, UDP, 1, 47][(i / 2 % 4) as usize];
            // What the NIC computes for the packet a -> b as sent.
            let nic = match (a, b, proto) {
                (IpAddr::V4(a), IpAddr::V4(b), TCP | UDP) => t.hash_ipv4(a, b, p, q),
                (IpAddr::V4(a), IpAddr::V4(b), _) => t.hash_ipv4_ip_only(a, b),
                (IpAddr::V6(a), IpAddr::V6(b), TCP | UDP) => t.hash_ipv6(a, b, p, q),
                (IpAddr::V6(a), IpAddr::V6(b), _) => t.hash_ipv6_ip_only(a, b),
                _ => unreachable!(),
            };
            for (key, _) in [
                FlowKey::from_packet(a, p, b, q, proto),
                FlowKey::from_packet(b, q, a, p, proto),
            ] {
                assert_eq!(t.hash_flow(&key), nic);
                assert_eq!(t.owner_of(&key, 3), owner(nic, 3));
            }
        }
    }

    #[test]
    fn owner_spreads_flows_evenly() {
        let t = Toeplitz::symmetric();
        let mut rng = Rng(4242);
        for workers in [2, 3, 4, 7] {
            let mut count = vec![0u32; workers];
            let n = 70_000;
            for _ in 0..n {
                let (a, b) = (
                    Ipv4Addr::from(rng.bytes::<4>()),
                    Ipv4Addr::from(rng.bytes::<4>()),
                );
                let (p, q) = (
                    u16::from_be_bytes(rng.bytes()),
                    u16::from_be_bytes(rng.bytes()),
                );
                count[owner(t.hash_ipv4(a, b, p, q), workers)] += 1;
            }
            // The RETA gives worker w ⌈(128 - w) / workers⌉ of 128 entries.
            for (w, &c) in count.iter().enumerate() {
                let entries = (RETA_SIZE - w).div_ceil(workers);
                let want = f64::from(n) * entries as f64 / RETA_SIZE as f64;
                let off = (f64::from(c) - want).abs() / want;
                assert!(
                    off < 0.05,
                    "{workers} workers: worker {w} got {c}, want ~{want:.0}"
                );
            }
        }
    }
}
