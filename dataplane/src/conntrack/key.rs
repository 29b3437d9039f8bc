//! The flow key: direction-independent, so both directions of a connection
//! find the same entry (and, through the symmetric RSS hash, the same worker).
//!
//! The two endpoints are stored in a canonical order — the lower
//! `(address, port)` first — and a packet learns which side it came from
//! with [`FlowKey::from_packet`]. IPv4 addresses are stored as IPv4-mapped
//! IPv6 (`::ffff:a.b.c.d`) so one layout serves both families.

use std::net::{IpAddr, Ipv6Addr};

/// Which endpoint of a [`FlowKey`] sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The endpoint stored first (the lower `(address, port)`).
    Lo,
    /// The endpoint stored second.
    Hi,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

/// A connection's identity, the same for both directions. 38 bytes of data,
/// compared and hashed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Address of the lower endpoint (IPv4-mapped for IPv4).
    pub lo_addr: [u8; 16],
    /// Address of the higher endpoint.
    pub hi_addr: [u8; 16],
    /// Port of the lower endpoint (ICMP echo: the identifier).
    pub lo_port: u16,
    /// Port of the higher endpoint (ICMP echo: the identifier).
    pub hi_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
}

fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl FlowKey {
    /// The key of a packet from `(src, sport)` to `(dst, dport)`, and the side
    /// it came from. Both addresses must be of one family.
    #[inline]
    pub fn from_packet(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
    ) -> (FlowKey, Side) {
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) {
            return Self::from_v4(u32::from(s), sport, u32::from(d), dport, proto);
        }
        let family = if src.is_ipv4() { 4 } else { 6 };
        let (s, d) = (addr_bytes(src), addr_bytes(dst));
        if (s, sport) <= (d, dport) {
            (
                FlowKey {
                    lo_addr: s,
                    hi_addr: d,
                    lo_port: sport,
                    hi_port: dport,
                    proto,
                    family,
                },
                Side::Lo,
            )
        } else {
            (
                FlowKey {
                    lo_addr: d,
                    hi_addr: s,
                    lo_port: dport,
                    hi_port: sport,
                    proto,
                    family,
                },
                Side::Hi,
            )
        }
    }

    /// The key of an IPv4 packet, built from integers: the same key as
    /// [`FlowKey::from_packet`] gives, without byte-wise comparisons.
    #[inline]
    pub fn from_v4(src: u32, sport: u16, dst: u32, dport: u16, proto: u8) -> (FlowKey, Side) {
        let mapped = |a: u32| (0xffff_u128 << 32 | u128::from(a)).to_be_bytes();
        let (s, d) = (
            (u64::from(src) << 16) | u64::from(sport),
            (u64::from(dst) << 16) | u64::from(dport),
        );
        let (lo, hi, side) = if s <= d {
            (s, d, Side::Lo)
        } else {
            (d, s, Side::Hi)
        };
        #[allow(clippy::cast_possible_truncation)]
        let key = FlowKey {
            lo_addr: mapped((lo >> 16) as u32),
            hi_addr: mapped((hi >> 16) as u32),
            lo_port: lo as u16,
            hi_port: hi as u16,
            proto,
            family: 4,
        };
        (key, side)
    }

    /// The address of one side.
    pub fn addr(&self, side: Side) -> IpAddr {
        let bytes = match side {
            Side::Lo => self.lo_addr,
            Side::Hi => self.hi_addr,
        };
        let v6 = Ipv6Addr::from(bytes);
        match (self.family, v6.to_ipv4_mapped()) {
            (4, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    /// The port of one side.
    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::Lo => self.lo_port,
            Side::Hi => self.hi_port,
        }
    }

    /// The key as five little-endian words, for hashing (the last holds the
    /// ports, protocol and family).
    pub fn words(&self) -> [u64; 5] {
        let w = |b: &[u8; 16], i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let tail = u64::from(self.lo_port)
            | u64::from(self.hi_port) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.family) << 40;
        [
            w(&self.lo_addr, 0),
            w(&self.lo_addr, 8),
            w(&self.hi_addr, 0),
            w(&self.hi_addr, 8),
            tail,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn both_directions_give_one_key_and_opposite_sides() {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
        let (k1, s1) = FlowKey::from_packet(a, 40000, b, 80, 6);
        let (k2, s2) = FlowKey::from_packet(b, 80, a, 40000, 6);
        assert_eq!(k1, k2);
        assert_eq!(s1.other(), s2);
        assert_eq!(k1.addr(s1), a);
        assert_eq!(k1.port(s1), 40000);
        assert_eq!(k1.addr(s2), b);
        assert_eq!(k1.port(s2), 80);
    }

    #[test]
    fn families_and_protocols_differ() {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
        assert_ne!(
            FlowKey::from_packet(a, 1, b, 2, 6).0,
            FlowKey::from_packet(a, 1, b, 2, 17).0
        );
        let a6: IpAddr = "2001:db8::1".parse().unwrap();
        let b6: IpAddr = "2001:db8::2".parse().unwrap();
        let (k, s) = FlowKey::from_packet(b6, 5, a6, 6, 6);
        assert_eq!((k.family, k.addr(s)), (6, b6));
    }
}

#[cfg(test)]
mod v4_tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    #[allow(clippy::cast_possible_truncation)] // slicing random bits on purpose
    fn the_ipv4_fast_path_gives_the_general_key() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, b) = ((x >> 32) as u32 & 0xffff_00ff, x as u32 & 0xff00_ffff);
            let (p, q) = ((x >> 8) as u16 & 0x00ff, (x >> 40) as u16);
            let general = {
                let family_free = |ip: u32| IpAddr::V4(Ipv4Addr::from(ip));
                let (s, d) = (addr_bytes(family_free(a)), addr_bytes(family_free(b)));
                if (s, p) <= (d, q) {
                    (
                        FlowKey {
                            lo_addr: s,
                            hi_addr: d,
                            lo_port: p,
                            hi_port: q,
                            proto: 6,
                            family: 4,
                        },
                        Side::Lo,
                    )
                } else {
                    (
                        FlowKey {
                            lo_addr: d,
                            hi_addr: s,
                            lo_port: q,
                            hi_port: p,
                            proto: 6,
                            family: 4,
                        },
                        Side::Hi,
                    )
                }
            };
            assert_eq!(FlowKey::from_v4(a, p, b, q, 6), general);
        }
        // equal endpoints compare as Lo
        assert_eq!(FlowKey::from_v4(7, 7, 7, 7, 1).1, Side::Lo);
    }
}
