//! The counters file: `name value` per line, rewritten atomically (see
//! [`crate::atomic_file`]) so a reader never sees half a file.

use std::fmt::Write as _;
use std::path::Path;

/// Writes `counters` to `path` atomically.
pub fn write(path: &Path, counters: &[(String, u64)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in counters {
        let _ = writeln!(text, "{name} {value}");
    }
    crate::atomic_file::write(path, text.as_bytes())
}

/// The counters as aligned text, zero counters left out.
pub fn render_nonzero(counters: &[(String, u64)]) -> String {
    let width = counters
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    counters
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(n, v)| format!("{n:<width$} {v:>12}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_name_value_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        write(&path, &[("a.b".into(), 1), ("c".into(), 0)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a.b 1\nc 0\n");
        assert!(!dir.path().join("c.tmp").exists());
    }

    #[test]
    fn renders_only_nonzero() {
        let text = render_nonzero(&[("rx".into(), 5), ("drop.x".into(), 0)]);
        assert_eq!(text, "rx            5\n");
    }
}
