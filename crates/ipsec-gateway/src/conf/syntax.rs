//! The settings syntax `swanctl.conf` is written in (strongswan.conf(5)): `name { ... }`
//! sections, `key = value` settings whose value runs to the end of the line (or to a
//! `#` comment or a `}`), and `"..."` strings with `\n`, `\r`, `\t` and `\<char>`
//! escapes that may span lines. Whitespace between the words of an unquoted value
//! is collapsed to one space, as strongSwan does.
//!
//! The parser takes any text of at most [`MAX_INPUT_LEN`] bytes: every step consumes
//! input (so it ends), nesting is bounded by [`MAX_DEPTH`] (so the recursion is), and
//! what it allocates is bounded by the input's length.

use super::ConfErrorKind;

/// The longest `swanctl.conf` accepted, in bytes (1 MiB).
pub const MAX_INPUT_LEN: usize = 1 << 20;

/// The deepest nesting of sections accepted (`connections.<conn>.children.<child>` is
/// four).
pub const MAX_DEPTH: usize = 8;

/// A `key = value` line.
#[derive(Debug)]
pub(crate) struct Setting {
    pub key: String,
    pub value: String,
    pub line: u32,
}

/// A `name { ... }` section.
#[derive(Debug)]
pub(crate) struct Section {
    pub name: String,
    pub line: u32,
    pub items: Vec<Item>,
}

/// What a section holds.
#[derive(Debug)]
pub(crate) enum Item {
    Setting(Setting),
    Section(Section),
}

/// An error at a line.
pub(crate) type LineError = (u32, ConfErrorKind);

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Newline,
    Open,
    Close,
    Equals,
    Name(String),
    Eof,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    line: u32,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_comment(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    /// The next token outside a value.
    fn token(&mut self) -> Result<Token, LineError> {
        loop {
            let Some(b) = self.peek() else {
                return Ok(Token::Eof);
            };
            match b {
                b if is_space(b) => self.pos += 1,
                b'#' => self.skip_comment(),
                b'\n' => {
                    self.pos += 1;
                    self.line = self.line.saturating_add(1);
                    return Ok(Token::Newline);
                }
                b'{' => {
                    self.pos += 1;
                    return Ok(Token::Open);
                }
                b'}' => {
                    self.pos += 1;
                    return Ok(Token::Close);
                }
                b'=' => {
                    self.pos += 1;
                    return Ok(Token::Equals);
                }
                b'"' => {
                    return Err((
                        self.line,
                        ConfErrorKind::Syntax("a quoted string where a name was expected"),
                    ))
                }
                _ => {
                    let start = self.pos;
                    while let Some(b) = self.peek() {
                        if is_space(b) || matches!(b, b'\n' | b'#' | b'{' | b'}' | b'=' | b'"') {
                            break;
                        }
                        self.pos += 1;
                    }
                    return Ok(Token::Name(self.text(start, self.pos)));
                }
            }
        }
    }

    fn text(&self, start: usize, end: usize) -> String {
        // Only split at ASCII delimiters of valid UTF-8, so this never replaces.
        String::from_utf8_lossy(self.s.get(start..end).unwrap_or_default()).into_owned()
    }

    /// The value after `=`: words and quoted strings up to a newline, `#` or `}` (not
    /// consumed), joined by single spaces.
    fn value(&mut self) -> Result<String, LineError> {
        let mut out = String::new();
        let mut first = true;
        loop {
            let Some(b) = self.peek() else {
                return Ok(out);
            };
            match b {
                b if is_space(b) => self.pos += 1,
                b'\n' | b'#' | b'}' => return Ok(out),
                _ => {
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                    if b == b'"' {
                        self.pos += 1;
                        self.string(&mut out)?;
                    } else {
                        let start = self.pos;
                        while let Some(b) = self.peek() {
                            if is_space(b) || matches!(b, b'\n' | b'#' | b'}' | b'"') {
                                break;
                            }
                            self.pos += 1;
                        }
                        out.push_str(&self.text(start, self.pos));
                    }
                }
            }
        }
    }

    /// A quoted string after its opening `"`, appended to `out`.
    fn string(&mut self, out: &mut String) -> Result<(), LineError> {
        let open_line = self.line;
        let mut start = self.pos;
        loop {
            let Some(b) = self.peek() else {
                return Err((
                    open_line,
                    ConfErrorKind::Syntax("unterminated quoted string"),
                ));
            };
            match b {
                b'"' => {
                    out.push_str(&self.text(start, self.pos));
                    self.pos += 1;
                    return Ok(());
                }
                b'\r' => {
                    out.push_str(&self.text(start, self.pos));
                    self.pos += 1;
                    start = self.pos;
                }
                b'\n' => {
                    self.line = self.line.saturating_add(1);
                    self.pos += 1;
                }
                b'\\' => {
                    out.push_str(&self.text(start, self.pos));
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err((
                            open_line,
                            ConfErrorKind::Syntax("unterminated quoted string"),
                        ));
                    };
                    match e {
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'\n' => self.line = self.line.saturating_add(1),
                        b'\r' if self.s.get(self.pos + 1) == Some(&b'\n') => {
                            self.pos += 1;
                            self.line = self.line.saturating_add(1);
                        }
                        _ => {
                            // `\<char>` is the char itself (a whole UTF-8 sequence).
                            let len = utf8_len(e);
                            let end = (self.pos + len).min(self.s.len());
                            out.push_str(&self.text(self.pos, end));
                            self.pos = end - 1;
                        }
                    }
                    self.pos += 1;
                    start = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Parses `text` (at most [`MAX_INPUT_LEN`] bytes, checked by the caller) into the
/// top-level items.
pub(crate) fn parse(text: &str) -> Result<Vec<Item>, LineError> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    block(&mut lx, 0, None)
}

/// The items up to the `}` that closes a section opened at `open` (or to the end of
/// the text at the top level, `open == None`).
fn block(lx: &mut Lexer<'_>, depth: usize, open: Option<u32>) -> Result<Vec<Item>, LineError> {
    let mut items = Vec::new();
    loop {
        let line = lx.line;
        match lx.token()? {
            Token::Newline => {}
            Token::Eof => {
                return match open {
                    Some(l) => Err((l, ConfErrorKind::Syntax("section not closed with '}'"))),
                    None => Ok(items),
                }
            }
            Token::Close => {
                return match open {
                    Some(_) => Ok(items),
                    None => Err((
                        line,
                        ConfErrorKind::Syntax("'}' without a section to close"),
                    )),
                }
            }
            Token::Open => return Err((line, ConfErrorKind::Syntax("'{' without a section name"))),
            Token::Equals => return Err((line, ConfErrorKind::Syntax("'=' without a key"))),
            Token::Name(name) => {
                if name == "include" && lx.peek().is_some_and(is_space) {
                    let save = (lx.pos, lx.line);
                    let next = lx.token()?;
                    (lx.pos, lx.line) = save;
                    if next != Token::Equals {
                        return Err((line, ConfErrorKind::UnsupportedSyntax("'include'")));
                    }
                }
                match lx.token()? {
                    Token::Equals => {
                        let value = lx.value()?;
                        items.push(Item::Setting(Setting {
                            key: name,
                            value,
                            line,
                        }));
                    }
                    Token::Open => {
                        if depth + 1 > MAX_DEPTH {
                            return Err((line, ConfErrorKind::TooDeep { max: MAX_DEPTH }));
                        }
                        let inner = block(lx, depth + 1, Some(line))?;
                        items.push(Item::Section(Section {
                            name,
                            line,
                            items: inner,
                        }));
                    }
                    Token::Name(n) if n.starts_with(':') || name.ends_with(':') => {
                        return Err((
                            line,
                            ConfErrorKind::UnsupportedSyntax("a section reference ('name : base')"),
                        ))
                    }
                    _ => {
                        return Err((
                            line,
                            ConfErrorKind::Syntax("expected '=' or '{' after a name on its line"),
                        ))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_setting(text: &str) -> String {
        match parse(text).unwrap().pop() {
            Some(Item::Setting(s)) => s.value,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values() {
        assert_eq!(one_setting("a = b   c\t d # x\n"), "b c d");
        assert_eq!(one_setting("a = \"x  # y\" z"), "x  # y z");
        assert_eq!(one_setting("a = \"q\\\"\\n\\\\\""), "q\"\n\\");
        assert_eq!(one_setting("a = \"l1\nl2\""), "l1\nl2");
        assert_eq!(one_setting("a = \"l1\\\nl2\""), "l1l2");
        assert_eq!(one_setting("a ="), "");
        assert_eq!(one_setting("a = x=y"), "x=y");
    }

    #[test]
    fn sections_and_lines() {
        let items = parse("# c\ns {\n  k = v }\nt { u { } }\n").unwrap();
        let [Item::Section(s), Item::Section(t)] = &items[..] else {
            panic!("{items:?}")
        };
        assert_eq!((s.name.as_str(), s.line), ("s", 2));
        let [Item::Setting(k)] = &s.items[..] else {
            panic!()
        };
        assert_eq!((k.key.as_str(), k.value.as_str(), k.line), ("k", "v", 3));
        assert_eq!(t.line, 4);
    }

    #[test]
    fn errors_have_lines() {
        let line = |t: &str| parse(t).unwrap_err().0;
        assert_eq!(line("a {\n b = 1\n"), 1);
        assert_eq!(line("\n\n}"), 3);
        assert_eq!(line("a {\n\n b c\n}"), 3);
        assert_eq!(line("x = 1\n\ny = \"open\n\n"), 3);
        assert_eq!(
            parse("\ninclude /etc/x.conf\n").unwrap_err(),
            (2, ConfErrorKind::UnsupportedSyntax("'include'"))
        );
        assert_eq!(
            parse("a : b {\n}").unwrap_err().1,
            ConfErrorKind::UnsupportedSyntax("a section reference ('name : base')")
        );
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(
            parse(&deep).unwrap_err().1,
            ConfErrorKind::TooDeep { max: MAX_DEPTH }
        );
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
