//! Where in a RON text a field path lives.
//!
//! RON reports positions for syntax errors, but once a value is deserialised its position
//! is gone, so a check done afterwards ("core 0 is already the main core") cannot say
//! where the offending value was written. This module recovers it: it reads the RON text
//! on its own, token by token, and walks it towards what is asked (structs, tuples,
//! lists, maps, leaves, each with its position), skipping whatever lies elsewhere. It
//! answers two questions:
//!
//! - [`locate`]: where is the value at `cores.workers[1]`?
//! - [`path_at`]: which field path is written at line 14, column 19?
//!
//! and two about the text as a whole: [`is_blank`] (nothing but white space and
//! comments) and [`unclosed_comment`] (where a `/*` that never closes opens).
//!
//! It knows nothing of any Rust type, so every RON file of the project (hardware
//! profiles, the unit configuration, the rules) can use it for its messages.
//!
//! # Paths
//!
//! A path is a chain of `.field` and `[index]` segments (`ports[2].rx_queues`); a map
//! entry is named `.key` or, for keys that are not plain identifiers, `["key"]` with
//! Rust's escapes. A field name holding a character RON does not allow (a NUL, a quote)
//! is read whole and named the same way, as written: `["mod\0el"]`. The empty path is
//! the whole document. A one-element tuple such as `Some(5)` or `Vdev("net_null0")` is
//! transparent: `cores.sync` names the `Some(...)` and a field or index after it looks
//! inside.
//!
//! # Positions
//!
//! Lines and columns start at 1. Columns count characters (Unicode scalar values), as
//! editors do, not bytes.
//!
//! # Cost
//!
//! Nothing is kept but the few tokens being looked at, so memory does not grow with the
//! text: a refused rules file of tens of megabytes is located without building anything
//! of it. A path costs one pass over the text up to the value; a position, one pass up to
//! it plus one more over each value that encloses it.
//!
//! # Robustness
//!
//! The reader accepts any text: unterminated strings and comments end at the end of the
//! text, a stray token is skipped, and nesting deeper than [`MAX_DEPTH`] is flattened
//! rather than recursed into. On a broken text the answers are best effort, never a
//! panic.

use std::collections::VecDeque;

/// Nesting deeper than this is not descended into (RON itself stops at 128).
pub const MAX_DEPTH: usize = 256;

/// A position in the text: 1-based line and character column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    col: usize,
}

impl Pos {
    const START: Pos = Pos { line: 1, col: 1 };

    fn pair(self) -> (usize, usize) {
        (self.line, self.col)
    }
}

// ───────────────────────────── tokens ─────────────────────────────

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A name (field, variant, `true`), raw identifiers without their `r#`.
    Ident(String),
    /// A string (plain, raw or byte), with escapes resolved where they are plain.
    Str(String),
    /// A number, a char or anything else that is a value on its own.
    Atom,
    /// One punctuation character: `( ) [ ] { } , : # !` or a character RON does not use.
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    start: Pos,
    /// The position just after the token's last character.
    end: Pos,
}

/// A character cursor that keeps line and column.
#[derive(Clone)]
struct Cursor<'a> {
    rest: &'a str,
    pos: Pos,
}

impl<'a> Cursor<'a> {
    fn new(source: &'a str) -> Self {
        Cursor {
            rest: source,
            pos: Pos::START,
        }
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    /// The character after the next one.
    fn peek2(&self) -> Option<char> {
        let mut it = self.rest.chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn starts_with(&self, s: &str) -> bool {
        self.rest.starts_with(s)
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Characters that continue a name: RON's own (letters, digits, `_`) and any other that
/// is neither white space nor RON punctuation. RON stops a name at a stray character
/// (a NUL, a quote) and complains about what follows; reading the name whole lets the
/// message name the field as it is written.
fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | ',' | ':' | '/')
}

/// Characters RON allows in a raw identifier (`r#foo.bar`).
fn is_raw_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

/// The tokens of a text, one at a time.
#[derive(Clone)]
struct Lexer<'a> {
    cur: Cursor<'a>,
    /// Where a block comment that never closes opens.
    unclosed_comment: Option<Pos>,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str) -> Self {
        Lexer {
            cur: Cursor::new(source),
            unclosed_comment: None,
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let cur = &mut self.cur;
        loop {
            let c = cur.peek()?;
            let start = cur.pos;
            if c.is_whitespace() {
                cur.bump();
                continue;
            }
            if cur.starts_with("//") {
                while cur.peek().is_some_and(|c| c != '\n') {
                    cur.bump();
                }
                continue;
            }
            if cur.starts_with("/*") {
                if !skip_block_comment(cur) {
                    self.unclosed_comment.get_or_insert(start);
                }
                continue;
            }
            let kind = if c == '"' {
                Kind::Str(quoted_string(cur))
            } else if c == 'b' && cur.peek2() == Some('"') {
                cur.bump();
                Kind::Str(quoted_string(cur))
            } else if c == 'b' && cur.peek2() == Some('\'') {
                cur.bump();
                char_literal(cur);
                Kind::Atom
            } else if c == 'r' && matches!(cur.peek2(), Some('"' | '#')) {
                match raw_string_or_ident(cur) {
                    Some(kind) => kind,
                    // `r#` followed by nothing usable: skip the `r` alone.
                    None => {
                        cur.bump();
                        Kind::Punct('r')
                    }
                }
            } else if c == '\'' {
                char_literal(cur);
                Kind::Atom
            } else if c.is_ascii_digit()
                || (matches!(c, '+' | '-' | '.') && cur.peek2().is_some_and(|d| d.is_ascii_digit()))
            {
                number(cur);
                Kind::Atom
            } else if is_ident_start(c) {
                let mut s = String::new();
                while let Some(c) = cur.peek().filter(|&c| is_name_char(c)) {
                    s.push(c);
                    cur.bump();
                }
                Kind::Ident(s)
            } else {
                cur.bump();
                Kind::Punct(c)
            };
            return Some(Token {
                kind,
                start,
                end: cur.pos,
            });
        }
    }
}

/// Skips a block comment; RON's block comments nest. Whether it closes: an unclosed one
/// ends the text.
fn skip_block_comment(cur: &mut Cursor<'_>) -> bool {
    let mut level = 0usize;
    loop {
        if cur.starts_with("/*") {
            cur.bump();
            cur.bump();
            level += 1;
        } else if cur.starts_with("*/") {
            cur.bump();
            cur.bump();
            level -= 1;
            if level == 0 {
                return true;
            }
        } else if cur.bump().is_none() {
            return false;
        }
    }
}

/// Reads `"..."` with the cursor on the opening quote; returns the unescaped content.
fn quoted_string(cur: &mut Cursor<'_>) -> String {
    cur.bump();
    let mut s = String::new();
    while let Some(c) = cur.bump() {
        match c {
            '"' => break,
            '\\' => {
                if let Some(e) = escape(cur) {
                    s.push(e);
                }
            }
            c => s.push(c),
        }
    }
    s
}

/// Resolves an escape after its backslash. Unknown escapes keep their character; the
/// locator only needs the text for map keys, RON itself judges validity.
fn escape(cur: &mut Cursor<'_>) -> Option<char> {
    let c = cur.bump()?;
    Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '0' => '\0',
        'x' => {
            let mut v = 0u32;
            for _ in 0..2 {
                match cur.peek().and_then(|d| d.to_digit(16)) {
                    Some(d) => {
                        v = v * 16 + d;
                        cur.bump();
                    }
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\u{fffd}')
        }
        'u' => {
            if cur.peek() != Some('{') {
                return Some('u');
            }
            cur.bump();
            let mut v = 0u32;
            while let Some(c) = cur.peek() {
                cur.bump();
                if c == '}' {
                    break;
                }
                match c.to_digit(16) {
                    Some(d) => v = v.saturating_mul(16).saturating_add(d),
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\u{fffd}')
        }
        other => other,
    })
}

/// Reads `r"..."`, `r#"..."#` (any number of `#`) or a raw identifier `r#name`.
fn raw_string_or_ident(cur: &mut Cursor<'_>) -> Option<Kind> {
    // Look ahead without moving: r, then hashes, then a quote or an identifier.
    let rest = cur.rest;
    let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
    let after = rest[1 + hashes..].chars().next();
    if after == Some('"') {
        for _ in 0..1 + hashes + 1 {
            cur.bump();
        }
        let closing = format!("\"{}", "#".repeat(hashes));
        let mut s = String::new();
        loop {
            if cur.starts_with(&closing) {
                for _ in 0..closing.len() {
                    cur.bump();
                }
                break;
            }
            match cur.bump() {
                Some(c) => s.push(c),
                None => break,
            }
        }
        return Some(Kind::Str(s));
    }
    if hashes == 1 && after.is_some_and(is_raw_ident_char) {
        cur.bump();
        cur.bump();
        let mut s = String::new();
        while let Some(c) = cur.peek().filter(|&c| is_raw_ident_char(c)) {
            s.push(c);
            cur.bump();
        }
        return Some(Kind::Ident(s));
    }
    None
}

/// Reads a char literal with the cursor on the opening quote, up to its closing quote:
/// a broken one (`'ab'`) is still one value. It stops at the end of the line so that it
/// cannot swallow the rest of the text.
fn char_literal(cur: &mut Cursor<'_>) {
    cur.bump();
    while let Some(c) = cur.peek().filter(|&c| c != '\n') {
        cur.bump();
        match c {
            '\'' => return,
            '\\' => {
                let _ = escape(cur);
            }
            _ => {}
        }
    }
}

/// Reads a number: digits, letters (hex, suffixes, `e`), `_`, `.` and an exponent sign.
fn number(cur: &mut Cursor<'_>) {
    if matches!(cur.peek(), Some('+' | '-')) {
        cur.bump();
    }
    let hex = cur.starts_with("0x") || cur.starts_with("0X");
    let mut prev = ' ';
    while let Some(c) = cur.peek() {
        let sign_in_exponent = matches!(c, '+' | '-') && matches!(prev, 'e' | 'E') && !hex;
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' || sign_in_exponent {
            prev = c;
            cur.bump();
        } else {
            break;
        }
    }
}

// ───────────────────────────── walking ─────────────────────────────

/// What a value is, as its first token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A number, string, char, bool, unit variant or anything not understood.
    Leaf,
    /// `Name(a: 1, b: 2)` or `(a: 1)`.
    Struct,
    /// `Name(x, y)`, `(x, y)`, `Some(x)`.
    Tuple,
    /// `[x, y]`.
    List,
    /// `{k: v}`.
    Map,
}

/// A value whose first token has been read. For a container the walker stands just
/// after its opening bracket.
#[derive(Clone, Copy, Debug)]
struct Opened {
    start: Pos,
    /// For a leaf, where it ends; a container's end is known once it has been walked.
    end: Pos,
    shape: Shape,
    /// The depth of its children.
    inner: usize,
}

/// Reads values out of the token stream, one level at a time, keeping only the two
/// tokens it looks ahead. Cloning it is cheap: that is how it looks at a value and comes
/// back.
#[derive(Clone)]
struct Walker<'a> {
    lex: Lexer<'a>,
    ahead: VecDeque<Token>,
    /// The end of the last consumed token: where an unclosed container stops.
    last_end: Pos,
}

fn is_closer(kind: &Kind) -> bool {
    matches!(kind, Kind::Punct(')' | ']' | '}'))
}

/// What comes next inside a container.
enum Step {
    /// Its own closing bracket.
    Close,
    /// Another container's closing bracket (or the end): the container is unclosed.
    Stop,
    Comma,
    Other,
}

impl<'a> Walker<'a> {
    /// A walker at the document's value, past its `#![enable(...)]` attributes.
    fn new(source: &'a str) -> Self {
        let mut w = Walker {
            lex: Lexer::new(source),
            ahead: VecDeque::new(),
            last_end: Pos::START,
        };
        w.skip_attributes();
        w
    }

    fn peek_at(&mut self, n: usize) -> Option<&Kind> {
        while self.ahead.len() <= n {
            let t = self.lex.next()?;
            self.ahead.push_back(t);
        }
        self.ahead.get(n).map(|t| &t.kind)
    }

    fn peek(&mut self) -> Option<&Kind> {
        self.peek_at(0)
    }

    /// Where the next token starts.
    fn next_start(&mut self) -> Option<Pos> {
        self.peek()?;
        self.ahead.front().map(|t| t.start)
    }

    fn next_is(&mut self, kind: &Kind) -> bool {
        self.peek() == Some(kind)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = match self.ahead.pop_front() {
            Some(t) => t,
            None => self.lex.next()?,
        };
        self.last_end = t.end;
        Some(t)
    }

    /// Skips `#![enable(...)]` attributes at the top of the document.
    fn skip_attributes(&mut self) {
        while self.next_is(&Kind::Punct('#')) && self.peek_at(1) == Some(&Kind::Punct('!')) {
            self.bump();
            self.bump();
            if !self.next_is(&Kind::Punct('[')) {
                return;
            }
            let mut depth = 0usize;
            while let Some(t) = self.bump() {
                match t.kind {
                    Kind::Punct('[') => depth += 1,
                    Kind::Punct(']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Reads the first token of a value (and the `(` after a name). `None`, consuming
    /// nothing, at the end or at a closing bracket.
    fn open(&mut self, depth: usize) -> Option<Opened> {
        if is_closer(self.peek()?) {
            return None;
        }
        let tok = self.bump()?;
        let leaf = Opened {
            start: tok.start,
            end: tok.end,
            shape: Shape::Leaf,
            inner: depth + 1,
        };
        if depth >= MAX_DEPTH {
            return Some(leaf);
        }
        let shape = match tok.kind {
            Kind::Ident(_) if self.next_is(&Kind::Punct('(')) => {
                self.bump();
                self.parens_shape()
            }
            Kind::Punct('(') => self.parens_shape(),
            Kind::Punct('[') => Shape::List,
            Kind::Punct('{') => Shape::Map,
            _ => return Some(leaf),
        };
        Some(Opened { shape, ..leaf })
    }

    /// The value after a field's colon; an empty leaf where it is missing (`a: )`).
    fn open_or_empty(&mut self, depth: usize) -> Opened {
        let here = self.last_end;
        self.open(depth).unwrap_or(Opened {
            start: here,
            end: here,
            shape: Shape::Leaf,
            inner: depth + 1,
        })
    }

    /// After `(`: named fields if it starts with a field name, else tuple items.
    fn parens_shape(&mut self) -> Shape {
        if self.field_ahead() {
            Shape::Struct
        } else {
            Shape::Tuple
        }
    }

    /// Whether a field name comes next: a name and a colon, or a name directly followed
    /// by a value (the colon forgotten, which RON reports at the value).
    fn field_ahead(&mut self) -> bool {
        matches!(self.peek(), Some(Kind::Ident(_)))
            && matches!(
                self.peek_at(1),
                Some(Kind::Punct(':') | Kind::Ident(_) | Kind::Str(_) | Kind::Atom)
            )
    }

    fn step(&mut self, close: char) -> Step {
        match self.peek() {
            None => Step::Stop,
            Some(Kind::Punct(c)) if *c == close => Step::Close,
            Some(k) if is_closer(k) => Step::Stop,
            Some(Kind::Punct(',')) => Step::Comma,
            Some(_) => Step::Other,
        }
    }

    /// Moves to the next child of a container of `shape` whose children are at `depth`:
    /// for a field or map entry returns its name and where it is written, with the walker
    /// at its value. `None` when the container ends: its closing bracket is consumed, a
    /// wrong one is left for the enclosing container. Stray tokens are skipped.
    fn next_child(&mut self, shape: Shape, depth: usize) -> Option<Option<(String, Pos)>> {
        let close = match shape {
            Shape::Struct | Shape::Tuple => ')',
            Shape::List => ']',
            Shape::Map => '}',
            Shape::Leaf => return None,
        };
        loop {
            match self.step(close) {
                Step::Close => {
                    self.bump();
                    return None;
                }
                Step::Stop => return None,
                Step::Comma => {
                    self.bump();
                }
                Step::Other => match shape {
                    Shape::Struct => {
                        if self.field_ahead() {
                            let name = self.bump()?;
                            if self.next_is(&Kind::Punct(':')) {
                                self.bump();
                            }
                            let Kind::Ident(key) = name.kind else {
                                continue;
                            };
                            return Some(Some((key, name.start)));
                        }
                        // Not a field: skip it whole.
                        self.skip_value(depth);
                    }
                    Shape::Map => {
                        if let Some(entry) = self.map_key(depth) {
                            return Some(Some(entry));
                        }
                    }
                    _ => return Some(None),
                },
            }
        }
    }

    /// A map key and its colon, consumed. A string or name is its own text; any other
    /// key (a number, a tuple) is named by where it starts, which tells entries apart.
    /// `None`, with the key consumed, when no colon follows.
    fn map_key(&mut self, depth: usize) -> Option<(String, Pos)> {
        let text = match self.peek() {
            Some(Kind::Str(s) | Kind::Ident(s)) => Some(s.clone()),
            _ => None,
        };
        let (start, _) = self.skip_value(depth)?;
        if !self.next_is(&Kind::Punct(':')) {
            return None;
        }
        self.bump();
        let key = text.unwrap_or_else(|| format!("@{}:{}", start.line, start.col));
        Some((key, start))
    }

    /// Reads a whole value: where it starts and ends.
    fn skip_value(&mut self, depth: usize) -> Option<(Pos, Pos)> {
        let v = self.open(depth)?;
        Some((v.start, self.finish(v)))
    }

    /// Reads the rest of an opened value; where it ends.
    fn finish(&mut self, v: Opened) -> Pos {
        if v.shape == Shape::Leaf {
            return v.end;
        }
        while self.next_child(v.shape, v.inner).is_some() {
            self.skip_value(v.inner);
        }
        self.last_end
    }

    /// For a one-element tuple (`Some(x)`): opens the element. Otherwise `None`, and the
    /// walker has not moved.
    fn newtype_item(&mut self, node: Opened) -> Option<Opened> {
        if node.shape != Shape::Tuple {
            return None;
        }
        let back = self.clone();
        let single = self.next_child(Shape::Tuple, node.inner).is_some() && {
            self.skip_value(node.inner);
            self.next_child(Shape::Tuple, node.inner).is_none()
        };
        *self = back;
        if !single {
            return None;
        }
        self.next_child(Shape::Tuple, node.inner)?;
        self.open(node.inner)
    }

    /// Opens item `n` of a list or tuple.
    fn nth_item(&mut self, node: Opened, n: usize) -> Option<Opened> {
        let mut i = 0;
        while self.next_child(node.shape, node.inner).is_some() {
            if i == n {
                return self.open(node.inner);
            }
            self.skip_value(node.inner);
            i += 1;
        }
        None
    }

    /// Where a segment leads from `node` (opened): the child, opened, and for a field the
    /// position of its name.
    fn child(&mut self, node: Opened, seg: &Segment) -> Option<(Opened, Option<Pos>)> {
        let mut node = node;
        for _ in 0..MAX_DEPTH {
            match (node.shape, seg) {
                (Shape::Struct | Shape::Map, Segment::Field(name)) => {
                    while let Some(entry) = self.next_child(node.shape, node.inner) {
                        let (key, at) = entry?;
                        if key == *name {
                            return Some((self.open_or_empty(node.inner), Some(at)));
                        }
                        self.skip_value(node.inner);
                    }
                    return None;
                }
                (Shape::List, Segment::Index(i)) => {
                    return self.nth_item(node, *i).map(|n| (n, None))
                }
                // `Some([a, b])[1]` means b; `Pair(a, b)[1]` means b as well.
                (Shape::Tuple, Segment::Index(i)) => match self.newtype_item(node) {
                    Some(inner) if matches!(inner.shape, Shape::List | Shape::Tuple) => {
                        node = inner;
                    }
                    Some(inner) => return (*i == 0).then_some((inner, None)),
                    None => return self.nth_item(node, *i).map(|n| (n, None)),
                },
                _ => node = self.newtype_item(node)?,
            }
        }
        None
    }
}

// ───────────────────────────── paths ─────────────────────────────

#[derive(Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// Splits `a.b[1]["k"].c` into segments; `None` if the path is malformed.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = path;
    let mut first = true;
    while !rest.is_empty() {
        if rest.starts_with("[\"") {
            // A quoted key, with escapes: it may hold dots, brackets and quotes. An
            // unterminated one runs to the end, and then no `]` follows.
            let mut cur = Cursor::new(&rest[1..]);
            let key = quoted_string(&mut cur);
            rest = cur.rest.strip_prefix(']')?;
            out.push(Segment::Field(key));
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            out.push(Segment::Index(r[..close].trim().parse().ok()?));
            rest = &r[close + 1..];
        } else {
            let r = if first { rest } else { rest.strip_prefix('.')? };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            out.push(Segment::Field(r[..end].to_string()));
            rest = &r[end..];
        }
        first = false;
    }
    Some(out)
}

/// Whether a key can be written `.key` in a path.
fn is_plain(key: &str) -> bool {
    !key.is_empty() && key.chars().all(is_raw_ident_char) && !key.contains('.')
}

fn push_field(path: &mut String, key: &str) {
    if is_plain(key) {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("[{key:?}]"));
    }
}

/// The node at `path`, opened, and the position of its key when the last segment is a
/// field.
fn find(source: &str, path: &str) -> Option<(Pos, Option<Pos>)> {
    let segs = segments(path)?;
    let mut w = Walker::new(source);
    let mut node = w.open(0)?;
    let mut key = None;
    for seg in &segs {
        (node, key) = w.child(node, seg)?;
    }
    Some((node.start, key))
}

/// The position (line, column) where the value at `path` starts, e.g. the `0` of
/// `workers: [1, 0]` for `cores.workers[1]`. `None` when the path is not in the text.
pub fn locate(source: &str, path: &str) -> Option<(usize, usize)> {
    find(source, path).map(|(start, _)| start.pair())
}

/// The position of the field name for a path ending in a field (`rx_queues` in
/// `rx_queues: 0`); for a path ending in an index, the position of the value.
pub fn locate_key(source: &str, path: &str) -> Option<(usize, usize)> {
    find(source, path).map(|(start, key)| key.unwrap_or(start).pair())
}

/// The path one level up: `ports[2]` for `ports[2].mtu`, `ports` for `ports[2]`, the
/// empty path for `ports`, `None` for the empty path.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    // A quoted key may hold dots and brackets: cut before the last segment properly.
    if let Some(head) = path.strip_suffix("\"]") {
        if let Some(open) = head.rfind("[\"") {
            return Some(&path[..open]);
        }
    }
    Some(match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    })
}

/// [`locate`], falling back to the nearest ancestor that is in the text, then to line 1
/// column 1: a message always has a place to point to, even for a field that is absent
/// because a default applied.
pub fn locate_nearest(source: &str, path: &str) -> (usize, usize) {
    let Some(segs) = segments(path) else {
        return parent(path).map_or((1, 1), |p| locate_nearest(source, p));
    };
    let mut w = Walker::new(source);
    let Some(mut node) = w.open(0) else {
        return (1, 1);
    };
    for seg in &segs {
        match w.child(node, seg) {
            Some((n, _)) => node = n,
            None => break,
        }
    }
    node.start.pair()
}

/// How [`path_at`] decides whether a position belongs to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containment {
    /// The position may be just after the node's last character: RON reports some value
    /// errors (a number out of range) after the value.
    EndInclusive,
    /// The position must be on one of the node's characters: RON reports a missing
    /// field at the struct's closing parenthesis, which is just after its last field.
    Strict,
}

/// What [`path_at_detailed`] found at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The field path of the innermost value or field there (empty: the document).
    pub path: String,
    /// Where the value named by `path` starts (what [`locate`] gives for `path`).
    pub value: (usize, usize),
    /// Where the innermost value at the position starts: inside a one-element tuple
    /// such as `Some(70000)` this is the `70000`, while `value` is the `Some`.
    pub innermost: (usize, usize),
    /// Where its field name starts, when it is a field or map entry.
    pub key: Option<(usize, usize)>,
    /// Whether the innermost thing is a struct or map (something that has fields).
    pub has_fields: bool,
    /// Whether the innermost thing is a single token (a number, a string, a name).
    pub is_leaf: bool,
}

/// The innermost field path written at (line, column), see [`path_at_detailed`].
pub fn path_at(source: &str, line: usize, column: usize) -> Option<String> {
    path_at_detailed(source, line, column, Containment::EndInclusive).map(|f| f.path)
}

/// The innermost value at (line, column) with its path and positions. A field counts
/// from its name to the end of its value. `None` when the text has no value at all.
pub fn path_at_detailed(
    source: &str,
    line: usize,
    column: usize,
    mode: Containment,
) -> Option<Found> {
    let pos = Pos { line, col: column };
    let inside = |start: Pos, end: Pos| match mode {
        Containment::EndInclusive => start <= pos && pos <= end,
        Containment::Strict => start <= pos && pos < end,
    };
    /// A value the walk is in: it starts at or before the position.
    struct Level {
        node: Opened,
        /// Where it counts from: its field name, or its start.
        from: Pos,
        /// The length of the path that names it.
        path_len: usize,
        /// Where the value its path names starts, and that value's field name.
        named: Pos,
        key: Option<Pos>,
        /// Its children opened so far.
        children: usize,
    }
    let mut w = Walker::new(source);
    let root = w.open(0)?;
    let mut path = String::new();
    let mut levels = vec![Level {
        node: root,
        from: root.start,
        path_len: 0,
        named: root.start,
        key: None,
        children: 0,
    }];
    // One pass up to the position: a child is entered as soon as it starts at or
    // before the position and left again if it ends before it.
    loop {
        let outermost = levels.len() == 1;
        let Some(top) = levels.last_mut() else {
            break;
        };
        let node = top.node;
        let Some(entry) = w.next_child(node.shape, node.inner) else {
            let end = if node.shape == Shape::Leaf {
                node.end
            } else {
                w.last_end
            };
            if outermost || inside(top.from, end) {
                break;
            }
            levels.pop();
            path.truncate(levels.last().map_or(0, |l| l.path_len));
            continue;
        };
        let start = match &entry {
            Some((_, at)) => *at,
            None => w.next_start().unwrap_or(w.last_end),
        };
        if start > pos {
            break;
        }
        let index = top.children;
        top.children += 1;
        // A one-element tuple (`Some(x)`) is transparent.
        let alone = node.shape == Shape::Tuple && index == 0 && {
            let mut ahead = w.clone();
            ahead.skip_value(node.inner);
            ahead.next_child(Shape::Tuple, node.inner).is_none()
        };
        let (outer_named, outer_key) = (top.named, top.key);
        let child = w.open_or_empty(node.inner);
        let (named, key) = match entry {
            Some((name, at)) => {
                push_field(&mut path, &name);
                (child.start, Some(at))
            }
            None if alone => (outer_named, outer_key),
            None => {
                path.push_str(&format!("[{index}]"));
                (child.start, None)
            }
        };
        levels.push(Level {
            node: child,
            from: start,
            path_len: path.len(),
            named,
            key,
            children: 0,
        });
    }
    let top = levels.last()?;
    Some(Found {
        path,
        value: top.named.pair(),
        innermost: top.node.start.pair(),
        key: top.key.map(Pos::pair),
        has_fields: matches!(top.node.shape, Shape::Struct | Shape::Map),
        is_leaf: top.node.shape == Shape::Leaf,
    })
}

/// Whether the text holds nothing but white space and closed comments: an empty file.
pub fn is_blank(source: &str) -> bool {
    let mut lex = Lexer::new(source);
    lex.next().is_none() && lex.unclosed_comment.is_none()
}

/// Where the block comment that never closes opens (it runs to the end of the text),
/// if there is one. RON reports it at the end of the text, far from the `/*` at fault.
pub fn unclosed_comment(source: &str) -> Option<(usize, usize)> {
    let mut lex = Lexer::new(source);
    lex.by_ref().for_each(drop);
    lex.unclosed_comment.map(Pos::pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"// A comment with "quotes", [brackets] and (parens).
Profile(
    model: "t,est[1](",  /* block /* nested */ comment ) */
    cores: (main: 0, workers: [1, 2, 3], sync: Some(4)),
    ports: [
        (name: "a", device: Vdev("net_af_packet0,iface=a"), rx: 1),
        (
            name: "b", // trailing ] comment
            device: Pci("0000:03:00.0"),
            rx: 2,
        ),
    ],
    idle: Adaptive(max_sleep_us: 100),
    raw: r#"a "quoted" ] thing"#,
    ch: ']',
    esc: "a\"],b",
    map: {"198.18.0.1": 5, key: 6},
    nested: Some((inner: [[1, 2], [3, 4]])),
)
"##;

    #[test]
    fn top_level_fields() {
        assert_eq!(locate(DOC, "model"), Some((3, 12)));
        assert_eq!(locate(DOC, "cores"), Some((4, 12)));
        assert_eq!(locate_key(DOC, "cores"), Some((4, 5)));
        assert_eq!(locate(DOC, ""), Some((2, 1)));
    }

    #[test]
    fn nested_struct_and_list() {
        assert_eq!(locate(DOC, "cores.main"), Some((4, 19)));
        assert_eq!(locate(DOC, "cores.workers"), Some((4, 31)));
        assert_eq!(locate(DOC, "cores.workers[0]"), Some((4, 32)));
        assert_eq!(locate(DOC, "cores.workers[2]"), Some((4, 38)));
        assert_eq!(locate(DOC, "cores.workers[3]"), None);
    }

    #[test]
    fn option_and_newtype_variants() {
        assert_eq!(locate(DOC, "cores.sync"), Some((4, 48)));
        assert_eq!(locate(DOC, "cores.sync[0]"), Some((4, 53)));
        assert_eq!(locate(DOC, "ports[0].device"), Some((6, 29)));
        assert_eq!(locate(DOC, "ports[0].device[0]"), Some((6, 34)));
        assert_eq!(locate(DOC, "idle.max_sleep_us"), Some((13, 34)));
        assert_eq!(locate(DOC, "nested.inner[1][0]"), Some((18, 36)));
    }

    #[test]
    fn list_of_structs_across_lines_and_comments() {
        assert_eq!(locate(DOC, "ports[0].rx"), Some((6, 65)));
        assert_eq!(locate(DOC, "ports[1]"), Some((7, 9)));
        assert_eq!(locate(DOC, "ports[1].device"), Some((9, 21)));
        assert_eq!(locate(DOC, "ports[1].rx"), Some((10, 17)));
        assert_eq!(locate_key(DOC, "ports[1].rx"), Some((10, 13)));
    }

    #[test]
    fn strings_chars_and_raw_strings_do_not_confuse() {
        assert_eq!(locate(DOC, "raw"), Some((14, 10)));
        assert_eq!(locate(DOC, "ch"), Some((15, 9)));
        assert_eq!(locate(DOC, "esc"), Some((16, 10)));
        assert_eq!(locate(DOC, "map"), Some((17, 10)));
    }

    #[test]
    fn map_keys() {
        assert_eq!(locate(DOC, "map[\"198.18.0.1\"]"), Some((17, 25)));
        assert_eq!(locate(DOC, "map.key"), Some((17, 33)));
    }

    #[test]
    fn unknown_paths() {
        assert_eq!(locate(DOC, "nope"), None);
        assert_eq!(locate(DOC, "ports[7].rx"), None);
        assert_eq!(locate(DOC, "cores..main"), None);
        assert_eq!(locate(DOC, "cores[x]"), None);
        assert_eq!(locate_nearest(DOC, "ports[1].mtu"), (7, 9));
        assert_eq!(locate_nearest(DOC, "ports[9].mtu"), (5, 12));
        assert_eq!(locate_nearest(DOC, "nothing.here"), (2, 1));
        assert_eq!(locate_nearest("", "a.b"), (1, 1));
    }

    #[test]
    fn parents() {
        assert_eq!(parent("ports[2].mtu"), Some("ports[2]"));
        assert_eq!(parent("ports[2]"), Some("ports"));
        assert_eq!(parent("ports"), Some(""));
        assert_eq!(parent(""), None);
        assert_eq!(parent("map[\"1.2.3.4\"]"), Some("map"));
    }

    #[test]
    fn columns_count_characters() {
        let doc = "(name: \"é€\", x: 5)";
        assert_eq!(locate(doc, "x"), Some((1, 17)));
    }

    #[test]
    fn path_at_positions() {
        assert_eq!(path_at(DOC, 4, 32).as_deref(), Some("cores.workers[0]"));
        assert_eq!(path_at(DOC, 4, 33).as_deref(), Some("cores.workers[0]"));
        assert_eq!(path_at(DOC, 4, 23).as_deref(), Some("cores.workers"));
        assert_eq!(path_at(DOC, 10, 15).as_deref(), Some("ports[1].rx"));
        assert_eq!(path_at(DOC, 6, 40).as_deref(), Some("ports[0].device"));
        assert_eq!(path_at(DOC, 13, 35).as_deref(), Some("idle.max_sleep_us"));
        assert_eq!(path_at(DOC, 17, 26).as_deref(), Some("map[\"198.18.0.1\"]"));
        assert_eq!(path_at(DOC, 1, 1).as_deref(), Some(""));
        // Every path that path_at gives back leads to the same value through locate.
        for line in 1..=20 {
            for col in 1..=80 {
                if let Some(f) = path_at_detailed(DOC, line, col, Containment::EndInclusive) {
                    assert_eq!(locate(DOC, &f.path), Some(f.value), "{line}:{col} {f:?}");
                }
            }
        }
    }

    #[test]
    fn strict_containment_for_closing_parens() {
        let doc = "(ports: [(name: \"a\", rx: 1)])";
        // The `)` closing the port is right after `1`.
        let f = path_at_detailed(doc, 1, 27, Containment::Strict).unwrap();
        assert_eq!(f.path, "ports[0]");
        assert!(f.has_fields);
        let f = path_at_detailed(doc, 1, 27, Containment::EndInclusive).unwrap();
        assert_eq!(f.path, "ports[0].rx");
    }

    #[test]
    fn attributes_are_skipped() {
        let doc = "#![enable(implicit_some)]\n(a: 1, b: [2])";
        assert_eq!(locate(doc, "b[0]"), Some((2, 12)));
    }

    #[test]
    fn broken_text_never_panics() {
        let samples = [
            "",
            "(",
            ")",
            "]]]",
            "(a: ",
            "(a: [1, 2",
            "(a: \"unterminated",
            "(a: /* unclosed",
            "(a: r#\"raw",
            "(a: r#",
            "(a: 'x",
            "(a: '\\u{ffffffffff}')",
            "(a: \"\\u{110000}\\x\")",
            "{: 1, 2: , \"k\"}",
            "(a: 1 b: 2, c: (x: ]))",
            "#![enable(",
            "#!",
            "r",
            "-",
            "1e+5e-",
        ];
        for s in samples {
            let _ = locate(s, "a");
            let _ = locate_nearest(s, "a.b[0]");
            let _ = path_at(s, 1, 3);
        }
        let deep = "[".repeat(10_000);
        assert_eq!(locate(&deep, "[0][0]"), Some((1, 3)));
        let _ = path_at(&deep, 1, 9_999);
        // Every prefix of the sample document, at every position.
        for (i, _) in DOC.char_indices() {
            let s = &DOC[..i];
            let _ = locate_nearest(s, "ports[1].device");
            let _ = path_at(s, 7, 9);
        }
    }

    #[test]
    fn odd_names_are_read_whole_and_named_escaped() {
        let doc = "(mod\0el: 1, t\"pm: [2], a\\b: 3, x.y: 4, ok: 5)";
        assert_eq!(path_at(doc, 1, 2).as_deref(), Some("[\"mod\\0el\"]"));
        assert_eq!(path_at(doc, 1, 20).as_deref(), Some("[\"t\\\"pm\"][0]"));
        assert_eq!(path_at(doc, 1, 24).as_deref(), Some("[\"a\\\\b\"]"));
        assert_eq!(path_at(doc, 1, 32).as_deref(), Some("[\"x.y\"]"));
        assert_eq!(path_at(doc, 1, 40).as_deref(), Some("ok"));
        // Each path leads back to its value.
        assert_eq!(locate(doc, "[\"mod\\0el\"]"), Some((1, 10)));
        assert_eq!(locate(doc, "[\"t\\\"pm\"][0]"), Some((1, 20)));
        assert_eq!(locate(doc, "[\"a\\\\b\"]"), Some((1, 29)));
        assert_eq!(locate(doc, "[\"x.y\"]"), Some((1, 37)));
        assert_eq!(parent("a[\"t\\\"]\"]"), Some("a"));
        assert_eq!(locate(doc, "[\"unterminated]"), None);
    }

    #[test]
    fn a_forgotten_colon_still_names_the_field() {
        let doc = "(rules: [(action Pass)])";
        assert_eq!(path_at(doc, 1, 18).as_deref(), Some("rules[0].action"));
        assert_eq!(locate(doc, "rules[0].action"), Some((1, 18)));
    }

    #[test]
    fn blank_texts_and_unclosed_comments() {
        for blank in [
            "",
            "  \n\t",
            "// only a comment",
            "/* a /* nested */ one */\n",
        ] {
            assert!(is_blank(blank), "{blank:?}");
            assert_eq!(unclosed_comment(blank), None);
        }
        for text in ["/* never closed", "(a: 1)", "#![enable(implicit_some)]"] {
            assert!(!is_blank(text), "{text:?}");
        }
        assert_eq!(unclosed_comment("/* x"), Some((1, 1)));
        assert_eq!(unclosed_comment("(a: 1,\n  /* a /* b */ c"), Some((2, 3)));
        assert_eq!(unclosed_comment("(a: \"/*\") // /*"), None);
    }

    #[test]
    fn a_broken_char_literal_is_one_value() {
        let doc = "(c: Some('ab'), d: 1)";
        assert_eq!(path_at(doc, 1, 11).as_deref(), Some("c"));
        assert_eq!(locate(doc, "d"), Some((1, 20)));
    }
}
