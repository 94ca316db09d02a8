//! The one emitter of stored message bytes on the POP3 wire: a streaming encoder that makes
//! every line end CRLF and byte-stuffs every line that starts with ".", so that no stored
//! content can end a multi-line response early or desynchronise the client (SECURITY-TESTS
//! PO-07). It also cuts a message after its header and N body lines for TOP.
//!
//! ```text
//! message-out = *( stuffed-line CRLF )       ; RFC 1939 §3
//! stuffed-line = "." line-starting-with-dot / other-line
//! ```
//!
//! Bytes go in in pieces of any size; the output is the same whatever the split. Line ends
//! in: CRLF, bare LF and bare CR are each one line end out (CRLF). A message that does not
//! end with a line end gets one, so the terminating "." always starts a line.
//!
//! The same encoder, writing into a [`Counter`], gives the size LIST and STAT report: the
//! octets RETR actually sends before the terminating line.

/// Where encoded bytes go.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that only counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter(pub u64);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len() as u64);
    }
}

/// TOP's cut: the header, the empty line after it, then this many body lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TopCut {
    in_header: bool,
    body_lines_left: u64,
}

/// The streaming encoder of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEncoder {
    at_line_start: bool,
    pending_cr: bool,
    top: Option<TopCut>,
    /// TOP has sent all it should: later input is ignored.
    done: bool,
}

impl Default for MessageEncoder {
    fn default() -> Self {
        MessageEncoder::new(None)
    }
}

impl MessageEncoder {
    /// An encoder for RETR (`top_lines` None) or for `TOP msg n` (RFC 1939 §7: the header,
    /// the blank line separating it from the body, then `n` lines of the body).
    pub fn new(top_lines: Option<u64>) -> MessageEncoder {
        MessageEncoder {
            at_line_start: true,
            pending_cr: false,
            top: top_lines.map(|n| TopCut {
                in_header: true,
                body_lines_left: n,
            }),
            done: false,
        }
    }

    /// Whether more input can still change the output (false once TOP has its lines).
    pub fn wants_more(&self) -> bool {
        !self.done
    }

    /// Encodes the next piece of the message.
    pub fn encode(&mut self, mut input: &[u8], out: &mut impl Sink) {
        while !self.done && !input.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                // A CR ends a line: with the LF after it (CRLF) or alone (bare CR).
                self.end_line(out);
                if input.first() == Some(&b'\n') {
                    input = input.get(1..).unwrap_or_default();
                }
                continue;
            }
            let run = input
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(input.len());
            if run > 0 {
                // RFC 1939 §3: a line starting with "." is sent with one more ".".
                if self.at_line_start && input.first() == Some(&b'.') {
                    out.put(b".");
                }
                out.put(input.get(..run).unwrap_or_default());
                self.at_line_start = false;
                input = input.get(run..).unwrap_or_default();
                continue;
            }
            match input.first() {
                Some(b'\r') => self.pending_cr = true,
                _ => self.end_line(out), // a bare LF
            }
            input = input.get(1..).unwrap_or_default();
        }
    }

    /// The message has no more bytes: completes its last line. The caller then sends the
    /// terminating ".\r\n".
    pub fn finish(&mut self, out: &mut impl Sink) {
        if self.done {
            return;
        }
        if self.pending_cr {
            self.pending_cr = false;
            self.end_line(out);
        } else if !self.at_line_start {
            // RFC 1939 §3: the terminating "." must start a line of its own.
            self.end_line(out);
        }
        self.done = true;
    }

    fn end_line(&mut self, out: &mut impl Sink) {
        out.put(b"\r\n");
        let was_empty = self.at_line_start;
        self.at_line_start = true;
        if let Some(top) = &mut self.top {
            if top.in_header {
                // RFC 5322 §2.1: the first empty line ends the header.
                top.in_header = !was_empty;
            } else {
                top.body_lines_left = top.body_lines_left.saturating_sub(1);
            }
            if !top.in_header && top.body_lines_left == 0 {
                self.done = true;
            }
        }
    }
}

/// The size of `message` as RETR sends it (CRLF line ends, byte-stuffed, without the
/// terminating line), for messages held whole; larger ones are counted piece by piece with a
/// [`MessageEncoder`] and a [`Counter`].
pub fn wire_size(message: &[u8]) -> u64 {
    let mut counter = Counter::default();
    let mut encoder = MessageEncoder::new(None);
    encoder.encode(message, &mut counter);
    encoder.finish(&mut counter);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in_pieces(message: &[u8], top: Option<u64>, piece: usize) -> Vec<u8> {
        let mut encoder = MessageEncoder::new(top);
        let mut out = Vec::new();
        for chunk in message.chunks(piece.max(1)) {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    fn encode_all_splits(message: &[u8], top: Option<u64>) -> Vec<u8> {
        let whole = encode_in_pieces(message, top, message.len().max(1));
        for piece in 1..=message.len().max(1) {
            assert_eq!(
                encode_in_pieces(message, top, piece),
                whole,
                "split into pieces of {piece}"
            );
        }
        whole
    }

    #[test]
    fn crlf_dot_stuffing_and_final_line_end() {
        let cases: [(&[u8], &[u8]); 9] = [
            (b"", b""),
            (b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"a\r\nb", b"a\r\nb\r\n"),
            (b".\r\n..x\r\n.", b"..\r\n...x\r\n..\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n"),
            (b"x.\r\n.\n.\r.", b"x.\r\n..\r\n..\r\n..\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n"),
        ];
        for (input, expected) in cases {
            let got = encode_all_splits(input, None);
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(wire_size(input), expected.len() as u64);
        }
    }

    #[test]
    fn output_never_holds_a_terminator_line() {
        for input in [&b".\r\n"[..], b"a\r\n.\r\nb", b"\n.\n", b"\r.\r", b"."] {
            let mut out = b"\r\n".to_vec();
            out.extend(encode_all_splits(input, None));
            assert!(
                !out.windows(5).any(|w| w == b"\r\n.\r\n"),
                "{input:?} -> {out:?}"
            );
        }
    }

    #[test]
    fn top_cuts_after_header_and_n_body_lines() {
        let message = b"Subject: x\r\nFrom: y\r\n\r\none\r\n.two\r\nthree\r\n";
        assert_eq!(
            encode_all_splits(message, Some(0)),
            b"Subject: x\r\nFrom: y\r\n\r\n"
        );
        assert_eq!(
            encode_all_splits(message, Some(2)),
            b"Subject: x\r\nFrom: y\r\n\r\none\r\n..two\r\n"
        );
        assert_eq!(
            encode_all_splits(message, Some(u64::MAX)),
            encode_all_splits(message, None)
        );
        // No body at all: the whole message (with a line end added).
        assert_eq!(encode_all_splits(b"Subject: x", Some(5)), b"Subject: x\r\n");
        let mut encoder = MessageEncoder::new(Some(0));
        encoder.encode(b"A: b\r\n\r\nbody", &mut Vec::new());
        assert!(!encoder.wants_more());
    }
}
