//! Configuration sync between the members (`hasync`, `hasynctest`,
//! `hadiff`): which files travel, how they are compared, what each member
//! records of the last sync, and the receiving side's staging area.
//!
//! * **What travels**: the rules file (`tandemd --rules`) and the shared
//!   configuration file (`tandemd --shared`: virtual addresses, routes,
//!   timeouts, election weights, sync tuning; [`crate::config::shared`]), by
//!   their file names. The unit file stays each unit's own (serials, HA link
//!   and data addresses, priority, probes, profile).
//! * **Compared by digest**: SHA-256 of each file's bytes; the member's
//!   configuration revision is 8 hex digits of the digest over every file's
//!   name and digest, and its first 32 bits are the heartbeat's
//!   configuration revision, so each member sees whether the other's files
//!   agree without asking.
//! * **Atomic on the receiving side**: files are staged in memory, each
//!   validated there as it arrives (a file that does not validate is refused
//!   with `file:line:column: reason` and nothing is staged); a commit puts
//!   every staged file in force or none (the rules are parsed again, the file
//!   written atomically, then put in force). A transfer abandoned half-way
//!   is dropped when the next one begins or after [`STAGING_TTL`].
//! * **The record** (`<state dir>/confsync.json`, written atomically): the
//!   last sync's number, time, result and the revision both members had
//!   then. A member whose files changed since then "has changes not yet
//!   synchronised" (`hainfo`'s notice). At the first start the revision of
//!   that moment is the reference.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long staged files wait for their commit.
pub const STAGING_TTL: Duration = Duration::from_secs(120);

/// The record's file name in the state directory.
pub const RECORD_FILE: &str = "confsync.json";

/// One synchronised file: its name (what travels and what `hadiff` takes)
/// and where this member keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedFile {
    /// The file name, e.g. `rules.ron`.
    pub name: String,
    /// Its path on this member.
    pub path: PathBuf,
}

/// The files this member synchronises: its shared configuration file and
/// its rules file, those it has.
pub fn files(rules_path: Option<&Path>, shared_path: Option<&Path>) -> Vec<SyncedFile> {
    [shared_path, rules_path]
        .into_iter()
        .flatten()
        .map(|p| SyncedFile {
            name: p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            path: p.to_path_buf(),
        })
        .collect()
}

/// A file's name, size and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Its name.
    pub name: String,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex (`missing` when it could not be read).
    pub sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Each file's digest, read now.
pub fn digests(files: &[SyncedFile]) -> Vec<FileDigest> {
    files
        .iter()
        .map(|f| match std::fs::read(&f.path) {
            Ok(b) => FileDigest {
                name: f.name.clone(),
                bytes: b.len() as u64,
                sha256: sha256(&b),
            },
            Err(_) => FileDigest {
                name: f.name.clone(),
                bytes: 0,
                sha256: "missing".into(),
            },
        })
        .collect()
}

/// The configuration revision of a set of files: 8 hex digits.
pub fn revision(digests: &[FileDigest]) -> String {
    let mut all = String::new();
    for d in digests {
        all.push_str(&d.name);
        all.push('\0');
        all.push_str(&d.sha256);
        all.push('\n');
    }
    sha256(all.as_bytes())[..8].to_owned()
}

/// The revision as the heartbeat's 32 bits.
pub fn revision_u32(revision: &str) -> u32 {
    u32::from_str_radix(revision, 16).unwrap_or(0)
}

/// The files that differ between two members' digests, by name, in order:
/// each with what differs (`differs`, `only here`, `only on the partner`).
pub fn differing(ours: &[FileDigest], theirs: &[FileDigest]) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for o in ours {
        match theirs.iter().find(|t| t.name == o.name) {
            Some(t) if t.sha256 == o.sha256 => {}
            Some(_) => out.push((o.name.clone(), "differs")),
            None => out.push((o.name.clone(), "only here")),
        }
    }
    for t in theirs {
        if !ours.iter().any(|o| o.name == t.name) {
            out.push((t.name.clone(), "only on the partner"));
        }
    }
    out
}

/// What a member records of configuration syncs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Record {
    /// The last sync's number (0: none yet).
    pub sync_id: u64,
    /// When it happened, Unix seconds.
    pub last_sync: Option<u64>,
    /// `ok` or `failed: <why>`.
    pub last_result: Option<String>,
    /// The configuration revision this member had right after it (or at its
    /// first start): a different revision now is a change not synchronised.
    pub reference: Option<String>,
}

impl Record {
    /// The record in `dir`, or a new one (a missing or unreadable record is
    /// logged and starts over: it only feeds a notice).
    pub fn load(dir: &Path) -> Record {
        let path = dir.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!("{}: {e}; starting a new record", path.display());
                Record::default()
            }),
            Err(_) => Record::default(),
        }
    }

    /// Writes it to `dir` atomically (created if missing).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::atomic_file::write(&dir.join(RECORD_FILE), &bytes)
    }
}

/// Files received for one transfer, validated, waiting for its commit.
#[derive(Debug)]
pub struct Staging {
    transfer: u64,
    files: Vec<(String, String)>,
    since: Instant,
}

impl Staging {
    /// A transfer's first file: whatever an older transfer left is dropped.
    pub fn begin(transfer: u64, now: Instant) -> Staging {
        Staging {
            transfer,
            files: Vec::new(),
            since: now,
        }
    }

    /// Whether it belongs to `transfer` and is still fresh at `now`.
    pub fn is(&self, transfer: u64, now: Instant) -> bool {
        self.transfer == transfer && now.duration_since(self.since) < STAGING_TTL
    }

    /// Keeps a validated file (a file sent twice keeps its last text).
    pub fn keep(&mut self, name: &str, text: String) {
        self.files.retain(|(n, _)| n != name);
        self.files.push((name.to_owned(), text));
    }

    /// The staged files, in the order they arrived.
    pub fn into_files(self) -> Vec<(String, String)> {
        self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, sha: &str) -> FileDigest {
        FileDigest {
            name: name.into(),
            bytes: 1,
            sha256: sha.into(),
        }
    }

    #[test]
    fn files_are_compared_by_name_and_digest() {
        let ours = [d("rules.ron", "aa"), d("x.ron", "bb")];
        let theirs = [d("rules.ron", "ab"), d("y.ron", "cc")];
        assert_eq!(
            differing(&ours, &theirs),
            vec![
                ("rules.ron".into(), "differs"),
                ("x.ron".into(), "only here"),
                ("y.ron".into(), "only on the partner"),
            ]
        );
        assert!(differing(&ours, &ours).is_empty());
    }

    #[test]
    fn the_revision_follows_every_byte_and_name() {
        let a = revision(&[d("rules.ron", &sha256(b"x"))]);
        assert_eq!(a.len(), 8);
        assert_ne!(a, revision(&[d("rules.ron", &sha256(b"y"))]));
        assert_ne!(a, revision(&[d("other.ron", &sha256(b"x"))]));
        assert_eq!(revision_u32("0000002a"), 42);
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "FIPS 180-2 test vector"
        );
    }

    #[test]
    fn the_record_survives_a_restart_and_a_bad_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::load(dir.path()), Record::default());
        let r = Record {
            sync_id: 3,
            last_sync: Some(1_800_000_000),
            last_result: Some("ok".into()),
            reference: Some("0badcafe".into()),
        };
        r.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()), r);
        std::fs::write(dir.path().join(RECORD_FILE), "{").unwrap();
        assert_eq!(Record::load(dir.path()), Record::default());
    }

    #[test]
    fn staging_belongs_to_one_fresh_transfer() {
        let t0 = Instant::now();
        let mut s = Staging::begin(9, t0);
        s.keep("rules.ron", "a".into());
        s.keep("rules.ron", "b".into());
        assert!(s.is(9, t0));
        assert!(!s.is(8, t0));
        assert!(!s.is(9, t0 + STAGING_TTL));
        assert_eq!(s.into_files(), vec![("rules.ron".into(), "b".into())]);
    }
}
