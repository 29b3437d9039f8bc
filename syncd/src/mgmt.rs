//! Management messages between the two units' daemons (the console's
//! questions to the partner, configuration files for `hasync`), carried in
//! the reliable stream as chunks: authenticated with the cluster key like
//! every record, retransmitted and delivered in order by the channel, never
//! a second transport to secure.
//!
//! A message is any bytes up to [`MAX_MESSAGE`]; it travels as consecutive
//! [`Chunk`]s (wire action 14, [`MGMT_LEN`] bytes, layout in [`crate::wire`]).
//! What the bytes mean is the daemon's business (`mgmt`'s peer protocol).
//!
//! The stream delivers in order, so reassembly only appends: a chunk that
//! does not continue the message being assembled (the channel gave up on a
//! datagram between them, or the partner restarted) breaks that message, and
//! [`Reassembly::broken`] counts it; the asker's timeout reports it. Nothing
//! here waits or allocates per chunk beyond the message's own buffer.

use std::collections::VecDeque;

/// Data bytes in one chunk.
pub const CHUNK_DATA: usize = 224;
/// Bytes of a chunk record: message id 4, total 4, offset 4, length 2,
/// reserved 2, data [`CHUNK_DATA`].
pub const MGMT_LEN: usize = 16 + CHUNK_DATA;
/// The largest message, in bytes (a full rules file is 32 MiB).
pub const MAX_MESSAGE: usize = 48 << 20;
/// Messages waiting to be sent; more are refused as [`Refused::Busy`].
pub const MAX_QUEUED: usize = 16;
/// Received messages waiting for the daemon; more are dropped (counted).
pub const MAX_RECEIVED: usize = 16;

/// One piece of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The sender's number for the message.
    pub message: u32,
    /// Bytes of the whole message.
    pub total: u32,
    /// Where this piece starts in it.
    pub offset: u32,
    /// Bytes of `data` that belong to the message.
    pub len: u16,
    /// The bytes (zero past `len`).
    pub data: [u8; CHUNK_DATA],
}

impl Chunk {
    /// The receiver's rule: the piece lies inside the message, the message
    /// within [`MAX_MESSAGE`], and only an empty message has an empty piece.
    pub fn valid(&self) -> bool {
        let end = u64::from(self.offset) + u64::from(self.len);
        usize::from(self.len) <= CHUNK_DATA
            && end <= u64::from(self.total)
            && self.total as usize <= MAX_MESSAGE
            && (self.len > 0 || self.total == 0)
    }

    /// Its bytes of the message.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len).min(CHUNK_DATA)]
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The partner is not heard on any HA link (or never was).
    #[error("the partner is not heard on any HA link")]
    Unreachable,
    /// Longer than [`MAX_MESSAGE`].
    #[error("the message is longer than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// [`MAX_QUEUED`] messages wait already.
    #[error("{MAX_QUEUED} messages wait for the HA link already")]
    Busy,
}

/// Messages waiting to go, cut into chunks as the stream takes them.
#[derive(Debug, Default)]
pub struct Outgoing {
    queue: VecDeque<(u32, Vec<u8>, usize)>,
    next_id: u32,
}

impl Outgoing {
    /// Queues `bytes`; returns the message's number.
    pub fn push(&mut self, bytes: Vec<u8>) -> Result<u32, Refused> {
        if bytes.len() > MAX_MESSAGE {
            return Err(Refused::TooLarge);
        }
        if self.queue.len() >= MAX_QUEUED {
            return Err(Refused::Busy);
        }
        self.next_id = self.next_id.wrapping_add(1);
        self.queue.push_back((self.next_id, bytes, 0));
        Ok(self.next_id)
    }

    /// The next chunk to send (taken: the caller sends or carries it).
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        let (id, bytes, at) = self.queue.front_mut()?;
        let len = (bytes.len() - *at).min(CHUNK_DATA);
        let mut data = [0; CHUNK_DATA];
        data[..len].copy_from_slice(&bytes[*at..*at + len]);
        // Within range: a message is at most MAX_MESSAGE bytes (checked in
        // `push`), a piece at most CHUNK_DATA.
        let narrow = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let chunk = Chunk {
            message: *id,
            total: narrow(bytes.len()),
            offset: narrow(*at),
            len: u16::try_from(len).unwrap_or(0),
            data,
        };
        *at += len;
        if *at >= bytes.len() {
            self.queue.pop_front();
        }
        Some(chunk)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets everything queued (the partner restarted: its new boot knows
    /// nothing of these).
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
}

/// Received chunks, put back together.
#[derive(Debug, Default)]
pub struct Reassembly {
    current: Option<(u32, Vec<u8>)>,
    done: VecDeque<Vec<u8>>,
    /// Messages that lost a chunk (or arrived into a full inbox).
    pub broken: u64,
    /// Messages received whole.
    pub received: u64,
}

impl Reassembly {
    /// Takes the next chunk of the in-order stream.
    pub fn push(&mut self, c: &Chunk) {
        let continues = matches!(&self.current,
            Some((id, buf)) if *id == c.message && buf.len() == c.offset as usize);
        if !continues {
            if self.current.take().is_some() {
                self.broken += 1;
            }
            if c.offset != 0 {
                // The start of this message was lost.
                self.broken += 1;
                return;
            }
            self.current = Some((c.message, Vec::with_capacity(c.total as usize)));
        }
        let Some((_, buf)) = self.current.as_mut() else {
            return;
        };
        buf.extend_from_slice(c.bytes());
        if buf.len() >= c.total as usize {
            let (_, whole) = self.current.take().unwrap_or_default();
            if self.done.len() >= MAX_RECEIVED {
                self.broken += 1;
            } else {
                self.received += 1;
                self.done.push_back(whole);
            }
        }
    }

    /// The oldest message received whole.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.done.pop_front()
    }

    /// Forgets a half-received message (the partner restarted).
    pub fn reset(&mut self) {
        if self.current.take().is_some() {
            self.broken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(bytes: Vec<u8>) -> Vec<Chunk> {
        let mut out = Outgoing::default();
        out.push(bytes).unwrap();
        std::iter::from_fn(|| out.next_chunk()).collect()
    }

    #[test]
    fn a_message_is_cut_into_chunks_and_put_back_together() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| i.to_le_bytes()[0]).collect();
        let chunks = chunks_of(bytes.clone());
        assert_eq!(chunks.len(), 5, "224 × 4 + 104");
        assert!(chunks.iter().all(Chunk::valid));
        assert_eq!(chunks[4].len, 104);
        let mut r = Reassembly::default();
        for c in &chunks {
            assert_eq!(r.take(), None, "not before the last chunk");
            r.push(c);
        }
        assert_eq!(r.take(), Some(bytes));
        assert_eq!((r.received, r.broken), (1, 0));
    }

    #[test]
    fn an_empty_message_is_one_empty_chunk() {
        let chunks = chunks_of(Vec::new());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].valid());
        let mut r = Reassembly::default();
        r.push(&chunks[0]);
        assert_eq!(r.take(), Some(Vec::new()));
    }

    #[test]
    fn a_lost_chunk_breaks_its_message_and_the_next_one_arrives_whole() {
        let mut out = Outgoing::default();
        out.push(vec![1; 500]).unwrap();
        out.push(vec![2; 300]).unwrap();
        let chunks: Vec<Chunk> = std::iter::from_fn(|| out.next_chunk()).collect();
        assert_eq!(chunks.len(), 3 + 2);
        let mut r = Reassembly::default();
        for (i, c) in chunks.iter().enumerate() {
            if i != 1 {
                r.push(c);
            }
        }
        assert_eq!(r.take(), Some(vec![2; 300]));
        assert_eq!(r.take(), None);
        assert_eq!(r.broken, 2, "the message, then its orphaned last chunk");
    }

    #[test]
    fn the_receivers_rule_refuses_pieces_outside_their_message() {
        let ok = chunks_of(vec![7; 10])[0];
        assert!(ok.valid());
        assert!(!Chunk { len: 225, ..ok }.valid());
        assert!(!Chunk { offset: 1, ..ok }.valid());
        assert!(!Chunk { len: 0, ..ok }.valid());
        assert!(!Chunk {
            total: u32::try_from(MAX_MESSAGE).unwrap() + 1,
            ..ok
        }
        .valid());
    }

    #[test]
    fn the_queue_and_the_size_are_bounded() {
        let mut out = Outgoing::default();
        assert_eq!(out.push(vec![0; MAX_MESSAGE + 1]), Err(Refused::TooLarge));
        for _ in 0..MAX_QUEUED {
            out.push(vec![0]).unwrap();
        }
        assert_eq!(out.push(vec![0]), Err(Refused::Busy));
        assert_eq!(out.clear(), MAX_QUEUED);
        assert!(out.is_empty());
    }
}
