//! The counters file: `name value` per line, rewritten atomically (write to a
//! temporary file, then rename) so a reader never sees half a file.

use std::io::Write;
use std::path::Path;

/// Writes `counters` to `path` atomically.
pub fn write(path: &Path, counters: &[(String, u64)]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::File::create(&tmp)?;
    for (name, value) in counters {
        writeln!(f, "{name} {value}")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)
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
        let dir = std::env::temp_dir().join(format!("tandem-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c");
        write(&path, &[("a.b".into(), 1), ("c".into(), 0)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a.b 1\nc 0\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renders_only_nonzero() {
        let text = render_nonzero(&[("rx".into(), 5), ("drop.x".into(), 0)]);
        assert_eq!(text, "rx            5\n");
    }
}
