//! The service extensions a server announces in its EHLO reply (RFC 5321 §4.1.1.1).
//!
//! ```text
//! ehlo-ok-rsp  = ( "250" SP Domain [ SP ehlo-greet ] CRLF )
//!              / ( "250-" Domain [ SP ehlo-greet ] CRLF
//!                  *( "250-" ehlo-line CRLF )
//!                  "250" SP ehlo-line CRLF )                    ; RFC 5321 §4.1.1.1
//! ehlo-line    = ehlo-keyword *( SP ehlo-param )
//! ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! ehlo-param   = 1*(%d33-126)
//!
//! size-param   = [1*DIGIT]                                      ; RFC 1870 §3
//! ```
//!
//! Keywords are case-insensitive (RFC 5321 §2.4); unknown keywords are ignored; the first
//! line (the server's name) carries no keyword.

use crate::core::Reply;

/// What the server offers after EHLO; all off after the HELO fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// EHLO was accepted; false after the HELO fallback (no extension may be used).
    pub esmtp: bool,
    /// SIZE (RFC 1870): `Some(limit)` when offered, `Some(0)` when offered without a fixed
    /// maximum (RFC 1870 §3: "0" or no parameter).
    pub size: Option<u64>,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// REQUIRETLS (RFC 8689).
    pub require_tls: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// AUTH mechanisms (RFC 4954 §3), upper case, as announced.
    pub auth: Vec<String>,
}

impl Extensions {
    /// The extensions of a 250 reply to EHLO.
    pub(crate) fn from_ehlo(reply: &Reply) -> Self {
        let mut extensions = Extensions {
            esmtp: true,
            ..Extensions::default()
        };
        // RFC 5321 §4.1.1.1: the first line is the server's domain and greeting.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '\t']).filter(|word| !word.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => {
                    // RFC 1870 §3: a missing or malformed value conveys no maximum.
                    let limit = words.next().and_then(|value| value.parse::<u64>().ok());
                    extensions.size = Some(limit.unwrap_or(0));
                }
                "PIPELINING" => extensions.pipelining = true,
                "STARTTLS" => extensions.starttls = true,
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "CHUNKING" => extensions.chunking = true,
                "DSN" => extensions.dsn = true,
                "REQUIRETLS" => extensions.require_tls = true,
                "ENHANCEDSTATUSCODES" => extensions.enhanced_status_codes = true,
                "AUTH" => {
                    extensions.auth = words.map(str::to_ascii_uppercase).collect();
                }
                _ => {}
            }
        }
        extensions
    }

    /// The declared maximum message size, when there is one (RFC 1870 §3, §4).
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&limit| limit > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keywords_case_insensitively() {
        let reply = Reply::multiline(
            250,
            "",
            [
                "mx.example Hello SIZE PIPELINING",
                "pipelining",
                "SIZE 10240000",
                "8BITMIME",
                "SmtpUtf8",
                "STARTTLS",
                "CHUNKING",
                "DSN",
                "REQUIRETLS",
                "ENHANCEDSTATUSCODES",
                "AUTH plain LOGIN",
                "X-UNKNOWN thing",
                "",
            ],
        );
        let extensions = Extensions::from_ehlo(&reply);
        assert_eq!(
            extensions,
            Extensions {
                esmtp: true,
                size: Some(10_240_000),
                pipelining: true,
                starttls: true,
                eight_bit_mime: true,
                smtputf8: true,
                chunking: true,
                dsn: true,
                require_tls: true,
                enhanced_status_codes: true,
                auth: vec!["PLAIN".to_string(), "LOGIN".to_string()],
            }
        );
        assert_eq!(extensions.size_limit(), Some(10_240_000));
    }

    #[test]
    fn first_line_is_not_a_keyword_and_size_may_have_no_limit() {
        let extensions = Extensions::from_ehlo(&Reply::multiline(250, "", ["STARTTLS", "SIZE"]));
        assert!(!extensions.starttls);
        assert_eq!(extensions.size, Some(0));
        assert_eq!(extensions.size_limit(), None);
        let extensions = Extensions::from_ehlo(&Reply::multiline(250, "", ["x", "SIZE -1"]));
        assert_eq!(extensions.size, Some(0));
        assert_eq!(Extensions::from_ehlo(&Reply::new(250, "", "mx")).size, None);
    }
}
