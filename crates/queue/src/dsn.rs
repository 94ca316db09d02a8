//! Delivery status notifications (bounces): RFC 3464 reports in an RFC 6522
//! `multipart/report` message, built from what the queue knows about a message and its
//! recipients. Pure: no clock, no randomness, no I/O — the caller passes the time and a
//! unique token, and queues the result with a NULL reverse-path.
//!
//! The report has three parts (RFC 6522 §3): a human-readable `text/plain` explanation, the
//! machine-readable `message/delivery-status` (RFC 3464 §2), and the original message
//! (`message/rfc822`) or only its header (`text/rfc822-headers`).
//!
//! ```text
//! delivery-status-content = per-message-fields 1*( CRLF per-recipient-fields )   ; RFC 3464 §2.1
//! per-message-fields = [ original-envelope-id-field CRLF ] reporting-mta-field CRLF
//!                      [ arrival-date-field CRLF ] ...                            ; RFC 3464 §2.2
//! per-recipient-fields = [ original-recipient-field CRLF ] final-recipient-field CRLF
//!                        action-field CRLF status-field CRLF [ remote-mta-field CRLF ]
//!                        [ diagnostic-code-field CRLF ] [ last-attempt-date-field CRLF ]
//!                        [ will-retry-until-field CRLF ] ...                      ; RFC 3464 §2.3
//! ```

use std::fmt::Write as _;

use sealpost_types::date::UtcDateTime;

/// Above this size a failed message is returned as its header only, whatever RET says: a
/// policy of ours (Postfix and Exim limit returned messages too), so that a bounce never
/// costs the sender's mailbox what the original cost.
pub const FULL_MESSAGE_LIMIT: usize = 100 * 1024;

/// Why a report cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsnError {
    /// RFC 3461 §6.2 / RFC 5321 §4.5.5: never a report to the null reverse-path.
    #[error("a delivery status notification is never sent to the null reverse-path")]
    NullSender,
    #[error("a delivery status notification needs at least one recipient")]
    NoRecipient,
    #[error("{0:?} is not a status code of the form class.subject.detail (RFC 3463)")]
    BadStatus(String),
    #[error("{0:?} cannot appear in a notification (control characters)")]
    BadField(String),
}

/// RFC 3464 §2.3.3 `Action`. (`expanded` is not a thing sealpost does.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Given up for good.
    Failed,
    /// Not delivered yet, still being retried.
    Delayed,
    /// Delivered to the recipient's (remote) mail system.
    Delivered,
    /// Handed to a server that does not offer DSN: no further report will come (RFC 3461
    /// §6.2.1 "relayed").
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }

    /// The RFC 3461 §4.1 NOTIFY keyword that asks for this kind of report.
    fn notify_keyword(self) -> &'static str {
        match self {
            Action::Failed => "FAILURE",
            Action::Delayed => "DELAY",
            Action::Delivered | Action::Relayed => "SUCCESS",
        }
    }
}

/// What explains the outcome (RFC 3464 §2.3.6 `Diagnostic-Code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A reply of the remote SMTP server, e.g. `550 5.1.1 <x@example.com>: no such user`
    /// (diagnostic-type `smtp`).
    Smtp(String),
    /// Anything else said by sealpost itself (diagnostic-type `X-Sealpost`, as Postfix
    /// writes `X-Postfix`): no route, queue lifetime over, removed by the administrator.
    Local(String),
}

/// One recipient the report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The address the delivery was for (RCPT TO): `Final-Recipient`.
    pub address: String,
    /// The RFC 3461 ORCPT parameter as received (`rfc822;` + xtext), if any:
    /// `Original-Recipient`.
    pub orcpt: Option<String>,
    pub action: Action,
    /// RFC 3463 enhanced status code, e.g. `5.1.1`, `4.4.1`, `2.0.0`.
    pub status: String,
    /// The remote MTA that answered, by host name, if one did.
    pub remote_mta: Option<String>,
    pub diagnostic: Option<Diagnostic>,
    /// Unix seconds of the last delivery attempt, if there was one.
    pub last_attempt: Option<i64>,
    /// For `Delayed`: Unix seconds after which sealpost gives up.
    pub will_retry_until: Option<i64>,
}

/// Everything a report says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRequest<'a> {
    /// Our host name: `Reporting-MTA`, the From address's domain, the Message-ID's right side.
    pub reporting_mta: &'a str,
    /// The original envelope sender, to whom the report goes (its To: header).
    pub sender: &'a str,
    /// RFC 3461 ENVID as received (xtext), if given: `Original-Envelope-Id`.
    pub envid: Option<&'a str>,
    /// RFC 3461 RET as received (`FULL` or `HDRS`), if given.
    pub ret: Option<&'a str>,
    /// Unix seconds when the message was accepted: `Arrival-Date`.
    pub arrival: i64,
    /// Unix seconds now: the report's `Date`.
    pub now: i64,
    /// A token unique to this report (e.g. queue id, time and a random part): the local
    /// part of its Message-ID and the seed of its MIME boundary. Letters, digits, `.`, `-`.
    pub unique: &'a str,
    pub recipients: &'a [DsnRecipient],
    /// The original message as queued.
    pub original: &'a [u8],
}

/// RFC 3461 §6.2 and RFC 5321 §4.5.5: a message with the null reverse-path (a bounce, or
/// any other notification) never gets a notification back, so two MTAs can never bounce a
/// message between them forever. Whoever queues a report sends it with the null
/// reverse-path, so a report is never bounced either.
pub fn must_not_bounce(sender: Option<&str>) -> bool {
    match sender {
        None => true,
        Some(sender) => {
            let sender = sender.trim();
            sender.is_empty() || sender == "<>"
        }
    }
}

/// Whether a recipient's RFC 3461 NOTIFY parameter asks for a report of this kind.
/// RFC 3461 §4.1: NEVER asks for none; without NOTIFY an MTA may act as if FAILURE or
/// FAILURE,DELAY was given — sealpost reports failures and delays then.
pub fn wants_report(notify: Option<&str>, action: Action) -> bool {
    match notify {
        None => matches!(action, Action::Failed | Action::Delayed),
        Some(list) => list
            .split(',')
            .any(|keyword| keyword.trim().eq_ignore_ascii_case(action.notify_keyword())),
    }
}

/// Builds the whole notification message (CRLF line ends), ready to be queued to
/// `request.sender` with the null reverse-path.
pub fn build(request: &DsnRequest<'_>) -> Result<Vec<u8>, DsnError> {
    if must_not_bounce(Some(request.sender)) {
        return Err(DsnError::NullSender);
    }
    if request.recipients.is_empty() {
        return Err(DsnError::NoRecipient);
    }
    for field in [request.reporting_mta, request.sender, request.unique] {
        check_field(field)?;
    }
    for recipient in request.recipients {
        check_status(&recipient.status)?;
        check_field(&recipient.address)?;
    }

    let worst = worst_action(request.recipients);
    let (attached, headers_only) = returned_part(request, worst);
    let text = human_readable(request, worst);
    let status = delivery_status(request);
    let boundary = boundary(request.unique, &[attached, text.as_bytes()]);

    let mut out = String::new();
    // RFC 3464 §3 / RFC 5321 §4.5.5: the report comes from the mail system itself.
    line(
        &mut out,
        &format!(
            "From: Mail Delivery System <MAILER-DAEMON@{}>",
            request.reporting_mta
        ),
    );
    line(&mut out, &format!("To: <{}>", request.sender));
    line(&mut out, &format!("Subject: {}", subject(worst)));
    line(
        &mut out,
        &format!("Date: {}", UtcDateTime::from_unix(request.now).to_rfc5322()),
    );
    line(
        &mut out,
        &format!("Message-ID: <{}@{}>", request.unique, request.reporting_mta),
    );
    // RFC 3834 §5: a notification is an automatic reply, never to be answered automatically.
    line(&mut out, "Auto-Submitted: auto-replied");
    line(&mut out, "MIME-Version: 1.0");
    // RFC 6522 §3: multipart/report with the report-type of its second part.
    line(
        &mut out,
        &format!(
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""
        ),
    );
    line(&mut out, "");
    line(&mut out, "This is a MIME-encapsulated message.");
    line(&mut out, "");

    line(&mut out, &format!("--{boundary}"));
    line(&mut out, "Content-Description: Notification");
    if text.is_ascii() {
        line(&mut out, "Content-Type: text/plain; charset=us-ascii");
        line(&mut out, "Content-Transfer-Encoding: 7bit");
        line(&mut out, "");
        out.push_str(&text);
    } else {
        // Non-ASCII (an internationalized address) goes as UTF-8, quoted-printable (RFC 2045
        // §6.7), so the part stays 7-bit whatever the path.
        line(&mut out, "Content-Type: text/plain; charset=utf-8");
        line(&mut out, "Content-Transfer-Encoding: quoted-printable");
        line(&mut out, "");
        out.push_str(&quoted_printable(&text));
    }
    line(&mut out, "");

    line(&mut out, &format!("--{boundary}"));
    line(&mut out, "Content-Description: Delivery report");
    line(&mut out, "Content-Type: message/delivery-status");
    line(&mut out, "");
    out.push_str(&status);
    line(&mut out, "");

    line(&mut out, &format!("--{boundary}"));
    if headers_only {
        line(&mut out, "Content-Description: Undelivered Message Headers");
        // RFC 6522 §4 (RFC 3462 §2.2): the header of the message only.
        line(&mut out, "Content-Type: text/rfc822-headers");
    } else {
        line(&mut out, "Content-Description: Undelivered Message");
        line(&mut out, "Content-Type: message/rfc822");
    }
    // RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary; say which.
    if !attached.is_ascii() {
        line(&mut out, "Content-Transfer-Encoding: 8bit");
    }
    line(&mut out, "");
    let mut raw = out.into_bytes();
    raw.extend_from_slice(attached);
    if !attached.ends_with(b"\n") {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(raw)
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push_str("\r\n");
}

/// Header-injection guard: what goes into a header or a report field has no CR, LF or
/// other control character.
fn check_field(value: &str) -> Result<(), DsnError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(DsnError::BadField(value.to_string()));
    }
    Ok(())
}

/// RFC 3463 §2: `status-code = class "." subject "." detail`, class 2, 4 or 5, subject and
/// detail 1 to 3 digits.
fn check_status(status: &str) -> Result<(), DsnError> {
    let bad = || DsnError::BadStatus(status.to_string());
    let mut parts = status.split('.');
    let class = parts.next().ok_or_else(bad)?;
    if !matches!(class, "2" | "4" | "5") {
        return Err(bad());
    }
    for _ in 0..2 {
        let part = parts.next().ok_or_else(bad)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(())
}

fn worst_action(recipients: &[DsnRecipient]) -> Action {
    if recipients.iter().any(|r| r.action == Action::Failed) {
        Action::Failed
    } else if recipients.iter().any(|r| r.action == Action::Delayed) {
        Action::Delayed
    } else if recipients.iter().any(|r| r.action == Action::Relayed) {
        Action::Relayed
    } else {
        Action::Delivered
    }
}

fn subject(worst: Action) -> &'static str {
    match worst {
        Action::Failed => "Undelivered Mail Returned to Sender",
        Action::Delayed => "Delayed Mail (still being retried)",
        Action::Delivered => "Successful Mail Delivery Report",
        Action::Relayed => "Relayed Mail Delivery Report",
    }
}

/// The header block of a message: up to and including the empty line that ends it (all of
/// it when there is no body).
fn header_of(message: &[u8]) -> &[u8] {
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| at + i + 1);
        let line = &message[at..end];
        if line == b"\r\n" || line == b"\n" {
            return &message[..end];
        }
        at = end;
    }
    message
}

/// What goes back to the sender, and whether it is the header only. RFC 3461 §4.3: RET
/// chooses for failure reports (HDRS: the header only); a delay or success report, or a
/// message over [`FULL_MESSAGE_LIMIT`], carries the header only.
fn returned_part<'a>(request: &DsnRequest<'a>, worst: Action) -> (&'a [u8], bool) {
    let hdrs = request
        .ret
        .is_some_and(|ret| ret.trim().eq_ignore_ascii_case("HDRS"));
    let full = worst == Action::Failed && !hdrs && request.original.len() <= FULL_MESSAGE_LIMIT;
    if full {
        (request.original, false)
    } else {
        (header_of(request.original), true)
    }
}

fn human_readable(request: &DsnRequest<'_>, worst: Action) -> String {
    let mut text = String::new();
    let host = request.reporting_mta;
    let _ = write!(text, "This is the mail system at host {host}.\r\n\r\n");
    let intro = match worst {
        Action::Failed => {
            "I'm sorry to have to inform you that your message could not be delivered to one \
             or more recipients. It's attached below."
        }
        Action::Delayed => {
            "Your message could not be delivered yet to one or more recipients. This is only \
             a warning: the mail system will keep trying, and you need not send the message \
             again."
        }
        Action::Delivered => "Your message was delivered to the recipients listed below.",
        Action::Relayed => {
            "Your message was handed to the mail system of the recipients listed below. That \
             system does not send delivery reports, so no further notice will come."
        }
    };
    for wrapped in wrap(intro, 72) {
        text.push_str(&wrapped);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    for recipient in request.recipients {
        let what = match recipient.action {
            Action::Failed => "could not be delivered",
            Action::Delayed => "delayed, still being retried",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed to a system that sends no delivery reports",
        };
        let _ = write!(text, "<{}>: {what}", clean(&recipient.address));
        if let Some(until) = recipient.will_retry_until
            && recipient.action == Action::Delayed
        {
            let _ = write!(
                text,
                " until {}",
                UtcDateTime::from_unix(until).to_rfc5322()
            );
        }
        text.push_str("\r\n");
        if let Some(diagnostic) = &recipient.diagnostic {
            let said = match diagnostic {
                Diagnostic::Smtp(reply) => match &recipient.remote_mta {
                    Some(mta) => format!("{} said: {}", clean(mta), clean(reply)),
                    None => format!("the remote server said: {}", clean(reply)),
                },
                Diagnostic::Local(reason) => clean(reason),
            };
            for wrapped in wrap(&said, 68) {
                let _ = write!(text, "    {wrapped}\r\n");
            }
        }
        text.push_str("\r\n");
    }
    text.push_str("For further assistance, please contact the postmaster of this host.\r\n");
    text
}

/// The `message/delivery-status` body (RFC 3464 §2). Kept 7-bit: RFC 3464 §2.1 defines it
/// in US-ASCII, and an RFC 6533 `message/global-delivery-status` is not needed for that.
fn delivery_status(request: &DsnRequest<'_>) -> String {
    let mut out = String::new();
    if let Some(envid) = request.envid {
        // RFC 3461 §4.4: ENVID travels as xtext; the report shows it decoded.
        line(
            &mut out,
            &format!("Original-Envelope-Id: {}", ascii(&xtext_decode(envid))),
        );
    }
    line(
        &mut out,
        &format!("Reporting-MTA: dns; {}", ascii(request.reporting_mta)),
    );
    line(
        &mut out,
        &format!(
            "Arrival-Date: {}",
            UtcDateTime::from_unix(request.arrival).to_rfc5322()
        ),
    );
    for recipient in request.recipients {
        line(&mut out, "");
        if let Some(orcpt) = &recipient.orcpt {
            // RFC 3461 §4.2: ORCPT = addr-type ";" xtext; RFC 3464 §2.3.1 shows it decoded.
            let (kind, address) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            line(
                &mut out,
                &format!(
                    "Original-Recipient: {}",
                    address_field(kind.trim(), &xtext_decode(address.trim()))
                ),
            );
        }
        line(
            &mut out,
            &format!(
                "Final-Recipient: {}",
                address_field("rfc822", &recipient.address)
            ),
        );
        line(&mut out, &format!("Action: {}", recipient.action.as_str()));
        line(&mut out, &format!("Status: {}", recipient.status));
        if let Some(mta) = &recipient.remote_mta {
            line(&mut out, &format!("Remote-MTA: dns; {}", ascii(mta)));
        }
        if let Some(diagnostic) = &recipient.diagnostic {
            let (kind, text) = match diagnostic {
                Diagnostic::Smtp(reply) => ("smtp", reply),
                Diagnostic::Local(reason) => ("X-Sealpost", reason),
            };
            line(
                &mut out,
                &format!("Diagnostic-Code: {kind}; {}", ascii(text)),
            );
        }
        if let Some(at) = recipient.last_attempt {
            line(
                &mut out,
                &format!(
                    "Last-Attempt-Date: {}",
                    UtcDateTime::from_unix(at).to_rfc5322()
                ),
            );
        }
        if recipient.action == Action::Delayed
            && let Some(until) = recipient.will_retry_until
        {
            line(
                &mut out,
                &format!(
                    "Will-Retry-Until: {}",
                    UtcDateTime::from_unix(until).to_rfc5322()
                ),
            );
        }
    }
    out
}

/// `address-type "; " generic-address` (RFC 3464 §2.1.2). A non-ASCII address becomes the
/// `utf-8` type with its non-ASCII characters as `\x{HEX}` (RFC 6533 §3 utf-8-addr-xtext),
/// which keeps the report 7-bit.
fn address_field(kind: &str, address: &str) -> String {
    if address.is_ascii() {
        return format!("{}; {}", ascii(kind), ascii(address));
    }
    let mut escaped = String::new();
    for c in address.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != '\\' {
            escaped.push(c);
        } else {
            let _ = write!(escaped, "\\x{{{:X}}}", u32::from(c));
        }
    }
    format!("utf-8; {escaped}")
}

/// RFC 3461 §4: `xtext` decoding (`+HH` is the octet HH); anything malformed stays as it
/// is rather than being dropped.
fn xtext_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(octet) = u8::from_str_radix(hex, 16)
        {
            out.push(octet);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Printable text on one line: control characters (CR and LF above all) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Like [`clean`], and 7-bit: other characters become `?` (the report fields are ASCII).
fn ascii(text: &str) -> String {
    clean(text)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// Words onto lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// RFC 2045 §6.7 quoted-printable of CRLF-separated text: lines of at most 76 characters
/// (soft breaks `=`), `=`, non-ASCII and trailing white space as `=HH`.
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.split("\r\n").peekable();
    while let Some(source) = lines.next() {
        let mut width = 0;
        let bytes = source.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal =
                ((b == b' ' || b == b'\t') && !last) || (b.is_ascii_graphic() && b != b'=');
            let piece = if literal {
                char::from(b).to_string()
            } else {
                format!("={b:02X}")
            };
            // Room for the soft line break's "=".
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        if lines.peek().is_some() {
            out.push_str("\r\n");
        }
    }
    out
}

/// A boundary that occurs in none of `parts` (RFC 2046 §5.1.1: it must not appear inside
/// the encapsulated parts).
fn boundary(unique: &str, parts: &[&[u8]]) -> String {
    let seed: String = unique
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .take(40)
        .collect();
    let mut counter = 0u32;
    loop {
        let candidate = format!("=_dsn_{seed}_{counter}");
        let needle = candidate.as_bytes();
        let clash = parts
            .iter()
            .any(|part| part.windows(needle.len()).any(|window| window == needle));
        if !clash {
            return candidate;
        }
        counter += 1;
    }
}

#[cfg(test)]
mod tests;
