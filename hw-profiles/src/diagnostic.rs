//! Turning a problem in a RON text into `line:column: field: reason`.
//!
//! Two sources of problems, one shape of message: RON's own parse errors (which carry a
//! position but no field) and checks made after parsing (which know the field but not
//! the position). [`from_ron_error`] names the field with [`crate::locate::path_at_detailed`];
//! [`at_path`] finds the position with [`crate::locate::locate_nearest`]. Neither knows
//! the profile types, so the unit configuration reuses both.

use crate::locate::{self, Containment};
use ron::error::{Error as RonError, SpannedError};

/// A problem placed in the text: where, which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Field path such as `ports[2].rx_queues`; empty for the document as a whole.
    pub field: String,
    /// What is wrong, in lower case, without a trailing full stop.
    pub reason: String,
}

/// A problem found after parsing, at the value of `field` (or its nearest ancestor that
/// is written in the text, for a field left to its default).
pub fn at_path(source: &str, field: &str, reason: impl Into<String>) -> Diagnostic {
    let (line, column) = locate::locate_nearest(source, field);
    Diagnostic {
        line,
        column,
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Converts RON's byte column into a character column on that line.
fn char_column(source: &str, line: usize, byte_col: usize) -> usize {
    let Some(text) = source.split('\n').nth(line.saturating_sub(1)) else {
        return byte_col.max(1);
    };
    let mut byte = byte_col.saturating_sub(1).min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    text[..byte].chars().count() + 1
}

/// Joins a path and a field name the way [`locate`](crate::locate) writes paths.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// "`a`, `b` or `c`", for lists of expected names.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The reason for a RON error, in the style of the rest of the messages.
fn reason(code: &RonError) -> String {
    match code {
        RonError::NoSuchStructField {
            expected, found, ..
        } => format!("unknown field `{found}`, expected {}", one_of(expected)),
        RonError::DuplicateStructField { field, .. } => format!("field `{field}` given twice"),
        RonError::MissingStructField { .. } => "missing (this field is required)".to_string(),
        RonError::NoSuchEnumVariant {
            expected, found, ..
        } => format!("unknown variant `{found}`, expected {}", one_of(expected)),
        RonError::ExpectedDifferentStructName { expected, found } => {
            format!("expected `{expected}`, found `{found}`")
        }
        RonError::InvalidValueForType { expected, found } => {
            format!("expected {expected}, found {found}")
        }
        RonError::IntegerOutOfBounds => "number out of range for this field".to_string(),
        RonError::ExpectedInteger => "expected an integer".to_string(),
        RonError::ExpectedFloat => "expected a number".to_string(),
        RonError::ExpectedString => "expected a string".to_string(),
        RonError::ExpectedStringEnd => "unterminated string".to_string(),
        RonError::ExpectedBoolean => "expected `true` or `false`".to_string(),
        RonError::ExpectedOption => "expected `Some(...)` or `None`".to_string(),
        RonError::ExpectedComma => "expected a comma before this".to_string(),
        RonError::ExpectedArray => "expected a list `[...]`".to_string(),
        RonError::ExpectedArrayEnd => "expected `]` or a comma".to_string(),
        RonError::ExpectedStructLike => "expected `(`".to_string(),
        RonError::ExpectedStructLikeEnd => "expected `)` or a comma".to_string(),
        RonError::ExpectedMap => "expected a map `{...}`".to_string(),
        RonError::ExpectedMapEnd => "expected `}` or a comma".to_string(),
        RonError::ExpectedMapColon => "expected `:`".to_string(),
        RonError::ExpectedIdentifier => "expected a field or variant name".to_string(),
        RonError::ExpectedUnit => "expected `()`".to_string(),
        RonError::Eof => "unexpected end of file (unclosed bracket?)".to_string(),
        RonError::TrailingCharacters => "unexpected text after the end of the document".to_string(),
        RonError::UnclosedBlockComment => "unclosed block comment".to_string(),
        RonError::UnexpectedByte(c) => format!("unexpected character {c:?}"),
        RonError::Message(m) => m.clone(),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "invalid RON".to_string(),
            }
        }
    }
}

/// Places a RON parse error: names the field written at the error's position and, for
/// errors about a field name, points at that name rather than past it.
pub fn from_ron_error(source: &str, err: &SpannedError) -> Diagnostic {
    let line = err.position.line.max(1);
    let column = char_column(source, line, err.position.col);
    let reason = reason(&err.code);
    let found = |mode| locate::path_at_detailed(source, line, column, mode);
    match &err.code {
        // RON stops just after the offending name: point at the name itself.
        RonError::NoSuchStructField { .. } | RonError::DuplicateStructField { .. } => {
            match found(Containment::EndInclusive) {
                Some(f) => {
                    let (line, column) = f.key.unwrap_or(f.value);
                    Diagnostic {
                        line,
                        column,
                        field: f.path,
                        reason,
                    }
                }
                None => Diagnostic {
                    line,
                    column,
                    field: String::new(),
                    reason,
                },
            }
        }
        // RON stops at the closing parenthesis of the struct that lacks the field.
        RonError::MissingStructField { field, .. } => match found(Containment::Strict) {
            Some(f) => Diagnostic {
                line: f.value.0,
                column: f.value.1,
                field: join(&f.path, field),
                reason,
            },
            None => Diagnostic {
                line,
                column,
                field: field.to_string(),
                reason,
            },
        },
        // An unknown variant: point at the variant name, even when it has a payload.
        RonError::NoSuchEnumVariant { .. } => match found(Containment::EndInclusive) {
            Some(f) => Diagnostic {
                line: f.value.0,
                column: f.value.1,
                field: f.path,
                reason,
            },
            None => Diagnostic {
                line,
                column,
                field: String::new(),
                reason,
            },
        },
        // A value of the wrong kind or range: point at the start of the value, inside
        // `Some(...)` when there is one.
        RonError::InvalidValueForType { .. }
        | RonError::IntegerOutOfBounds
        | RonError::ExpectedInteger
        | RonError::ExpectedFloat
        | RonError::ExpectedString
        | RonError::ExpectedBoolean
        | RonError::ExpectedOption
        | RonError::ExpectedArray
        | RonError::ExpectedMap
        | RonError::ExpectedStructLike
        | RonError::ExpectedUnit
        | RonError::ExpectedDifferentLength { .. }
        | RonError::Message(_) => match found(Containment::EndInclusive) {
            Some(f) => Diagnostic {
                line: f.innermost.0,
                column: f.innermost.1,
                field: f.path,
                reason,
            },
            None => Diagnostic {
                line,
                column,
                field: String::new(),
                reason,
            },
        },
        // Syntax: RON's own position is the best one; name what encloses it.
        _ => Diagnostic {
            line,
            column,
            field: found(Containment::EndInclusive)
                .map(|f| f.path)
                .unwrap_or_default(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_columns_become_character_columns() {
        let src = "(a: \"é\", b: 1)";
        // RON counts `é` as two bytes: `b` is byte column 11, character column 10.
        assert_eq!(char_column(src, 1, 11), 10);
        assert_eq!(char_column(src, 1, 1), 1);
        assert_eq!(char_column(src, 1, 999), src.chars().count() + 1);
        assert_eq!(char_column(src, 7, 3), 3);
        // Inside a multi-byte character: rounds down to it.
        assert_eq!(char_column(src, 1, 7), 6);
    }

    #[test]
    fn expected_lists() {
        assert_eq!(one_of(&[]), "nothing");
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
