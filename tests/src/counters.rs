//! The unit's counters file: one `name value` per line.
//!
//! `tandemd` rewrites it atomically (write, then rename) about once a second
//! and once more at exit. Names are per worker (`worker0.rx_packets`,
//! `worker1.drop.ttl_expired`, ...), and the set of names is not fixed, so
//! the file is parsed generically into a sorted map.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::path::Path;

use crate::error::{Error, Result};

/// A snapshot of the unit's counters, sorted by name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Counters(BTreeMap<String, u64>);

impl Counters {
    /// Reads and parses a counters file.
    pub fn read(path: &Path) -> Result<Counters> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: "reading the counters file",
            path: path.to_path_buf(),
            source,
        })?;
        Counters::parse(&text).map_err(|(line, text)| Error::CountersFormat {
            path: path.to_path_buf(),
            line,
            text,
        })
    }

    /// Parses `name value` lines. Blank lines and `#` comments are skipped;
    /// any other line that is not a name and an unsigned integer is an error
    /// `(line number, line)`.
    pub fn parse(text: &str) -> Result<Counters, (usize, String)> {
        let mut map = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split_whitespace();
            match (
                fields.next(),
                fields.next().map(str::parse::<u64>),
                fields.next(),
            ) {
                (Some(name), Some(Ok(value)), None) => {
                    map.insert(name.to_string(), value);
                }
                _ => return Err((i + 1, line.to_string())),
            }
        }
        Ok(Counters(map))
    }

    /// The value of one counter, 0 if absent.
    pub fn value(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The sum, over all workers, of the counters named `suffix` or ending in
    /// `.suffix`: `sum("rx_packets")` adds `worker0.rx_packets`,
    /// `worker1.rx_packets`, ...; `sum("drop.ttl_expired")` adds every
    /// worker's TTL drops.
    pub fn sum(&self, suffix: &str) -> u64 {
        self.sum_where(|name| {
            name == suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('.'))
        })
    }

    /// The sum of every counter whose name satisfies `pred`.
    pub fn sum_where(&self, mut pred: impl FnMut(&str) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|(name, _)| pred(name))
            .fold(0u64, |acc, (_, v)| acc.saturating_add(*v))
    }

    /// Only the counters that are not zero.
    pub fn nonzero(&self) -> Counters {
        Counters(
            self.0
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        )
    }

    /// The map itself.
    pub fn into_inner(self) -> BTreeMap<String, u64> {
        self.0
    }
}

impl Deref for Counters {
    type Target = BTreeMap<String, u64>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// One counter a line, names left-aligned and values right-aligned.
impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_w = self.0.keys().map(String::len).max().unwrap_or(0);
        let value_w = self
            .0
            .values()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(0);
        for (name, value) in &self.0 {
            writeln!(f, "{name:<name_w$}  {value:>value_w$}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# written by tandemd
worker0.rx_packets 12
worker0.drop.ttl_expired 1
worker0.tx_packets 10
worker1.rx_packets 3
worker1.drop.ttl_expired 0
worker1.tx_packets 0

worker1.drop.no_route 2
";

    #[test]
    fn parses_and_sums_across_workers() {
        let c = Counters::parse(SAMPLE).unwrap();
        assert_eq!(c.len(), 7);
        assert_eq!(c.value("worker0.rx_packets"), 12);
        assert_eq!(c.value("missing"), 0);
        assert_eq!(c.sum("rx_packets"), 15);
        assert_eq!(c.sum("tx_packets"), 10);
        assert_eq!(c.sum("drop.ttl_expired"), 1);
        assert_eq!(c.sum("ttl_expired"), 1);
        // A suffix matches whole name components only.
        assert_eq!(c.sum("packets"), 0);
        assert_eq!(c.sum_where(|n| n.contains("drop.")), 3);
    }

    #[test]
    fn rejects_a_malformed_line_with_its_number() {
        assert_eq!(
            Counters::parse("a 1\nb -1\n").unwrap_err(),
            (2, "b -1".to_string())
        );
        assert_eq!(Counters::parse("a 1 2").unwrap_err().0, 1);
        assert_eq!(Counters::parse("a").unwrap_err().0, 1);
    }

    #[test]
    fn displays_aligned_nonzero() {
        let c = Counters::parse(SAMPLE).unwrap().nonzero();
        let text = c.to_string();
        assert_eq!(
            text,
            "\
worker0.drop.ttl_expired   1
worker0.rx_packets        12
worker0.tx_packets        10
worker1.drop.no_route      2
worker1.rx_packets         3
"
        );
    }
}
