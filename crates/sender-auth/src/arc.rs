//! ARC chain validation (RFC 8617 §5.2) over mail-auth: the result recorded in
//! Authentication-Results, and who sealed the newest set, which the DMARC policy may trust
//! for forwarded mail (RFC 8617 §7.2).

use mail_auth::{AuthenticatedMessage, MessageAuthenticator, Parameters};

use crate::cache::KeyCache;

/// RFC 8617 §4.4 chain validation status, as reported in `arc=` (RFC 8617 §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcResult {
    None,
    Pass,
    Fail,
}

impl ArcResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ArcResult::None => "none",
            ArcResult::Pass => "pass",
            ArcResult::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcVerdict {
    pub result: ArcResult,
    /// The number of ARC sets (the highest instance i=).
    pub instances: u32,
    /// d= of each ARC-Seal, oldest first (lower case).
    pub sealers: Vec<String>,
    /// Why it failed, for the comment.
    pub reason: String,
}

impl ArcVerdict {
    /// No ARC header fields at all.
    pub fn none() -> Self {
        ArcVerdict {
            result: ArcResult::None,
            instances: 0,
            sealers: Vec::new(),
            reason: String::new(),
        }
    }

    /// The keys could not be had in time: not a pass (RFC 8617 §5.2).
    pub fn timed_out() -> Self {
        ArcVerdict {
            result: ArcResult::Fail,
            instances: 0,
            sealers: Vec::new(),
            reason: "DNS too slow to validate the chain".to_string(),
        }
    }

    /// The domain that sealed the newest set: the last forwarder before us.
    pub fn newest_sealer(&self) -> Option<&str> {
        self.sealers.last().map(String::as_str)
    }
}

pub(crate) async fn verify(
    authenticator: &MessageAuthenticator,
    keys: &KeyCache,
    message: &AuthenticatedMessage<'_>,
) -> ArcVerdict {
    use mail_auth::DkimResult as Outcome;
    if message.as_headers.is_empty() && message.ams_headers.is_empty() && !message.has_arc_errors {
        return ArcVerdict {
            result: ArcResult::None,
            instances: 0,
            sealers: Vec::new(),
            reason: String::new(),
        };
    }
    let output = authenticator
        .verify_arc(Parameters::new(message).with_txt_cache(keys))
        .await;
    let sealers = output
        .sets()
        .iter()
        .map(|set| set.seal.header.d.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let (result, reason) = match output.result() {
        Outcome::Pass => (ArcResult::Pass, String::new()),
        // RFC 8617 §5.2: anything else, including DNS trouble, is a chain that did not
        // validate; a temporary failure is still not a pass.
        Outcome::None => (ArcResult::None, String::new()),
        Outcome::Fail(error)
        | Outcome::Neutral(error)
        | Outcome::PermError(error)
        | Outcome::TempError(error) => (ArcResult::Fail, error.to_string()),
    };
    ArcVerdict {
        result,
        instances: sealers.len() as u32,
        sealers,
        reason,
    }
}
