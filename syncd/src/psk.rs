//! The cluster's pre-shared key: 32 secret bytes, the same on both units, from
//! which [`crate::seal`] derives every sync key.
//!
//! # The file
//!
//! Exactly 64 hexadecimal digits (upper or lower case) — the 32 bytes in
//! order — optionally followed by ASCII whitespace (a trailing newline, CRLF).
//! Nothing may come before the digits. Make one with
//! `umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > cluster.key`.
//!
//! [`Psk::load`] refuses the file unless it is a regular file (a symlink to one
//! is followed), owned by root (uid 0), with permission bits exactly `0600`
//! (no other bits either: no setuid, setgid or sticky), and at most
//! [`MAX_FILE_BYTES`] long: a key anyone else can read, or could have written,
//! is not a secret the pair can rely on. The checks are made on the path, then
//! again on the opened file, so what is read is what was checked.
//!
//! # The fingerprint
//!
//! [`Psk::id`] is a public 32-bit fingerprint sent in the clear, so that a
//! receiver whose datagrams fail to authenticate can tell "the partner has a
//! different key" (a configuration mistake) from "forged" (an attack). It is
//! HKDF-SHA256 output (RFC 5869) under its own `info`, so it is independent of
//! every sync key, and 32 bits of it say nothing useful about 256 bits of key.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use ring::hkdf;

/// The length of the key, in bytes (AES-256 strength).
pub const PSK_LEN: usize = 32;

/// The largest key file read, in bytes: 64 digits and a newline need 65, so
/// anything near this bound is not a key file (and is not read into memory).
pub const MAX_FILE_BYTES: u64 = 4096;

/// The HKDF-SHA256 salt (RFC 5869 §2.2) of every derivation from the key:
/// the 14 ASCII bytes `tandem-sync-v1`. A new protocol version takes a new
/// salt, so its keys are unrelated to this one's.
pub const SALT: &[u8] = b"tandem-sync-v1";

/// The HKDF `info` (RFC 5869 §2.3) of [`Psk::id`]: the 16 ASCII bytes
/// `tandem psk id v1`.
pub const ID_INFO: &[u8] = b"tandem psk id v1";

/// The permission bits the key file must have (`mode & 0o7777`).
const MODE: u32 = 0o600;

/// A refused key file, naming the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum PskError {
    /// `file: reason` — the file could not be examined or read (missing,
    /// unreadable).
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `file: a directory, must be a regular file`.
    #[error("{file}: {kind}, must be a regular file")]
    NotRegular {
        /// The file.
        file: String,
        /// What it is instead ("a directory", "a FIFO", ...).
        kind: &'static str,
    },
    /// `file: owned by uid 1000, must be root (chown root)`.
    #[error("{file}: owned by uid {uid}, must be root (chown root)")]
    Owner {
        /// The file.
        file: String,
        /// Its owner.
        uid: u32,
    },
    /// `file: mode 0644, must be 0600 (chmod 600)`.
    #[error("{file}: mode {mode:04o}, must be 0600 (chmod 600)")]
    Mode {
        /// The file.
        file: String,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// `file: 5000 bytes, a key file is at most 4096` — refused before reading.
    #[error("{file}: {len} bytes, a key file is at most {MAX_FILE_BYTES}")]
    TooBig {
        /// The file.
        file: String,
        /// Its length in bytes (at least, if it grew while being read).
        len: u64,
    },
    /// `file: 63 hex digits, must be 64` — all hex, but not 32 bytes of it.
    #[error("{file}: {digits} hex digits, must be 64")]
    Length {
        /// The file.
        file: String,
        /// How many digits it has (trailing whitespace excluded).
        digits: usize,
    },
    /// `file: non-hex character 'g' at byte 13` — bytes counted from 1; the
    /// first byte that is neither a hex digit nor part of trailing whitespace.
    #[error("{file}: non-hex character {} at byte {at}", shown(*.byte))]
    NotHex {
        /// The file.
        file: String,
        /// Its position, from 1.
        at: usize,
        /// The byte.
        byte: u8,
    },
}

/// A byte as a person can read it in a message: `'g'` if printable ASCII,
/// `0x0a` otherwise.
fn shown(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", char::from(byte))
    } else {
        format!("0x{byte:02x}")
    }
}

/// The cluster's pre-shared key. `Debug` prints its [`id`](Psk::id), never the
/// secret; there is deliberately no way to read the bytes back out.
#[derive(Clone)]
pub struct Psk {
    secret: [u8; PSK_LEN],
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Psk")
            .field("id", &format_args!("{:#010x}", self.id()))
            .finish_non_exhaustive()
    }
}

/// An HKDF output length (ring asks for it as a [`hkdf::KeyType`]).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Psk {
    /// A key from its bytes (tests, tools that generate keys).
    pub fn from_bytes(secret: [u8; PSK_LEN]) -> Psk {
        Psk { secret }
    }

    /// Reads the key file at `path`; see the module docs for what is refused.
    pub fn load(path: &Path) -> Result<Psk, PskError> {
        let file = path.display().to_string();
        let io = |source| PskError::Io {
            file: file.clone(),
            source,
        };
        // Checked before opening: opening a FIFO would block, a device could
        // have side effects.
        check(&file, &fs::metadata(path).map_err(io)?)?;
        let mut opened = File::open(path).map_err(io)?;
        // And again on what was opened, in case the path changed in between.
        check(&file, &opened.metadata().map_err(io)?)?;
        let mut text = Vec::new();
        opened
            .by_ref()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(io)?;
        let len = u64::try_from(text.len()).unwrap_or(u64::MAX);
        if len > MAX_FILE_BYTES {
            return Err(PskError::TooBig { file, len });
        }
        parse(&file, &text).map(Psk::from_bytes)
    }

    /// The public fingerprint of the key: the first 4 bytes, big-endian, of
    /// HKDF-SHA256(salt = [`SALT`], IKM = the key, info = [`ID_INFO`]).
    pub fn id(&self) -> u32 {
        u32::from_be_bytes(self.derive(&[ID_INFO]))
    }

    /// `N` bytes of HKDF-SHA256 (RFC 5869 §2.2 extract, §2.3 expand) with
    /// salt [`SALT`], this key as IKM, and `info` the concatenation of its
    /// parts. The one way the secret leaves this type.
    pub(crate) fn derive<const N: usize>(&self, info: &[&[u8]]) -> [u8; N] {
        // RFC 5869 §2.3: L ≤ 255 × HashLen (32 bytes for SHA-256).
        const { assert!(N <= 255 * 32) };
        let mut out = [0u8; N];
        hkdf::Salt::new(hkdf::HKDF_SHA256, SALT)
            .extract(&self.secret)
            .expand(info, Len(N))
            .and_then(|okm| okm.fill(&mut out))
            // ring refuses only L > 255 × HashLen (ruled out above at compile
            // time) or an output buffer of another length than L (it is N):
            // nothing an input can reach.
            .expect("HKDF-SHA256 of at most 8160 bytes into a buffer of that length");
        out
    }
}

/// Refuses anything but a regular file owned by root with mode 0600 and at
/// most [`MAX_FILE_BYTES`] long.
fn check(file: &str, meta: &Metadata) -> Result<(), PskError> {
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "not a file"
        };
        return Err(PskError::NotRegular {
            file: file.to_owned(),
            kind,
        });
    }
    if meta.uid() != 0 {
        return Err(PskError::Owner {
            file: file.to_owned(),
            uid: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != MODE {
        return Err(PskError::Mode {
            file: file.to_owned(),
            mode,
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(PskError::TooBig {
            file: file.to_owned(),
            len: meta.len(),
        });
    }
    Ok(())
}

/// The key written in `text` (the file's contents): 64 hex digits, then
/// optional ASCII whitespace.
fn parse(file: &str, text: &[u8]) -> Result<[u8; PSK_LEN], PskError> {
    let digits = text.trim_ascii_end();
    let mut nibbles = [0u8; 2 * PSK_LEN];
    for (i, &byte) in digits.iter().enumerate() {
        let Some(value) = hex(byte) else {
            return Err(PskError::NotHex {
                file: file.to_owned(),
                at: i + 1,
                byte,
            });
        };
        if let Some(slot) = nibbles.get_mut(i) {
            *slot = value;
        }
    }
    if digits.len() != nibbles.len() {
        return Err(PskError::Length {
            file: file.to_owned(),
            digits: digits.len(),
        });
    }
    let mut secret = [0u8; PSK_LEN];
    for (byte, pair) in secret.iter_mut().zip(nibbles.chunks_exact(2)) {
        if let [high, low] = pair {
            *byte = high << 4 | low;
        }
    }
    Ok(secret)
}

/// The value of one hex digit.
fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// The key 00 01 02 … 1f.
    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn counting() -> [u8; PSK_LEN] {
        let mut bytes = [0u8; PSK_LEN];
        for (i, b) in (0u8..).zip(bytes.iter_mut()) {
            *b = i;
        }
        bytes
    }

    /// A root-owned file (the tests run as root) holding `text`, with `mode`.
    fn key_file(dir: &tempfile::TempDir, text: &[u8], mode: u32) -> PathBuf {
        let path = dir.path().join("cluster.key");
        let mut f = File::create(&path).unwrap();
        f.write_all(text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn name(path: &Path) -> String {
        path.display().to_string()
    }

    #[test]
    fn good_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(&dir, format!("{HEX}\n").as_bytes(), 0o600);
        let psk = Psk::load(&path).unwrap();
        assert_eq!(psk.secret, counting());
    }

    #[test]
    fn upper_case_and_crlf_and_no_newline() {
        assert_eq!(
            parse("k", format!("{}\r\n", HEX.to_uppercase()).as_bytes()).unwrap(),
            counting()
        );
        assert_eq!(parse("k", HEX.as_bytes()).unwrap(), counting());
        assert_eq!(
            parse("k", format!("{HEX} \t\n\n").as_bytes()).unwrap(),
            counting()
        );
    }

    #[test]
    fn group_and_other_bits_refused() {
        for mode in [0o644, 0o640, 0o700, 0o400, 0o4600] {
            let dir = tempfile::tempdir().unwrap();
            let path = key_file(&dir, HEX.as_bytes(), mode);
            let err = Psk::load(&path).unwrap_err();
            assert!(
                matches!(&err, PskError::Mode { file, mode: m } if *file == name(&path) && *m == mode),
                "{err:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(&dir, HEX.as_bytes(), 0o644);
        assert_eq!(
            Psk::load(&path).unwrap_err().to_string(),
            format!("{}: mode 0644, must be 0600 (chmod 600)", name(&path))
        );
    }

    #[test]
    fn other_owner_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(&dir, HEX.as_bytes(), 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = Psk::load(&path).unwrap_err();
        assert!(
            matches!(&err, PskError::Owner { file, uid: 65534 } if *file == name(&path)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: owned by uid 65534, must be root (chown root)",
                name(&path)
            )
        );
    }

    #[test]
    fn wrong_length_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(&dir, format!("{}\n", &HEX[..63]).as_bytes(), 0o600);
        let err = Psk::load(&path).unwrap_err();
        assert!(
            matches!(&err, PskError::Length { file, digits: 63 } if *file == name(&path)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{}: 63 hex digits, must be 64", name(&path))
        );
        assert!(matches!(
            parse("k", format!("{HEX}0").as_bytes()),
            Err(PskError::Length { digits: 65, .. })
        ));
        assert!(matches!(
            parse("k", b""),
            Err(PskError::Length { digits: 0, .. })
        ));
        assert!(matches!(
            parse("k", b"\n"),
            Err(PskError::Length { digits: 0, .. })
        ));
    }

    #[test]
    fn bad_hex_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = HEX.as_bytes().to_vec();
        text[12] = b'g';
        let path = key_file(&dir, &text, 0o600);
        let err = Psk::load(&path).unwrap_err();
        assert!(
            matches!(&err, PskError::NotHex { file, at: 13, byte: b'g' } if *file == name(&path)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{}: non-hex character 'g' at byte 13", name(&path))
        );
        // Leading whitespace, whitespace inside, text after the digits.
        assert!(matches!(
            parse("k", format!(" {HEX}").as_bytes()),
            Err(PskError::NotHex {
                at: 1,
                byte: b' ',
                ..
            })
        ));
        let err = parse("k", format!("{HEX}\n#").as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                PskError::NotHex {
                    at: 65,
                    byte: b'\n',
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "k: non-hex character 0x0a at byte 65");
    }

    #[test]
    fn directory_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Psk::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, PskError::NotRegular { file, kind: "a directory" } if *file == name(dir.path())),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{}: a directory, must be a regular file", name(dir.path()))
        );
    }

    #[test]
    fn missing_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.key");
        let err = Psk::load(&path).unwrap_err();
        assert!(
            matches!(&err, PskError::Io { file, source } if *file == name(&path) && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    #[test]
    fn too_big_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("{HEX}\n").into_bytes();
        text.resize(5000, b'\n');
        let path = key_file(&dir, &text, 0o600);
        let err = Psk::load(&path).unwrap_err();
        assert!(
            matches!(&err, PskError::TooBig { file, len: 5000 } if *file == name(&path)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{}: 5000 bytes, a key file is at most 4096", name(&path))
        );
        // The bound itself is fine (trailing whitespace up to it).
        text.truncate(4096);
        let path = key_file(&dir, &text, 0o600);
        assert_eq!(Psk::load(&path).unwrap().secret, counting());
    }

    /// Known answer computed with Python's `cryptography`:
    /// `HKDF(SHA256(), 4, b"tandem-sync-v1", b"tandem psk id v1").derive(bytes(range(32)))`.
    #[test]
    fn id_known_answer() {
        let psk = Psk::from_bytes(counting());
        assert_eq!(psk.id(), 0x3510_6cb4);
        let mut other = counting();
        other[31] ^= 1;
        assert_ne!(Psk::from_bytes(other).id(), psk.id());
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", Psk::from_bytes([0xab; PSK_LEN]));
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171, 171"), "{shown}");
        assert!(shown.starts_with("Psk { id: 0x"), "{shown}");
    }
}
