//! Message content: the DATA decoder (dot-unstuffing, end of data) and the bare CR/LF
//! scanner shared with BDAT.
//!
//! ```text
//! data-content = *text-line "." CRLF          ; RFC 5321 §4.1.1.4, §4.5.2
//! ```
//!
//! The decoder is a byte state machine, not a line splitter: a line of any length cannot
//! desynchronise it (SECURITY-TESTS SM-16). The data ends only at `<CRLF>.<CRLF>`, where
//! the first line counts as preceded by CRLF (RFC 5321 §4.1.1.4), so content starting with
//! `.<CRLF>` is an empty message. A bare CR or bare LF never ends the data (SM-01..SM-09,
//! CVE-2023-51764/51765/51766): it is remembered, and the message is refused once the real
//! end is reached (Postfix `smtpd_forbid_bare_newline=reject`).

/// Where the decoder is, relative to line boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF (or at the start of the data).
    LineStart,
    /// Inside a line.
    Text,
    /// After a CR inside a line (or a line that started with CR).
    Cr,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` CR at the start of a line.
    DotCr,
}

/// How a message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A good message: CRLF line ends, dot-unstuffed.
    Message(Vec<u8>),
    /// It held a bare CR or LF (refused with 550 5.5.2).
    BareLineEnding,
    /// It was larger than the limit (refused with 552 5.3.4).
    TooBig,
}

/// Decodes DATA content until `<CRLF>.<CRLF>`.
#[derive(Debug)]
pub(crate) struct DataDecoder {
    state: State,
    body: Vec<u8>,
    max: u64,
    too_big: bool,
    bare: bool,
}

impl DataDecoder {
    pub(crate) fn new(max_size: u64) -> Self {
        DataDecoder {
            // RFC 5321 §4.1.1.4: the first line of the data counts as preceded by CRLF.
            state: State::LineStart,
            body: Vec::new(),
            max: max_size,
            too_big: false,
            bare: false,
        }
    }

    /// Consumes bytes until the end of the data. Returns how many bytes were consumed and
    /// whether the end was reached; bytes after the end are left for the next command.
    pub(crate) fn decode(&mut self, input: &[u8]) -> (usize, bool) {
        let mut index = 0;
        while index < input.len() {
            if self.state == State::Text {
                // Copy a run of ordinary bytes at once.
                let rest = input.get(index..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                if run > 0 {
                    self.push(rest.get(..run).unwrap_or_default());
                    index += run;
                    continue;
                }
            }
            let Some(&byte) = input.get(index) else {
                break;
            };
            index += 1;
            match self.state {
                // RFC 5321 §4.5.2: a line starting with "." is stuffed (or the end).
                State::LineStart if byte == b'.' => self.state = State::Dot,
                State::LineStart | State::Text => self.text_byte(byte),
                State::Cr => match byte {
                    b'\n' => {
                        self.push(b"\r\n");
                        self.state = State::LineStart;
                    }
                    _ => {
                        // The CR before this byte was bare.
                        self.bare = true;
                        self.push(b"\r");
                        self.text_byte(byte);
                    }
                },
                State::Dot => match byte {
                    b'\r' => self.state = State::DotCr,
                    // RFC 5321 §4.5.2: "If the first character is a period and there are
                    // other characters on the line, the first character is deleted."
                    _ => self.text_byte(byte),
                },
                State::DotCr => match byte {
                    // RFC 5321 §4.1.1.4: <CRLF>.<CRLF> ends the data.
                    b'\n' => return (index, true),
                    // ".", then a bare CR: the dot was stuffing, the CR is content.
                    _ => {
                        self.bare = true;
                        self.push(b"\r");
                        self.text_byte(byte);
                    }
                },
            }
        }
        (index, false)
    }

    /// A byte inside a line (or starting one), in the `Text` state's terms.
    fn text_byte(&mut self, byte: u8) {
        match byte {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                // RFC 5321 §2.3.8: a bare LF is not a line end; it never ends the data.
                self.bare = true;
                self.push(b"\n");
                self.state = State::Text;
            }
            _ => {
                self.push(&[byte]);
                self.state = State::Text;
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        let size = (self.body.len() as u64).saturating_add(bytes.len() as u64);
        // RFC 1870 §6.3: over the limit, keep reading to the end but store nothing.
        if size > self.max {
            self.too_big = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    /// The verdict, once [`DataDecoder::decode`] reported the end.
    pub(crate) fn finish(self) -> Outcome {
        if self.bare {
            Outcome::BareLineEnding
        } else if self.too_big {
            Outcome::TooBig
        } else {
            Outcome::Message(self.body)
        }
    }
}

/// Finds bare CR and bare LF in a byte stream fed in pieces (BDAT chunks).
#[derive(Debug, Default, Clone)]
pub(crate) struct BareScanner {
    previous_cr: bool,
    bare: bool,
}

impl BareScanner {
    pub(crate) fn scan(&mut self, bytes: &[u8]) {
        if self.bare {
            return;
        }
        for &byte in bytes {
            match (self.previous_cr, byte) {
                (true, b'\n') | (false, b'\r') => {}
                (true, _) | (false, b'\n') => {
                    self.bare = true;
                    return;
                }
                (false, _) => {}
            }
            self.previous_cr = byte == b'\r';
        }
    }

    /// Whether a bare CR or LF was seen; a CR at the very end counts as bare.
    pub(crate) fn found_bare(&self) -> bool {
        self.bare || self.previous_cr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (usize, bool, Outcome) {
        let mut decoder = DataDecoder::new(1 << 20);
        let (used, done) = decoder.decode(input);
        (used, done, decoder.finish())
    }

    fn decode_bytewise(input: &[u8]) -> (usize, bool, Outcome) {
        let mut decoder = DataDecoder::new(1 << 20);
        for (index, byte) in input.iter().enumerate() {
            let (used, done) = decoder.decode(std::slice::from_ref(byte));
            assert_eq!(used, 1);
            if done {
                return (index + 1, true, decoder.finish());
            }
        }
        (input.len(), false, decoder.finish())
    }

    #[test]
    fn ends_at_crlf_dot_crlf_only() {
        let input = b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n";
        let (used, done, outcome) = decode_all(input);
        assert!(done);
        assert_eq!(&input[used..], b"MAIL FROM:<a@b>\r\n");
        assert_eq!(
            outcome,
            Outcome::Message(b"Subject: x\r\n\r\nbody\r\n".to_vec())
        );
        assert_eq!(
            decode_bytewise(input),
            (
                used,
                true,
                Outcome::Message(b"Subject: x\r\n\r\nbody\r\n".to_vec())
            )
        );
    }

    #[test]
    fn first_line_counts_as_after_crlf() {
        assert_eq!(
            decode_all(b".\r\nNOOP"),
            (3, true, Outcome::Message(Vec::new()))
        );
    }

    #[test]
    fn dot_unstuffing() {
        let input = b"..leading-dot\r\n. \r\n..\r\n.x\r\n\r\n.\r\n";
        let (_, done, outcome) = decode_all(input);
        assert!(done);
        assert_eq!(
            outcome,
            Outcome::Message(b".leading-dot\r\n \r\n.\r\nx\r\n\r\n".to_vec())
        );
    }

    #[test]
    fn bare_endings_never_end_the_data() {
        for variant in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
            b"\r.\r",
            b"\n.\r",
            b"\r.\n",
            b"\r\n.\r\r\n",
            b"\r\r\n.\r\r\n",
        ] {
            let mut input = b"body\r\n".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(b"MAIL FROM:<x@y>\r\n.\r\nNEXT");
            for (used, done, outcome) in [decode_all(&input), decode_bytewise(&input)] {
                assert!(done, "{variant:?}");
                assert_eq!(&input[used..], b"NEXT", "{variant:?}");
                assert_eq!(outcome, Outcome::BareLineEnding, "{variant:?}");
            }
        }
    }

    #[test]
    fn nul_around_the_dot_is_content() {
        for variant in [&b"\r\n\x00.\r\n"[..], b"\r\n.\x00\r\n"] {
            let mut input = b"body\r\n".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(b"x\r\n.\r\n");
            let (used, done, outcome) = decode_all(&input);
            assert!(done);
            assert_eq!(used, input.len());
            assert!(matches!(outcome, Outcome::Message(_)));
        }
    }

    #[test]
    fn long_lines_do_not_desync() {
        for n in [
            998, 999, 1000, 1022, 1024, 2046, 2048, 4094, 4096, 8190, 8192, 16384, 65536,
        ] {
            let mut input = vec![b'A'; n];
            input.extend_from_slice(b".\r\nMAIL FROM:<c@d>\r\n.\r\n");
            let (used, done, outcome) = decode_all(&input);
            assert!(done);
            assert_eq!(used, input.len());
            let Outcome::Message(body) = outcome else {
                panic!()
            };
            assert!(body.ends_with(b"A.\r\nMAIL FROM:<c@d>\r\n"));
        }
    }

    #[test]
    fn size_limit_counts_unstuffed_octets() {
        // "..ab\r\n" unstuffs to ".ab\r\n": 5 octets.
        let mut small = DataDecoder::new(4);
        assert_eq!(small.decode(b"..ab\r\n.\r\n"), (9, true));
        assert_eq!(small.finish(), Outcome::TooBig);
        let mut exact = DataDecoder::new(5);
        assert_eq!(exact.decode(b"..ab\r\n.\r\n"), (9, true));
        assert_eq!(exact.finish(), Outcome::Message(b".ab\r\n".to_vec()));
    }

    #[test]
    fn too_big_keeps_reading_to_the_end() {
        let mut decoder = DataDecoder::new(10);
        let input = b"0123456789\r\nmore\r\n.\r\nNOOP\r\n";
        let (used, done) = decoder.decode(input);
        assert!(done);
        assert_eq!(&input[used..], b"NOOP\r\n");
        assert_eq!(decoder.finish(), Outcome::TooBig);
        let mut exact = DataDecoder::new(6);
        assert_eq!(exact.decode(b"1234\r\n.\r\n"), (9, true));
        assert_eq!(exact.finish(), Outcome::Message(b"1234\r\n".to_vec()));
    }

    #[test]
    fn bare_scanner() {
        let scan = |pieces: &[&[u8]]| {
            let mut scanner = BareScanner::default();
            for piece in pieces {
                scanner.scan(piece);
            }
            scanner.found_bare()
        };
        assert!(!scan(&[b"a\r\nb\r\n"]));
        assert!(!scan(&[b"a\r", b"\nb"]));
        assert!(!scan(&[]));
        assert!(scan(&[b"a\nb"]));
        assert!(scan(&[b"a\rb"]));
        assert!(scan(&[b"a\r", b"b"]));
        assert!(scan(&[b"a\r"]));
        assert!(scan(&[b"\n"]));
        assert!(scan(&[b"\r\r\n"]));
    }
}
