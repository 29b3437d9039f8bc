//! Replacing a file so that a reader, or a crash, finds the old file or the
//! new one, never half of one: the bytes go to `<path>.tmp`, are synced, and
//! the temporary file is renamed over `path` (atomic within a file system).

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
