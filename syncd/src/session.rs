//! One unit's session with its partner: who the two are (serials, boot
//! epochs), the keys between them, and the checks every datagram passes
//! before anything in it is believed, in this order — each failure dropped
//! and counted under its own [`Drop`] reason:
//!
//! 1. the datagram is whole and of this protocol version ([`crate::wire`]);
//! 2. it comes from the configured partner's serial (`unknown_peer`) under
//!    the same pre-shared key (`wrong_key`, by the key's public fingerprint);
//! 3. its epochs are current: not from an older boot of the partner, not
//!    addressed to an older boot of this unit (`stale_epoch`); a data datagram
//!    needs both epochs (`no_handshake`). Epochs grow with wall-clock time, but
//!    a partner whose clock went back across a reboot has a *lower* new epoch:
//!    once the partner's boot in use has been silent for [`PEER_GONE_NS`], a
//!    lower epoch that authenticates is taken as that reboot (a replay of an
//!    older boot's datagrams can at most make the session wait for the real
//!    partner, which then moves it back);
//! 4. it opens under the keys of exactly those two boots (`forged`), with a
//!    live key id (`stale_key`) and a nonce not seen before (`replayed`).
//!
//! # Handshake
//!
//! Keys bind both boot epochs, so a unit that does not know its partner's yet
//! (it just booted, or the partner did) seals its heartbeats with the partner's
//! epoch as 0. The partner opens those with the matching keys, learns the
//! epoch from the header, and from then on seals towards it; the first
//! datagram that opens under a *newer* partner epoch (a partner restart) moves
//! the session to it, and [`Opened::new_peer_epoch`] tells the caller, which
//! starts the streams over. Nothing but a datagram that authenticates changes
//! which epochs the session accepts.

use crate::psk::Psk;
use crate::seal::{Nonce, OpenError, Opener, Party, Sealer, OVERLAP_NS, ROTATE_NS};
use crate::wire::{self, Datagram, Header, Kind, HEADER_LEN, TAG_LEN};

/// How long the partner's boot in use must have been silent before a datagram
/// of an *older* epoch may move the session (a partner rebooted with its clock
/// set back), in ns.
pub const PEER_GONE_NS: u64 = 10_000_000_000;

/// Why a datagram was dropped. Each has its own counter ([`Drop::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Malformed or another version ([`wire::Error`]).
    Wire(wire::Error),
    /// Not from the configured partner.
    UnknownPeer,
    /// Sealed under another pre-shared key.
    WrongKey,
    /// From an older boot of the partner, or to an older boot of this unit.
    StaleEpoch,
    /// Reliable-stream data before both epochs are known.
    NoHandshake,
    /// Under a key id no longer accepted.
    StaleKey,
    /// A nonce already seen.
    Replayed,
    /// The tag does not verify.
    Forged,
}

impl Drop {
    /// Every reason without a payload, then one for each wire error.
    pub const NAMES: [&'static str; 18] = [
        "truncated",
        "bad_magic",
        "wrong_version",
        "bad_kind",
        "bad_length",
        "bad_sequence",
        "unknown_action",
        "bad_record_len",
        "section_truncated",
        "bad_record",
        "out_of_place",
        "unknown_peer",
        "wrong_key",
        "stale_epoch",
        "no_handshake",
        "stale_key",
        "replayed",
        "forged",
    ];

    /// The stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            Drop::Wire(e) => e.name(),
            Drop::UnknownPeer => "unknown_peer",
            Drop::WrongKey => "wrong_key",
            Drop::StaleEpoch => "stale_epoch",
            Drop::NoHandshake => "no_handshake",
            Drop::StaleKey => "stale_key",
            Drop::Replayed => "replayed",
            Drop::Forged => "forged",
        }
    }

    /// Its index in [`Drop::NAMES`] (for a counter array).
    pub fn index(self) -> usize {
        Self::NAMES
            .iter()
            .position(|n| *n == self.name())
            .unwrap_or(0)
    }
}

/// A datagram that passed every check: its header and its opened body.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The header.
    pub header: Header,
    /// The plaintext body (sections and records, not yet validated).
    pub body: &'a [u8],
    /// It came from a partner boot not seen before (a restart, or the first).
    pub new_peer_epoch: bool,
}

/// The keys towards and from one partner boot.
struct Keys {
    peer_epoch: u64,
    /// This unit's datagrams to that boot.
    sealer: Sealer,
    /// That boot's datagrams to this boot, and its heartbeats to "epoch unknown".
    opener: Opener,
    heartbeat_opener: Opener,
}

/// The session with the partner.
pub struct Session {
    psk: Psk,
    me: Party,
    peer_serial: [u8; 16],
    /// Keys for the partner's current boot; before it is known, keys towards
    /// partner epoch 0 (heartbeats only).
    keys: Keys,
    known: bool,
    /// When a datagram of the partner's boot in use last opened.
    last_opened_ns: u64,
    rotate_ns: u64,
    overlap_ns: u64,
}

impl Session {
    /// A session of the unit `me` (serial, this boot's epoch) with the
    /// partner of serial `peer_serial`, started at `now_ns`; keys rotate every
    /// `rotate_ns` (default [`ROTATE_NS`]) with an overlap of `overlap_ns`
    /// ([`OVERLAP_NS`]).
    pub fn new(psk: Psk, me: Party, peer_serial: [u8; 16], now_ns: u64) -> Session {
        Self::with_rotation(psk, me, peer_serial, now_ns, ROTATE_NS, OVERLAP_NS)
    }

    /// [`Session::new`] with other rotation settings (tests).
    pub fn with_rotation(
        psk: Psk,
        me: Party,
        peer_serial: [u8; 16],
        now_ns: u64,
        rotate_ns: u64,
        overlap_ns: u64,
    ) -> Session {
        let keys = Self::keys(&psk, me, peer_serial, 0, now_ns, rotate_ns, overlap_ns);
        Session {
            psk,
            me,
            peer_serial,
            keys,
            known: false,
            last_opened_ns: now_ns,
            rotate_ns,
            overlap_ns,
        }
    }

    fn keys(
        psk: &Psk,
        me: Party,
        peer_serial: [u8; 16],
        peer_epoch: u64,
        now_ns: u64,
        rotate_ns: u64,
        overlap_ns: u64,
    ) -> Keys {
        let peer = Party {
            serial: peer_serial,
            epoch: peer_epoch,
        };
        let me_unknown = Party { epoch: 0, ..me };
        Keys {
            peer_epoch,
            sealer: Sealer::new(psk, me, peer, now_ns, rotate_ns),
            opener: Opener::new(psk, me, peer, overlap_ns),
            heartbeat_opener: Opener::new(psk, me_unknown, peer, overlap_ns),
        }
    }

    /// This unit.
    pub fn me(&self) -> Party {
        self.me
    }

    /// The partner's boot epoch, once a datagram of it authenticated.
    pub fn peer_epoch(&self) -> Option<u64> {
        self.known.then_some(self.keys.peer_epoch)
    }

    /// Age of the key this unit seals with, in ns.
    pub fn key_age_ns(&self, now_ns: u64) -> u64 {
        self.keys.sealer.key_age_ns(now_ns)
    }

    /// Seals a datagram of `kind` carrying `body` into `out` (which must hold
    /// [`HEADER_LEN`] + body + [`TAG_LEN`] bytes); returns its length. Data
    /// needs the handshake done (`None` otherwise, and for a body too long).
    pub fn seal(
        &mut self,
        now_ns: u64,
        kind: Kind,
        sequence: u64,
        ack: u64,
        body: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        if kind == Kind::Data && !self.known {
            return None;
        }
        let len = HEADER_LEN + body.len() + TAG_LEN;
        let wire_len = u16::try_from(len).ok()?;
        let out = out.get_mut(..len)?;
        let nonce: Nonce = self.keys.sealer.next_nonce(now_ns).ok()?;
        let header = Header {
            kind,
            serial: self.me.serial,
            sender_epoch: self.me.epoch,
            receiver_epoch: self.keys.peer_epoch,
            sequence,
            ack,
            key_id: nonce.key_id,
            psk_id: self.psk.id(),
            counter: nonce.counter,
        };
        header.emit(out, wire_len);
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        let (payload, tag) = rest.split_at_mut(body.len());
        payload.copy_from_slice(body);
        let t = self.keys.sealer.seal(nonce, head, payload).ok()?;
        tag.copy_from_slice(&t);
        Some(len)
    }

    /// Checks and opens a received datagram in place (see the module docs).
    pub fn open<'a>(&mut self, now_ns: u64, datagram: &'a mut [u8]) -> Result<Opened<'a>, Drop> {
        let (h, tag) = {
            let d = Datagram::new_checked(&*datagram).map_err(Drop::Wire)?;
            (Header::parse(&d).map_err(Drop::Wire)?, d.tag())
        };
        if h.serial != self.peer_serial {
            return Err(Drop::UnknownPeer);
        }
        if h.psk_id != self.psk.id() {
            return Err(Drop::WrongKey);
        }
        if h.receiver_epoch != 0 && h.receiver_epoch != self.me.epoch {
            return Err(Drop::StaleEpoch);
        }
        if h.receiver_epoch == 0 && h.kind == Kind::Data {
            return Err(Drop::NoHandshake);
        }
        let current = self.keys.peer_epoch;
        let silent = now_ns.saturating_sub(self.last_opened_ns) >= PEER_GONE_NS;
        if self.known && h.sender_epoch < current && !silent {
            return Err(Drop::StaleEpoch);
        }
        let nonce = Nonce {
            key_id: h.key_id,
            counter: h.counter,
        };
        let new_epoch = !self.known || h.sender_epoch != current;
        // A newer boot's keys are tried aside: only a datagram that opens
        // under them moves the session.
        let mut fresh = new_epoch.then(|| {
            Self::keys(
                &self.psk,
                self.me,
                self.peer_serial,
                h.sender_epoch,
                now_ns,
                self.rotate_ns,
                self.overlap_ns,
            )
        });
        let keys = fresh.as_mut().unwrap_or(&mut self.keys);
        let opener = if h.receiver_epoch == 0 {
            &mut keys.heartbeat_opener
        } else {
            &mut keys.opener
        };
        let body_len = datagram.len() - HEADER_LEN - TAG_LEN;
        let (head, rest) = datagram.split_at_mut(HEADER_LEN);
        let body = &mut rest[..body_len];
        opener
            .open(now_ns, nonce, head, body, &tag)
            .map_err(|e| match e {
                OpenError::TooLong { .. } => Drop::Wire(wire::Error::BadLength),
                OpenError::StaleKey { .. } => Drop::StaleKey,
                OpenError::Replayed { .. } => Drop::Replayed,
                OpenError::Forged => Drop::Forged,
            })?;
        if let Some(keys) = fresh {
            self.keys = keys;
            self.known = true;
        }
        self.last_opened_ns = now_ns;
        Ok(Opened {
            header: h,
            body: &*body,
            new_peer_epoch: new_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{records, BodyWriter, Heartbeat, Message};

    fn serial(s: &str) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    }

    fn psk(n: u8) -> Psk {
        Psk::from_bytes([n; 32])
    }

    fn pair(epoch_a: u64, epoch_b: u64) -> (Session, Session) {
        let a = Party {
            serial: serial("TNDM-A"),
            epoch: epoch_a,
        };
        let b = Party {
            serial: serial("TNDM-B"),
            epoch: epoch_b,
        };
        (
            Session::new(psk(7), a, b.serial, 0),
            Session::new(psk(7), b, a.serial, 0),
        )
    }

    fn heartbeat_body() -> Vec<u8> {
        let mut w = BodyWriter::new(256);
        w.push(&Message::Heartbeat(Heartbeat::default())).unwrap();
        w.as_bytes().to_vec()
    }

    fn send(from: &mut Session, kind: Kind, seq: u64, now: u64) -> Vec<u8> {
        let body = heartbeat_body();
        let body = if kind == Kind::Data {
            let mut w = BodyWriter::new(256);
            w.push(&Message::BulkRequest).unwrap();
            w.as_bytes().to_vec()
        } else {
            body
        };
        let mut out = vec![0u8; 512];
        let n = from
            .seal(now, kind, seq, 0, &body, &mut out)
            .expect("sealed");
        out.truncate(n);
        out
    }

    /// A and B learn each other's epochs from heartbeats and then exchange data.
    fn handshake(a: &mut Session, b: &mut Session) {
        let mut h = send(a, Kind::Control, 0, 1);
        let o = b.open(1, &mut h).unwrap();
        assert!(o.new_peer_epoch);
        let mut h = send(b, Kind::Control, 0, 2);
        assert!(a.open(2, &mut h).unwrap().new_peer_epoch);
    }

    #[test]
    fn a_handshake_then_data_both_ways() {
        let (mut a, mut b) = pair(100, 200);
        assert_eq!(
            a.seal(0, Kind::Data, 1, 0, &[], &mut [0; 128]),
            None,
            "no data before"
        );
        handshake(&mut a, &mut b);
        assert_eq!((a.peer_epoch(), b.peer_epoch()), (Some(200), Some(100)));
        let mut d = send(&mut a, Kind::Data, 1, 3);
        let o = b.open(3, &mut d).unwrap();
        assert!(!o.new_peer_epoch);
        assert_eq!(o.header.sequence, 1);
        assert_eq!(
            records(Kind::Data, o.body).collect::<Vec<_>>(),
            [Ok(Message::BulkRequest)]
        );
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let (mut a, mut b) = pair(100, 200);
        handshake(&mut a, &mut b);
        let good = send(&mut a, Kind::Data, 1, 3);
        let open = |b: &mut Session, mut d: Vec<u8>| b.open(4, &mut d).map(|_| ()).err();

        let mut d = good.clone();
        d[4] = 2;
        assert_eq!(open(&mut b, d), Some(Drop::Wire(wire::Error::Version(2))));
        let mut d = good.clone();
        d.truncate(40);
        assert_eq!(open(&mut b, d), Some(Drop::Wire(wire::Error::Truncated)));
        let mut d = good.clone();
        d[8] = b'X';
        assert_eq!(open(&mut b, d), Some(Drop::UnknownPeer));
        let mut d = good.clone();
        d[60] ^= 1;
        assert_eq!(open(&mut b, d), Some(Drop::WrongKey));
        let mut d = good.clone();
        d[39] ^= 1;
        assert_eq!(
            open(&mut b, d),
            Some(Drop::StaleEpoch),
            "to another boot of B"
        );
        let mut d = good.clone();
        d[31] = 99;
        assert_eq!(
            open(&mut b, d),
            Some(Drop::StaleEpoch),
            "from an older boot of A"
        );
        let mut d = good.clone();
        d[32..40].fill(0);
        assert_eq!(open(&mut b, d), Some(Drop::NoHandshake));
        let mut d = good.clone();
        let last = d.len() - 1;
        d[last] ^= 1;
        assert_eq!(open(&mut b, d), Some(Drop::Forged));
        let mut d = good.clone();
        d[HEADER_LEN] ^= 1;
        assert_eq!(open(&mut b, d), Some(Drop::Forged));
        let mut d = good.clone();
        d[48] ^= 1;
        assert_eq!(
            open(&mut b, d),
            Some(Drop::Forged),
            "the header is authenticated"
        );
        assert_eq!(open(&mut b, good.clone()), None);
        assert_eq!(open(&mut b, good), Some(Drop::Replayed));
        // Another key that claims the right fingerprint is a forgery.
        let (mut x, _) = pair(100, 200);
        x.psk = psk(8);
        x.keys = Session::keys(
            &psk(8),
            x.me,
            serial("TNDM-B"),
            200,
            0,
            ROTATE_NS,
            OVERLAP_NS,
        );
        x.known = true;
        let _ = send(&mut x, Kind::Data, 2, 5);
        let mut d = send(&mut x, Kind::Data, 3, 5);
        d[60..64].copy_from_slice(&psk(7).id().to_be_bytes());
        assert_eq!(open(&mut b, d), Some(Drop::Forged));
    }

    #[test]
    fn a_forged_newer_epoch_moves_nothing_and_a_real_restart_does() {
        let (mut a, mut b) = pair(100, 200);
        handshake(&mut a, &mut b);
        let mut d = send(&mut a, Kind::Control, 0, 3);
        d[31] = 0xff;
        assert_eq!(b.open(3, &mut d).map(|_| ()).err(), Some(Drop::Forged));
        assert_eq!(b.peer_epoch(), Some(100));
        // A restarts with a newer epoch: its heartbeat moves B to it.
        let (mut a2, _) = pair(101, 200);
        let mut h = send(&mut a2, Kind::Control, 0, 4);
        assert!(b.open(4, &mut h).unwrap().new_peer_epoch);
        assert_eq!(b.peer_epoch(), Some(101));
        // The old boot's datagrams are stale now.
        let mut old = send(&mut a, Kind::Data, 5, 5);
        assert_eq!(
            b.open(5, &mut old).map(|_| ()).err(),
            Some(Drop::StaleEpoch)
        );
    }

    #[test]
    fn a_partner_rebooted_with_its_clock_set_back_is_taken_once_its_old_boot_is_silent() {
        let (mut a, mut b) = pair(100, 200);
        handshake(&mut a, &mut b);
        let (mut older, _) = pair(50, 200);
        let mut h = send(&mut older, Kind::Control, 0, 5);
        assert_eq!(b.open(5, &mut h).map(|_| ()).err(), Some(Drop::StaleEpoch));
        let later = 2 + PEER_GONE_NS;
        let mut h = send(&mut older, Kind::Control, 0, later);
        assert!(b.open(later, &mut h).unwrap().new_peer_epoch);
        assert_eq!(b.peer_epoch(), Some(50));
    }

    #[test]
    fn keys_rotate_without_losing_a_datagram_in_flight() {
        let sec = 1_000_000_000;
        let ap = Party {
            serial: serial("TNDM-A"),
            epoch: 1,
        };
        let bp = Party {
            serial: serial("TNDM-B"),
            epoch: 2,
        };
        let mut a = Session::with_rotation(psk(1), ap, bp.serial, 0, 60 * sec, 10 * sec);
        let mut b = Session::with_rotation(psk(1), bp, ap.serial, 0, 60 * sec, 10 * sec);
        handshake(&mut a, &mut b);
        let mut early = send(&mut a, Kind::Data, 1, 30 * sec);
        assert!(b.open(30 * sec, &mut early).is_ok());
        let late = send(&mut a, Kind::Data, 2, 59 * sec);
        assert_eq!(a.keys.sealer.key_id(), 1);
        let mut fresh = send(&mut a, Kind::Data, 3, 61 * sec);
        assert!(b.open(61 * sec, &mut fresh).is_ok());
        assert_eq!(a.keys.sealer.key_id(), 2);
        let mut d = late.clone();
        assert!(
            b.open(62 * sec, &mut d).is_ok(),
            "old key within the overlap"
        );
        let mut d = late.clone();
        assert_eq!(
            b.open(63 * sec, &mut d).map(|_| ()).err(),
            Some(Drop::Replayed)
        );
        assert!(a.key_age_ns(61 * sec) < 2 * sec);
    }
}
