//! The AEAD layer of the sync protocol: AES-256-GCM (NIST SP 800-38D,
//! RFC 5116 `AEAD_AES_256_GCM`) under keys derived from the cluster's
//! pre-shared key with HKDF-SHA256 (RFC 5869), rotated on a clock, with an
//! overlap at each rotation and a replay window per key.
//!
//! A [`Sealer`] seals what this unit sends to its peer; an [`Opener`] opens
//! what the peer sends. Each direction has its own keys (the sender and the
//! receiver are in a different order in the derivation), so the two units
//! never share a (key, nonce) pair even though they count the same way.
//!
//! # Key schedule
//!
//! The key of one direction and one key id is the 32-byte output of
//! HKDF-SHA256 (RFC 5869 §2.2 extract, §2.3 expand) with
//!
//! * salt: the 14 ASCII bytes `tandem-sync-v1` ([`crate::psk::SALT`]);
//! * IKM: the 32 bytes of the pre-shared key ([`crate::psk`]);
//! * info: these 70 bytes, with no separators and no length prefixes:
//!
//! | offset | bytes | content                                                  |
//! |-------:|------:|----------------------------------------------------------|
//! |      0 |    18 | the ASCII bytes `tandem sync key v1` ([`KEY_INFO`])      |
//! |     18 |    16 | sender's serial: ASCII, padded with NUL (0x00) bytes     |
//! |     34 |     8 | sender's boot epoch, unsigned, big-endian                |
//! |     42 |    16 | receiver's serial: ASCII, padded with NUL (0x00) bytes   |
//! |     58 |     8 | receiver's boot epoch, unsigned, big-endian              |
//! |     66 |     4 | key id, unsigned, big-endian                             |
//!
//! * L: 32 bytes, used as is as the AES-256-GCM key.
//!
//! The same in Python with the `cryptography` package:
//!
//! ```text
//! from cryptography.hazmat.primitives import hashes
//! from cryptography.hazmat.primitives.kdf.hkdf import HKDF
//! from cryptography.hazmat.primitives.ciphers.aead import AESGCM
//! import struct
//! info = (b"tandem sync key v1"
//!         + sender_serial.ljust(16, b"\0") + struct.pack(">Q", sender_epoch)
//!         + receiver_serial.ljust(16, b"\0") + struct.pack(">Q", receiver_epoch)
//!         + struct.pack(">I", key_id))
//! key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tandem-sync-v1",
//!            info=info).derive(psk)
//! nonce = struct.pack(">IQ", key_id, counter)
//! plaintext = AESGCM(key).decrypt(nonce, ciphertext + tag, aad)
//! ```
//!
//! # Nonce, tag, AAD
//!
//! The 12-byte GCM nonce (RFC 5116 §3.2 recommended length) is the key id
//! (4 bytes, big-endian) then a counter (8 bytes, big-endian): [`Nonce`]. The
//! tag is the full 16 bytes. The AAD is whatever the caller passes — the
//! datagram header, nonce included — so the header is authenticated too. The
//! ciphertext is as long as the plaintext.
//!
//! # Why a nonce is never used twice under one key
//!
//! GCM loses both confidentiality and authenticity if a (key, nonce) pair
//! repeats (SP 800-38D §8), so:
//!
//! * a key is bound to both units' serials and boot epochs and to the
//!   direction; a restart is a new epoch, hence new keys, so a fresh counter
//!   after a restart is never under an old key. One [`Sealer`] per direction
//!   per pair of epochs;
//! * within a key id the counter only moves forward, one step per nonce; when
//!   it has handed out its last value the sealer moves to the next key id at
//!   once;
//! * the key id is `1 + (now − start) / rotate` (or later, after an exhausted
//!   counter) and never goes down, so a key id is never revisited;
//! * a retransmission is sealed again with a new nonce, never re-sent with the
//!   old one under different contents — that is the caller's job: take a new
//!   [`Sealer::next_nonce`] for every datagram put on the wire.
//!
//! # Rotation and replay on the receiving side
//!
//! The [`Opener`] accepts its current key id and, for [`OVERLAP_NS`] after a
//! newer one replaced it, the previous one (datagrams in flight at a rotation
//! are not lost). A newer key id is accepted as soon as a datagram under it
//! authenticates — however many periods it skipped (the link may have been down
//! for minutes). Each key id has a sliding window of [`WINDOW`] counters (the
//! anti-replay window of RFC 4303 §3.4.3, kept as RFC 6479's ring of bit
//! blocks): a counter already seen, or [`WINDOW`] or more behind the highest
//! seen, is a replay. The window moves only after the tag verifies, so a forged
//! datagram changes nothing that decides what is accepted.

use std::fmt;

use ring::aead::{self, Aad, LessSafeKey, UnboundKey, AES_256_GCM};

use crate::psk::Psk;

/// The default key rotation period, in ns: a new key every 60 s.
pub const ROTATE_NS: u64 = 60_000_000_000;

/// The default time, in ns, the previous key stays accepted after a newer one
/// was first seen: 10 s, far longer than a datagram stays in flight.
pub const OVERLAP_NS: u64 = 10_000_000_000;

/// The first part of the HKDF `info` of every sync key: the 18 ASCII bytes
/// `tandem sync key v1`.
pub const KEY_INFO: &[u8] = b"tandem sync key v1";

/// The length of the HKDF `info` of a sync key, in bytes: see the module docs.
pub const INFO_LEN: usize = 70;

/// The length of a serial, in bytes (ASCII, NUL-padded).
pub const SERIAL_LEN: usize = 16;

/// The length of the GCM nonce, in bytes (RFC 5116 §3.2).
pub const NONCE_LEN: usize = 12;

/// The length of the GCM tag, in bytes (the full 128 bits).
pub const TAG_LEN: usize = 16;

/// The replay window, in counters (RFC 4303 §3.4.3 recommends at least 64;
/// 1024 absorbs the reordering of a burst across the HA links).
pub const WINDOW: u64 = 1024;

/// The largest payload sealed or opened, in bytes: a sync datagram is at most
/// an IP datagram (RFC 791: 65 535 bytes), far below GCM's own bound of
/// 2³⁶ − 32 bytes (RFC 5116 §5.1, P_MAX).
pub const MAX_PAYLOAD: usize = 65_535;

/// One unit, as the key schedule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Party {
    /// The unit's serial: ASCII, padded with NUL bytes to 16.
    pub serial: [u8; SERIAL_LEN],
    /// The unit's boot epoch: random per boot, 0 if not known.
    pub epoch: u64,
}

/// A datagram's nonce: the key id and the counter within it. On the wire (and
/// as the GCM nonce) the key id, 4 bytes big-endian, then the counter, 8 bytes
/// big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce {
    /// Which key (from 1; a function of time).
    pub key_id: u32,
    /// Which use of that key (from 0).
    pub counter: u64,
}

impl Nonce {
    /// The 12 bytes on the wire and given to GCM.
    pub fn to_bytes(self) -> [u8; NONCE_LEN] {
        let mut out = [0u8; NONCE_LEN];
        let key_id = self.key_id.to_be_bytes();
        let counter = self.counter.to_be_bytes();
        for (o, b) in out.iter_mut().zip(key_id.iter().chain(&counter)) {
            *o = *b;
        }
        out
    }

    /// The nonce read from its 12 bytes.
    pub fn from_bytes(bytes: [u8; NONCE_LEN]) -> Nonce {
        let [k0, k1, k2, k3, counter @ ..] = bytes;
        Nonce {
            key_id: u32::from_be_bytes([k0, k1, k2, k3]),
            counter: u64::from_be_bytes(counter),
        }
    }
}

/// Why a datagram could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The nonce is of another key id than the sealer's current one (taken
    /// before a rotation, or not from this sealer).
    #[error("nonce of key id {key_id}, the current key id is {current}")]
    OtherKey {
        /// The nonce's key id.
        key_id: u32,
        /// The sealer's.
        current: u32,
    },
    /// The nonce's counter was not handed out yet by
    /// [`Sealer::next_nonce`]: sealing under it would let the sealer hand it
    /// out again later.
    #[error("nonce counter {counter} not handed out yet (next is {next})")]
    NotIssued {
        /// The nonce's counter.
        counter: u64,
        /// The next counter the sealer will hand out.
        next: u64,
    },
    /// Every key id and counter has been used: no nonce is left for this pair
    /// of epochs (restart with a new epoch).
    #[error("no nonce left under any key id: a new boot epoch is needed")]
    Exhausted,
    /// The payload is longer than [`MAX_PAYLOAD`] bytes.
    #[error("payload of {len} bytes, at most {MAX_PAYLOAD}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Why a datagram was not opened. The checks run in this order: length, key
/// id, replay window, tag — the cheap ones first, and nothing changes unless
/// the tag verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The payload is longer than [`MAX_PAYLOAD`] bytes.
    #[error("payload of {len} bytes, at most {MAX_PAYLOAD}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The key id is no longer accepted: older than the previous one, the
    /// previous one after its overlap, between the two, or 0.
    #[error("key id {key_id} is no longer accepted")]
    StaleKey {
        /// The datagram's key id.
        key_id: u32,
    },
    /// The counter was already seen under this key id, or is too far behind
    /// the highest seen (left of the window).
    #[error("replayed: key id {key_id}, counter {counter}")]
    Replayed {
        /// The datagram's key id.
        key_id: u32,
        /// Its counter.
        counter: u64,
    },
    /// The tag does not verify: forged, corrupted, or sealed under another
    /// key (another PSK, serial, epoch or direction). The payload has been
    /// zeroed.
    #[error("authentication failed (forged, corrupted, or another key)")]
    Forged,
}

/// The HKDF `info` of the key `sender` uses towards `receiver` under `key_id`;
/// the layout is in the module docs.
fn key_info(sender: &Party, receiver: &Party, key_id: u32) -> [u8; INFO_LEN] {
    let parts: [&[u8]; 6] = [
        KEY_INFO,
        &sender.serial,
        &sender.epoch.to_be_bytes(),
        &receiver.serial,
        &receiver.epoch.to_be_bytes(),
        &key_id.to_be_bytes(),
    ];
    let mut info = [0u8; INFO_LEN];
    for (o, b) in info.iter_mut().zip(parts.into_iter().flatten()) {
        *o = *b;
    }
    info
}

/// The 32 bytes of the key `sender` uses towards `receiver` under `key_id`.
fn key_bytes(psk: &Psk, sender: &Party, receiver: &Party, key_id: u32) -> [u8; 32] {
    psk.derive(&[&key_info(sender, receiver, key_id)])
}

/// The AES-256-GCM key `sender` uses towards `receiver` under `key_id`.
fn key(psk: &Psk, sender: &Party, receiver: &Party, key_id: u32) -> LessSafeKey {
    let bytes = key_bytes(psk, sender, receiver, key_id);
    // ring refuses only a key of another length than the algorithm's (32).
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key"))
}

/// Seals what this unit sends to its peer (one per direction per pair of
/// epochs); see the module docs for why its nonces never repeat.
pub struct Sealer {
    psk: Psk,
    me: Party,
    peer: Party,
    /// When the sealer was made, in ns: key id 1 starts there.
    start_ns: u64,
    /// The rotation period in ns; 0 turns time-based rotation off.
    rotate_ns: u64,
    /// The current key id and its key.
    key_id: u32,
    key: LessSafeKey,
    /// When the current key came into use, in ns.
    since_ns: u64,
    /// The next counter to hand out under the current key id.
    counter: u64,
    /// The current key id has handed out its last counter ([`u64::MAX`]).
    spent: bool,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .field("key_id", &self.key_id)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for datagrams from `me` to `peer`, starting with key id 1 at
    /// `now_ns` and moving to a new key every `rotate_ns` ns ([`ROTATE_NS`]
    /// by default; 0 rotates only when a key's counter is used up).
    pub fn new(psk: &Psk, me: Party, peer: Party, now_ns: u64, rotate_ns: u64) -> Sealer {
        Sealer {
            psk: psk.clone(),
            me,
            peer,
            start_ns: now_ns,
            rotate_ns,
            key_id: 1,
            key: key(psk, &me, &peer, 1),
            since_ns: now_ns,
            counter: 0,
            spent: false,
        }
    }

    /// The key id time calls for at `now_ns`: 1 + whole periods since the
    /// start (saturating at [`u32::MAX`]).
    fn due(&self, now_ns: u64) -> u32 {
        let periods = now_ns
            .saturating_sub(self.start_ns)
            .checked_div(self.rotate_ns)
            .unwrap_or(0);
        u32::try_from(periods.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// Moves to `key_id` (always higher than the current one), deriving its key.
    fn switch(&mut self, key_id: u32, now_ns: u64) {
        self.key_id = key_id;
        self.key = key(&self.psk, &self.me, &self.peer, key_id);
        self.since_ns = now_ns;
        self.counter = 0;
        self.spent = false;
    }

    /// The nonce of the next datagram: under the key id due at `now_ns` (a new
    /// key is derived once at each rotation), with the next counter. Every call
    /// hands out a new nonce; write it into the header, then [`seal`](Self::seal).
    pub fn next_nonce(&mut self, now_ns: u64) -> Result<Nonce, SealError> {
        let due = self.due(now_ns);
        if due > self.key_id {
            self.switch(due, now_ns);
        }
        if self.spent {
            let next = self.key_id.checked_add(1).ok_or(SealError::Exhausted)?;
            self.switch(next, now_ns);
        }
        let nonce = Nonce {
            key_id: self.key_id,
            counter: self.counter,
        };
        match self.counter.checked_add(1) {
            Some(next) => self.counter = next,
            None => self.spent = true,
        }
        Ok(nonce)
    }

    /// Encrypts `payload` in place under `nonce` (from [`next_nonce`](Self::next_nonce),
    /// under the current key id) and `aad` (the whole header, nonce included),
    /// and returns the 16-byte tag.
    pub fn seal(
        &self,
        nonce: Nonce,
        aad: &[u8],
        payload: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        let len = payload.len();
        if len > MAX_PAYLOAD {
            return Err(SealError::TooLong { len });
        }
        if nonce.key_id != self.key_id {
            return Err(SealError::OtherKey {
                key_id: nonce.key_id,
                current: self.key_id,
            });
        }
        if !self.spent && nonce.counter >= self.counter {
            return Err(SealError::NotIssued {
                counter: nonce.counter,
                next: self.counter,
            });
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce.to_bytes()),
                Aad::from(aad),
                payload,
            )
            // ring refuses only payloads over GCM's P_MAX, ruled out above.
            .map_err(|_| SealError::TooLong { len })?;
        let mut out = [0u8; TAG_LEN];
        for (o, b) in out.iter_mut().zip(tag.as_ref()) {
            *o = *b;
        }
        Ok(out)
    }

    /// The current key id (the one the last nonce was handed out under).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// How long the current key has been in use at `now_ns`, in ns (it is
    /// replaced at the first nonce after its period ends).
    pub fn key_age_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.since_ns)
    }
}

/// The number of 64-bit blocks of a replay window: one more than
/// [`WINDOW`] / 64, so a window of exactly [`WINDOW`] counters fits however
/// the highest counter falls in its block (RFC 6479 §2).
const BLOCKS: usize = 17;

/// [`BLOCKS`] as a `u64`, for block arithmetic.
const BLOCKS_U64: u64 = 17;

/// The counters seen under one key id: the highest, and a bit per counter
/// for the [`WINDOW`] counters up to it, as a ring of blocks indexed by
/// `(counter / 64) % BLOCKS` (RFC 6479): moving forward clears the blocks
/// passed over instead of shifting the whole map.
struct Window {
    top: u64,
    bits: [u64; BLOCKS],
}

impl Window {
    /// A window that has seen `counter` only.
    fn first(counter: u64) -> Window {
        let mut window = Window {
            top: counter,
            bits: [0; BLOCKS],
        };
        window.set(counter);
        window
    }

    /// Where the block of counters `block * 64 ..` sits in the ring.
    fn ring(block: u64) -> usize {
        usize::try_from(block % BLOCKS_U64).unwrap_or(0)
    }

    /// The block of `counter` in the ring, and its bit in that block.
    fn place(counter: u64) -> (usize, u64) {
        (Window::ring(counter / 64), 1 << (counter % 64))
    }

    fn set(&mut self, counter: u64) {
        let (block, bit) = Window::place(counter);
        if let Some(b) = self.bits.get_mut(block) {
            *b |= bit;
        }
    }

    /// Whether `counter` is new: ahead of the highest, or within the window
    /// and not seen.
    fn fresh(&self, counter: u64) -> bool {
        if counter > self.top {
            return true;
        }
        if self.top - counter >= WINDOW {
            return false;
        }
        let (block, bit) = Window::place(counter);
        self.bits.get(block).is_some_and(|b| b & bit == 0)
    }

    /// Records `counter` (already found [`fresh`](Self::fresh)).
    fn mark(&mut self, counter: u64) {
        if counter > self.top {
            // Clear the blocks after the old highest one, up to the new one.
            let from = self.top / 64;
            let passed = (counter / 64 - from).min(BLOCKS_U64);
            for step in 1..=passed {
                if let Some(b) = self.bits.get_mut(Window::ring(from + step)) {
                    *b = 0;
                }
            }
            self.top = counter;
        }
        self.set(counter);
    }
}

/// One key id the opener accepts.
struct Slot {
    key_id: u32,
    key: LessSafeKey,
    /// When it became current, in ns.
    since_ns: u64,
    window: Window,
}

/// The previous key id, accepted until `until_ns` (exclusive).
struct Retired {
    slot: Slot,
    until_ns: u64,
}

/// Opens what the peer sends to this unit (one per direction per pair of
/// epochs); see the module docs for which key ids and counters it accepts.
pub struct Opener {
    psk: Psk,
    me: Party,
    peer: Party,
    overlap_ns: u64,
    current: Option<Slot>,
    previous: Option<Retired>,
    /// The key of the last newer key id tried that did not authenticate, so a
    /// flood of forgeries under one future key id costs one derivation.
    candidate: Option<(u32, LessSafeKey)>,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .field("key_id", &self.key_id())
            .field(
                "previous",
                &self.previous.as_ref().map(|p| (p.slot.key_id, p.until_ns)),
            )
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for datagrams from `peer` to `me`, keeping the previous key
    /// for `overlap_ns` ns ([`OVERLAP_NS`] by default) after a newer one is
    /// seen. It accepts the first key id that authenticates, whatever it is.
    pub fn new(psk: &Psk, me: Party, peer: Party, overlap_ns: u64) -> Opener {
        Opener {
            psk: psk.clone(),
            me,
            peer,
            overlap_ns,
            current: None,
            previous: None,
            candidate: None,
        }
    }

    /// Decrypts `payload` in place, given the datagram's `nonce`, `aad` (its
    /// header) and `tag`, at `now_ns`. On an error nothing that decides what is
    /// accepted has changed (key ids, overlap, windows); on
    /// [`OpenError::Forged`] the payload is zeroed. Counting the errors is the
    /// caller's job: each reason is its own variant.
    pub fn open(
        &mut self,
        now_ns: u64,
        nonce: Nonce,
        aad: &[u8],
        payload: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(OpenError::TooLong { len: payload.len() });
        }
        let key_id = nonce.key_id;
        let newer = key_id > 0 && self.current.as_ref().is_none_or(|c| key_id > c.key_id);
        if !newer {
            let slot = match (&mut self.current, &mut self.previous) {
                (Some(current), _) if current.key_id == key_id => current,
                (_, Some(previous))
                    if previous.slot.key_id == key_id && now_ns < previous.until_ns =>
                {
                    &mut previous.slot
                }
                _ => return Err(OpenError::StaleKey { key_id }),
            };
            if !slot.window.fresh(nonce.counter) {
                return Err(OpenError::Replayed {
                    key_id,
                    counter: nonce.counter,
                });
            }
            open_with(&slot.key, nonce, aad, payload, tag)?;
            slot.window.mark(nonce.counter);
            return Ok(());
        }
        // A newer key id: it becomes current only if the datagram authenticates.
        let key = match self.candidate.take() {
            Some((candidate, key)) if candidate == key_id => key,
            _ => key(&self.psk, &self.peer, &self.me, key_id),
        };
        if let Err(forged) = open_with(&key, nonce, aad, payload, tag) {
            self.candidate = Some((key_id, key));
            return Err(forged);
        }
        let newest = Slot {
            key_id,
            key,
            since_ns: now_ns,
            window: Window::first(nonce.counter),
        };
        self.previous = self.current.replace(newest).map(|slot| Retired {
            slot,
            until_ns: now_ns.saturating_add(self.overlap_ns),
        });
        Ok(())
    }

    /// The current key id (the highest that authenticated), if any yet.
    pub fn key_id(&self) -> Option<u32> {
        self.current.as_ref().map(|c| c.key_id)
    }

    /// How long the current key has been current at `now_ns`, in ns, if any.
    pub fn key_age_ns(&self, now_ns: u64) -> Option<u64> {
        self.current
            .as_ref()
            .map(|c| now_ns.saturating_sub(c.since_ns))
    }
}

/// Decrypts in place under `key`; [`OpenError::Forged`] (and a zeroed
/// payload, ring's doing) if the tag does not verify.
fn open_with(
    key: &LessSafeKey,
    nonce: Nonce,
    aad: &[u8],
    payload: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), OpenError> {
    key.open_in_place_separate_tag(
        aead::Nonce::assume_unique_for_key(nonce.to_bytes()),
        Aad::from(aad),
        aead::Tag::from(*tag),
        payload,
        0..,
    )
    .map(|_| ())
    .map_err(|_| OpenError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const S: u64 = 1_000_000_000;

    /// A unit with `serial` padded with NULs.
    fn party(serial: &[u8], epoch: u64) -> Party {
        let mut padded = [0u8; SERIAL_LEN];
        padded[..serial.len()].copy_from_slice(serial);
        Party {
            serial: padded,
            epoch,
        }
    }

    fn a() -> Party {
        party(b"TNDM-A", 1)
    }

    fn b() -> Party {
        party(b"TNDM-B", 2)
    }

    /// The key 00 01 02 … 1f.
    fn psk() -> Psk {
        let mut bytes = [0u8; 32];
        for (i, b) in (0u8..).zip(bytes.iter_mut()) {
            *b = i;
        }
        Psk::from_bytes(bytes)
    }

    /// A sealed datagram as it travels: header (the AAD, nonce inside), payload, tag.
    #[derive(Clone, Debug)]
    struct Datagram {
        nonce: Nonce,
        header: Vec<u8>,
        payload: Vec<u8>,
        tag: [u8; TAG_LEN],
    }

    /// Seals `text` the way the caller does: nonce first, into the header, then seal.
    fn send(sealer: &mut Sealer, now_ns: u64, text: &[u8]) -> Datagram {
        let nonce = sealer.next_nonce(now_ns).unwrap();
        let mut header = b"TS1".to_vec();
        header.extend_from_slice(&nonce.to_bytes());
        let mut payload = text.to_vec();
        let tag = sealer.seal(nonce, &header, &mut payload).unwrap();
        Datagram {
            nonce,
            header,
            payload,
            tag,
        }
    }

    /// Opens a copy of `d`: the plaintext, or why not.
    fn recv(opener: &mut Opener, now_ns: u64, d: &Datagram) -> Result<Vec<u8>, OpenError> {
        let mut payload = d.payload.clone();
        opener.open(now_ns, d.nonce, &d.header, &mut payload, &d.tag)?;
        Ok(payload)
    }

    /// A → B: A's sealer and B's opener, started at 0 with the defaults.
    fn pair() -> (Sealer, Opener) {
        (
            Sealer::new(&psk(), a(), b(), 0, ROTATE_NS),
            Opener::new(&psk(), b(), a(), OVERLAP_NS),
        )
    }

    #[test]
    fn round_trip() {
        let (mut sealer, mut opener) = pair();
        let d = send(&mut sealer, S, b"hello, partner");
        assert_eq!(
            d.nonce,
            Nonce {
                key_id: 1,
                counter: 0
            }
        );
        assert_ne!(d.payload, b"hello, partner");
        assert_eq!(recv(&mut opener, S, &d).unwrap(), b"hello, partner");
        assert_eq!(opener.key_id(), Some(1));
        // An empty payload is only a tag.
        let d = send(&mut sealer, S, b"");
        assert_eq!(recv(&mut opener, S, &d).unwrap(), b"");
    }

    #[test]
    fn nonce_bytes() {
        let nonce = Nonce {
            key_id: 0x0102_0304,
            counter: 0x0506_0708_090a_0b0c,
        };
        assert_eq!(nonce.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(Nonce::from_bytes(nonce.to_bytes()), nonce);
    }

    #[test]
    fn info_layout() {
        let info = key_info(&a(), &b(), 0x0a0b_0c0d);
        assert_eq!(&info[0..18], b"tandem sync key v1");
        assert_eq!(&info[18..34], b"TNDM-A\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&info[34..42], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&info[42..58], b"TNDM-B\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&info[58..66], &[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&info[66..70], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(KEY_INFO.len() + 2 * (SERIAL_LEN + 8) + 4, INFO_LEN);
    }

    /// Known answers computed once with Python's `cryptography` (38.0) from the
    /// layout in the module docs:
    /// `HKDF(SHA256(), 32, b"tandem-sync-v1", info).derive(bytes(range(32)))`,
    /// then `AESGCM(key).encrypt(struct.pack(">IQ", 1, 0), b"hello", aad)`.
    #[test]
    fn known_answer() {
        let ab = key_bytes(&psk(), &a(), &b(), 1);
        assert_eq!(ab[..8], [0x89, 0x56, 0x8b, 0x6d, 0xef, 0x34, 0xad, 0x0b]);
        let ba = key_bytes(&psk(), &b(), &a(), 1);
        assert_eq!(ba[..8], [0xe8, 0xeb, 0xe9, 0xd5, 0xc9, 0x3e, 0xd0, 0xb2]);

        // The sealer uses that key, that nonce layout and the AAD as given.
        let mut sealer = Sealer::new(&psk(), a(), b(), 0, ROTATE_NS);
        let nonce = sealer.next_nonce(0).unwrap();
        let mut payload = *b"hello";
        let tag = sealer.seal(nonce, b"hdr", &mut payload).unwrap();
        assert_eq!(payload, [0x23, 0xf2, 0xb5, 0xba, 0xfd]);
        assert_eq!(
            tag,
            [
                0x62, 0x30, 0xaf, 0x87, 0x6d, 0x58, 0x59, 0x6b, 0xd7, 0xee, 0x98, 0xdb, 0x7f, 0xc6,
                0xaf, 0xa6
            ]
        );
    }

    #[test]
    fn ten_thousand_across_rotations() {
        let (mut sealer, mut opener) = pair();
        let mut seen = HashSet::new();
        let mut ids = HashSet::new();
        // One every 30 ms for 300 s: five key ids of 2000 datagrams each.
        for i in 0..10_000u64 {
            let now = i * 30_000_000;
            let d = send(&mut sealer, now, &i.to_be_bytes());
            assert_eq!(u64::from(d.nonce.key_id), 1 + now / ROTATE_NS);
            assert!(seen.insert((d.nonce.key_id, d.nonce.counter)), "{d:?}");
            ids.insert(d.nonce.key_id);
            assert_eq!(recv(&mut opener, now, &d).unwrap(), i.to_be_bytes());
        }
        assert_eq!(ids, HashSet::from([1, 2, 3, 4, 5]));
        // The counter restarts at 0 under each key id.
        for id in 1..=5 {
            assert!(seen.contains(&(id, 0)) && seen.contains(&(id, 1999)));
            assert!(!seen.contains(&(id, 2000)));
        }
        assert_eq!(sealer.key_id(), 5);
        assert_eq!(opener.key_id(), Some(5));
    }

    #[test]
    fn rotation_with_overlap() {
        let (mut sealer, mut opener) = pair();
        assert!(recv(&mut opener, 0, &send(&mut sealer, 0, b"first")).is_ok());
        let old = send(&mut sealer, 59 * S, b"old");
        let older = send(&mut sealer, 59 * S, b"older");
        let late = send(&mut sealer, 59 * S, b"late");
        let new = send(&mut sealer, 60 * S, b"new");
        assert_eq!((old.nonce.key_id, new.nonce.key_id), (1, 2));
        let switch = 60 * S + 1000;
        assert_eq!(recv(&mut opener, switch, &new).unwrap(), b"new");
        assert_eq!(opener.key_id(), Some(2));
        // In flight at the rotation: still opens within the overlap…
        assert_eq!(recv(&mut opener, switch, &old).unwrap(), b"old");
        assert_eq!(
            recv(&mut opener, switch + OVERLAP_NS - 1, &older).unwrap(),
            b"older"
        );
        // …and not after it.
        assert_eq!(
            recv(&mut opener, switch + OVERLAP_NS, &late),
            Err(OpenError::StaleKey { key_id: 1 })
        );
        // The previous key's window is its own: a replay there is a replay.
        assert_eq!(
            recv(&mut opener, switch + 1, &old),
            Err(OpenError::Replayed {
                key_id: 1,
                counter: 1
            })
        );
    }

    #[test]
    fn older_than_previous_is_stale() {
        let (mut sealer, mut opener) = pair();
        let one = send(&mut sealer, 0, b"1");
        let two = send(&mut sealer, 60 * S, b"2");
        let two_later = send(&mut sealer, 61 * S, b"2 later");
        let three = send(&mut sealer, 120 * S, b"3");
        assert_eq!(recv(&mut opener, 60 * S, &two).unwrap(), b"2");
        assert_eq!(recv(&mut opener, 120 * S, &three).unwrap(), b"3");
        assert_eq!(recv(&mut opener, 120 * S, &two_later).unwrap(), b"2 later");
        // Never seen, but below the previous key id.
        assert_eq!(
            recv(&mut opener, 120 * S, &one),
            Err(OpenError::StaleKey { key_id: 1 })
        );
        // Key id 0 is never used.
        let mut zero = three.clone();
        zero.nonce.key_id = 0;
        assert_eq!(
            recv(&mut opener, 120 * S, &zero),
            Err(OpenError::StaleKey { key_id: 0 })
        );
    }

    #[test]
    fn key_ids_between_previous_and_current_are_stale() {
        let (mut sealer, mut opener) = pair();
        let one = send(&mut sealer, 0, b"1");
        let two = send(&mut sealer, 60 * S, b"2");
        let five = send(&mut sealer, 240 * S, b"5");
        assert_eq!(recv(&mut opener, 240 * S, &one).unwrap(), b"1");
        assert_eq!(recv(&mut opener, 240 * S, &five).unwrap(), b"5");
        assert_eq!(
            recv(&mut opener, 240 * S, &two),
            Err(OpenError::StaleKey { key_id: 2 })
        );
    }

    #[test]
    fn replay_is_refused() {
        let (mut sealer, mut opener) = pair();
        let d = send(&mut sealer, S, b"once");
        assert_eq!(recv(&mut opener, S, &d).unwrap(), b"once");
        assert_eq!(
            recv(&mut opener, 2 * S, &d),
            Err(OpenError::Replayed {
                key_id: 1,
                counter: 0
            })
        );
    }

    #[test]
    fn reordered_within_the_window_opens() {
        let (mut sealer, mut opener) = pair();
        let sent: Vec<Datagram> = (0..6u8).map(|i| send(&mut sealer, S, &[i])).collect();
        for i in [5u8, 3, 0, 4, 1, 2] {
            assert_eq!(recv(&mut opener, S, &sent[usize::from(i)]).unwrap(), [i]);
        }
        for d in &sent {
            assert_eq!(
                recv(&mut opener, S, d),
                Err(OpenError::Replayed {
                    key_id: 1,
                    counter: d.nonce.counter
                })
            );
        }
    }

    #[test]
    fn far_behind_is_replayed() {
        let (mut sealer, mut opener) = pair();
        let sent: Vec<Datagram> = (0..=2000u16)
            .map(|i| send(&mut sealer, S, &i.to_be_bytes()))
            .collect();
        assert!(recv(&mut opener, S, &sent[2000]).is_ok());
        // 1024 behind the highest: left of the window, though never seen.
        assert_eq!(
            recv(&mut opener, S, &sent[976]),
            Err(OpenError::Replayed {
                key_id: 1,
                counter: 976
            })
        );
        // 1023 behind: the window's last counter.
        assert!(recv(&mut opener, S, &sent[977]).is_ok());
        assert!(recv(&mut opener, S, &sent[1500]).is_ok());
    }

    /// The window against a plain model (every counter ever seen, and the
    /// highest), over a pseudo-random walk with jumps forward and back.
    #[test]
    fn window_matches_a_model() {
        let mut window = Window::first(0);
        let mut seen = HashSet::from([0u64]);
        let mut top = 0u64;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let counter = match x % 8 {
                0 => top + 1 + x % 3000,
                1..=5 => top.saturating_sub(x % 1100),
                _ => top + x % 70,
            };
            let expect = counter > top || (top - counter < WINDOW && !seen.contains(&counter));
            assert_eq!(window.fresh(counter), expect, "{counter} (top {top})");
            if expect {
                window.mark(counter);
                seen.insert(counter);
                top = top.max(counter);
            }
        }
    }

    #[test]
    fn flipped_bits_are_forged_and_change_nothing() {
        let (mut sealer, mut opener) = pair();
        let first = send(&mut sealer, S, b"first");
        let d = send(&mut sealer, S, b"payload");
        assert!(recv(&mut opener, S, &first).is_ok());

        let mut tag = d.clone();
        tag.tag[15] ^= 0x01;
        let mut payload = d.clone();
        payload.payload[0] ^= 0x80;
        let mut aad = d.clone();
        aad.header[0] ^= 0x04;
        for forged in [&tag, &payload, &aad] {
            let mut text = forged.payload.clone();
            let result = opener.open(S, forged.nonce, &forged.header, &mut text, &forged.tag);
            assert_eq!(result, Err(OpenError::Forged), "{forged:?}");
            assert_eq!(text, vec![0; forged.payload.len()]);
        }
        // The window did not move: the genuine datagram still opens, once.
        assert_eq!(recv(&mut opener, S, &d).unwrap(), b"payload");
        assert!(matches!(
            recv(&mut opener, S, &d),
            Err(OpenError::Replayed { .. })
        ));
    }

    #[test]
    fn another_psk_is_forged() {
        let mut other = [0u8; 32];
        other[0] = 1;
        let mut sealer = Sealer::new(&Psk::from_bytes(other), a(), b(), 0, ROTATE_NS);
        let (_, mut opener) = pair();
        let d = send(&mut sealer, S, b"x");
        assert_eq!(recv(&mut opener, S, &d), Err(OpenError::Forged));
    }

    #[test]
    fn another_party_is_forged() {
        let mut other_serial = party(b"TNDM-A", 1);
        other_serial.serial[15] = b'X';
        // One change at a time: sender serial, sender epoch, receiver serial,
        // receiver epoch; each makes another key.
        let cases = [
            (other_serial, b()),
            (party(b"TNDM-A", 2), b()),
            (a(), party(b"TNDM-C", 2)),
            (a(), party(b"TNDM-B", 3)),
            (a(), party(b"TNDM-B", 0)),
        ];
        for (sender, receiver) in cases {
            let mut sealer = Sealer::new(&psk(), sender, receiver, 0, ROTATE_NS);
            let (_, mut opener) = pair();
            let d = send(&mut sealer, S, b"x");
            assert_eq!(
                recv(&mut opener, S, &d),
                Err(OpenError::Forged),
                "{sender:?} → {receiver:?}"
            );
        }
    }

    #[test]
    fn reflected_datagram_is_forged() {
        // What A sent to B, sent back to A by an attacker: A→B is not B→A.
        let (mut sealer, _) = pair();
        let mut a_opener = Opener::new(&psk(), a(), b(), OVERLAP_NS);
        let d = send(&mut sealer, S, b"x");
        assert_eq!(recv(&mut a_opener, S, &d), Err(OpenError::Forged));
    }

    #[test]
    fn forged_future_key_changes_nothing() {
        let (mut sealer, mut opener) = pair();
        let one = send(&mut sealer, 0, b"1");
        let one_later = send(&mut sealer, 30 * S, b"1 later");
        let two = send(&mut sealer, 60 * S, b"2");
        assert!(recv(&mut opener, 0, &one).is_ok());

        let mut forged = two.clone();
        forged.nonce.key_id = 3;
        forged.header[3..15].copy_from_slice(&forged.nonce.to_bytes());
        for _ in 0..3 {
            assert_eq!(recv(&mut opener, 61 * S, &forged), Err(OpenError::Forged));
        }
        // Derived once, kept for the next forgery under key id 3.
        assert_eq!(opener.candidate.as_ref().map(|c| c.0), Some(3));
        assert_eq!(opener.key_id(), Some(1));
        assert!(opener.previous.is_none());
        assert_eq!(opener.key_age_ns(61 * S), Some(61 * S));
        // Key id 1 is still current (no overlap clock started), 2 still comes next.
        assert_eq!(
            recv(&mut opener, 61 * S + OVERLAP_NS, &one_later).unwrap(),
            b"1 later"
        );
        assert_eq!(recv(&mut opener, 62 * S, &two).unwrap(), b"2");
        assert_eq!(opener.key_id(), Some(2));
    }

    #[test]
    fn forged_new_key_counter_does_not_block_the_genuine_one() {
        // A forgery under the next key id with the genuine datagram's nonce
        // must not make the genuine datagram a "replay".
        let (mut sealer, mut opener) = pair();
        assert!(recv(&mut opener, 0, &send(&mut sealer, 0, b"1")).is_ok());
        let two = send(&mut sealer, 60 * S, b"2");
        let mut forged = two.clone();
        forged.tag[0] ^= 1;
        assert_eq!(recv(&mut opener, 60 * S, &forged), Err(OpenError::Forged));
        assert_eq!(recv(&mut opener, 60 * S, &two).unwrap(), b"2");
    }

    #[test]
    fn jump_of_several_periods_is_accepted() {
        let (mut sealer, mut opener) = pair();
        let first = send(&mut sealer, 0, b"before");
        let before = send(&mut sealer, S, b"in flight");
        assert!(recv(&mut opener, 0, &first).is_ok());
        // The link was down for ten minutes.
        let after = send(&mut sealer, 600 * S, b"after");
        assert_eq!(after.nonce.key_id, 11);
        assert_eq!(recv(&mut opener, 600 * S, &after).unwrap(), b"after");
        assert_eq!(opener.key_id(), Some(11));
        assert_eq!(opener.key_age_ns(601 * S), Some(S));
        assert_eq!(recv(&mut opener, 601 * S, &before).unwrap(), b"in flight");
    }

    #[test]
    fn opener_accepts_any_first_key_id() {
        // The opener may start after the peer's sealer has rotated many times.
        let (mut sealer, _) = pair();
        let d = send(&mut sealer, 3600 * S, b"x");
        assert_eq!(d.nonce.key_id, 61);
        let mut opener = Opener::new(&psk(), b(), a(), OVERLAP_NS);
        assert_eq!(opener.key_id(), None);
        assert_eq!(opener.key_age_ns(0), None);
        assert_eq!(recv(&mut opener, 5 * S, &d).unwrap(), b"x");
        assert_eq!(opener.key_id(), Some(61));
        assert!(opener.previous.is_none());
    }

    #[test]
    fn counter_wrap_moves_to_the_next_key_at_once() {
        let (mut sealer, mut opener) = pair();
        sealer.counter = u64::MAX;
        let last = send(&mut sealer, S, b"last");
        assert_eq!(
            last.nonce,
            Nonce {
                key_id: 1,
                counter: u64::MAX
            }
        );
        let next = send(&mut sealer, S, b"next");
        assert_eq!(
            next.nonce,
            Nonce {
                key_id: 2,
                counter: 0
            }
        );
        assert_eq!(sealer.key_age_ns(2 * S), S);
        // Time catches up with key id 2 without revisiting it, then passes it.
        let at_rotation = send(&mut sealer, 60 * S, b"");
        assert_eq!(
            at_rotation.nonce,
            Nonce {
                key_id: 2,
                counter: 1
            }
        );
        assert_eq!(send(&mut sealer, 120 * S, b"").nonce.key_id, 3);
        assert_eq!(recv(&mut opener, S, &last).unwrap(), b"last");
        assert_eq!(recv(&mut opener, S, &next).unwrap(), b"next");
    }

    #[test]
    fn exhausted_refuses() {
        let (mut sealer, _) = pair();
        sealer.switch(u32::MAX, 0);
        sealer.counter = u64::MAX;
        assert_eq!(
            sealer.next_nonce(0).unwrap(),
            Nonce {
                key_id: u32::MAX,
                counter: u64::MAX
            }
        );
        assert_eq!(sealer.next_nonce(0), Err(SealError::Exhausted));
        assert_eq!(sealer.next_nonce(u64::MAX), Err(SealError::Exhausted));
    }

    #[test]
    fn key_id_saturates_instead_of_wrapping() {
        let mut sealer = Sealer::new(&psk(), a(), b(), 0, 1);
        assert_eq!(sealer.next_nonce(u64::MAX).unwrap().key_id, u32::MAX);
        assert_eq!(sealer.next_nonce(u64::MAX).unwrap().counter, 1);
    }

    #[test]
    fn rotation_zero_rotates_on_exhaustion_only() {
        let mut sealer = Sealer::new(&psk(), a(), b(), 0, 0);
        assert_eq!(sealer.next_nonce(u64::MAX).unwrap().key_id, 1);
        assert_eq!(sealer.key_id(), 1);
    }

    #[test]
    fn sealer_rotation_and_key_age() {
        let mut sealer = Sealer::new(&psk(), a(), b(), 5 * S, ROTATE_NS);
        assert_eq!((sealer.key_id(), sealer.key_age_ns(6 * S)), (1, S));
        assert_eq!(sealer.next_nonce(64 * S).unwrap().key_id, 1);
        assert_eq!(sealer.next_nonce(65 * S - 1).unwrap().key_id, 1);
        assert_eq!(
            sealer.next_nonce(65 * S).unwrap(),
            Nonce {
                key_id: 2,
                counter: 0
            }
        );
        assert_eq!(sealer.key_age_ns(65 * S), 0);
        assert_eq!(sealer.key_age_ns(70 * S), 5 * S);
        // A clock read before the start counts as the start.
        let mut early = Sealer::new(&psk(), a(), b(), 5 * S, ROTATE_NS);
        assert_eq!(early.next_nonce(0).unwrap().key_id, 1);
        assert_eq!(early.key_age_ns(0), 0);
    }

    #[test]
    fn seal_refuses_nonces_it_did_not_hand_out() {
        let (mut sealer, _) = pair();
        let old = sealer.next_nonce(0).unwrap();
        let mut payload = *b"x";
        // Not handed out yet.
        assert_eq!(
            sealer.seal(
                Nonce {
                    key_id: 1,
                    counter: 1
                },
                b"",
                &mut payload
            ),
            Err(SealError::NotIssued {
                counter: 1,
                next: 1
            })
        );
        // Of a key id the sealer has left.
        let _ = sealer.next_nonce(60 * S).unwrap();
        assert_eq!(
            sealer.seal(old, b"", &mut payload),
            Err(SealError::OtherKey {
                key_id: 1,
                current: 2
            })
        );
        assert_eq!(payload, *b"x");
    }

    #[test]
    fn too_long_payloads_refused() {
        let (mut sealer, mut opener) = pair();
        let nonce = sealer.next_nonce(0).unwrap();
        let mut big = vec![0u8; MAX_PAYLOAD + 1];
        assert_eq!(
            sealer.seal(nonce, b"", &mut big),
            Err(SealError::TooLong {
                len: MAX_PAYLOAD + 1
            })
        );
        assert_eq!(
            opener.open(0, nonce, b"", &mut big, &[0; TAG_LEN]),
            Err(OpenError::TooLong {
                len: MAX_PAYLOAD + 1
            })
        );
        // The bound itself is fine.
        let mut max = vec![7u8; MAX_PAYLOAD];
        let tag = sealer.seal(nonce, b"", &mut max).unwrap();
        opener.open(0, nonce, b"", &mut max, &tag).unwrap();
        assert_eq!(max, vec![7u8; MAX_PAYLOAD]);
    }

    #[test]
    fn debug_shows_no_key() {
        let (mut sealer, mut opener) = pair();
        assert!(recv(&mut opener, 0, &send(&mut sealer, 0, b"x")).is_ok());
        let shown = format!("{sealer:?} {opener:?}");
        assert!(shown.contains("key_id: 1"), "{shown}");
        assert!(!shown.contains("137, 86"), "{shown}");
    }
}
