//! The message content on the wire after 354: CRLF line endings, dot-stuffing and the
//! terminator, produced in bounded pieces straight from the shared body.
//!
//! ```text
//! data-content = *text-line "." CRLF          ; RFC 5321 §4.1.1.4, §4.5.2
//! ```
//!
//! Line endings are normalised (RFC 5321 §2.3.8: CR and LF only as CRLF): CRLF stays, a
//! bare LF and a bare CR each become CRLF. A line starting with "." gets another "."
//! (RFC 5321 §4.5.2). A body that does not end with a line ending gets a CRLF before the
//! terminator "." CRLF; an empty body is sent as the terminator alone (RFC 5321 §4.1.1.4:
//! the first line counts as preceded by CRLF), so the receiver stores exactly what the
//! normalisation gives, byte for byte.

use super::envelope::MessageBody;

/// What the client needs to know about a body before MAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyInfo {
    /// Octets after line-ending normalisation, CRLF pairs included, without stuffing dots
    /// or the terminator (RFC 1870 §5).
    pub(crate) size: u64,
    /// Some octet is above 127 (RFC 6152: BODY=8BITMIME).
    pub(crate) eight_bit: bool,
    /// Some octet of the header section (up to the first empty line) is above 127: UTF-8
    /// header fields (RFC 6532), which need SMTPUTF8 (RFC 6531 §3.4).
    pub(crate) header_eight_bit: bool,
}

/// One pass over the body: size after normalisation and 8-bit content.
pub(crate) fn analyse(body: &[u8]) -> BodyInfo {
    let mut scan = Scan {
        size: 0,
        line_start: true,
        in_header: true,
    };
    let mut cr = false;
    let mut eight_bit = false;
    let mut header_eight_bit = false;
    for &byte in body {
        match byte {
            b'\r' => {
                if cr {
                    scan.line_end();
                }
                cr = true;
            }
            b'\n' => {
                scan.line_end();
                cr = false;
            }
            _ => {
                if cr {
                    scan.line_end();
                    cr = false;
                }
                if byte > 127 {
                    eight_bit = true;
                    header_eight_bit |= scan.in_header;
                }
                scan.size = scan.size.saturating_add(1);
                scan.line_start = false;
            }
        }
    }
    if cr {
        scan.line_end();
    }
    if !scan.line_start {
        scan.size = scan.size.saturating_add(2);
    }
    BodyInfo {
        size: scan.size,
        eight_bit,
        header_eight_bit,
    }
}

/// Where [`analyse`] is.
struct Scan {
    size: u64,
    line_start: bool,
    in_header: bool,
}

impl Scan {
    /// A line ending, sent as CRLF.
    fn line_end(&mut self) {
        self.size = self.size.saturating_add(2);
        if self.line_start {
            // An empty line ends the header section (RFC 5322 §2.1).
            self.in_header = false;
        }
        self.line_start = true;
    }
}

/// Encodes the body for DATA, a bounded piece at a time.
#[derive(Debug)]
pub(crate) struct BodyEncoder {
    body: MessageBody,
    /// Next octet of the body to encode.
    pos: usize,
    /// The output is at the start of a line (true at the start of the data).
    line_start: bool,
    /// A CR was read and its line ending not yet written.
    pending_cr: bool,
}

impl BodyEncoder {
    pub(crate) fn new(body: MessageBody) -> Self {
        BodyEncoder {
            body,
            pos: 0,
            // RFC 5321 §4.1.1.4: the first line of the data counts as preceded by CRLF.
            line_start: true,
            pending_cr: false,
        }
    }

    /// Appends encoded octets to `out` until it holds at least `limit` octets (it may pass
    /// it by the two octets of a line ending or a stuffed dot) or the body is done.
    /// Returns true once the terminator has been written.
    pub(crate) fn encode(&mut self, out: &mut Vec<u8>, limit: usize) -> bool {
        let bytes = self.body.as_bytes();
        while out.len() < limit {
            if self.pending_cr {
                // RFC 5321 §2.3.8: CR LF stays a line ending; a bare CR becomes one.
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if bytes.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            let rest = bytes.get(self.pos..).unwrap_or_default();
            let Some(&byte) = rest.first() else {
                break;
            };
            match byte {
                b'\r' => {
                    self.pending_cr = true;
                    self.pos += 1;
                }
                b'\n' => {
                    // RFC 5321 §2.3.8: a bare LF is sent as CRLF.
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    self.pos += 1;
                }
                _ => {
                    if self.line_start && byte == b'.' {
                        // RFC 5321 §4.5.2: a line starting with "." gets one more ".".
                        out.push(b'.');
                    }
                    let run = rest
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(rest.len())
                        .min(limit.saturating_sub(out.len()).max(1));
                    out.extend_from_slice(rest.get(..run).unwrap_or_default());
                    self.pos += run;
                    self.line_start = false;
                }
            }
        }
        if out.len() >= limit {
            return false;
        }
        if !self.line_start {
            // RFC 5321 §4.1.1.4: the terminator follows a CRLF.
            out.extend_from_slice(b"\r\n");
        }
        // RFC 5321 §4.1.1.4: end of mail data.
        out.extend_from_slice(b".\r\n");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(body: &[u8], limit: usize) -> Vec<u8> {
        let mut encoder = BodyEncoder::new(MessageBody::from(body.to_vec()));
        let mut wire = Vec::new();
        loop {
            let mut piece = Vec::new();
            let done = encoder.encode(&mut piece, limit);
            assert!(piece.len() <= limit + 5, "{} > {limit}", piece.len());
            wire.extend(piece);
            if done {
                return wire;
            }
        }
    }

    #[test]
    fn stuffing_and_normalisation() {
        for (body, wire) in [
            (&b""[..], &b".\r\n"[..]),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\n.b\r.\r\n..\r\n", b"a\r\n..b\r\n..\r\n...\r\n.\r\n"),
            (b"\r\r\n\n", b"\r\n\r\n\r\n.\r\n"),
            (b"x\r", b"x\r\n.\r\n"),
            (b"a.b\r\n .\r\n", b"a.b\r\n .\r\n.\r\n"),
        ] {
            for limit in 1..=wire.len() + 1 {
                assert_eq!(encode_all(body, limit), wire, "{body:?} at {limit}");
            }
            let info = analyse(body);
            assert_eq!(
                info.size as usize,
                // Size excludes the stuffing dots and the terminator (RFC 1870 §5).
                wire.len() - 3 - count_stuffed(wire),
                "{body:?}"
            );
        }
    }

    fn count_stuffed(wire: &[u8]) -> usize {
        let mut count = 0;
        let mut line_start = true;
        for (index, &byte) in wire.iter().enumerate() {
            if line_start && byte == b'.' && wire.get(index + 1) == Some(&b'.') {
                count += 1;
            }
            line_start = byte == b'\n';
        }
        count
    }

    #[test]
    fn eight_bit_detection() {
        let info = analyse("Subject: café\r\n\r\nbody\r\n".as_bytes());
        assert!(info.eight_bit && info.header_eight_bit);
        let info = analyse("Subject: x\r\n\r\ncafé\r\n".as_bytes());
        assert!(info.eight_bit && !info.header_eight_bit);
        let info = analyse("Subject: x\n\ncafé\n".as_bytes());
        assert!(info.eight_bit && !info.header_eight_bit);
        let info = analyse(b"Subject: x\r\n\r\nplain\r\n");
        assert!(!info.eight_bit && !info.header_eight_bit);
    }

    #[test]
    fn pieces_are_bounded() {
        let body = vec![b'x'; 300_000];
        let mut encoder = BodyEncoder::new(MessageBody::from(body));
        let mut pieces = 0;
        loop {
            let mut piece = Vec::new();
            let done = encoder.encode(&mut piece, 65_536);
            assert!(piece.len() <= 65_536 + 5);
            pieces += 1;
            if done {
                break;
            }
        }
        assert_eq!(pieces, 5);
    }
}
