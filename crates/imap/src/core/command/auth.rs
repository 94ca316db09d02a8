//! LOGIN, AUTHENTICATE, ENABLE and ID.

use sealpost_sasl::Mechanism;
use sealpost_types::Secret;

use super::{CommandBody, ParseContext};
use crate::core::parser::{Input, PResult, ParseError, bad};

/// RFC 2971 §3.3: at most 30 field-value pairs, fields of at most 30 octets, values of
/// at most 1024 octets (SECURITY-TESTS IM-14).
pub const MAX_ID_PAIRS: usize = 30;
pub const MAX_ID_FIELD: usize = 30;
pub const MAX_ID_VALUE: usize = 1024;

/// ```text
/// login    = "LOGIN" SP userid SP password
/// userid   = astring
/// password = astring
/// ```
pub(super) fn login(input: &mut Input) -> PResult<CommandBody> {
    input.sp()?;
    let username = input.astring_utf8()?;
    input.sp()?;
    let password = Secret::new(input.astring_utf8()?);
    Ok(CommandBody::Login { username, password })
}

fn is_base64_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// ```text
/// authenticate    = "AUTHENTICATE" SP auth-type [SP initial-resp]   ; RFC 4959 §7
/// auth-type       = atom
/// initial-resp    = (base64 / "=")
/// base64          = *(4base64-char) [base64-terminal]
/// base64-terminal = (2base64-char "==") / (3base64-char "=")
/// ```
///
/// A mechanism that is not offered gets `NO [CANNOT]` (RFC 9051 §6.2.2).
pub(super) fn authenticate(input: &mut Input, ctx: &ParseContext) -> PResult<CommandBody> {
    input.sp()?;
    let name = input.atom()?;
    let mechanism = Mechanism::from_name(&name)
        .filter(|mechanism| ctx.mechanisms.contains(mechanism))
        .ok_or(ParseError::Cannot("unsupported authentication mechanism"))?;
    let mut initial_response = None;
    if input.eat(b' ') {
        if input.eat(b'=') {
            initial_response = Some(Secret::new(b"=".to_vec()));
        } else {
            let text = input.take_while(is_base64_char);
            let padding = input.take_while(|b| b == b'=');
            if text.is_empty()
                || !(text.len() + padding.len()).is_multiple_of(4)
                || padding.len() > 2
            {
                return bad("invalid base64 initial response");
            }
            let mut response = text;
            response.extend_from_slice(&padding);
            initial_response = Some(Secret::new(response));
        }
    }
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}

/// ```text
/// enable     = "ENABLE" 1*(SP capability)     ; RFC 5161 §4
/// capability = ("AUTH=" auth-type) / atom
/// ```
pub(super) fn enable(input: &mut Input) -> PResult<CommandBody> {
    let mut capabilities = Vec::new();
    while input.eat(b' ') {
        if capabilities.len() >= 32 {
            return Err(ParseError::Limit("too many capabilities"));
        }
        capabilities.push(input.atom()?.to_ascii_uppercase());
    }
    if capabilities.is_empty() {
        return bad("ENABLE needs a capability");
    }
    Ok(CommandBody::Enable { capabilities })
}

/// ```text
/// id             = "ID" SP id-params-list                          ; RFC 2971 §4
/// id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil
/// ```
///
/// Over the RFC 2971 §3.3 limits, or a field named twice: BAD.
pub(super) fn id(input: &mut Input) -> PResult<CommandBody> {
    input.sp()?;
    if input.eat_word("NIL") {
        return Ok(CommandBody::Id { params: None });
    }
    let pairs = input
        .paren_list(true, MAX_ID_PAIRS, |input| {
            let field = input.string_utf8()?;
            input.sp()?;
            let value = input.nstring_utf8()?;
            if field.len() > MAX_ID_FIELD || value.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE)
            {
                return bad("ID field or value too long");
            }
            Ok((field, value))
        })
        .map_err(|error| match error {
            ParseError::Limit(_) => ParseError::Bad("too many ID fields"),
            other => other,
        })?;
    for (index, (field, _)) in pairs.iter().enumerate() {
        if pairs
            .iter()
            .skip(index + 1)
            .any(|(other, _)| other.eq_ignore_ascii_case(field))
        {
            return bad("ID field repeated");
        }
    }
    Ok(CommandBody::Id {
        params: Some(pairs),
    })
}
