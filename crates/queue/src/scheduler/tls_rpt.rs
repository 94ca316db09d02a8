//! TLS-RPT (RFC 8460 §4.4) data of a batch's sessions.

use super::*;

/// TLS-RPT data (RFC 8460 §4.4) of one batch: each session counted once (a batch's reports
/// share their sessions), by the policy that applied to its host.
pub(super) fn tls_sessions(
    domain: &str,
    route: &Route,
    reports: &[DeliveryReport],
    now: i64,
) -> Vec<TlsSessions> {
    let day = UtcDateTime::from_unix(now).to_day();
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut sessions: Vec<TlsSessions> = Vec::new();
    // One session: host, address and what happened (each report of a batch repeats it).
    let mut add = |host: &str, address: &SocketAddr, result: &str, ip: String, reason: String| {
        if !seen.insert((host.to_string(), address.to_string(), reason.clone())) {
            return;
        }
        let (policy_type, policy_string) = route.tls_policy(host);
        match sessions
            .iter_mut()
            .find(|s| s.mx_host == host && s.result == result && s.receiving_ip == ip)
        {
            Some(session) => session.count += 1,
            None => sessions.push(TlsSessions {
                day: day.clone(),
                policy_domain: domain.to_string(),
                policy_type: policy_type.to_string(),
                policy_string,
                mx_host: host.to_string(),
                result: result.to_string(),
                receiving_ip: ip,
                reason,
                count: 1,
            }),
        }
    };
    for report in reports {
        if let (Some(host), Some(address)) = (&report.host, &report.address) {
            match &report.tls {
                Some(_) => add(host, address, "success", String::new(), String::new()),
                // RFC 8460 §4.3.1: the server offered no STARTTLS.
                None => add(
                    host,
                    address,
                    "starttls-not-supported",
                    address.ip().to_string(),
                    "plaintext session".to_string(),
                ),
            }
        }
        for (host, address, failure) in &report.failures {
            if let Some(result) = tls_result(failure) {
                add(
                    host,
                    address,
                    result,
                    address.ip().to_string(),
                    failure.to_string(),
                );
            }
        }
    }
    sessions
}

/// The RFC 8460 §4.3 result type of a TLS failure; `None` for failures before TLS (no
/// connection, a refused session).
pub(super) fn tls_result(failure: &Failure) -> Option<&'static str> {
    match failure {
        Failure::TlsNotOffered | Failure::StartTlsRefused(_) => Some("starttls-not-supported"),
        Failure::Certificate { problem, .. } => Some(problem.result_type()),
        Failure::TlsHandshake(_) => Some("validation-failure"),
        _ => None,
    }
}
