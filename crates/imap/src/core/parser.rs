//! The lexical layer of the command parser: a cursor over one framed command (lines and
//! the literals between them) and the primitive productions of RFC 9051 §9.
//!
//! ```text
//! astring         = 1*ASTRING-CHAR / string
//! ASTRING-CHAR    = ATOM-CHAR / resp-specials
//! atom            = 1*ATOM-CHAR
//! ATOM-CHAR       = <any CHAR except atom-specials>
//! atom-specials   = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
//!                   resp-specials
//! list-wildcards  = "%" / "*"
//! quoted-specials = DQUOTE / "\"
//! resp-specials   = "]"
//! string          = quoted / literal
//! quoted          = DQUOTE *QUOTED-CHAR DQUOTE
//! QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials /
//!                   UTF8-2 / UTF8-3 / UTF8-4
//! TEXT-CHAR       = <any CHAR except CR and LF>          ; CHAR = %x01-7F: no NUL
//! literal         = "{" number64 ["+"] "}" CRLF *CHAR8    ; CHAR8 = %x01-ff
//! literal8        = "~{" number64 "}" CRLF *OCTET         ; RFC 3516
//! nstring         = string / nil
//! nil             = "NIL"
//! number          = 1*DIGIT      ; unsigned 32-bit
//! number64        = 1*DIGIT      ; unsigned 63-bit
//! nz-number       = digit-nz *DIGIT
//! ```
//!
//! Literals never reach this layer as text: the framer ([`super::framing`]) has already
//! cut each `{n}` announcement off the end of its line and read the octets into a
//! [`Part::Literal`]. A string production that meets the end of a line part followed by a
//! literal part takes the literal (by value, without copying).

use std::num::NonZeroU32;

/// One piece of a framed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Line text without its line ending and without a trailing literal announcement.
    Line(Vec<u8>),
    /// Literal octets; `binary` for `~{n}` (literal8, RFC 3516 §4.3).
    Literal { data: Vec<u8>, binary: bool },
}

/// Why a command was refused while parsing. Messages are static: attacker bytes are
/// never echoed (SECURITY-TESTS IM-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Syntax error: `tag BAD <message>`.
    Bad(&'static str),
    /// A count limit (flags, ID pairs, ...): `tag NO [LIMIT] <message>` (RFC 5530).
    Limit(&'static str),
    /// Search charset we do not support: `tag NO [BADCHARSET (US-ASCII UTF-8)]`
    /// (RFC 9051 §6.4.4).
    BadCharset,
    /// Well-formed but refused: a mailbox name that is not valid modified UTF-7/UTF-8 or
    /// that sealpost refuses (`..`, controls, leading `/`, over 255 characters), an
    /// unsupported SASL mechanism: `tag NO [CANNOT] <message>`.
    Cannot(&'static str),
}

pub(crate) type PResult<T> = Result<T, ParseError>;

pub(crate) fn bad<T>(message: &'static str) -> PResult<T> {
    Err(ParseError::Bad(message))
}

/// ATOM-CHAR: any CHAR except atom-specials.
pub(crate) fn is_atom_char(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7e)
        && !matches!(byte, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR = ATOM-CHAR / resp-specials.
pub(crate) fn is_astring_char(byte: u8) -> bool {
    is_atom_char(byte) || byte == b']'
}

/// list-char = ATOM-CHAR / list-wildcards / resp-specials.
pub(crate) fn is_list_char(byte: u8) -> bool {
    is_astring_char(byte) || byte == b'%' || byte == b'*'
}

/// A cursor over the parts of one command.
#[derive(Debug)]
pub(crate) struct Input {
    parts: Vec<Part>,
    part: usize,
    pos: usize,
}

impl Input {
    pub(crate) fn new(parts: Vec<Part>) -> Self {
        Input {
            parts,
            part: 0,
            pos: 0,
        }
    }

    /// The unread rest of the current line part (empty at a literal or the end).
    fn rest(&self) -> &[u8] {
        match self.parts.get(self.part) {
            Some(Part::Line(line)) => line.get(self.pos..).unwrap_or_default(),
            _ => &[],
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    pub(crate) fn peek_at(&self, offset: usize) -> Option<u8> {
        self.rest().get(offset).copied()
    }

    fn advance(&mut self, count: usize) {
        self.pos = self.pos.saturating_add(count);
    }

    /// Consumes `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.advance(1);
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, byte: u8, message: &'static str) -> PResult<()> {
        if self.eat(byte) { Ok(()) } else { bad(message) }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "expected a space")
    }

    /// Consumes `word` (ASCII, case-insensitive) if it is next and is not followed by
    /// another atom character.
    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..word.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(word.as_bytes()) {
            return false;
        }
        if rest.get(word.len()).is_some_and(|&b| is_atom_char(b)) {
            return false;
        }
        self.advance(word.len());
        true
    }

    /// Consumes the ASCII prefix `text` (case-insensitive) if it is next, without
    /// checking what follows (for `BODY[`, `BINARY.PEEK[`, ...).
    pub(crate) fn eat_prefix(&mut self, text: &str) -> bool {
        let matches = self
            .rest()
            .get(..text.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(text.as_bytes()));
        if matches {
            self.advance(text.len());
        }
        matches
    }

    /// True at the end of the command: every part read and no literal pending.
    pub(crate) fn at_end(&self) -> bool {
        self.rest().is_empty() && self.part + 1 >= self.parts.len()
    }

    pub(crate) fn end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            bad("unexpected characters after the command")
        }
    }

    /// A literal is next: the current line part is exhausted and a literal part follows.
    pub(crate) fn literal_next(&self) -> bool {
        self.rest().is_empty()
            && matches!(self.parts.get(self.part + 1), Some(Part::Literal { .. }))
    }

    /// Takes the literal that is next; the cursor moves to the line part after it.
    pub(crate) fn take_literal(&mut self) -> Option<(Vec<u8>, bool)> {
        if !self.literal_next() {
            return None;
        }
        let taken = match self.parts.get_mut(self.part + 1) {
            Some(Part::Literal { data, binary }) => Some((std::mem::take(data), *binary)),
            _ => None,
        };
        self.part += 2;
        self.pos = 0;
        taken
    }

    /// Consumes the longest run of bytes for which `accept` holds (within the line part).
    pub(crate) fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> Vec<u8> {
        let rest = self.rest();
        let len = rest.iter().position(|&b| !accept(b)).unwrap_or(rest.len());
        let taken = rest.get(..len).unwrap_or_default().to_vec();
        self.advance(len);
        taken
    }

    /// `atom`, as ASCII text.
    pub(crate) fn atom(&mut self) -> PResult<String> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return bad("expected an atom");
        }
        // ATOM-CHAR is 7-bit ASCII, so this cannot fail.
        String::from_utf8(atom).or_else(|_| bad("expected an atom"))
    }

    /// `quoted`: the text between the quotes with escapes removed. NUL, CR and LF are
    /// refused (SECURITY-TESTS IM-01, CVE-2019-11500); 8-bit octets are kept for the
    /// caller to check as UTF-8 (RFC 9051 QUOTED-CHAR allows UTF8-2/3/4).
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return bad("unterminated quoted string"),
                Some(b'"') => {
                    self.advance(1);
                    return Ok(out);
                }
                Some(b'\\') => {
                    // RFC 9051 §9: only quoted-specials may be escaped.
                    match self.peek_at(1) {
                        Some(escaped @ (b'"' | b'\\')) => {
                            out.push(escaped);
                            self.advance(2);
                        }
                        _ => return bad("invalid escape in quoted string"),
                    }
                }
                Some(0 | b'\r' | b'\n') => return bad("invalid character in quoted string"),
                Some(byte) => {
                    out.push(byte);
                    self.advance(1);
                }
            }
        }
    }

    /// `string = quoted / literal`. A literal8 is refused (it is allowed only where the
    /// grammar names it); NUL in a literal is refused (CHAR8 = %x01-ff).
    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        if self.literal_next() {
            let Some((data, binary)) = self.take_literal() else {
                return bad("expected a literal");
            };
            if binary {
                return bad("literal8 is not allowed here");
            }
            if data.contains(&0) {
                return bad("NUL in a literal");
            }
            return Ok(data);
        }
        self.quoted()
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            None if self.literal_next() => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    return bad("expected a string");
                }
                Ok(atom)
            }
        }
    }

    /// An astring that must be UTF-8 text.
    pub(crate) fn astring_utf8(&mut self) -> PResult<String> {
        String::from_utf8(self.astring()?).or_else(|_| bad("string is not UTF-8"))
    }

    /// A string that must be UTF-8 text.
    pub(crate) fn string_utf8(&mut self) -> PResult<String> {
        String::from_utf8(self.string()?).or_else(|_| bad("string is not UTF-8"))
    }

    /// `nstring = string / nil`.
    pub(crate) fn nstring_utf8(&mut self) -> PResult<Option<String>> {
        if self.eat_word("NIL") {
            return Ok(None);
        }
        self.string_utf8().map(Some)
    }

    fn digits(&mut self) -> PResult<Vec<u8>> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return bad("expected a number");
        }
        Ok(digits)
    }

    /// `number64`: refused above 2^63 - 1 (never wrapped, SECURITY-TESTS IM-02/IM-06).
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let digits = self.digits()?;
        let mut value: u64 = 0;
        for digit in digits {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|&v| v <= i64::MAX as u64)
                .ok_or(ParseError::Bad("number too large"))?;
        }
        Ok(value)
    }

    /// `number`: unsigned 32-bit.
    pub(crate) fn number(&mut self) -> PResult<u32> {
        u32::try_from(self.number64()?).or_else(|_| bad("number too large"))
    }

    /// `nz-number`: non-zero 32-bit.
    pub(crate) fn nz_number(&mut self) -> PResult<NonZeroU32> {
        NonZeroU32::new(self.number()?).ok_or(ParseError::Bad("number must not be zero"))
    }

    /// A non-zero `number64` (`mod-sequence-value`, RFC 7162 §7).
    pub(crate) fn nz_number64(&mut self) -> PResult<u64> {
        match self.number64()? {
            0 => bad("number must not be zero"),
            value => Ok(value),
        }
    }

    /// A space-separated list in parentheses, calling `item` for each element; `()` is
    /// accepted when `allow_empty`. Iterative: the depth does not grow with the length.
    pub(crate) fn paren_list<T>(
        &mut self,
        allow_empty: bool,
        max_items: usize,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(', "expected \"(\"")?;
        let mut items = Vec::new();
        if self.eat(b')') {
            return if allow_empty {
                Ok(items)
            } else {
                bad("empty list")
            };
        }
        loop {
            if items.len() >= max_items {
                return Err(ParseError::Limit("too many items in a list"));
            }
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
pub(crate) fn line(text: &[u8]) -> Input {
    Input::new(vec![Part::Line(text.to_vec())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(line(br#""a\"b\\c""#).quoted().unwrap(), b"a\"b\\c");
        assert_eq!(
            line("\"café\"".as_bytes()).quoted().unwrap(),
            "café".as_bytes()
        );
        for bad_input in [&b"\"ali\x00ce\""[..], b"\"pw\r\"", b"\"a\\nb\"", b"\"open"] {
            assert!(line(bad_input).quoted().is_err(), "{bad_input:?}");
        }
    }

    #[test]
    fn numbers_do_not_wrap() {
        assert_eq!(line(b"4294967295").number().unwrap(), u32::MAX);
        assert!(line(b"4294967296").number().is_err());
        assert_eq!(
            line(b"9223372036854775807").number64().unwrap(),
            i64::MAX as u64
        );
        assert!(line(b"9223372036854775808").number64().is_err());
        assert!(line(b"99999999999999999999999").number64().is_err());
        assert!(line(b"0").nz_number().is_err());
        assert!(line(b"x").number().is_err());
    }

    #[test]
    fn literals_between_lines() {
        let mut input = Input::new(vec![
            Part::Line(b"x ".to_vec()),
            Part::Literal {
                data: b"hello".to_vec(),
                binary: false,
            },
            Part::Line(b" y".to_vec()),
        ]);
        assert_eq!(input.atom().unwrap(), "x");
        input.sp().unwrap();
        assert_eq!(input.astring().unwrap(), b"hello");
        input.sp().unwrap();
        assert_eq!(input.astring().unwrap(), b"y");
        assert!(input.at_end());
    }

    #[test]
    fn words_need_a_boundary() {
        let mut input = line(b"NILX");
        assert!(!input.eat_word("NIL"));
        let mut input = line(b"nil)");
        assert!(input.eat_word("NIL"));
        assert_eq!(input.peek(), Some(b')'));
    }
}
