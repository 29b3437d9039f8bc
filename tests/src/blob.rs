//! Files of random bytes for transfers, and comparing what arrived.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `len` random bytes (from `/dev/urandom`) to `path`.
pub fn write_random(path: &Path, len: u64) -> Result<()> {
    let io_err = |source| Error::Io {
        context: "writing a random file",
        path: path.to_path_buf(),
        source,
    };
    let mut random = File::open("/dev/urandom").map_err(io_err)?.take(len);
    let mut out = io::BufWriter::new(File::create(path).map_err(io_err)?);
    let copied = io::copy(&mut random, &mut out).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    if copied != len {
        return Err(io_err(io::Error::other(format!(
            "got only {copied} of {len} random bytes"
        ))));
    }
    Ok(())
}

/// `Ok(len)` when both files hold the same bytes, else `Err` saying where
/// they first differ (or that one is missing).
pub fn compare(expected: &Path, actual: &Path) -> Result<u64, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let (want, got) = (read(expected)?, read(actual)?);
    if want == got {
        return Ok(want.len() as u64);
    }
    let first = want
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    Err(format!(
        "{} has {} bytes, {} has {} bytes; first difference at byte {first}",
        expected.display(),
        want.len(),
        actual.display(),
        got.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_files_compare() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_random(&a, 100_000).unwrap();
        std::fs::copy(&a, &b).unwrap();
        assert_eq!(compare(&a, &b), Ok(100_000));

        let mut bytes = std::fs::read(&b).unwrap();
        bytes[4242] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        assert!(compare(&a, &b)
            .unwrap_err()
            .contains("first difference at byte 4242"));

        bytes.truncate(10);
        std::fs::write(&b, &bytes).unwrap();
        assert!(compare(&a, &b).unwrap_err().contains("has 10 bytes"));
    }
}
