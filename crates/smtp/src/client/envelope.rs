//! What the caller hands to [`super::ClientCore::send`], and the MAIL and RCPT command lines
//! built from it with the parameters the server offers.
//!
//! ```text
//! mail         = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF   ; RFC 5321 §4.1.1.2
//! rcpt         = "RCPT TO:" Forward-path [SP Rcpt-parameters] CRLF     ; RFC 5321 §4.1.1.3
//! size-param   = "SIZE=" 1*20DIGIT                                     ; RFC 1870 §3
//! body-param   = "BODY=8BITMIME"                                       ; RFC 6152 §2
//! utf8-param   = "SMTPUTF8"                                            ; RFC 6531 §3.4
//! tls-param    = "REQUIRETLS"                                          ; RFC 8689 §2
//! ret-param    = "RET=" ("FULL" / "HDRS")                              ; RFC 3461 §4.3
//! envid-param  = "ENVID=" xtext                 ; ≤ 100 chars          ; RFC 3461 §4.4
//! notify-param = "NOTIFY=" ("NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY")) ; RFC 3461 §4.1
//! orcpt-param  = "ORCPT=" addr-type ";" xtext   ; ≤ 500 chars          ; RFC 3461 §4.2
//! xtext        = *( xchar / hexchar )                                  ; RFC 3461 §4
//! xchar        = %d33-42 / %d44-60 / %d62-126   ; printable but "+" and "="
//! hexchar      = "+" 2(%x30-39 / %x41-46)
//! ```
//!
//! Every address is checked with the server core's own path parser (RFC 5321 §4.1.2), so
//! no envelope value can carry a CR, LF or `>` into a command line; ENVID and ORCPT are
//! xtext-encoded, which leaves only printable US-ASCII.

use std::fmt;
use std::sync::Arc;

use super::body::BodyInfo;
use super::extensions::Extensions;
use crate::core::path::{PathKind, parse_path};
use crate::core::{DsnNotify, DsnRet};

/// RFC 3461 §4.4: ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT is at most 500 characters.
const MAX_ORCPT: usize = 500;

/// The envelope of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path; `None` is the null sender `<>` (RFC 5321 §4.5.5: bounces, DSNs).
    pub from: Option<String>,
    /// In the order their replies appear in [`super::TransactionResult::rcpt`].
    pub recipients: Vec<Recipient>,
    /// The message was received with SMTPUTF8 (RFC 6531 §3.4): ask for it whenever the
    /// server offers it. It is *needed* (and the transaction fails without sending where
    /// it is not offered) when an address is not ASCII, or when this is set and the header
    /// section holds 8-bit octets (UTF-8 header fields, RFC 6532).
    pub smtputf8: bool,
    /// REQUIRETLS (RFC 8689 §4.2.1): only over TLS to a server that offers it. The core
    /// checks both; that the certificate was verified (DANE or MTA-STS, RFC 8689 §4.2.1)
    /// is the caller's policy, checked before calling `send`.
    pub require_tls: bool,
    /// RET= (RFC 3461 §4.3), sent only when the server offers DSN.
    pub ret: Option<DsnRet>,
    /// ENVID= before xtext encoding (RFC 3461 §4.4), sent only when DSN is offered.
    pub envid: Option<String>,
}

impl Envelope {
    /// An envelope with no extension parameters.
    pub fn new<I, S>(from: Option<&str>, recipients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Envelope {
            from: from.map(str::to_string),
            recipients: recipients.into_iter().map(Recipient::new).collect(),
            ..Envelope::default()
        }
    }
}

/// One forward-path with its DSN parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    /// `local@domain`, or `postmaster` (RFC 5321 §4.5.1).
    pub address: String,
    /// NOTIFY= (RFC 3461 §4.1), sent only when the server offers DSN.
    pub notify: Option<DsnNotify>,
    /// ORCPT= as (address type, address before xtext encoding) (RFC 3461 §4.2), sent only
    /// when the server offers DSN.
    pub orcpt: Option<(String, String)>,
}

impl Recipient {
    pub fn new(address: impl Into<String>) -> Self {
        Recipient {
            address: address.into(),
            ..Recipient::default()
        }
    }
}

/// The message content, shared rather than copied: the core keeps a reference and encodes
/// it on demand ([`super::BODY_CHUNK`] octets per `take_output`), so a 50 MB message is
/// in memory once however many transactions send it. `From<Vec<u8>>` moves the vector in
/// without copying; clone the `MessageBody` to send the same message again.
#[derive(Clone)]
pub struct MessageBody(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl MessageBody {
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        MessageBody(Arc::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl fmt::Debug for MessageBody {
    // The content may be private; its length is enough for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody({} octets)", self.as_bytes().len())
    }
}

impl From<Vec<u8>> for MessageBody {
    fn from(bytes: Vec<u8>) -> Self {
        MessageBody::new(bytes)
    }
}

impl From<String> for MessageBody {
    fn from(text: String) -> Self {
        MessageBody::new(text)
    }
}

impl From<Arc<[u8]>> for MessageBody {
    fn from(bytes: Arc<[u8]>) -> Self {
        MessageBody::new(bytes)
    }
}

impl From<&'static [u8]> for MessageBody {
    fn from(bytes: &'static [u8]) -> Self {
        MessageBody::new(bytes)
    }
}

impl From<&'static str> for MessageBody {
    fn from(text: &'static str) -> Self {
        MessageBody::new(text)
    }
}

/// Why [`super::ClientCore::send`] sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not idle: before `Ready`, during a transaction or STARTTLS, or after the session.
    #[error("the session is not ready for a transaction")]
    NotReady,
    #[error("the envelope has no recipients")]
    NoRecipients,
    /// Not a valid reverse-path (RFC 5321 §4.1.2); `Some("")` is not the null sender.
    #[error("invalid sender address")]
    InvalidSender,
    /// Recipient number `n` (from 0) is not a valid forward-path (RFC 5321 §4.1.2).
    #[error("invalid recipient address (#{0})")]
    InvalidRecipient(usize),
    /// ENVID, NOTIFY or ORCPT outside RFC 3461 §4 (length, NEVER with others, addr-type).
    #[error("invalid DSN parameter: {0}")]
    InvalidDsnParameter(&'static str),
    /// SMTPUTF8 is needed and the server does not offer it (RFC 6531 §3.4, §3.2).
    #[error("the message needs SMTPUTF8, which the server does not offer")]
    SmtpUtf8NotOffered,
    /// REQUIRETLS over a connection without TLS (RFC 8689 §4.2.1).
    #[error("REQUIRETLS needs TLS")]
    RequireTlsWithoutTls,
    /// REQUIRETLS and the server does not offer it (RFC 8689 §4.2.1).
    #[error("REQUIRETLS is not offered by the server")]
    RequireTlsNotOffered,
    /// Larger than the server's declared maximum (RFC 1870 §4: it would get 552).
    #[error("message of {size} octets exceeds the server's limit of {limit}")]
    TooBig { size: u64, limit: u64 },
}

/// The command lines of one transaction, CRLF included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commands {
    pub(crate) mail: String,
    pub(crate) rcpt: Vec<String>,
}

/// Checks the envelope against the session and builds MAIL and every RCPT.
pub(crate) fn build(
    envelope: &Envelope,
    body: &BodyInfo,
    extensions: &Extensions,
    tls_active: bool,
) -> Result<Commands, SendError> {
    if envelope.recipients.is_empty() {
        return Err(SendError::NoRecipients);
    }
    let (from, mut non_ascii) = match &envelope.from {
        None => (None, false),
        Some(address) => {
            let (mailbox, non_ascii) =
                check_path(address, PathKind::Reverse).ok_or(SendError::InvalidSender)?;
            (Some(mailbox), non_ascii)
        }
    };
    let mut recipients = Vec::with_capacity(envelope.recipients.len());
    for (index, recipient) in envelope.recipients.iter().enumerate() {
        let (mailbox, utf8) = check_path(&recipient.address, PathKind::Forward)
            .ok_or(SendError::InvalidRecipient(index))?;
        non_ascii |= utf8;
        recipients.push(mailbox);
    }
    // RFC 6531 §3.4: UTF-8 in the envelope, or UTF-8 header fields of a message received
    // with SMTPUTF8, can go only to a server that offers SMTPUTF8 (§3.2: else no delivery).
    let needs_utf8 = non_ascii || (envelope.smtputf8 && body.header_eight_bit);
    if needs_utf8 && !extensions.smtputf8 {
        return Err(SendError::SmtpUtf8NotOffered);
    }
    if envelope.require_tls {
        // RFC 8689 §4.2.1: only over TLS, and only to a server that offers REQUIRETLS.
        if !tls_active {
            return Err(SendError::RequireTlsWithoutTls);
        }
        if !extensions.require_tls {
            return Err(SendError::RequireTlsNotOffered);
        }
    }
    if let Some(limit) = extensions.size_limit()
        && body.size > limit
    {
        // RFC 1870 §4: a message above the declared maximum is refused with 552.
        return Err(SendError::TooBig {
            size: body.size,
            limit,
        });
    }

    let mut mail = format!("MAIL FROM:<{}>", from.unwrap_or_default());
    if extensions.size.is_some() {
        // RFC 1870 §5: the size after normalisation, without stuffing dots.
        mail.push_str(&format!(" SIZE={}", body.size));
    }
    // RFC 6152 §3: 8-bit content is declared when the server offers 8BITMIME. Where it is
    // not offered the content goes unmarked (no 7-bit conversion here; the caller can see
    // `Extensions::eight_bit_mime` and decide first).
    if body.eight_bit && extensions.eight_bit_mime {
        mail.push_str(" BODY=8BITMIME");
    }
    // RFC 6531 §3.4: SMTPUTF8 when needed or asked for, and offered.
    if (needs_utf8 || envelope.smtputf8) && extensions.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    if envelope.require_tls {
        // RFC 8689 §2: the REQUIRETLS MAIL parameter.
        mail.push_str(" REQUIRETLS");
    }
    let envid = envelope.envid.as_deref().map(xtext);
    if envid.as_ref().is_some_and(|envid| envid.len() > MAX_ENVID) {
        return Err(SendError::InvalidDsnParameter("ENVID longer than 100"));
    }
    // RFC 3461 §4: DSN parameters only to a server that offers DSN.
    if extensions.dsn {
        if let Some(ret) = envelope.ret {
            // RFC 3461 §4.3.
            mail.push_str(match ret {
                DsnRet::Full => " RET=FULL",
                DsnRet::Headers => " RET=HDRS",
            });
        }
        if let Some(envid) = &envid {
            // RFC 3461 §4.4.
            mail.push_str(&format!(" ENVID={envid}"));
        }
    }
    mail.push_str("\r\n");

    let mut rcpt = Vec::with_capacity(recipients.len());
    for (recipient, mailbox) in envelope.recipients.iter().zip(recipients) {
        let mut line = format!("RCPT TO:<{mailbox}>");
        let notify = recipient.notify.map(notify_value).transpose()?;
        let orcpt = recipient.orcpt.as_ref().map(orcpt_value).transpose()?;
        if extensions.dsn {
            if let Some(notify) = notify {
                // RFC 3461 §4.1.
                line.push_str(&format!(" NOTIFY={notify}"));
            }
            if let Some(orcpt) = orcpt {
                // RFC 3461 §4.2.
                line.push_str(&format!(" ORCPT={orcpt}"));
            }
        }
        line.push_str("\r\n");
        rcpt.push(line);
    }
    Ok(Commands { mail, rcpt })
}

/// The mailbox of `<address>` as the path parser reads it, and whether it is UTF-8;
/// `None` when it is not one complete valid path (a non-empty address is never `<>`).
fn check_path(address: &str, kind: PathKind) -> Option<(String, bool)> {
    let bracketed = format!("<{address}>");
    let (path, rest) = parse_path(&bracketed, kind).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some((path.mailbox?, path.non_ascii))
}

/// RFC 3461 §4.1: "NEVER" alone, or a list of SUCCESS, FAILURE and DELAY.
fn notify_value(notify: DsnNotify) -> Result<String, SendError> {
    let others = [
        (notify.success, "SUCCESS"),
        (notify.failure, "FAILURE"),
        (notify.delay, "DELAY"),
    ];
    let named: Vec<&str> = others
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
    match (notify.never, named.is_empty()) {
        (true, true) => Ok("NEVER".to_string()),
        (false, false) => Ok(named.join(",")),
        // RFC 3461 §4.1: NEVER with another value, or no value at all.
        _ => Err(SendError::InvalidDsnParameter("NOTIFY")),
    }
}

/// RFC 3461 §4.2: addr-type ";" xtext, at most 500 characters; addr-type is an atom.
fn orcpt_value((addr_type, address): &(String, String)) -> Result<String, SendError> {
    let type_ok = !addr_type.is_empty()
        && addr_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c));
    if !type_ok || address.is_empty() {
        return Err(SendError::InvalidDsnParameter("ORCPT"));
    }
    let value = format!("{addr_type};{}", xtext(address));
    if value.len() > MAX_ORCPT {
        return Err(SendError::InvalidDsnParameter("ORCPT longer than 500"));
    }
    Ok(value)
}

/// RFC 3461 §4: xtext; every octet outside "!".."~", and "+" and "=", as "+" and two
/// upper-case hex digits.
pub(crate) fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (33..=126).contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Extensions {
        Extensions {
            esmtp: true,
            size: Some(1000),
            pipelining: true,
            starttls: true,
            eight_bit_mime: true,
            smtputf8: true,
            chunking: true,
            dsn: true,
            require_tls: true,
            enhanced_status_codes: true,
            auth: Vec::new(),
        }
    }

    const ASCII: BodyInfo = BodyInfo {
        size: 10,
        eight_bit: false,
        header_eight_bit: false,
    };

    #[test]
    fn xtext_leaves_only_printable_ascii() {
        // The round trip through the server core's decoder is in tests/end_to_end.rs.
        for text in ["plain", "a+b=c", "x y", "ÿ\r\n", "", "+2B"] {
            assert!(xtext(text).bytes().all(|b| (33..=126).contains(&b)));
        }
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("ÿ"), "+C3+BF");
    }

    #[test]
    fn injection_is_impossible() {
        for bad in [
            "a@b.example>\r\nRCPT TO:<c@d.example",
            "a@b.example> SIZE=1",
            "a\r\n@b.example",
            "a@b.example\n",
            "",
            "no-domain",
        ] {
            let envelope = Envelope::new(Some(bad), ["x@y.example"]);
            assert_eq!(
                build(&envelope, &ASCII, &all(), true),
                Err(SendError::InvalidSender),
                "{bad:?}"
            );
            let envelope = Envelope::new(None, ["x@y.example", bad]);
            assert_eq!(
                build(&envelope, &ASCII, &all(), true),
                Err(SendError::InvalidRecipient(1)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dsn_parameter_checks() {
        let mut envelope = Envelope::new(None, ["x@y.example"]);
        envelope.envid = Some("x".repeat(101));
        assert_eq!(
            build(&envelope, &ASCII, &all(), true),
            Err(SendError::InvalidDsnParameter("ENVID longer than 100"))
        );
        let mut envelope = Envelope::new(None, ["x@y.example"]);
        envelope.recipients[0].notify = Some(DsnNotify {
            never: true,
            delay: true,
            ..DsnNotify::default()
        });
        assert!(build(&envelope, &ASCII, &all(), true).is_err());
        envelope.recipients[0].notify = Some(DsnNotify::default());
        assert!(build(&envelope, &ASCII, &all(), true).is_err());
        envelope.recipients[0].notify = None;
        envelope.recipients[0].orcpt = Some(("rfc 822".to_string(), "a@b".to_string()));
        assert!(build(&envelope, &ASCII, &all(), true).is_err());
    }

    #[test]
    fn no_extension_no_parameter() {
        let mut envelope = Envelope::new(Some("a@b.example"), ["x@y.example"]);
        envelope.ret = Some(DsnRet::Headers);
        envelope.envid = Some("id".to_string());
        envelope.recipients[0].notify = Some(DsnNotify {
            failure: true,
            ..DsnNotify::default()
        });
        let body = BodyInfo {
            eight_bit: true,
            ..ASCII
        };
        let commands = build(&envelope, &body, &Extensions::default(), false).unwrap();
        assert_eq!(commands.mail, "MAIL FROM:<a@b.example>\r\n");
        assert_eq!(commands.rcpt, ["RCPT TO:<x@y.example>\r\n"]);
        let commands = build(&envelope, &body, &all(), false).unwrap();
        assert_eq!(
            commands.mail,
            "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME RET=HDRS ENVID=id\r\n"
        );
        assert_eq!(commands.rcpt, ["RCPT TO:<x@y.example> NOTIFY=FAILURE\r\n"]);
    }
}
