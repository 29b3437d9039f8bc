//! Ethernet II frames, with up to two VLAN tags (802.1Q, and 802.1ad QinQ).
//!
//! ```text
//!  0                   6                  12      14
//! +-------------------+-------------------+-------+---------
//! |   destination     |      source       | type  | payload     untagged: 14
//! +-------------------+-------------------+-------+---------
//!                                         | TPID  |  TCI  | type | payload   one tag: 18
//!                                         | TPID  |  TCI  | TPID | TCI | type | payload  two: 22
//! TCI = PCP (3 bits) | DEI (1 bit) | VID (12 bits)
//! ```
//!
//! A tag starts with TPID `0x8100` (C-tag) or `0x88A8` (S-tag); either is
//! accepted in either position. A third tag is [`Error::Unsupported`]. The
//! frame check sequence is not part of the buffer (NICs strip it).

use super::{be16, put16, Error, EtherType, EthernetAddress, Result};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    /// The EtherType of an untagged frame, or the TPID of the first tag.
    pub const ETHERTYPE: usize = 12;
    /// Size of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
}

/// Header length of an untagged frame.
pub const HEADER_LEN: usize = 14;
/// Most tags a frame may carry.
pub const MAX_TAGS: usize = 2;

/// `true` for the TPIDs that start a VLAN tag.
const fn is_tpid(value: u16) -> bool {
    value == 0x8100 || value == 0x88A8
}

/// One 802.1Q tag control information: priority, drop eligible, VLAN id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl VlanTag {
    /// A tag with priority 0 and the given VLAN id (masked to 12 bits).
    #[inline]
    pub const fn new(vid: u16) -> VlanTag {
        VlanTag {
            pcp: 0,
            dei: false,
            vid: vid & 0x0FFF,
        }
    }

    /// Decodes a TCI.
    #[inline]
    pub const fn from_tci(tci: u16) -> VlanTag {
        let [hi, _] = tci.to_be_bytes();
        VlanTag {
            pcp: hi >> 5,
            dei: hi & 0x10 != 0,
            vid: tci & 0x0FFF,
        }
    }

    /// Encodes a TCI (out-of-range `pcp`/`vid` bits are masked off).
    #[inline]
    pub const fn tci(&self) -> u16 {
        let pcp = (self.pcp & 0x07) as u16;
        (pcp << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0FFF)
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the buffer holds the header, tags included.
    ///
    /// [`Error::Truncated`] if not, [`Error::Unsupported`] for a third tag.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let mut at = field::ETHERTYPE;
        for _ in 0..=MAX_TAGS {
            if data.len() < at + 2 {
                return Err(Error::Truncated);
            }
            if !is_tpid(be16(data, at)) {
                return Ok(());
            }
            at += field::TAG_LEN;
        }
        Err(Error::Unsupported)
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Number of VLAN tags, capped at [`MAX_TAGS`] (check_len refuses more).
    #[inline]
    pub fn tag_count(&self) -> usize {
        let data = self.buffer.as_ref();
        let mut n = 0;
        while n < MAX_TAGS && is_tpid(be16(data, field::ETHERTYPE + n * field::TAG_LEN)) {
            n += 1;
        }
        n
    }

    /// Offset of the (inner) EtherType field.
    fn ethertype_at(&self) -> usize {
        field::ETHERTYPE + self.tag_count() * field::TAG_LEN
    }

    /// Header length: 14, 18 or 22 bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.ethertype_at() + 2
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// EtherType of the payload, after any VLAN tags.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), self.ethertype_at()))
    }

    /// The tag nearest the payload (the only tag, or the inner C-tag of QinQ).
    #[inline]
    pub fn vlan(&self) -> Option<VlanTag> {
        match self.tag_count() {
            0 => None,
            n => Some(self.tag(n - 1)),
        }
    }

    /// The outer S-tag of a double-tagged frame; `None` with fewer than two tags.
    #[inline]
    pub fn outer_vlan(&self) -> Option<VlanTag> {
        (self.tag_count() == 2).then(|| self.tag(0))
    }

    /// VLAN id of [`vlan`](Self::vlan): the VLAN the payload belongs to.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan().map(|t| t.vid)
    }

    /// Tag `i` counted from the outside.
    fn tag(&self, i: usize) -> VlanTag {
        VlanTag::from_tci(be16(
            self.buffer.as_ref(),
            field::ETHERTYPE + i * field::TAG_LEN + 2,
        ))
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(addr.as_bytes());
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(addr.as_bytes());
    }

    /// Sets the (inner) EtherType, after the tags the frame has now.
    ///
    /// Writing a TPID here changes the layout: check the frame again.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let at = self.ethertype_at();
        put16(self.buffer.as_mut(), at, ethertype.into());
    }

    /// Sets the TCI of the tag nearest the payload; does nothing untagged.
    #[inline]
    pub fn set_vlan(&mut self, tag: VlanTag) {
        if let Some(i) = self.tag_count().checked_sub(1) {
            put16(
                self.buffer.as_mut(),
                field::ETHERTYPE + i * field::TAG_LEN + 2,
                tag.tci(),
            );
        }
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// EtherType of the payload.
    pub ethertype: EtherType,
    /// The tag nearest the payload, emitted with TPID `0x8100`.
    pub vlan: Option<VlanTag>,
    /// The outer S-tag, emitted with TPID `0x88A8`; only with `vlan` set.
    pub outer_vlan: Option<VlanTag>,
}

impl EthernetRepr {
    /// Reads a checked frame. Infallible beyond the check; `Result` for symmetry.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EthernetFrame<&T>) -> Result<EthernetRepr> {
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
            vlan: frame.vlan(),
            outer_vlan: frame.outer_vlan(),
        })
    }

    /// 14, 18 or 22.
    #[inline]
    pub const fn header_len(&self) -> usize {
        let tags = match (self.vlan, self.outer_vlan) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(_), Some(_)) => 2,
        };
        HEADER_LEN + tags * field::TAG_LEN
    }

    /// Same as [`header_len`](Self::header_len): the payload is not part of the repr.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the header (tags included) at the start of the frame buffer.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        let data = frame.buffer.as_mut();
        data[field::DESTINATION].copy_from_slice(self.dst_addr.as_bytes());
        data[field::SOURCE].copy_from_slice(self.src_addr.as_bytes());
        let mut at = field::ETHERTYPE;
        if let Some(inner) = self.vlan {
            if let Some(outer) = self.outer_vlan {
                put16(data, at, EtherType::QinQ.into());
                put16(data, at + 2, outer.tci());
                at += field::TAG_LEN;
            }
            put16(data, at, EtherType::Vlan.into());
            put16(data, at + 2, inner.tci());
            at += field::TAG_LEN;
        }
        put16(data, at, self.ethertype.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME_BYTES: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // destination
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // source
        0x08, 0x00, // ethertype: IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    static VLAN_BYTES: [u8; 22] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // destination
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // source
        0x81, 0x00, // TPID 802.1Q
        0xb0, 0x64, // PCP 5, DEI 1, VID 100
        0x86, 0xdd, // ethertype: IPv6
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    static QINQ_BYTES: [u8; 26] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // destination
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // source
        0x88, 0xa8, // TPID 802.1ad (S-tag)
        0x0f, 0xff, // PCP 0, DEI 0, VID 4095
        0x81, 0x00, // TPID 802.1Q (C-tag)
        0x20, 0x07, // PCP 1, VID 7
        0x08, 0x06, // ethertype: ARP
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    const DST: EthernetAddress = EthernetAddress([1, 2, 3, 4, 5, 6]);
    const SRC: EthernetAddress = EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]);

    #[test]
    fn test_deconstruct() {
        let frame = EthernetFrame::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(frame.dst_addr(), DST);
        assert_eq!(frame.src_addr(), SRC);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.header_len(), 14);
        assert_eq!(frame.tag_count(), 0);
        assert_eq!(frame.vlan(), None);
        assert_eq!(frame.outer_vlan(), None);
        assert_eq!(frame.vlan_id(), None);
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 18];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        frame.set_dst_addr(DST);
        frame.set_src_addr(SRC);
        frame.set_ethertype(EtherType::Ipv4);
        frame
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(&frame.into_inner()[..], &FRAME_BYTES[..]);
    }

    #[test]
    fn test_vlan_tagged() {
        let frame = EthernetFrame::new_checked(&VLAN_BYTES[..]).unwrap();
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.ethertype(), EtherType::Ipv6);
        assert_eq!(
            frame.vlan(),
            Some(VlanTag {
                pcp: 5,
                dei: true,
                vid: 100
            })
        );
        assert_eq!(frame.vlan_id(), Some(100));
        assert_eq!(frame.outer_vlan(), None);
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_qinq_tagged() {
        let frame = EthernetFrame::new_checked(&QINQ_BYTES[..]).unwrap();
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.tag_count(), 2);
        assert_eq!(frame.ethertype(), EtherType::Arp);
        assert_eq!(
            frame.vlan(),
            Some(VlanTag {
                pcp: 1,
                dei: false,
                vid: 7
            })
        );
        assert_eq!(frame.outer_vlan(), Some(VlanTag::new(4095)));
        assert_eq!(frame.vlan_id(), Some(7));
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_double_8100_is_qinq() {
        let mut bytes = QINQ_BYTES;
        bytes[12..14].copy_from_slice(&[0x81, 0x00]);
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.vlan_id(), Some(7));
    }

    #[test]
    fn test_set_vlan() {
        let mut bytes = VLAN_BYTES;
        let mut frame = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        frame.set_vlan(VlanTag::new(200));
        assert_eq!(frame.vlan_id(), Some(200));
        let mut plain = FRAME_BYTES;
        let mut frame = EthernetFrame::new_checked(&mut plain[..]).unwrap();
        frame.set_vlan(VlanTag::new(200));
        assert_eq!(plain, FRAME_BYTES);
    }

    #[test]
    fn test_tci() {
        for tci in [0u16, 0xffff, 0xb064, 0x2007, 0x1000] {
            assert_eq!(VlanTag::from_tci(tci).tci(), tci);
        }
    }

    #[test]
    fn test_parse_emit() {
        for bytes in [&FRAME_BYTES[..], &VLAN_BYTES[..], &QINQ_BYTES[..]] {
            let frame = EthernetFrame::new_checked(bytes).unwrap();
            let repr = EthernetRepr::parse(&frame).unwrap();
            assert_eq!(repr.header_len(), frame.header_len());
            let mut out = vec![0u8; repr.buffer_len() + 4];
            let mut frame_out = EthernetFrame::new_unchecked(&mut out);
            repr.emit(&mut frame_out);
            frame_out
                .payload_mut()
                .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
            assert_eq!(&out[..], bytes);
        }
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME_BYTES[..13]).unwrap_err(),
            Error::Truncated
        );
        assert!(EthernetFrame::new_checked(&FRAME_BYTES[..14]).is_ok());
        // A tag announced but its inner EtherType missing.
        assert_eq!(
            EthernetFrame::new_checked(&VLAN_BYTES[..17]).unwrap_err(),
            Error::Truncated
        );
        assert!(EthernetFrame::new_checked(&VLAN_BYTES[..18]).is_ok());
        assert_eq!(
            EthernetFrame::new_checked(&QINQ_BYTES[..21]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            EthernetFrame::new_checked(&QINQ_BYTES[..17]).unwrap_err(),
            Error::Truncated
        );
        assert!(EthernetFrame::new_checked(&QINQ_BYTES[..22]).is_ok());
    }

    #[test]
    fn test_three_tags_unsupported() {
        let mut bytes = QINQ_BYTES;
        bytes[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&bytes[..]).unwrap_err(),
            Error::Unsupported
        );
        // Even when the buffer ends right after the third TPID.
        assert_eq!(
            EthernetFrame::new_checked(&bytes[..22]).unwrap_err(),
            Error::Unsupported
        );
    }
}
