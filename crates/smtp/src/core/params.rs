//! MAIL and RCPT parameters (RFC 5321 §4.1.2 esmtp-param) for the extensions sealpost offers.
//!
//! ```text
//! Mail-parameters  = esmtp-param *(SP esmtp-param)          ; RFC 5321 §4.1.2
//! Rcpt-parameters  = esmtp-param *(SP esmtp-param)
//! esmtp-param      = esmtp-keyword ["=" esmtp-value]
//! esmtp-keyword    = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! esmtp-value      = 1*(%d33-60 / %d62-126)
//!
//! size-param       = "SIZE=" 1*20DIGIT                      ; RFC 1870 §3
//! body-param       = "BODY=" ("7BIT" / "8BITMIME")          ; RFC 6152 §2
//! smtputf8-param   = "SMTPUTF8"                             ; RFC 6531 §3.4
//! ret-param        = "RET=" ("FULL" / "HDRS")               ; RFC 3461 §4.3
//! envid-param      = "ENVID=" xtext                         ; RFC 3461 §4.4, ≤ 100 chars
//! notify-param     = "NOTIFY=" ("NEVER" / notify-list)      ; RFC 3461 §4.1
//! notify-list      = notify-item *("," notify-item)
//! notify-item      = "SUCCESS" / "FAILURE" / "DELAY"
//! orcpt-param      = "ORCPT=" addr-type ";" xtext           ; RFC 3461 §4.2, ≤ 500 chars
//! addr-type        = atom
//! auth-param       = "AUTH=" ( xtext / "<>" )               ; RFC 4954 §5
//! xtext            = *( xchar / hexchar )                   ; RFC 3461 §4
//! xchar            = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
//!                    except for "+" and "=".
//! hexchar          = ASCII "+" immediately followed by two upper case hexadecimal digits
//! ```
//!
//! Keywords and the fixed values are case-insensitive (RFC 5321 §2.4). An unknown keyword,
//! a DSN keyword while DSN is not offered, or a repeated keyword gives 555 5.5.4 (RFC 5321
//! §4.1.1.11); a known keyword with a malformed value gives 501 5.5.4.

use super::server::{AuthParams, BodyType, DsnNotify, DsnRet, MailParams, RcptParams};

/// RFC 3461 §4.4: ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT is at most 500 characters.
const MAX_ORCPT: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamError {
    /// Unknown keyword, DSN keyword without DSN, or a duplicate: 555 5.5.4.
    Unsupported,
    /// Known keyword with a malformed value: 501 5.5.4.
    InvalidValue,
    /// SIZE larger than `u64` (a syntactically valid 20-digit number): over any limit.
    SizeOverflow,
}

/// What the session allows in parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamPolicy {
    pub(crate) dsn: bool,
    pub(crate) auth: bool,
    /// REQUIRETLS is offered (on a TLS session only, RFC 8689 §4).
    pub(crate) require_tls: bool,
}

/// Splits `text` into `(keyword, value)` pairs; several spaces between parameters are
/// tolerated (robustness; Postfix does the same).
fn split(text: &str) -> impl Iterator<Item = Result<(&str, Option<&str>), ParamError>> {
    text.split(' ').filter(|p| !p.is_empty()).map(|param| {
        let (keyword, value) = match param.split_once('=') {
            Some((keyword, value)) => (keyword, Some(value)),
            None => (param, None),
        };
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !keyword_ok {
            return Err(ParamError::InvalidValue);
        }
        // RFC 5321 §4.1.2: esmtp-value = 1*(%d33-60 / %d62-126).
        if let Some(value) = value
            && (value.is_empty() || !value.bytes().all(|b| matches!(b, 33..=60 | 62..=126)))
        {
            return Err(ParamError::InvalidValue);
        }
        Ok((keyword, value))
    })
}

/// The keyword in upper case; a keyword given twice is refused (RFC 5321 §4.1.2 does not
/// define a repeated parameter; RFC 1870 §6 and the others allow one each).
fn once(seen: &mut Vec<String>, keyword: &str) -> Result<String, ParamError> {
    let upper = keyword.to_ascii_uppercase();
    if seen.contains(&upper) {
        return Err(ParamError::Unsupported);
    }
    seen.push(upper.clone());
    Ok(upper)
}

/// Parses the parameters after `MAIL FROM:<path>`.
pub(crate) fn parse_mail_params(text: &str, policy: ParamPolicy) -> Result<MailParams, ParamError> {
    let mut params = MailParams::default();
    let mut seen = Vec::new();
    for param in split(text) {
        let (keyword, value) = param?;
        match once(&mut seen, keyword)?.as_str() {
            "SIZE" => params.size = Some(parse_size(value)?),
            "BODY" => {
                // RFC 6152 §2 (8BITMIME); BINARYMIME (RFC 3030 §3) is not offered.
                let body = match value.map(str::to_ascii_uppercase).as_deref() {
                    Some("7BIT") => BodyType::SevenBit,
                    Some("8BITMIME") => BodyType::EightBitMime,
                    _ => return Err(ParamError::InvalidValue),
                };
                params.body = Some(body);
            }
            "SMTPUTF8" => {
                // RFC 6531 §3.4: the parameter has no value.
                if value.is_some() {
                    return Err(ParamError::InvalidValue);
                }
                params.smtputf8 = true;
            }
            "REQUIRETLS" if policy.require_tls => {
                // RFC 8689 §4.1: REQUIRETLS has no value.
                if value.is_some() {
                    return Err(ParamError::InvalidValue);
                }
                params.require_tls = true;
            }
            "RET" if policy.dsn => {
                let ret = match value.map(str::to_ascii_uppercase).as_deref() {
                    Some("FULL") => DsnRet::Full,
                    Some("HDRS") => DsnRet::Headers,
                    _ => return Err(ParamError::InvalidValue),
                };
                params.ret = Some(ret);
            }
            "ENVID" if policy.dsn => {
                let envid = value
                    .and_then(decode_xtext)
                    .filter(|envid| envid.len() <= MAX_ENVID)
                    .ok_or(ParamError::InvalidValue)?;
                params.envid = Some(envid);
            }
            "AUTH" if policy.auth => {
                // RFC 4954 §5: AUTH=<> means the submitter is unknown.
                let mailbox = match value {
                    Some("<>") => None,
                    Some(xtext) => Some(decode_xtext(xtext).ok_or(ParamError::InvalidValue)?),
                    None => return Err(ParamError::InvalidValue),
                };
                params.auth = Some(AuthParams { mailbox });
            }
            _ => return Err(ParamError::Unsupported),
        }
    }
    Ok(params)
}

/// Parses the parameters after `RCPT TO:<path>`.
pub(crate) fn parse_rcpt_params(text: &str, policy: ParamPolicy) -> Result<RcptParams, ParamError> {
    let mut params = RcptParams::default();
    let mut seen = Vec::new();
    for param in split(text) {
        let (keyword, value) = param?;
        match once(&mut seen, keyword)?.as_str() {
            "NOTIFY" if policy.dsn => {
                let notify = value
                    .and_then(parse_notify)
                    .ok_or(ParamError::InvalidValue)?;
                params.notify = Some(notify);
            }
            "ORCPT" if policy.dsn => {
                let orcpt = value
                    .and_then(parse_orcpt)
                    .ok_or(ParamError::InvalidValue)?;
                params.orcpt = Some(orcpt);
            }
            _ => return Err(ParamError::Unsupported),
        }
    }
    Ok(params)
}

/// RFC 1870 §3: size-value = 1*20DIGIT.
fn parse_size(value: Option<&str>) -> Result<u64, ParamError> {
    let digits = value.ok_or(ParamError::InvalidValue)?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::InvalidValue);
    }
    digits.parse::<u64>().map_err(|_| ParamError::SizeOverflow)
}

/// RFC 3461 §4.1: "NEVER" alone, or a list of SUCCESS / FAILURE / DELAY.
fn parse_notify(value: &str) -> Option<DsnNotify> {
    let mut notify = DsnNotify::default();
    for item in value.split(',') {
        let flag = match item.to_ascii_uppercase().as_str() {
            "NEVER" => &mut notify.never,
            "SUCCESS" => &mut notify.success,
            "FAILURE" => &mut notify.failure,
            "DELAY" => &mut notify.delay,
            _ => return None,
        };
        if *flag {
            return None;
        }
        *flag = true;
    }
    // RFC 3461 §4.1: NEVER must not be combined with another value.
    if notify.never && (notify.success || notify.failure || notify.delay) {
        return None;
    }
    Some(notify)
}

/// RFC 3461 §4.2: ORCPT=addr-type ";" xtext.
fn parse_orcpt(value: &str) -> Option<(String, String)> {
    if value.len() > MAX_ORCPT {
        return None;
    }
    let (addr_type, xtext) = value.split_once(';')?;
    let type_ok = !addr_type.is_empty()
        && addr_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c));
    if !type_ok {
        return None;
    }
    let address = decode_xtext(xtext)?;
    if address.is_empty() {
        return None;
    }
    Some((addr_type.to_string(), address))
}

/// RFC 3461 §4: decodes xtext; `None` when malformed or not printable US-ASCII.
pub(crate) fn decode_xtext(xtext: &str) -> Option<String> {
    let bytes = xtext.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => {
                let hex = bytes.get(index + 1..index + 3)?;
                // RFC 3461 §4: "two upper case hexadecimal digits".
                if !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
                    return None;
                }
                let text = std::str::from_utf8(hex).ok()?;
                let decoded = u8::from_str_radix(text, 16).ok()?;
                // Decoded characters stay printable ASCII (RFC 3461 §4.2, §4.4).
                if !(0x20..0x7f).contains(&decoded) {
                    return None;
                }
                out.push(char::from(decoded));
                index += 3;
            }
            b'=' => return None,
            33..=126 => {
                out.push(char::from(byte));
                index += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: ParamPolicy = ParamPolicy {
        dsn: true,
        auth: true,
        require_tls: true,
    };
    const NONE: ParamPolicy = ParamPolicy {
        dsn: false,
        auth: false,
        require_tls: false,
    };

    #[test]
    fn requiretls_only_where_offered_and_without_value() {
        assert!(parse_mail_params(" REQUIRETLS", ALL).unwrap().require_tls);
        assert!(!parse_mail_params("", ALL).unwrap().require_tls);
        assert_eq!(
            parse_mail_params(" REQUIRETLS", NONE),
            Err(ParamError::Unsupported)
        );
        assert_eq!(
            parse_mail_params(" REQUIRETLS=yes", ALL),
            Err(ParamError::InvalidValue)
        );
        assert_eq!(
            parse_mail_params(" REQUIRETLS REQUIRETLS", ALL),
            Err(ParamError::Unsupported)
        );
    }

    #[test]
    fn mail_params() {
        let params = parse_mail_params(
            " size=1000 BODY=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>",
            ALL,
        )
        .unwrap();
        assert_eq!(
            params,
            MailParams {
                size: Some(1000),
                body: Some(BodyType::EightBitMime),
                smtputf8: true,
                ret: Some(DsnRet::Headers),
                envid: Some("QQ+1".to_string()),
                auth: Some(AuthParams { mailbox: None }),
                require_tls: false,
            }
        );
        let params = parse_mail_params(" AUTH=e+3Dmc2@example.com", ALL).unwrap();
        assert_eq!(
            params.auth.unwrap().mailbox.as_deref(),
            Some("e=mc2@example.com")
        );
        assert_eq!(parse_mail_params("", NONE).unwrap(), MailParams::default());
    }

    #[test]
    fn mail_param_errors() {
        use ParamError::*;
        for (text, error) in [
            (" SIZE=-1", InvalidValue),
            (" SIZE=", InvalidValue),
            (" SIZE", InvalidValue),
            (" SIZE=12a", InvalidValue),
            (" SIZE=123456789012345678901", InvalidValue),
            (" SIZE=18446744073709551616", SizeOverflow),
            (" SIZE=1 SIZE=2", Unsupported),
            (" BODY=8BITMIME BODY=BINARYMIME", Unsupported),
            (" BODY=BINARYMIME", InvalidValue),
            (" SMTPUTF8=yes", InvalidValue),
            (" SMTPUTF8 SMTPUTF8", Unsupported),
            (" FOO=bar", Unsupported),
            (" RET=FULL", Unsupported),
            (" ENVID=x", Unsupported),
            (" AUTH=<>", Unsupported),
            (" -X=1", InvalidValue),
            (" X=a=b", InvalidValue),
        ] {
            let policy = if text.contains("RET") || text.contains("ENVID") || text.contains("AUTH")
            {
                NONE
            } else {
                ALL
            };
            assert_eq!(parse_mail_params(text, policy), Err(error), "{text}");
        }
        assert_eq!(
            parse_mail_params(" RET=NONE", ALL),
            Err(ParamError::InvalidValue)
        );
        assert_eq!(
            parse_mail_params(" ENVID=a+2b", ALL),
            Err(ParamError::InvalidValue)
        );
        let long = format!(" ENVID={}", "x".repeat(101));
        assert_eq!(parse_mail_params(&long, ALL), Err(ParamError::InvalidValue));
    }

    #[test]
    fn rcpt_params() {
        let params =
            parse_rcpt_params(" NOTIFY=SUCCESS,failure ORCPT=rfc822;a+2Bb@x.example", ALL).unwrap();
        assert_eq!(
            params.notify,
            Some(DsnNotify {
                never: false,
                success: true,
                failure: true,
                delay: false
            })
        );
        assert_eq!(
            params.orcpt,
            Some(("rfc822".to_string(), "a+b@x.example".to_string()))
        );
        for bad in [
            " NOTIFY=NEVER,DELAY",
            " NOTIFY=SOMETIMES",
            " NOTIFY=DELAY,DELAY",
            " ORCPT=x",
            " ORCPT=;a",
        ] {
            assert_eq!(
                parse_rcpt_params(bad, ALL),
                Err(ParamError::InvalidValue),
                "{bad}"
            );
        }
        assert_eq!(
            parse_rcpt_params(" NOTIFY=NEVER", NONE),
            Err(ParamError::Unsupported)
        );
        assert_eq!(
            parse_rcpt_params(" SIZE=1", ALL),
            Err(ParamError::Unsupported)
        );
        assert_eq!(
            parse_rcpt_params(" NOTIFY=NEVER NOTIFY=NEVER", ALL),
            Err(ParamError::Unsupported)
        );
    }

    #[test]
    fn xtext() {
        assert_eq!(decode_xtext("abc+2B+3D").as_deref(), Some("abc+="));
        assert_eq!(decode_xtext(""), Some(String::new()));
        for bad in ["+", "+2", "+2b", "+0A", "a=b", "a b", "é"] {
            assert_eq!(decode_xtext(bad), None, "{bad}");
        }
    }
}
