//! Where in a RON text a field path lives.
//!
//! RON reports positions for syntax errors, but once a value is deserialised its position
//! is gone, so a check done afterwards ("core 0 is already the main core") cannot say
//! where the offending value was written. This module recovers it: it tokenises the RON
//! text on its own, builds a light tree of what it saw (structs, tuples, lists, maps,
//! leaves, each with its position), and answers two questions:
//!
//! - [`locate`]: where is the value at `cores.workers[1]`?
//! - [`path_at`]: which field path is written at line 14, column 19?
//!
//! It knows nothing of any Rust type, so every RON file of the project (hardware
//! profiles, the unit configuration) can use it for its messages.
//!
//! # Paths
//!
//! A path is a chain of `.field` and `[index]` segments (`ports[2].rx_queues`); a map
//! entry is named `.key` or, for keys that are not plain identifiers, `["key"]`. The
//! empty path is the whole document. A one-element tuple such as `Some(5)` or
//! `Vdev("net_null0")` is transparent: `cores.sync` names the `Some(...)` and a field or
//! index after it looks inside.
//!
//! # Positions
//!
//! Lines and columns start at 1. Columns count characters (Unicode scalar values), as
//! editors do, not bytes.
//!
//! # Robustness
//!
//! The tokeniser and the tree builder accept any text: unterminated strings and
//! comments end at the end of the text, a stray token is skipped, and nesting deeper
//! than [`MAX_DEPTH`] is flattened rather than recursed into. On a broken text the
//! answers are best effort, never a panic.

/// Nesting deeper than this is not descended into (RON itself stops at 128).
pub const MAX_DEPTH: usize = 256;

/// A position in the text: 1-based line and character column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    col: usize,
}

impl Pos {
    fn pair(self) -> (usize, usize) {
        (self.line, self.col)
    }
}

// ───────────────────────────── tokens ─────────────────────────────

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// An identifier, raw identifiers without their `r#`.
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
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    rest: &'a str,
    pos: Pos,
}

impl<'a> Cursor<'a> {
    fn new(source: &'a str) -> Self {
        Cursor {
            chars: source.chars().peekable(),
            rest: source,
            pos: Pos { line: 1, col: 1 },
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// The character after the next one.
    fn peek2(&self) -> Option<char> {
        let mut it = self.rest.chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
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

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters RON allows in a raw identifier (`r#foo.bar`).
fn is_raw_ident_char(c: char) -> bool {
    is_ident_char(c) || matches!(c, '.' | '+' | '-')
}

fn tokenize(source: &str) -> Vec<Token> {
    let mut cur = Cursor::new(source);
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        let start = cur.pos;
        if c.is_whitespace() {
            cur.bump();
            continue;
        }
        if cur.starts_with("//") {
            while let Some(c) = cur.peek() {
                if c == '\n' {
                    break;
                }
                cur.bump();
            }
            continue;
        }
        if cur.starts_with("/*") {
            skip_block_comment(&mut cur);
            continue;
        }
        let kind = if c == '"' {
            Kind::Str(quoted_string(&mut cur))
        } else if c == 'b' && cur.peek2() == Some('"') {
            cur.bump();
            Kind::Str(quoted_string(&mut cur))
        } else if c == 'b' && cur.peek2() == Some('\'') {
            cur.bump();
            char_literal(&mut cur);
            Kind::Atom
        } else if c == 'r' && matches!(cur.peek2(), Some('"' | '#')) {
            match raw_string_or_ident(&mut cur) {
                Some(kind) => kind,
                // `r#` followed by nothing usable: skip the `r` alone.
                None => {
                    cur.bump();
                    Kind::Punct('r')
                }
            }
        } else if c == '\'' {
            char_literal(&mut cur);
            Kind::Atom
        } else if c.is_ascii_digit()
            || (matches!(c, '+' | '-' | '.') && cur.peek2().is_some_and(|d| d.is_ascii_digit()))
        {
            number(&mut cur);
            Kind::Atom
        } else if is_ident_start(c) {
            let mut s = String::new();
            while let Some(c) = cur.peek().filter(|&c| is_ident_char(c)) {
                s.push(c);
                cur.bump();
            }
            Kind::Ident(s)
        } else {
            cur.bump();
            Kind::Punct(c)
        };
        out.push(Token {
            kind,
            start,
            end: cur.pos,
        });
    }
    out
}

/// Skips a block comment; RON's block comments nest. An unclosed one ends the text.
fn skip_block_comment(cur: &mut Cursor<'_>) {
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
                return;
            }
        } else if cur.bump().is_none() {
            return;
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

/// Reads a char literal with the cursor on the opening quote. A broken one stops at the
/// end of the line so that it cannot swallow the rest of the text.
fn char_literal(cur: &mut Cursor<'_>) {
    cur.bump();
    if cur.peek() == Some('\\') {
        cur.bump();
        let _ = escape(cur);
    } else if cur.peek().is_some_and(|c| c != '\n' && c != '\'') {
        cur.bump();
    }
    if cur.peek() == Some('\'') {
        cur.bump();
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

// ───────────────────────────── tree ─────────────────────────────

#[derive(Debug)]
struct Node {
    start: Pos,
    end: Pos,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    /// A number, string, char, bool, unit variant or anything not understood.
    Leaf,
    /// `Name(a: 1, b: 2)` or `(a: 1)`.
    Struct(Vec<Entry>),
    /// `Name(x, y)`, `(x, y)`, `Some(x)`.
    Tuple(Vec<Node>),
    /// `[x, y]`.
    List(Vec<Node>),
    /// `{k: v}`; keys are given as text.
    Map(Vec<Entry>),
}

#[derive(Debug)]
struct Entry {
    key: String,
    key_pos: Pos,
    value: Node,
}

impl Entry {
    fn end(&self) -> Pos {
        self.value.end
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

fn is_closer(kind: &Kind) -> bool {
    matches!(kind, Kind::Punct(')' | ']' | '}'))
}

impl Parser {
    fn peek(&self) -> Option<&Kind> {
        self.toks.get(self.i).map(|t| &t.kind)
    }

    fn peek_at(&self, n: usize) -> Option<&Kind> {
        self.toks.get(self.i + n).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// The end of the last consumed token: where an unclosed container stops.
    fn last_end(&self) -> Pos {
        self.i
            .checked_sub(1)
            .and_then(|j| self.toks.get(j))
            .map_or(Pos { line: 1, col: 1 }, |t| t.end)
    }

    /// Skips `#![enable(...)]` attributes at the top of the document.
    fn skip_attributes(&mut self) {
        while self.peek() == Some(&Kind::Punct('#')) && self.peek_at(1) == Some(&Kind::Punct('!')) {
            self.i += 2;
            if self.peek() != Some(&Kind::Punct('[')) {
                return;
            }
            let mut depth = 0usize;
            while let Some(t) = self.next() {
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

    /// Parses one value. Consumes at least one token unless at the end or at a closer.
    fn value(&mut self, depth: usize) -> Option<Node> {
        let kind = self.peek()?.clone();
        if is_closer(&kind) {
            return None;
        }
        let tok = self.next()?;
        let leaf = Node {
            start: tok.start,
            end: tok.end,
            shape: Shape::Leaf,
        };
        if depth >= MAX_DEPTH {
            return Some(leaf);
        }
        match kind {
            Kind::Ident(_) if self.peek() == Some(&Kind::Punct('(')) => {
                self.i += 1;
                Some(self.parens(tok.start, depth + 1))
            }
            Kind::Punct('(') => Some(self.parens(tok.start, depth + 1)),
            Kind::Punct('[') => {
                let items = self.items(']', depth + 1);
                Some(Node {
                    start: tok.start,
                    end: self.last_end(),
                    shape: Shape::List(items),
                })
            }
            Kind::Punct('{') => Some(self.map(tok.start, depth + 1)),
            _ => Some(leaf),
        }
    }

    /// After an opening `(`: named fields if it starts with `ident:`, else tuple items.
    fn parens(&mut self, start: Pos, depth: usize) -> Node {
        let named_fields = matches!(self.peek(), Some(Kind::Ident(_)))
            && self.peek_at(1) == Some(&Kind::Punct(':'));
        let shape = if named_fields {
            Shape::Struct(self.fields(depth))
        } else {
            Shape::Tuple(self.items(')', depth))
        };
        Node {
            start,
            end: self.last_end(),
            shape,
        }
    }

    /// Values separated by commas up to `close` (consumed). A different closer ends the
    /// list without being consumed; stray tokens are skipped.
    fn items(&mut self, close: char, depth: usize) -> Vec<Node> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Kind::Punct(c)) if *c == close => {
                    self.i += 1;
                    break;
                }
                Some(k) if is_closer(k) => break,
                Some(Kind::Punct(',')) => self.i += 1,
                Some(_) => {
                    let before = self.i;
                    if let Some(node) = self.value(depth) {
                        items.push(node);
                    }
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
        items
    }

    /// `name: value` entries up to `)` (consumed).
    fn fields(&mut self, depth: usize) -> Vec<Entry> {
        let mut fields = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Kind::Punct(')')) => {
                    self.i += 1;
                    break;
                }
                Some(k) if is_closer(k) => break,
                Some(Kind::Punct(',')) => self.i += 1,
                Some(Kind::Ident(name)) if self.peek_at(1) == Some(&Kind::Punct(':')) => {
                    let key = name.clone();
                    let key_pos = self.toks[self.i].start;
                    self.i += 2;
                    let value = self.value(depth).unwrap_or(Node {
                        start: self.last_end(),
                        end: self.last_end(),
                        shape: Shape::Leaf,
                    });
                    fields.push(Entry {
                        key,
                        key_pos,
                        value,
                    });
                }
                Some(_) => {
                    // Not a field: parse it as a value (to skip it whole) and move on.
                    let before = self.i;
                    let _ = self.value(depth);
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
        fields
    }

    /// `{ key: value, ... }` after the opening brace.
    fn map(&mut self, start: Pos, depth: usize) -> Node {
        let mut entries = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Kind::Punct('}')) => {
                    self.i += 1;
                    break;
                }
                Some(k) if is_closer(k) => break,
                Some(Kind::Punct(',')) => self.i += 1,
                Some(_) => {
                    let before = self.i;
                    let key_kind = self.peek().cloned();
                    let key_node = self.value(depth);
                    if self.peek() == Some(&Kind::Punct(':')) {
                        self.i += 1;
                        if let Some(key_node) = key_node {
                            let key = match key_kind {
                                Some(Kind::Str(s) | Kind::Ident(s)) => s,
                                _ => self.text_of(&key_node),
                            };
                            let value = self.value(depth).unwrap_or(Node {
                                start: self.last_end(),
                                end: self.last_end(),
                                shape: Shape::Leaf,
                            });
                            entries.push(Entry {
                                key,
                                key_pos: key_node.start,
                                value,
                            });
                        }
                    }
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
        Node {
            start,
            end: self.last_end(),
            shape: Shape::Map(entries),
        }
    }

    /// A key that is not a string or identifier (a number, a tuple) is named by the
    /// position where it starts; good enough to tell entries apart.
    fn text_of(&self, node: &Node) -> String {
        format!("@{}:{}", node.start.line, node.start.col)
    }
}

fn parse(source: &str) -> Option<Node> {
    let mut p = Parser {
        toks: tokenize(source),
        i: 0,
    };
    p.skip_attributes();
    p.value(0)
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
        if let Some(r) = rest.strip_prefix("[\"") {
            // A quoted map key may hold dots and brackets.
            let endq = r.find("\"]")?;
            out.push(Segment::Field(r[..endq].to_string()));
            rest = &r[endq + 2..];
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

/// A one-element tuple (`Some(x)`, `Vdev("...")`) stands for its element.
fn unwrap_newtype(node: &Node) -> Option<&Node> {
    match &node.shape {
        Shape::Tuple(items) if items.len() == 1 => items.first(),
        _ => None,
    }
}

/// Where a segment leads from `node`: the child node and, for fields, the key position.
fn child<'n>(node: &'n Node, seg: &Segment) -> Option<(&'n Node, Option<Pos>)> {
    let mut node = node;
    for _ in 0..MAX_DEPTH {
        match (&node.shape, seg) {
            (Shape::Struct(entries) | Shape::Map(entries), Segment::Field(name)) => {
                return entries
                    .iter()
                    .find(|e| &e.key == name)
                    .map(|e| (&e.value, Some(e.key_pos)));
            }
            (Shape::List(items), Segment::Index(i)) => return items.get(*i).map(|n| (n, None)),
            (Shape::Tuple(items), Segment::Index(i)) => {
                // `Some([a, b])[1]` means b; `Pair(a, b)[1]` means b as well.
                if let Some(inner) = unwrap_newtype(node) {
                    if matches!(inner.shape, Shape::List(_) | Shape::Tuple(_)) {
                        node = inner;
                        continue;
                    }
                }
                return items.get(*i).map(|n| (n, None));
            }
            _ => node = unwrap_newtype(node)?,
        }
    }
    None
}

/// The node at `path` and the position of its key when the last segment is a field.
fn find<'n>(root: &'n Node, path: &str) -> Option<(&'n Node, Option<Pos>)> {
    let mut node = root;
    let mut key = None;
    for seg in segments(path)? {
        let (n, k) = child(node, &seg)?;
        node = n;
        key = k;
    }
    Some((node, key))
}

/// The position (line, column) where the value at `path` starts, e.g. the `0` of
/// `workers: [1, 0]` for `cores.workers[1]`. `None` when the path is not in the text.
pub fn locate(source: &str, path: &str) -> Option<(usize, usize)> {
    let root = parse(source)?;
    find(&root, path).map(|(node, _)| node.start.pair())
}

/// The position of the field name for a path ending in a field (`rx_queues` in
/// `rx_queues: 0`); for a path ending in an index, the position of the value.
pub fn locate_key(source: &str, path: &str) -> Option<(usize, usize)> {
    let root = parse(source)?;
    find(&root, path).map(|(node, key)| key.unwrap_or(node.start).pair())
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
    let Some(root) = parse(source) else {
        return (1, 1);
    };
    let mut p = Some(path);
    while let Some(path) = p {
        if let Some((node, _)) = find(&root, path) {
            return node.start.pair();
        }
        p = parent(path);
    }
    (1, 1)
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
}

fn push_field(path: &mut String, key: &str) {
    let plain = !key.is_empty() && key.chars().all(is_raw_ident_char) && !key.contains('.');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str("[\"");
        path.push_str(key);
        path.push_str("\"]");
    }
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
    let root = parse(source)?;
    let pos = Pos { line, col: column };
    let inside = |start: Pos, end: Pos| match mode {
        Containment::EndInclusive => start <= pos && pos <= end,
        Containment::Strict => start <= pos && pos < end,
    };
    let mut path = String::new();
    let mut node = &root;
    let mut named = &root;
    let mut key = None;
    'descend: for _ in 0..MAX_DEPTH {
        match &node.shape {
            Shape::Struct(entries) | Shape::Map(entries) => {
                for e in entries {
                    if inside(e.key_pos, e.end()) {
                        push_field(&mut path, &e.key);
                        key = Some(e.key_pos);
                        node = &e.value;
                        named = node;
                        continue 'descend;
                    }
                }
            }
            Shape::Tuple(items) if items.len() == 1 => {
                if let Some(item) = items.first().filter(|n| inside(n.start, n.end)) {
                    node = item;
                    continue 'descend;
                }
            }
            Shape::Tuple(items) | Shape::List(items) => {
                for (i, n) in items.iter().enumerate() {
                    if inside(n.start, n.end) {
                        path.push_str(&format!("[{i}]"));
                        key = None;
                        node = n;
                        named = node;
                        continue 'descend;
                    }
                }
            }
            Shape::Leaf => {}
        }
        break;
    }
    Some(Found {
        path,
        value: named.start.pair(),
        innermost: node.start.pair(),
        key: key.map(Pos::pair),
        has_fields: matches!(node.shape, Shape::Struct(_) | Shape::Map(_)),
    })
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
}
