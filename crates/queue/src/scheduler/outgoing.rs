//! The message as it leaves: the stored bytes without our Return-Path, DKIM-signed for a
//! local From domain, and its SMTP envelope with the DSN parameters.

use super::*;

impl Shared {
    /// The message as it leaves: the stored bytes without our leading Return-Path (added
    /// for the local copies that share the blob, RFC 5321 §4.4: only the final delivery adds
    /// it), DKIM-signed when its From domain is ours.
    pub(super) async fn prepare<'m>(&self, message: &'m Message) -> Result<&'m Prepared, String> {
        message
            .prepared
            .get_or_init(|| async {
                let stored = self
                    .store
                    .read_blob(&message.entry.blob)
                    .await
                    .map_err(|error| error.to_string())?;
                let original: Arc<[u8]> = Arc::from(stored);
                let unsigned = strip_return_path(&original);
                let mut body = Vec::with_capacity(unsigned.len() + 2048);
                if let Some(signer) = self.signer_for(unsigned).await {
                    match signer.sign(unsigned) {
                        Ok(signatures) => body.extend_from_slice(&signatures),
                        Err(error) => tracing::error!(
                            queue_id = %message.entry.queue_id,
                            %error,
                            "DKIM signing failed; sending unsigned"
                        ),
                    }
                }
                body.extend_from_slice(unsigned);
                Ok(Prepared {
                    body: MessageBody::from(body),
                    original,
                })
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The signer of the message's From domain when that domain is ours and has keys.
    pub(super) async fn signer_for(&self, message: &[u8]) -> Option<Arc<DkimSigner>> {
        let domain = signing_domain(message)?;
        let mut signers = self.signers.lock().await;
        if let Some((read, signer)) = signers.get(&domain)
            && read.elapsed() < SIGNER_TTL
        {
            return signer.clone();
        }
        let signer = match self.store.domain(&domain).await {
            Ok(Some(record)) => match DkimSigner::new(&record) {
                Ok(signer) => Some(Arc::new(signer)),
                Err(error) => {
                    tracing::warn!(%domain, %error, "cannot sign for this domain");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%domain, %error, "store error reading DKIM keys");
                return None;
            }
        };
        signers.insert(domain, (Instant::now(), signer.clone()));
        signer
    }
}

/// Drops the first line when it is a Return-Path header field: sealpost's own, added for the
/// local copies of a mixed delivery (the final delivery adds it, RFC 5321 §4.4).
pub(super) fn strip_return_path(raw: &[u8]) -> &[u8] {
    const NAME: &[u8] = b"return-path:";
    let starts = raw
        .get(..NAME.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(NAME));
    if !starts {
        return raw;
    }
    match raw.windows(2).position(|w| w == b"\r\n") {
        Some(end) => raw.get(end + 2..).unwrap_or_default(),
        None => raw,
    }
}

/// The SMTP envelope of one job: its recipients with their DSN parameters (RFC 3461, passed
/// on when the next server offers DSN), SMTPUTF8 when an address or the header needs it.
pub(super) fn envelope(
    entry: &QueueEntry,
    recipients: &[EntryRecipient],
    body: &MessageBody,
) -> Envelope {
    let recipients: Vec<Recipient> = recipients
        .iter()
        .map(|r| Recipient {
            address: r.address.clone(),
            notify: r.notify.as_deref().map(parse_notify),
            orcpt: r
                .orcpt
                .as_deref()
                .and_then(|o| o.split_once(';'))
                .map(|(kind, address)| (kind.to_string(), address.to_string())),
        })
        .collect();
    let header_end = body
        .as_bytes()
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(body.as_bytes().len());
    let eight_bit_header = body
        .as_bytes()
        .get(..header_end)
        .is_some_and(|h| !h.is_ascii());
    let non_ascii_address = entry.from.as_deref().is_some_and(|f| !f.is_ascii())
        || recipients.iter().any(|r| !r.address.is_ascii());
    Envelope {
        from: entry.from.clone(),
        recipients,
        smtputf8: eight_bit_header || non_ascii_address,
        // RFC 8689 §4.2.1: passed on; the core refuses a server that does not offer it.
        require_tls: entry.require_tls,
        ret: entry.ret.as_deref().and_then(|ret| {
            if ret.eq_ignore_ascii_case("FULL") {
                Some(DsnRet::Full)
            } else if ret.eq_ignore_ascii_case("HDRS") {
                Some(DsnRet::Headers)
            } else {
                None
            }
        }),
        envid: entry.envid.clone(),
    }
}

/// NOTIFY as kept ("SUCCESS,FAILURE", "NEVER").
pub(super) fn parse_notify(text: &str) -> DsnNotify {
    let mut notify = DsnNotify::default();
    for keyword in text.split(',') {
        match keyword.trim().to_ascii_uppercase().as_str() {
            "NEVER" => notify.never = true,
            "SUCCESS" => notify.success = true,
            "FAILURE" => notify.failure = true,
            "DELAY" => notify.delay = true,
            _ => {}
        }
    }
    notify
}
