//! The kinds of listener the server runs.

use std::fmt;

/// One network service; a listener serves exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// MTA port 25: STARTTLS offered, never required (RFC 3207 §4).
    Smtp,
    /// Message submission, port 587: STARTTLS before AUTH (RFC 6409).
    Submission,
    /// Submission over implicit TLS, port 465 (RFC 8314 §3.3).
    Submissions,
    /// IMAP, port 143: STARTTLS before LOGIN (RFC 9051 §6.2.1).
    Imap,
    /// IMAP over implicit TLS, port 993 (RFC 8314 §3.2).
    Imaps,
    /// POP3, port 110: STLS before USER/PASS (RFC 2595 §4).
    Pop3,
    /// POP3 over implicit TLS, port 995 (RFC 8314 §3.2).
    Pop3s,
}

impl ServiceKind {
    /// Every service, in configuration order.
    pub const ALL: [ServiceKind; 7] = [
        ServiceKind::Smtp,
        ServiceKind::Submission,
        ServiceKind::Submissions,
        ServiceKind::Imap,
        ServiceKind::Imaps,
        ServiceKind::Pop3,
        ServiceKind::Pop3s,
    ];

    /// The name used in configuration, logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Smtp => "smtp",
            ServiceKind::Submission => "submission",
            ServiceKind::Submissions => "submissions",
            ServiceKind::Imap => "imap",
            ServiceKind::Imaps => "imaps",
            ServiceKind::Pop3 => "pop3",
            ServiceKind::Pop3s => "pop3s",
        }
    }

    /// The service named `name` (as in [`ServiceKind::name`]).
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the TLS handshake happens at connect time.
    pub fn implicit_tls(self) -> bool {
        // RFC 8314 §3: implicit TLS ports start the handshake immediately after connecting.
        matches!(
            self,
            ServiceKind::Submissions | ServiceKind::Imaps | ServiceKind::Pop3s
        )
    }

    /// What a client refused for being over a connection limit is told, in the protocol's
    /// own words, before the socket closes. `None` on implicit-TLS ports: answering there
    /// would cost a handshake, which is exactly what a flood should not get.
    pub fn busy_reply(self) -> Option<&'static [u8]> {
        match self {
            // RFC 5321 §3.8: a server that cannot serve answers 421 and closes.
            ServiceKind::Smtp | ServiceKind::Submission => {
                Some(b"421 4.7.0 Too many connections, try again later\r\n")
            }
            // RFC 9051 §7.1.5: BYE, the server is closing the connection.
            ServiceKind::Imap => Some(b"* BYE Too many connections, try again later\r\n"),
            // RFC 3206 §4: SYS/TEMP, a temporary condition.
            ServiceKind::Pop3 => Some(b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"),
            ServiceKind::Submissions | ServiceKind::Imaps | ServiceKind::Pop3s => None,
        }
    }

    /// The ALPN protocol IDs this service accepts.
    ///
    /// A client offering ALPN without one of these is refused with alert 120
    /// (ALPACA countermeasure); a client offering no ALPN at all is served.
    pub fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            // RFC 7301 §6: "imap" and "pop3" are IDs in the IANA ALPN registry.
            ServiceKind::Imap | ServiceKind::Imaps => &[b"imap"],
            ServiceKind::Pop3 | ServiceKind::Pop3s => &[b"pop3"],
            // "smtp" is not IANA-registered; accepted as mox does (SECURITY-TESTS TLS-04).
            ServiceKind::Smtp | ServiceKind::Submission | ServiceKind::Submissions => &[b"smtp"],
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceKind;

    #[test]
    fn names_round_trip() {
        for s in ServiceKind::ALL {
            assert_eq!(ServiceKind::from_name(s.name()), Some(s));
        }
        assert_eq!(ServiceKind::from_name("http"), None);
    }

    #[test]
    fn implicit_tls_and_alpn() {
        let implicit: Vec<_> = ServiceKind::ALL
            .into_iter()
            .filter(|s| s.implicit_tls())
            .collect();
        assert_eq!(
            implicit,
            [
                ServiceKind::Submissions,
                ServiceKind::Imaps,
                ServiceKind::Pop3s
            ]
        );
        assert_eq!(ServiceKind::Imaps.alpn(), [b"imap".as_slice()]);
        assert_eq!(ServiceKind::Pop3.alpn(), [b"pop3".as_slice()]);
        assert_eq!(ServiceKind::Submission.alpn(), [b"smtp".as_slice()]);
    }
}
