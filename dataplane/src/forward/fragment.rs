//! Fragmenting a forwarded IPv4 datagram to fit the egress MTU: RFC 791 §3.2
//! ("Fragmentation"), as RFC 1812 §4.2.2.7 and §5.2.6 ask of a router.
//!
//! A datagram of payload `L` at fragment offset `O` (bytes) becomes `k`
//! fragments. Each carries `chunk` payload bytes (the MTU less the 20-byte
//! header, rounded down to a multiple of 8, because offsets count 8-byte units)
//! except the last, which carries the rest:
//!
//! ```text
//!  payload  |<-- chunk -->|<-- chunk -->|<- rest ->|
//!  offset     O             O + chunk     O + 2·chunk
//!  MF         1             1             MF of the original datagram
//! ```
//!
//! Identification, TTL, protocol, addresses, DSCP/ECN and the reserved bit are
//! kept; Total Length, MF and the offset are set and the header checksum is
//! computed again. The datagram may itself be a fragment: its offset is the
//! base, and a non-final one keeps MF on every piece. The router refuses IP
//! options before this point (`ipv4_options`), so every fragment has the fixed
//! 20-byte header.

use crate::wire::ipv4::HEADER_LEN;
use crate::wire::Ipv4Packet;

/// The largest byte offset the 13-bit field holds (8191 units of 8 bytes).
const MAX_OFFSET: usize = 0x1FFF * 8;

/// How one datagram splits to fit an MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Payload bytes of every fragment but the last (a multiple of 8).
    chunk: usize,
    /// Payload bytes of the datagram.
    payload_len: usize,
    /// Fragments.
    count: usize,
}

impl Split {
    /// The split of `ip` (checked, 20-byte header) for an egress `mtu` in
    /// bytes of IP. `None` when a fragment's offset would not fit the field:
    /// only for a fragment that ends past 65535 bytes of its datagram, which
    /// RFC 791 §3.1's Total Length does not allow.
    pub fn new(ip: &Ipv4Packet<&[u8]>, mtu: u16) -> Option<Split> {
        // RFC 791 §3.2: every link carries at least 68 bytes (a chunk of 48);
        // the profile refuses smaller MTUs. Never fewer than 8 here, so the
        // loop over fragments always ends.
        let chunk = (usize::from(mtu).saturating_sub(HEADER_LEN) & !7).max(8);
        let payload_len = ip.payload().len();
        let count = payload_len.div_ceil(chunk).max(1);
        let last_offset = usize::from(ip.frag_offset()) + (count - 1) * chunk;
        (last_offset <= MAX_OFFSET).then_some(Split {
            chunk,
            payload_len,
            count,
        })
    }

    /// Number of fragments.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Payload bytes of fragment `k` (`k < count`).
    fn payload_range(&self, k: usize) -> core::ops::Range<usize> {
        let start = (k * self.chunk).min(self.payload_len);
        start..(start + self.chunk).min(self.payload_len)
    }

    /// Total Length of fragment `k`, in bytes.
    pub fn ip_len(&self, k: usize) -> usize {
        HEADER_LEN + self.payload_range(k).len()
    }

    /// Writes fragment `k` of `ip` into `out`, which is [`ip_len(k)`](Self::ip_len)
    /// bytes long.
    pub fn write(&self, k: usize, ip: &Ipv4Packet<&[u8]>, out: &mut [u8]) {
        let range = self.payload_range(k);
        let offset = usize::from(ip.frag_offset()) + range.start;
        let last = k + 1 >= self.count;
        out[..HEADER_LEN].copy_from_slice(&ip.as_ref()[..HEADER_LEN]);
        out[HEADER_LEN..].copy_from_slice(&ip.payload()[range]);
        let mut frag = Ipv4Packet::new_unchecked(out);
        frag.set_header_len(HEADER_LEN);
        frag.set_total_len(u16::try_from(frag.as_ref().len()).unwrap_or(u16::MAX));
        frag.set_frag_offset(u16::try_from(offset).unwrap_or(u16::MAX));
        frag.set_more_frags(ip.more_frags() || !last);
        frag.fill_checksum();
    }
}
