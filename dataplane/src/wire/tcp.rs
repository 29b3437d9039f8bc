//! TCP segments (RFC 9293) and their options.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (Data Offset > 5)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! TCP has no length field: the segment is what the IP layer says, so give the
//! view exactly the IP payload.

use core::fmt;
use core::ops;

use super::checksum;
use super::{be16, be32, put16, put32, ChecksumMode, Error, IpAddr, IpProtocol, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;

    pub const OPT_END: u8 = 0;
    pub const OPT_NOP: u8 = 1;
    pub const OPT_MSS: u8 = 2;
    pub const OPT_WS: u8 = 3;
    pub const OPT_SACKPERM: u8 = 4;
    pub const OPT_SACKRNG: u8 = 5;
    pub const OPT_TSTAMP: u8 = 8;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// Length of the longest header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Most option bytes a header can hold.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Most SACK blocks an option can hold in 40 bytes.
pub const MAX_SACK_BLOCKS: usize = 4;

/// The eight TCP flag bits of byte 13.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flag set.
    #[inline]
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// From the raw byte.
    #[inline]
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw byte.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// All flags of `other` are set in `self`.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// At least one flag of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// No flag set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl ops::Not for TcpFlags {
    type Output = TcpFlags;
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0)
    }
}

impl fmt::Display for TcpFlags {
    /// `SYN|ACK`, or `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// SACK blocks `(left edge, right edge)`, unused slots `None`.
pub type SackBlocks = [Option<(u32, u32)>; MAX_SACK_BLOCKS];

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (the rest is padding).
    EndOfList,
    /// No-operation (alignment).
    NoOperation,
    /// Maximum segment size (SYN only).
    MaxSegmentSize(u16),
    /// Window scale shift count (SYN only, RFC 7323).
    WindowScale(u8),
    /// SACK permitted (SYN only, RFC 2018).
    SackPermitted,
    /// SACK blocks (RFC 2018).
    Sack(SackBlocks),
    /// Timestamps (RFC 7323).
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other kind, with its data (length byte excluded).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

/// Iterates the options of a header. Never panics: an option whose length
/// byte is missing, below 2, past the end, or wrong for its kind yields one
/// `Err(Error::Malformed)` and ends the iteration. `EndOfList` also ends it.
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a> {
    data: &'a [u8],
}

impl<'a> TcpOptionIter<'a> {
    /// Iterates raw option bytes (what [`TcpPacket::options`] returns).
    #[inline]
    pub const fn new(data: &'a [u8]) -> TcpOptionIter<'a> {
        TcpOptionIter { data }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>>> {
        self.data = &[];
        Some(Err(Error::Malformed))
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        let kind = *data.first()?;
        match kind {
            field::OPT_END => {
                self.data = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            field::OPT_NOP => {
                self.data = &data[1..];
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let Some(&len) = data.get(1) else {
            return self.fail();
        };
        let len = usize::from(len);
        if len < 2 || len > data.len() {
            return self.fail();
        }
        let body = &data[2..len];
        self.data = &data[len..];
        let option = match (kind, body.len()) {
            (field::OPT_MSS, 2) => TcpOption::MaxSegmentSize(be16(body, 0)),
            (field::OPT_WS, 1) => TcpOption::WindowScale(body[0]),
            (field::OPT_SACKPERM, 0) => TcpOption::SackPermitted,
            (field::OPT_TSTAMP, 8) => TcpOption::Timestamps {
                tsval: be32(body, 0),
                tsecr: be32(body, 4),
            },
            (field::OPT_SACKRNG, n) if n > 0 && n % 8 == 0 && n / 8 <= MAX_SACK_BLOCKS => {
                let mut blocks = [None; MAX_SACK_BLOCKS];
                for (slot, chunk) in blocks.iter_mut().zip(body.chunks_exact(8)) {
                    *slot = Some((be32(chunk, 0), be32(chunk, 4)));
                }
                TcpOption::Sack(blocks)
            }
            (
                field::OPT_MSS
                | field::OPT_WS
                | field::OPT_SACKPERM
                | field::OPT_TSTAMP
                | field::OPT_SACKRNG,
                _,
            ) => {
                return self.fail();
            }
            (kind, _) => TcpOption::Unknown { kind, data: body },
        };
        Some(Ok(option))
    }
}

/// The options a TCP endpoint or a stateful firewall cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift count.
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Timestamps `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks, in order, unused slots `None`.
    pub sack: SackBlocks,
}

impl TcpOptions {
    /// Collects options from raw bytes; the last occurrence of a kind wins and
    /// unknown kinds are skipped. [`Error::Malformed`] on a malformed option.
    #[inline]
    pub fn parse(data: &[u8]) -> Result<TcpOptions> {
        let mut options = TcpOptions::default();
        for option in TcpOptionIter::new(data) {
            match option? {
                TcpOption::MaxSegmentSize(mss) => options.mss = Some(mss),
                TcpOption::WindowScale(ws) => options.window_scale = Some(ws),
                TcpOption::SackPermitted => options.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => options.timestamps = Some((tsval, tsecr)),
                TcpOption::Sack(blocks) => options.sack = blocks,
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(options)
    }

    /// SACK blocks that fit, given the other options: an all-options repr
    /// would exceed 40 bytes, so trailing blocks are dropped.
    fn sack_count(&self) -> usize {
        let fixed = self.fixed_len();
        let mut n = self.sack.iter().take_while(|b| b.is_some()).count();
        while n > 0 && fixed + 2 + 8 * n > MAX_OPTIONS_LEN {
            n -= 1;
        }
        n
    }

    fn fixed_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 3;
        }
        if self.sack_permitted {
            len += 2;
        }
        if self.timestamps.is_some() {
            len += 10;
        }
        len
    }

    /// Emitted length, padded to a multiple of 4.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        let n = self.sack_count();
        let len = self.fixed_len() + if n > 0 { 2 + 8 * n } else { 0 };
        len.div_ceil(4) * 4
    }

    /// Writes the options compactly (MSS, WS, SACK-permitted, timestamps,
    /// SACK), padded with zeros (End of List), into `buffer_len()` bytes.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) {
        let mut at = 0;
        if let Some(mss) = self.mss {
            out[at..at + 2].copy_from_slice(&[field::OPT_MSS, 4]);
            put16(out, at + 2, mss);
            at += 4;
        }
        if let Some(ws) = self.window_scale {
            out[at..at + 3].copy_from_slice(&[field::OPT_WS, 3, ws]);
            at += 3;
        }
        if self.sack_permitted {
            out[at..at + 2].copy_from_slice(&[field::OPT_SACKPERM, 2]);
            at += 2;
        }
        if let Some((tsval, tsecr)) = self.timestamps {
            out[at..at + 2].copy_from_slice(&[field::OPT_TSTAMP, 10]);
            put32(out, at + 2, tsval);
            put32(out, at + 6, tsecr);
            at += 10;
        }
        let n = self.sack_count();
        if n > 0 {
            // n <= 4: the length is at most 34.
            let len = u8::try_from(2 + 8 * n).unwrap_or(u8::MAX);
            out[at..at + 2].copy_from_slice(&[field::OPT_SACKRNG, len]);
            at += 2;
            for (left, right) in self.sack.iter().take(n).flatten() {
                put32(out, at, *left);
                put32(out, at + 4, *right);
                at += 8;
            }
        }
        let end = self.buffer_len();
        out[at..end].fill(field::OPT_END);
    }
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] below 20 bytes; [`Error::BadLength`] if the data
    /// offset is below 5 or past the buffer. Options are not looked at: the
    /// iterator reports their errors.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number (meaningful with ACK).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }

    /// CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }

    /// Window (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }

    /// Raw option bytes (padding included).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// Iterates the options; see [`TcpOptionIter`].
    #[inline]
    pub fn options_iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter::new(self.options())
    }

    /// Payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space taken: payload length, plus one for SYN and one for FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// `true` if the checksum verifies with the pseudo-header of `src`/`dst`
    /// (always under `cfg(fuzzing)`).
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        checksum::is_valid(checksum::combine(&[
            checksum::pseudo_header(src, dst, IpProtocol::Tcp, len),
            checksum::data(data),
        ]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::ACK_NUM, value);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60) and
    /// clears the reserved bits. Changes the layout: check the packet again.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let offset = u8::try_from(len / 4).unwrap_or(0x0F).min(0x0F);
        self.buffer.as_mut()[field::DATA_OFF] = offset << 4;
    }

    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::WIN_SIZE, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// Mutable option bytes.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes the checksum over pseudo-header and the whole buffer, writes it.
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let sum = checksum::combine(&[
            checksum::pseudo_header(src, dst, IpProtocol::Tcp, len),
            checksum::data(data),
        ]);
        self.set_checksum(!sum);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A TCP segment as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number (kept as is, even without ACK).
    pub ack_number: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (unscaled).
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Known options; unknown ones are not carried.
    pub options: TcpOptions,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a checked segment. [`Error::BadChecksum`] when `mode` verifies
    /// and the checksum is wrong; [`Error::Malformed`] for malformed options.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<TcpRepr<'a>> {
        if mode.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        let header_len = packet.header_len();
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            options: TcpOptions::parse(&data[field::OPTIONS..header_len])?,
            payload: &data[header_len..],
        })
    }

    /// A RST answering a segment (RFC 9293 §3.10.7.1): from its ACK number if
    /// it had ACK, else seq 0 with an ACK of everything it occupied. The
    /// caller swaps the ports and addresses; this keeps the given ports.
    #[inline]
    pub fn rst_reply(&self) -> TcpRepr<'static> {
        let occupied = self.payload.len()
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN));
        // Sequence arithmetic is modulo 2^32: truncation is the intent.
        #[allow(clippy::cast_possible_truncation)]
        let occupied = occupied as u32;
        let (seq_number, ack_number, flags) = if self.flags.contains(TcpFlags::ACK) {
            (self.ack_number, 0, TcpFlags::RST)
        } else {
            (
                0,
                self.seq_number.wrapping_add(occupied),
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        TcpRepr {
            src_port: self.dst_port,
            dst_port: self.src_port,
            seq_number,
            ack_number,
            flags,
            window_len: 0,
            urgent_at: 0,
            options: TcpOptions::default(),
            payload: &[],
        }
    }

    /// Header length, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes header, options, payload and the checksum for `src`/`dst`. The
    /// buffer must be exactly [`buffer_len`](Self::buffer_len) long: the
    /// checksum covers all of it.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.header_len());
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        self.options.emit(packet.options_mut());
        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));

    /// A SYN with the options Linux sends, plus 4 bytes of payload.
    static SYN_BYTES: [u8; 44] = [
        0xbf, 0x00, // src port 48896
        0x00, 0x50, // dst port 80
        0x01, 0x23, 0x45, 0x67, // seq
        0x89, 0xab, 0xcd, 0xef, // ack
        0xa0, // data offset 10 (40 bytes)
        0x02, // flags: SYN
        0xfa, 0xf0, // window 64240
        0x00, 0x00, // checksum, filled in below
        0x00, 0x00, // urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // timestamps 1, 0
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static PAYLOAD: [u8; 4] = [0xaa, 0x00, 0x00, 0xff];

    fn fixture(bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        TcpPacket::new_unchecked(&mut v[..]).fill_checksum(&SRC, &DST);
        v
    }

    fn options() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            sack: [None; MAX_SACK_BLOCKS],
        }
    }

    fn repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 48896,
            dst_port: 80,
            seq_number: 0x0123_4567,
            ack_number: 0x89ab_cdef,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_at: 0,
            options: options(),
            payload: &PAYLOAD,
        }
    }

    #[test]
    fn test_checksum_independent() {
        // Python RFC 1071 sum over pseudo-header + segment: 0xc140.
        let bytes = fixture(&SYN_BYTES);
        assert_eq!(TcpPacket::new_unchecked(&bytes[..]).checksum(), 0xc140);
    }

    #[test]
    fn test_deconstruct() {
        let bytes = fixture(&SYN_BYTES);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 48896);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x0123_4567);
        assert_eq!(packet.ack_number(), 0x89ab_cdef);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), TcpFlags::SYN);
        assert!(packet.syn());
        assert!(!packet.fin() && !packet.rst() && !packet.psh() && !packet.ack());
        assert!(!packet.urg() && !packet.ece() && !packet.cwr());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.options(), &SYN_BYTES[20..40]);
        assert_eq!(packet.payload(), &PAYLOAD);
        assert_eq!(packet.segment_len(), 5);
        assert!(packet.verify_checksum(&SRC, &DST));
        let options: Vec<_> = packet.options_iter().collect();
        assert_eq!(
            options,
            vec![
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps { tsval: 1, tsecr: 0 }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 44];
        let mut packet = TcpPacket::new_unchecked(&mut bytes);
        packet.set_src_port(48896);
        packet.set_dst_port(80);
        packet.set_seq_number(0x0123_4567);
        packet.set_ack_number(0x89ab_cdef);
        packet.set_header_len(40);
        packet.set_flags(TcpFlags::SYN);
        packet.set_window_len(64240);
        packet.set_urgent_at(0);
        packet.options_mut().copy_from_slice(&SYN_BYTES[20..40]);
        packet.payload_mut().copy_from_slice(&PAYLOAD);
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(*packet.into_inner(), fixture(&SYN_BYTES));
    }

    #[test]
    fn test_parse() {
        let bytes = fixture(&SYN_BYTES);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Ok(repr())
        );
    }

    #[test]
    fn test_emit_round_trip() {
        let repr = repr();
        // MSS 4 + WS 3 + SACK-perm 2 + TS 10 = 19, padded to 20.
        assert_eq!(repr.header_len(), 40);
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut bytes), &SRC, &DST);
        assert_eq!(
            &bytes[20..40],
            &[2, 4, 5, 0xb4, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        );
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(&SRC, &DST));
        assert_eq!(
            TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Ok(repr)
        );
    }

    #[test]
    fn test_emit_no_options() {
        let repr = TcpRepr {
            options: TcpOptions::default(),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            ..repr()
        };
        assert_eq!(repr.header_len(), 20);
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut bytes), &SRC, &DST);
        assert_eq!(bytes[12], 0x50);
        assert_eq!(bytes[13], 0x18);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Ok(repr)
        );
    }

    #[test]
    fn test_sack_blocks_and_overflow() {
        let mut options = TcpOptions {
            timestamps: Some((5, 6)),
            sack: [Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))],
            ..TcpOptions::default()
        };
        // 10 + 2 + 32 = 44 > 40: only 3 blocks fit.
        assert_eq!(options.sack_count(), 3);
        assert_eq!(options.buffer_len(), 36);
        let mut out = [0xa5u8; 36];
        options.emit(&mut out);
        let parsed = TcpOptions::parse(&out).unwrap();
        options.sack[3] = None;
        assert_eq!(parsed, options);
        // Without timestamps all four fit.
        let four = TcpOptions {
            sack: [Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))],
            ..TcpOptions::default()
        };
        assert_eq!(four.buffer_len(), 36);
        let mut out = [0u8; 36];
        four.emit(&mut out);
        assert_eq!(TcpOptions::parse(&out).unwrap(), four);
    }

    #[test]
    fn test_flags_display() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "SYN|ACK");
        assert_eq!(TcpFlags::empty().to_string(), "-");
        assert_eq!(
            TcpFlags::from_bits(0xff).to_string(),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
        assert!(TcpFlags::from_bits(0x12).contains(TcpFlags::SYN));
        assert!(!TcpFlags::SYN.contains(TcpFlags::SYN | TcpFlags::ACK));
        assert!(TcpFlags::SYN.intersects(TcpFlags::SYN | TcpFlags::ACK));
        assert_eq!((!TcpFlags::SYN & TcpFlags::from_bits(0x12)), TcpFlags::ACK);
    }

    #[test]
    fn test_rst_reply() {
        let syn = repr();
        let rst = syn.rst_reply();
        assert_eq!((rst.src_port, rst.dst_port), (80, 48896));
        assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(rst.seq_number, 0);
        assert_eq!(rst.ack_number, 0x0123_4567 + 5);
        let ack = TcpRepr {
            flags: TcpFlags::ACK,
            ..repr()
        };
        let rst = ack.rst_reply();
        assert_eq!(rst.flags, TcpFlags::RST);
        assert_eq!(rst.seq_number, 0x89ab_cdef);
    }

    #[test]
    fn test_truncated() {
        let bytes = fixture(&SYN_BYTES);
        assert_eq!(
            TcpPacket::new_checked(&bytes[..19]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_data_offset_below_5() {
        for off in 0..5u8 {
            let mut bytes = fixture(&SYN_BYTES);
            bytes[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&bytes[..]).unwrap_err(),
                Error::BadLength,
                "offset {off}"
            );
        }
    }

    #[test]
    fn test_data_offset_past_buffer() {
        let bytes = fixture(&SYN_BYTES);
        assert_eq!(
            TcpPacket::new_checked(&bytes[..39]).unwrap_err(),
            Error::BadLength
        );
        let packet = TcpPacket::new_checked(&bytes[..40]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
        let mut bytes = fixture(&SYN_BYTES);
        bytes[12] = 0xf0; // 60 bytes > 44
        assert_eq!(
            TcpPacket::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
    }

    #[test]
    fn test_bad_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = fixture(&SYN_BYTES);
        bytes[43] ^= 1;
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        assert!(TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Trust).is_ok());
        // The pseudo-header matters: right segment, wrong address.
        let bytes = fixture(&SYN_BYTES);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        let other = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 3));
        assert!(!packet.verify_checksum(&SRC, &other));
    }

    fn iter(data: &[u8]) -> Vec<Result<TcpOption<'_>>> {
        TcpOptionIter::new(data).collect()
    }

    #[test]
    fn test_options_malformed() {
        // Length 0 and 1 would loop forever or underflow in a naive parser.
        assert_eq!(iter(&[2, 0, 5, 0xb4]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[2, 1, 5, 0xb4]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[99, 0]), vec![Err(Error::Malformed)]);
        // Length byte missing.
        assert_eq!(
            iter(&[1, 2]),
            vec![Ok(TcpOption::NoOperation), Err(Error::Malformed)]
        );
        // Running past the header.
        assert_eq!(iter(&[8, 10, 0, 0, 0, 1]), vec![Err(Error::Malformed)]);
        // Wrong length for a known kind.
        assert_eq!(iter(&[2, 3, 5]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[3, 4, 7, 0]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[4, 3, 0]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[5, 2]), vec![Err(Error::Malformed)]);
        assert_eq!(iter(&[5, 6, 0, 0, 0, 0]), vec![Err(Error::Malformed)]);
        // An error ends the iteration even if valid bytes follow.
        assert_eq!(iter(&[2, 0, 1, 1]), vec![Err(Error::Malformed)]);
        assert_eq!(TcpOptions::parse(&[2, 1, 0, 0]), Err(Error::Malformed));
    }

    #[test]
    fn test_options_misc() {
        // End of list stops; what follows is padding, even if it looks like options.
        assert_eq!(
            iter(&[1, 0, 2, 4, 5, 0xb4]),
            vec![Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]
        );
        assert_eq!(iter(&[]), vec![]);
        assert_eq!(
            iter(&[30, 4, 0xde, 0xad]),
            vec![Ok(TcpOption::Unknown {
                kind: 30,
                data: &[0xde, 0xad]
            })]
        );
        assert_eq!(
            iter(&[30, 2]),
            vec![Ok(TcpOption::Unknown {
                kind: 30,
                data: &[]
            })]
        );
        let sack = [5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
        assert_eq!(
            iter(&sack),
            vec![Ok(TcpOption::Sack([
                Some((1, 2)),
                Some((3, 4)),
                None,
                None
            ]))]
        );
    }

    #[test]
    fn test_malformed_option_in_packet() {
        let mut bytes = SYN_BYTES;
        bytes[21] = 1; // MSS length 1
        let bytes = fixture(&bytes);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::Malformed)
        );
    }
}
