//! The one error type of the crate.

use crate::diagnostic::Diagnostic;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `file:line:column: field: reason` — the profile does not parse or does not make
    /// sense. `field` is a path such as `cores.workers[1]`; when it is empty (a problem
    /// with the document as a whole) the message leaves it out.
    #[error("{file}:{line}:{column}: {}{reason}", field_prefix(.field))]
    Invalid {
        /// The file as it was named to the loader.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Field path, e.g. `ports[2].rx_queues`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// `file: error` — the file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file as it was named to the loader.
        file: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl ProfileError {
    /// An [`ProfileError::Invalid`] for `file` from a placed problem.
    pub fn at(file: &str, d: Diagnostic) -> Self {
        ProfileError::Invalid {
            file: file.to_string(),
            line: d.line,
            column: d.column,
            field: d.field,
            reason: d.reason,
        }
    }
}
