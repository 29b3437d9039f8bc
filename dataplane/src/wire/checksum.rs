//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The ones' complement sum of 16-bit words is arithmetic modulo `0xFFFF`
//! (with `0xFFFF` standing for zero). As `2^16 ≡ 1 (mod 0xFFFF)`, a 32-bit
//! big-endian word `hi·2^16 + lo` adds the same as its two 16-bit halves, so
//! [`data`] sums 32-bit words into a `u64` (eight bytes per step) and folds
//! once at the end: no carry handling in the loop.
//!
//! Conventions, as in smoltcp:
//! * [`data`], [`pseudo_header_v4`], [`pseudo_header_v6`] return the folded
//!   sum, *not* complemented;
//! * [`combine`] adds such sums;
//! * the value written into a header is `!combine(..)`;
//! * data that carries a correct checksum sums to `0xFFFF` ([`is_valid`]).

use super::{IpAddr, IpProtocol, Ipv4Addr, Ipv6Addr};

/// Folds a wide sum into 16 bits with end-around carry.
const fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The loop leaves `sum <= 0xFFFF`.
    #[allow(clippy::cast_possible_truncation)]
    let folded = sum as u16;
    folded
}

/// Ones' complement sum of `data` (odd length padded with a zero byte),
/// folded to 16 bits, not complemented.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Two 32-bit words per step; 2^32 steps would be needed to overflow.
        acc += (w >> 32) + (w & 0xFFFF_FFFF);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&last) = rest.first() {
        acc += u64::from(last) << 8;
    }
    fold(acc)
}

/// Adds folded sums (e.g. a pseudo-header sum and a data sum).
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Built for a fuzzer (`cargo fuzz` sets `--cfg fuzzing`): checksum
/// verification is bypassed so that random inputs get past it.
// `fuzzing` is not a Cargo feature, so tell the check-cfg lint it is expected.
#[allow(unexpected_cfgs)]
pub const FUZZING: bool = cfg!(fuzzing);

/// `true` when data including its checksum field sums to `0xFFFF`, i.e. the
/// checksum verifies. Always `true` under `cfg(fuzzing)`.
#[inline]
pub fn is_valid(sum: u16) -> bool {
    FUZZING || sum == 0xFFFF
}

/// Sum of the IPv4 pseudo-header: source, destination, zero, protocol,
/// upper-layer length (RFC 768, RFC 9293).
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let mut acc = u64::from(u32::from_be_bytes(src.octets()));
    acc += u64::from(u32::from_be_bytes(dst.octets()));
    acc += u64::from(u8::from(protocol));
    acc += u64::from(length);
    fold(acc)
}

/// Sum of the IPv6 pseudo-header: source, destination, 32-bit upper-layer
/// length, zeros, next header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    length: u32,
) -> u16 {
    let mut acc = u64::from(data(&src.octets()));
    acc += u64::from(data(&dst.octets()));
    acc += u64::from(length >> 16) + u64::from(length & 0xFFFF);
    acc += u64::from(u8::from(next_header));
    fold(acc)
}

/// Pseudo-header sum for either family. Mixed families have no meaning: the
/// result is then a sum of both addresses with the IPv6 layout, a checksum
/// that will not verify, never a panic.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, length: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // An IPv4 datagram can't carry more than 65535 bytes; saturate a
            // bogus length rather than truncate it silently.
            pseudo_header_v4(s, d, protocol, u16::try_from(length).unwrap_or(u16::MAX))
        }
        _ => {
            let s = match src {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let d = match dst {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            pseudo_header_v6(&s, &d, protocol, length)
        }
    }
}

/// RFC 1624 eqn. 3: the new checksum when one 16-bit word of the covered data
/// changes from `old_word` to `new_word`: `HC' = ~(~HC + ~m + m')`.
///
/// Eqn. 3 (not eqn. 2) is the one that gives the same result as a full
/// recomputation, including the `0x0000`/`0xFFFF` corner: the sum is never
/// `-0` unless everything covered is zero.
#[inline]
pub fn update_u16(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    !fold(u64::from(!old_checksum) + u64::from(!old_word) + u64::from(new_word))
}

/// [`update_u16`] for a 32-bit field (an IPv4 address, a TCP sequence number)
/// that starts on an even offset.
#[inline]
pub fn update_u32(old_checksum: u16, old_value: u32, new_value: u32) -> u16 {
    let old = u64::from(!old_value >> 16) + u64::from(!old_value & 0xFFFF);
    let new = u64::from(new_value >> 16) + u64::from(new_value & 0xFFFF);
    !fold(u64::from(!old_checksum) + old + new)
}

/// The new IPv4 header checksum after the TTL goes from `old_ttl` to `new_ttl`.
///
/// TTL and protocol share the 16-bit word at offset 8 of the header, so this is
/// [`update_u16`] of that word. What a router does per forwarded packet.
#[inline]
pub fn update_ttl(old_checksum: u16, protocol: IpProtocol, old_ttl: u8, new_ttl: u8) -> u16 {
    let proto = u8::from(protocol);
    update_u16(
        old_checksum,
        u16::from_be_bytes([old_ttl, proto]),
        u16::from_be_bytes([new_ttl, proto]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Word-by-word reference from RFC 1071 §4.1, independent of [`data`].
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
            i += 2;
        }
        if i < bytes.len() {
            sum += u32::from(bytes[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        u16::try_from(sum).unwrap()
    }

    /// xorshift64*: deterministic "random-ish" bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn bytes(&mut self, out: &mut [u8]) {
            for b in out {
                *b = self.next().to_be_bytes()[0];
            }
        }
    }

    /// A 20-byte IPv4 header from RFC 1071-era examples (wikipedia's).
    static IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, //
        0xb8, 0x61, // checksum
        0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn test_known_header() {
        assert!(is_valid(data(&IPV4_HEADER)));
        let mut h = IPV4_HEADER;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(!data(&h), 0xb861);
    }

    #[test]
    fn test_rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn test_data_matches_reference_all_lengths() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut buf = [0u8; 300];
        for len in 0..buf.len() {
            rng.bytes(&mut buf[..len]);
            assert_eq!(data(&buf[..len]), reference(&buf[..len]), "len {len}");
        }
        let ones = [0xffu8; 1500];
        assert_eq!(data(&ones), reference(&ones));
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn test_combine() {
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
        assert_eq!(combine(&[]), 0);
        let a = [1u8, 2, 3, 4, 5, 6];
        assert_eq!(combine(&[data(&a[..2]), data(&a[2..])]), data(&a));
    }

    #[test]
    fn test_pseudo_header_v4_and_v6() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(10, 0, 0, 2);
        let bytes = [192, 168, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20];
        assert_eq!(
            pseudo_header_v4(&s, &d, IpProtocol::Tcp, 20),
            reference(&bytes)
        );
        assert_eq!(
            pseudo_header(&IpAddr::V4(s), &IpAddr::V4(d), IpProtocol::Tcp, 20),
            reference(&bytes)
        );

        let s6: Ipv6Addr = "fe80::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:db8::ffff:1".parse().unwrap();
        let mut bytes6 = Vec::new();
        bytes6.extend_from_slice(&s6.octets());
        bytes6.extend_from_slice(&d6.octets());
        bytes6.extend_from_slice(&0x0001_0008u32.to_be_bytes());
        bytes6.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(
            pseudo_header_v6(&s6, &d6, IpProtocol::Icmpv6, 0x0001_0008),
            reference(&bytes6)
        );
        // Mixed families: defined, no panic.
        let _ = pseudo_header(&IpAddr::V4(s), &IpAddr::V6(d6), IpProtocol::Udp, u32::MAX);
    }

    /// Sets the header checksum from scratch.
    fn fill(h: &mut [u8]) {
        h[10] = 0;
        h[11] = 0;
        let c = !data(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn test_incremental_ttl_matches_full_recompute() {
        let mut rng = Rng(42);
        let mut h = [0u8; 20];
        let mut corner_zero = 0;
        for _ in 0..100_000 {
            rng.bytes(&mut h);
            h[8] = h[8].max(1);
            fill(&mut h);
            let old = u16::from_be_bytes([h[10], h[11]]);
            let ttl = h[8];
            let new = update_ttl(old, IpProtocol::from(h[9]), ttl, ttl - 1);
            h[8] = ttl - 1;
            fill(&mut h);
            let full = u16::from_be_bytes([h[10], h[11]]);
            assert_eq!(new, full, "ttl {ttl} old {old:04x}");
            if full == 0 {
                corner_zero += 1;
            }
        }
        // Random headers rarely hit it; the explicit corner test below does.
        let _ = corner_zero;
    }

    #[test]
    fn test_incremental_corner_checksum_zero_and_ffff() {
        // Build headers whose checksum after the update is exactly 0x0000
        // (data sum 0xFFFF) and whose old checksum is 0x0000, by tuning the
        // identification word: the case where RFC 1624 eqn. 2 goes wrong.
        let base = [
            0x45u8, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2,
        ];
        for target_old in [0x0000u16, 0xFFFE, 0x0001] {
            for target_new in [0x0000u16, 0x0001, 0xFFFE] {
                // Pick the ident so that the *old* header checksums to target_old.
                let mut h = base;
                let rest = data(&h);
                // want: !combine(rest, ident) == target_old
                let want_sum = !target_old;
                // ident = want_sum - rest (ones' complement subtraction)
                let ident = combine(&[want_sum, !rest]);
                h[4..6].copy_from_slice(&ident.to_be_bytes());
                fill(&mut h);
                let old = u16::from_be_bytes([h[10], h[11]]);
                assert_eq!(old, target_old, "old corner setup");
                // Replace ident by a value making the new checksum target_new.
                let mut h2 = h;
                h2[4] = 0;
                h2[5] = 0;
                h2[10] = 0;
                h2[11] = 0;
                let rest2 = data(&h2);
                let ident2 = combine(&[!target_new, !rest2]);
                let inc = update_u16(old, ident, ident2);
                h2[4..6].copy_from_slice(&ident2.to_be_bytes());
                fill(&mut h2);
                let full = u16::from_be_bytes([h2[10], h2[11]]);
                assert_eq!(inc, full, "old {target_old:04x} -> new {target_new:04x}");
                assert!(is_valid(data(&h2)));
            }
        }
    }

    #[test]
    fn test_update_u16_and_u32_random() {
        let mut rng = Rng(7);
        let mut buf = [0u8; 40];
        for _ in 0..20_000 {
            rng.bytes(&mut buf);
            let at = usize::try_from(rng.next() % 18).unwrap() * 2;
            let old_sum = !data(&buf);
            let old = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let new = u32::try_from(rng.next() >> 32).unwrap();
            buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update_u32(old_sum, old, new), !data(&buf));

            let old_sum = !data(&buf);
            let old16 = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let new16 = u16::try_from(rng.next() >> 48).unwrap();
            buf[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            assert_eq!(update_u16(old_sum, old16, new16), !data(&buf));
        }
    }
}
