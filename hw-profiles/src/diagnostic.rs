//! Turning a problem in a RON text into `line:column: field: reason`.
//!
//! Two sources of problems, one shape of message: RON's own parse errors (which carry a
//! position but no field) and checks made after parsing (which know the field but not
//! the position). [`from_ron_error`] names the field with [`crate::locate::path_at_detailed`];
//! [`at_path`] finds the position with [`crate::locate::locate_nearest`]. Neither knows
//! the profile types, so the unit configuration and the rules reuse both. [`read_text`]
//! reads the file for every loader alike: bounded in size, its UTF-8 checked at a line
//! and column.
//!
//! Every kind of RON error has its own message here, worded for the person who wrote the
//! file: no Rust type names, no "the file is empty" for a file that is not, and a stray
//! invisible character named as such.

use crate::locate::{self, Containment};
use ron::error::{Error as RonError, SpannedError};
use std::io::Read;
use std::path::Path;

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

/// Why a file's text could not be had.
#[derive(Debug)]
pub enum ReadError {
    /// The OS refused.
    Io(std::io::Error),
    /// Too big, or not UTF-8: placed like any other problem.
    Invalid(Diagnostic),
}

/// Reads a RON file of at most `max_bytes` bytes. A bigger one is refused by its size
/// before it is read, so a wrong file (a log, an image, a table far past the limits)
/// costs no memory; bytes that are not UTF-8 are refused at their line and column.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    let too_big = |size: Option<u64>| {
        let size = size.map_or(String::new(), |s| format!("{s} bytes, "));
        ReadError::Invalid(Diagnostic {
            line: 1,
            column: 1,
            field: String::new(),
            reason: format!("the file is {size}over the limit of {max_bytes} bytes"),
        })
    };
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let size = file.metadata().map_err(ReadError::Io)?.len();
    if size > max_bytes {
        return Err(too_big(Some(size)));
    }
    // The size may change after it was read, or be unknown (a pipe): read one byte past
    // the limit to tell.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(None));
    }
    String::from_utf8(bytes).map_err(|e| ReadError::Invalid(not_utf8(&e)))
}

/// Places the first byte that is not UTF-8.
fn not_utf8(e: &std::string::FromUtf8Error) -> Diagnostic {
    let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
    // Valid by construction; the lossy form only avoids an unwrap.
    let valid = String::from_utf8_lossy(valid);
    let line = valid.matches('\n').count() + 1;
    let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Diagnostic {
        line,
        column,
        field: String::new(),
        reason: "not valid UTF-8".to_string(),
    }
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

/// A name for a message: as written, with odd characters escaped (`mod\0el`).
fn shown(name: &str) -> String {
    name.escape_debug().to_string()
}

/// A character that is invisible or has no place in RON outside strings and comments
/// (a NUL, a byte-order mark, a zero-width space): the likely cause of any syntax error
/// RON reports at it, and one a reader cannot see.
fn is_odd(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// The character at (line, column), if there is one.
fn char_at(source: &str, line: usize, column: usize) -> Option<char> {
    source
        .split('\n')
        .nth(line.checked_sub(1)?)?
        .chars()
        .nth(column.checked_sub(1)?)
}

/// The reason for a name RON refused (`what` is "field" or "variant"): RON reads a name
/// up to the first character it does not allow, so when the name written at the place is
/// longer than the one RON found, that character is what is wrong.
fn unknown_name(what: &str, found: &str, written: Option<String>, expected: &[&str]) -> String {
    if let Some(written) = written.filter(|w| w.len() > found.len() && w.starts_with(found)) {
        if let Some(c) = written[found.len()..].chars().next() {
            return format!(
                "{what} name `{}` holds `{}`, which a name cannot hold (letters, digits and `_`)",
                shown(&written),
                shown(&c.to_string())
            );
        }
    }
    format!(
        "unknown {what} `{}`, expected {}",
        shown(found),
        one_of(expected)
    )
}

/// The reason for a RON error whose wording does not depend on the text. Every kind
/// RON 0.8 has is worded here; only kinds a later RON adds fall back to its own text.
fn reason(code: &RonError) -> String {
    match code {
        RonError::Io(m) | RonError::Message(m) => m.clone(),
        RonError::Base64Error(e) => format!("not valid base64: {e}"),
        RonError::Eof => "unexpected end of file (unclosed bracket?)".to_string(),
        RonError::ExpectedArray => "expected a list `[...]`".to_string(),
        RonError::ExpectedArrayEnd => "expected `]`".to_string(),
        RonError::ExpectedAttribute => "expected `#![enable(...)]`".to_string(),
        RonError::ExpectedAttributeEnd => "expected `)]` to end `#![enable(...`".to_string(),
        RonError::ExpectedBoolean => "expected `true` or `false`".to_string(),
        RonError::ExpectedComma => "expected a comma before this".to_string(),
        RonError::ExpectedChar => "expected a character such as `'a'`".to_string(),
        RonError::ExpectedFloat => "expected a number".to_string(),
        RonError::FloatUnderscore => "`_` right after a decimal point".to_string(),
        RonError::ExpectedInteger => "expected an integer".to_string(),
        RonError::ExpectedOption => "expected `Some(...)` or `None`".to_string(),
        RonError::ExpectedOptionEnd => "expected `)` to close `Some(`".to_string(),
        RonError::ExpectedMap => "expected a map `{...}`".to_string(),
        RonError::ExpectedMapColon => "expected `:`".to_string(),
        RonError::ExpectedMapEnd => "expected `}`".to_string(),
        // The names are the loader's Rust types, which mean nothing in the file.
        RonError::ExpectedDifferentStructName { found, .. } => {
            format!(
                "unexpected name `{}`: write `(...)` without a name",
                shown(found)
            )
        }
        RonError::ExpectedStructLike | RonError::ExpectedNamedStructLike(_) => {
            "expected `(`".to_string()
        }
        RonError::ExpectedStructLikeEnd => "expected `)`".to_string(),
        RonError::ExpectedUnit => "expected `()`".to_string(),
        RonError::ExpectedString => "expected a string".to_string(),
        RonError::ExpectedStringEnd => "unterminated string".to_string(),
        RonError::ExpectedIdentifier => "expected a field or variant name".to_string(),
        RonError::InvalidEscape(what) => format!("bad escape in a string: {}", what.to_lowercase()),
        RonError::IntegerOutOfBounds => "number out of range for this field".to_string(),
        RonError::NoSuchExtension(name) => format!("no RON extension named `{}`", shown(name)),
        RonError::UnclosedBlockComment => "unclosed /* comment".to_string(),
        RonError::UnderscoreAtBeginning => "a number cannot start with `_`".to_string(),
        RonError::UnexpectedByte(c) => format!("unexpected character `{}`", shown(&c.to_string())),
        RonError::Utf8Error(_) => "not valid UTF-8".to_string(),
        RonError::TrailingCharacters => "unexpected text after the end of the document".to_string(),
        RonError::InvalidValueForType { expected, found } => {
            format!("expected {expected}, found {found}")
        }
        RonError::ExpectedDifferentLength { expected, found } => {
            let s = if *found == 1 { "" } else { "s" };
            format!("expected {expected}, found {found} value{s}")
        }
        RonError::NoSuchEnumVariant {
            expected, found, ..
        } => unknown_name("variant", found, None, expected),
        RonError::NoSuchStructField {
            expected, found, ..
        } => unknown_name("field", found, None, expected),
        RonError::MissingStructField { .. } => "missing (this field is required)".to_string(),
        RonError::DuplicateStructField { field, .. } => format!("field `{field}` given twice"),
        RonError::InvalidIdentifier(name) => format!("`{}` is not a valid name", shown(name)),
        // RON offers `r#1` when a field or variant name is expected and `1` is found.
        RonError::SuggestRawIdentifier(name) => {
            format!("expected a field or variant name, found `{}`", shown(name))
        }
        RonError::ExceededRecursionLimit => "nested too deeply".to_string(),
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

/// The name written at (line, column): what RON read, and what follows it up to white
/// space or punctuation.
fn written_name(source: &str, at: (usize, usize)) -> Option<String> {
    let line = source.split('\n').nth(at.0.checked_sub(1)?)?;
    let rest: String = line.chars().skip(at.1.checked_sub(1)?).collect();
    let name: String = rest
        .chars()
        .take_while(|&c| !c.is_whitespace() && !"()[]{},:/".contains(c))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Places a RON parse error: names the field written at the error's position and, for
/// errors about a field name, points at that name rather than past it.
pub fn from_ron_error(source: &str, err: &SpannedError) -> Diagnostic {
    let line = err.position.line.max(1);
    let column = char_column(source, line, err.position.col);
    let reason = reason(&err.code);
    let found = |mode| locate::path_at_detailed(source, line, column, mode);
    let here = |reason| Diagnostic {
        line,
        column,
        field: found(Containment::EndInclusive)
            .map(|f| f.path)
            .unwrap_or_default(),
        reason,
    };
    match &err.code {
        // RON stops at the end of the text; the `/*` that needs its `*/` is elsewhere.
        RonError::UnclosedBlockComment => {
            let (line, column) = locate::unclosed_comment(source).unwrap_or((line, column));
            Diagnostic {
                line,
                column,
                field: String::new(),
                reason: "unclosed /* comment: it runs to the end of the file".to_string(),
            }
        }
        // RON stops just after the offending name: point at the name itself.
        RonError::NoSuchStructField {
            expected,
            found: name,
            ..
        } => match found(Containment::EndInclusive) {
            Some(f) => {
                let (line, column) = f.key.unwrap_or(f.value);
                let written = written_name(source, (line, column));
                Diagnostic {
                    line,
                    column,
                    field: f.path,
                    reason: unknown_name("field", name, written, expected),
                }
            }
            None => here(reason),
        },
        RonError::DuplicateStructField { .. } => match found(Containment::EndInclusive) {
            Some(f) => {
                let (line, column) = f.key.unwrap_or(f.value);
                Diagnostic {
                    line,
                    column,
                    field: f.path,
                    reason,
                }
            }
            None => here(reason),
        },
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
        RonError::NoSuchEnumVariant {
            expected,
            found: name,
            ..
        } => match found(Containment::EndInclusive) {
            Some(f) => Diagnostic {
                line: f.value.0,
                column: f.value.1,
                reason: unknown_name("variant", name, written_name(source, f.innermost), expected),
                field: f.path,
            },
            None => here(reason),
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
        | RonError::ExpectedNamedStructLike(_)
        | RonError::ExpectedDifferentStructName { .. }
        | RonError::ExpectedUnit
        | RonError::ExpectedChar
        | RonError::ExpectedDifferentLength { .. }
        | RonError::Message(_)
            if !char_at(source, line, column).is_some_and(is_odd) =>
        {
            match found(Containment::EndInclusive) {
                // Inside a list, RON may stop at a stray token (`[1,, 2]`): its own
                // position is then the better one.
                Some(f)
                    if f.is_leaf
                        || matches!(err.code, RonError::ExpectedDifferentStructName { .. }) =>
                {
                    Diagnostic {
                        line: f.innermost.0,
                        column: f.innermost.1,
                        field: f.path,
                        reason,
                    }
                }
                _ => here(reason),
            }
        }
        // Past RON's limit a path would be a hundred `[0]`: name the field that holds it.
        RonError::ExceededRecursionLimit => {
            let mut d = here(reason);
            while d.field.ends_with(']') && !d.field.ends_with("\"]") {
                d.field = locate::parent(&d.field).unwrap_or_default().to_string();
            }
            d
        }
        // Inside a string RON's reason is about the string.
        RonError::ExpectedStringEnd | RonError::InvalidEscape(_) | RonError::Eof => here(reason),
        // Syntax: RON's own position is the best one; name what encloses it, and the
        // character there when it is one nobody can see.
        _ => match char_at(source, line, column).filter(|&c| is_odd(c)) {
            Some(c) => here(format!("unexpected character `{}`", shown(&c.to_string()))),
            None => here(reason),
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

    /// A document with a field of every kind RON knows.
    #[allow(dead_code)]
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        name: String,
        #[serde(default)]
        n: u8,
        #[serde(default)]
        list: Vec<u8>,
        #[serde(default)]
        opt: Option<u8>,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        pair: Option<(u8, u8)>,
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        c: Option<char>,
        #[serde(default)]
        f: f32,
        #[serde(default)]
        m: std::collections::BTreeMap<String, u8>,
        #[serde(default)]
        u: Option<()>,
        #[serde(default)]
        any: Option<ron::Value>,
        #[serde(default)]
        b: Option<Vec<u8>>,
        req: u8,
    }

    #[allow(dead_code)]
    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        A,
        B(u8),
        C { x: u8 },
    }

    fn placed(text: &str) -> String {
        let err = ron::from_str::<Doc>(text).expect_err(text);
        let d = from_ron_error(text, &err);
        format!("{}:{}: {}: {}", d.line, d.column, d.field, d.reason)
    }

    /// Every kind of RON error a text can cause, with the whole message: none names a
    /// Rust type, none says the file is empty, each points at the place.
    #[test]
    fn every_ron_error_kind_has_a_placed_message() {
        let cases = [
            ("(req: 1, name: \"x\"", "1:19: name: unexpected end of file (unclosed bracket?)"),
            ("(req: 1, list: 5)", "1:16: list: expected a list `[...]`"),
            ("(req: 1, list: [1 2])", "1:19: list[1]: expected a comma before this"),
            ("#![foo]\n(req: 1)", "1:4: : expected `#![enable(...)]`"),
            ("#![enable(implicit_some\n(req: 1)", "2:1: : expected `)]` to end `#![enable(...`"),
            ("(req: 1, flag: 1)", "1:16: flag: expected `true` or `false`"),
            ("(req: 1 n: 1)", "1:9: n: expected a comma before this"),
            ("(req: 1, c: Some(\"x\"))", "1:18: c: expected a character such as `'a'`"),
            ("(req: 1, f: x)", "1:13: f: expected a number"),
            ("(req: 1, f: 1._5)", "1:15: f: `_` right after a decimal point"),
            ("(req: 1, n: x)", "1:13: n: expected an integer"),
            ("(req: 1, opt: 5)", "1:15: opt: expected `Some(...)` or `None`"),
            ("(req: 1, opt: Some(1 2))", "1:22: opt[1]: expected `)` to close `Some(`"),
            ("(req: 1, m: 5)", "1:13: m: expected a map `{...}`"),
            ("(req: 1, m: {\"a\" 1})", "1:18: m: expected `:`"),
            ("(req: 1, m: {\"a\": 1 \"b\": 2})", "1:21: m.b: expected a comma before this"),
            ("Foo(req: 1)", "1:1: : unexpected name `Foo`: write `(...)` without a name"),
            ("5", "1:1: : expected `(`"),
            ("(req: 1, u: Some(5))", "1:18: u: expected `()`"),
            ("(req: 1, name: 5)", "1:16: name: expected a string"),
            ("(req: 1, name: \"abc", "1:17: name: unterminated string"),
            ("(req: 1, kind: Some(5))", "1:21: kind: expected a field or variant name, found `5`"),
            ("(req: 1, name: \"\\q\")", "1:19: name: bad escape in a string: unknown escape character"),
            ("(req: 1, n: 300)", "1:13: n: number out of range for this field"),
            ("#![enable(foo)]\n(req: 1)", "1:14: : no RON extension named `foo`"),
            ("(req: 1) /* x", "1:10: : unclosed /* comment: it runs to the end of the file"),
            ("(req: 1, n: _1)", "1:13: n: a number cannot start with `_`"),
            ("(req: 1, n: @)", "1:13: n: expected an integer"),
            ("(req: 1) x", "1:10: : unexpected text after the end of the document"),
            ("(req: 1, kind: Some(A(1)))", "1:22: kind: expected `)` to close `Some(`"),
            ("(req: 1, pair: Some((1, 2, 3)))", "1:28: pair[2]: expected `)`"),
            ("(req: 1, kind: Some(D))", "1:16: kind: unknown variant `D`, expected `A`, `B` or `C`"),
            ("(req: 1, nam: \"x\")", "1:10: nam: unknown field `nam`, expected `name`, `n`, `list`, `opt`, `kind`, `pair`, `flag`, `c`, `f`, `m`, `u`, `any`, `b` or `req`"),
            ("(n: 1)", "1:1: req: missing (this field is required)"),
            ("(req: 1, req: 2)", "1:10: req: field `req` given twice"),
            ("(req: 1, r#: 2)", "1:10: : expected a field or variant name"),
            ("(1: 2)", "1:2: [0]: expected a field or variant name, found `1`"),
            ("(req: 1, kind: Some(B(1, 2)))", "1:26: kind[1]: expected `)`"),
            ("(req: 1, kind: Some(C(y: 1)))", "1:16: kind.x: missing (this field is required)"),
            ("(req: 1, list: [1, 2,, 3])", "1:22: list: expected an integer"),
            ("(req: 1, name: r#\"abc)", "1:19: name: unterminated string"),
            ("(req: 1, c: Some('ab'))", "1:18: c: expected a character such as `'a'`"),
            ("(req: 1, b: Some(b\"x\"))", "1:18: b: expected a list `[...]`"),
            ("(req: 1, n: 0x)", "1:13: n: expected an integer"),
            ("(req: 1, n: 1e5)", "1:13: n: expected an integer"),
            ("(req: 1, name: \"a\\u{110000}\")", "1:28: name: bad escape in a string: not a valid char"),
            ("(req: 1, pair: Some((1)))", "1:22: pair: expected a tuple of size 2, found 1 value"),

        ];
        let got: Vec<String> = cases.iter().map(|(text, _)| placed(text)).collect();
        let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
        assert_eq!(got, want);
        let deep = format!(
            "(req: 1, any: Some({}{}))",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(placed(&deep), "1:83: any: nested too deeply");
    }

    #[test]
    fn odd_characters_are_named() {
        assert_eq!(
            placed("(re\0q: 1)"),
            "1:2: [\"re\\0q\"]: field name `re\\0q` holds `\\0`, which a name cannot hold \
             (letters, digits and `_`)"
        );
        assert_eq!(
            placed("(req: 1, kind: Some(D\u{7}))"),
            "1:16: kind: variant name `D\\u{7}` holds `\\u{7}`, which a name cannot hold \
             (letters, digits and `_`)"
        );
        // After a whole name, the character is what RON stumbles on.
        assert_eq!(
            placed("(req: 1, kind: Some(A\u{7}))"),
            "1:22: kind: unexpected character `\\u{7}`"
        );
        assert_eq!(
            placed("\u{feff}(req: 1)"),
            "1:1: : unexpected character `\\u{feff}`"
        );
        assert_eq!(
            placed("(req:\u{200b} 1)"),
            "1:6: req: unexpected character `\\u{200b}`"
        );
    }

    #[test]
    fn unclosed_comment_is_placed_where_it_opens() {
        assert_eq!(
            placed("/* all of it"),
            "1:1: : unclosed /* comment: it runs to the end of the file"
        );
        assert_eq!(
            placed("(req: 1,\n /* a /* b */\n n: 2)"),
            "2:2: : unclosed /* comment: it runs to the end of the file"
        );
    }
}
