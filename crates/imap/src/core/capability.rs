//! The CAPABILITY list (RFC 9051 §7.2.2), which depends on the state: STARTTLS and
//! LOGINDISABLED before TLS, AUTH= mechanisms before login, everything else after.

use super::config::CoreConfig;
use super::state::SessionInfo;

/// Whether LOGIN/AUTHENTICATE may be used now (RFC 9051 §6.2.3, RFC 8314 §3).
pub(crate) fn login_allowed(config: &CoreConfig, session: &SessionInfo) -> bool {
    session.tls || !config.login_requires_tls
}

/// The capability list of the session, without the `CAPABILITY` keyword.
pub(crate) fn capabilities(config: &CoreConfig, session: &SessionInfo) -> String {
    let ext = &config.extensions;
    // RFC 9051 Appendix E: a server may offer both revisions; the client picks with
    // ENABLE IMAP4rev2.
    let mut caps: Vec<String> = vec!["IMAP4rev1".into(), "IMAP4rev2".into()];
    let literal = if ext.literal_plus {
        "LITERAL+"
    } else {
        "LITERAL-"
    };
    if !session.is_authenticated() {
        if config.offer_starttls && !session.tls {
            caps.push("STARTTLS".into());
        }
        if login_allowed(config, session) {
            caps.extend(
                config
                    .auth_mechanisms
                    .iter()
                    .map(|m| format!("AUTH={}", m.name())),
            );
            caps.push("SASL-IR".into());
        } else {
            // RFC 9051 §6.2.3 / §7.2.2: LOGIN and AUTHENTICATE are refused.
            caps.push("LOGINDISABLED".into());
        }
        caps.extend(["ID", "ENABLE", "IDLE", literal].map(String::from));
        return caps.join(" ");
    }
    caps.extend(
        [
            "ENABLE",
            "IDLE",
            literal,
            "NAMESPACE",
            "ID",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "ESEARCH",
            "SEARCHRES",
            "STATUS=SIZE",
        ]
        .map(String::from),
    );
    caps.push(format!("APPENDLIMIT={}", config.limits.max_append));
    if ext.condstore {
        caps.push("CONDSTORE".into());
    }
    if ext.condstore && ext.qresync {
        caps.push("QRESYNC".into());
    }
    if ext.quota {
        // RFC 9208 §3.1: only STORAGE can be limited (per account, `user quota`).
        caps.extend(["QUOTA", "QUOTA=RES-STORAGE"].map(String::from));
    }
    if ext.multiappend {
        caps.push("MULTIAPPEND".into());
    }
    if ext.binary {
        caps.push("BINARY".into());
    }
    if ext.utf8_accept {
        caps.push("UTF8=ACCEPT".into());
    }
    caps.join(" ")
}
