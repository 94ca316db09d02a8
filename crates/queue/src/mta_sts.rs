//! MTA-STS (RFC 8461): a domain's published demand that mail to it travel over TLS to MX
//! hosts it names, with certificates a public CA vouches for.
//!
//! [`MtaSts::policy`] finds a domain's policy: the `_mta-sts.<domain>` TXT record (§3.1)
//! gives the policy id; the policy itself comes over HTTPS from
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.3: a PKIX-valid certificate, no
//! redirects, `text/plain`) and is cached for its `max_age` (§5.1: refetched only when the id
//! changes or it expires; used while unexpired when the TXT record or the fetch fails). The
//! cache is in memory: a restart fetches again.
//!
//! ```text
//! sts-text-record = sts-version 1*(*WSP ";" *WSP sts-field) [";"]      ; RFC 8461 §3.1
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! policy          = field *(CRLF/LF field)                              ; RFC 8461 §3.2
//! field           = field-name ":" *WSP field-value
//! version: STSv1 | mode: enforce|testing|none | max_age: 1*10DIGIT | mx: pattern (repeated)
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig as TlsConfig;
use rustls::pki_types::ServerName;
use sealpost_dns::{DnsError, Resolver};
use sealpost_types::date::unix_now;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// RFC 8461 §3.3: the policy path under the policy host.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";
/// RFC 8461 §3.2: `max_age` is at most 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// RFC 8461 §3.3: senders may limit the policy size; 64 KiB is what the RFC suggests.
const MAX_POLICY_SIZE: usize = 64 * 1024;
/// Room for the HTTP header section on top of the body.
const MAX_RESPONSE_SIZE: usize = MAX_POLICY_SIZE + 16 * 1024;
/// The whole fetch: connect, handshake, request, response (RFC 8461 §3.3 leaves it to the
/// sender; a minute is what it suggests as the upper end).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// RFC 8461 §5: what the sender does when the MX host or its certificate does not satisfy
/// the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse to deliver to such a host.
    Enforce,
    /// Deliver anyway, and report the failure (TLS-RPT).
    Testing,
    /// No policy (a domain withdrawing one).
    None,
}

/// A domain's policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Host names and `*.` wildcard patterns, lower case, without the final dot.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
    /// The id of the TXT record it was fetched for.
    pub id: String,
}

impl Policy {
    /// Parses a policy body. The id is the TXT record's.
    pub fn parse(text: &str, id: &str) -> Result<Policy, MtaStsError> {
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        // RFC 8461 §3.2: lines end in CRLF or LF.
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(MtaStsError::Policy(format!("not a field: {line:?}")));
            };
            let value = value.trim_matches([' ', '\t']);
            // RFC 8461 §3.2: field names are case-sensitive; unknown fields are ignored, and
            // of a repeated field other than mx the first counts.
            match name {
                "version" if version.is_none() => version = Some(value.to_string()),
                "mode" if mode.is_none() => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(MtaStsError::Policy(format!("mode {other:?}"))),
                    });
                }
                "max_age" if max_age.is_none() => {
                    let valid = !value.is_empty()
                        && value.len() <= 10
                        && value.bytes().all(|b| b.is_ascii_digit());
                    let seconds: u64 = value
                        .parse()
                        .ok()
                        .filter(|_| valid)
                        .ok_or_else(|| MtaStsError::Policy(format!("max_age {value:?}")))?;
                    max_age = Some(seconds.min(MAX_AGE_LIMIT));
                }
                "mx" => {
                    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
                    if !valid_pattern(&pattern) {
                        return Err(MtaStsError::Policy(format!("mx {value:?}")));
                    }
                    mx.push(pattern);
                }
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(MtaStsError::Policy("version is not STSv1".to_string()));
        }
        let mode = mode.ok_or_else(|| MtaStsError::Policy("no mode".to_string()))?;
        let max_age = max_age.ok_or_else(|| MtaStsError::Policy("no max_age".to_string()))?;
        // RFC 8461 §3.2: mx is required unless the mode is none.
        if mx.is_empty() && mode != Mode::None {
            return Err(MtaStsError::Policy("no mx".to_string()));
        }
        Ok(Policy {
            mode,
            mx,
            max_age,
            id: id.to_string(),
        })
    }

    /// RFC 8461 §4.1: whether an MX host is one the policy names: equal ignoring case, or
    /// matching a `*.` pattern in exactly its leftmost label.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => *pattern == host,
            })
    }
}

fn valid_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// RFC 8461 §3.1: the policy id of the `_mta-sts` TXT records, `None` when there is no
/// usable record (none, several, or a malformed one: "no available policy").
pub fn txt_id(records: &[String]) -> Option<String> {
    let mut ours = records.iter().filter(|r| r.starts_with("v=STSv1"));
    let record = ours.next()?;
    if ours.next().is_some() {
        return None;
    }
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next() != Some("v=STSv1") {
        return None;
    }
    let mut id = None;
    for field in fields.filter(|f| !f.is_empty()) {
        let (name, value) = field.split_once('=')?;
        if name == "id" && id.is_none() {
            let valid = !value.is_empty()
                && value.len() <= 32
                && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                return None;
            }
            id = Some(value.to_string());
        }
    }
    id
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtaStsError {
    #[error("invalid MTA-STS policy: {0}")]
    Policy(String),
    #[error("cannot fetch the MTA-STS policy from {host}: {reason}")]
    Fetch { host: String, reason: String },
}

struct Cached {
    policy: Arc<Policy>,
    expires: i64,
}

/// Policy discovery and its cache, shared by all deliveries.
pub struct MtaSts {
    tls: Arc<TlsConfig>,
    /// The HTTPS port of policy hosts (443; another only in tests).
    port: u16,
    cache: Mutex<HashMap<String, Cached>>,
}

impl MtaSts {
    /// `tls` must verify certificates against trusted CAs (RFC 8461 §3.3) and offer ALPN
    /// `http/1.1`: `sealpost_net::pkix_client_config`.
    pub fn new(tls: Arc<TlsConfig>, port: u16) -> Self {
        MtaSts {
            tls,
            port,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policy in force for `domain`, if any (see the module documentation).
    pub async fn policy(&self, resolver: &Resolver, domain: &str) -> Option<Arc<Policy>> {
        let now = unix_now();
        let cached = {
            let cache = self.cache.lock().await;
            cache
                .get(domain)
                .filter(|c| c.expires > now)
                .map(|c| Arc::clone(&c.policy))
        };
        let id = match resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => txt_id(&records),
            Err(DnsError::NxDomain { .. } | DnsError::NoAddresses { .. }) => None,
            Err(error) => {
                tracing::debug!(%domain, %error, "MTA-STS TXT lookup failed");
                None
            }
        };
        // RFC 8461 §5.1: an unexpired cached policy stays in force without a (new) id.
        let Some(id) = id else {
            return cached;
        };
        if let Some(policy) = &cached
            && policy.id == id
        {
            return cached;
        }
        match self.fetch(resolver, domain, &id).await {
            Ok(policy) => {
                let policy = Arc::new(policy);
                let expires = now.saturating_add(i64::try_from(policy.max_age).unwrap_or(0));
                self.cache.lock().await.insert(
                    domain.to_string(),
                    Cached {
                        policy: Arc::clone(&policy),
                        expires,
                    },
                );
                tracing::info!(%domain, id = %policy.id, mode = ?policy.mode, "MTA-STS policy fetched");
                Some(policy)
            }
            Err(error) => {
                // RFC 8461 §5.1: on a failed fetch, keep using the cached policy if any.
                tracing::warn!(%domain, %error, "MTA-STS policy fetch failed");
                cached
            }
        }
    }

    async fn fetch(
        &self,
        resolver: &Resolver,
        domain: &str,
        id: &str,
    ) -> Result<Policy, MtaStsError> {
        let host = format!("mta-sts.{domain}");
        let failed = |reason: String| MtaStsError::Fetch {
            host: host.clone(),
            reason,
        };
        let body = tokio::time::timeout(FETCH_TIMEOUT, self.get(resolver, &host))
            .await
            .map_err(|_| failed("timed out".to_string()))?
            .map_err(failed)?;
        Policy::parse(&body, id)
    }

    /// `GET /.well-known/mta-sts.txt` over HTTPS; the body of a 200 `text/plain` answer.
    async fn get(&self, resolver: &Resolver, host: &str) -> Result<String, String> {
        let addresses = resolver.addresses(host).await.map_err(|e| e.to_string())?;
        let mut last = String::from("no address");
        for ip in addresses {
            let address = SocketAddr::new(ip, self.port);
            match self.get_from(address, host).await {
                Ok(body) => return Ok(body),
                Err(error) => last = format!("{address}: {error}"),
            }
        }
        Err(last)
    }

    async fn get_from(&self, address: SocketAddr, host: &str) -> Result<String, String> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let request = format!(
            "GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sealpost\r\n\
             Accept: text/plain\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    response.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if response.len() > MAX_RESPONSE_SIZE {
                        return Err("response too large".to_string());
                    }
                    if let Some(body) = complete_body(&response)? {
                        return Ok(body);
                    }
                }
                // A server that closes without close_notify: judge what arrived.
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(error) => return Err(error.to_string()),
            }
        }
        let body = http_body(&response, true)?;
        body.ok_or_else(|| "incomplete response".to_string())
    }
}

/// The body of a response once all of it is there (by Content-Length or the last chunk);
/// `None` while more is needed.
fn complete_body(response: &[u8]) -> Result<Option<String>, String> {
    http_body(response, false)
}

/// Parses an HTTP/1.1 response (RFC 9112): status 200 only (RFC 8461 §3.3: no redirects),
/// `Content-Type: text/plain`, a body by Content-Length, chunks, or the end of the stream
/// (`closed`).
fn http_body(response: &[u8], closed: bool) -> Result<Option<String>, String> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if closed {
            Err("no complete HTTP header".to_string())
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(response.get(..end).unwrap_or_default())
        .map_err(|_| "HTTP header not UTF-8".to_string())?;
    let body = response.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status:?}"));
    }
    if code != "200" {
        return Err(format!(
            "HTTP status {code} (RFC 8461 §3.3: only 200, no redirects)"
        ));
    }
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    // RFC 8461 §3.3: the policy is served as text/plain (parameters such as charset allowed).
    let media = content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(str::trim);
    if media != Some("text/plain") {
        return Err(format!(
            "Content-Type {:?}, not text/plain",
            content_type.unwrap_or_default()
        ));
    }
    let bytes = if chunked {
        match dechunk(body)? {
            Some(bytes) => bytes,
            None if closed => return Err("truncated chunked body".to_string()),
            None => return Ok(None),
        }
    } else if let Some(length) = length {
        if length > MAX_POLICY_SIZE {
            return Err("policy too large".to_string());
        }
        match body.get(..length) {
            Some(bytes) => bytes.to_vec(),
            None if closed => return Err("truncated body".to_string()),
            None => return Ok(None),
        }
    } else if closed {
        body.to_vec()
    } else {
        return Ok(None);
    };
    if bytes.len() > MAX_POLICY_SIZE {
        return Err("policy too large".to_string());
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "policy not UTF-8".to_string())
}

/// RFC 9112 §7.1: `size [; ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF`; `None` until the
/// last chunk has arrived.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(body.get(..line_end).unwrap_or_default())
            .map_err(|_| "bad chunk size".to_string())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size > MAX_POLICY_SIZE || out.len() + size > MAX_POLICY_SIZE {
            return Err("policy too large".to_string());
        }
        let data_start = line_end + 2;
        if size == 0 {
            return Ok(Some(out));
        }
        let Some(data) = body.get(data_start..data_start + size) else {
            return Ok(None);
        };
        out.extend_from_slice(data);
        match body.get(data_start + size..data_start + size + 2) {
            Some(b"\r\n") => body = body.get(data_start + size + 2..).unwrap_or_default(),
            Some(_) => return Err("chunk not followed by CRLF".to_string()),
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
