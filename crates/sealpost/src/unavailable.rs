//! What the IMAP and POP3 listeners answer until their services are built: an honest refusal
//! in the protocol's own words, so that clients report a clear error instead of hanging.
//! IMAP greets with BYE (RFC 9051 §7.1.5) and POP3 with -ERR (RFC 1939 §4); both close.

use async_trait::async_trait;
use sealpost_net::{Connection, Handler, ServiceKind};
use tokio_util::sync::CancellationToken;

pub struct UnavailableHandler {
    hostname: String,
}

impl UnavailableHandler {
    pub fn new(hostname: &str) -> Self {
        Self {
            hostname: hostname.to_string(),
        }
    }
}

#[async_trait]
impl Handler for UnavailableHandler {
    async fn handle(&self, conn: &mut Connection, _shutdown: CancellationToken) {
        let refusal = match conn.service() {
            ServiceKind::Pop3 | ServiceKind::Pop3s => {
                // RFC 3206 §4: SYS/PERM, a condition that retrying will not fix soon.
                format!(
                    "-ERR [SYS/PERM] {} POP3 service is not available yet\r\n",
                    self.hostname
                )
            }
            _ => format!(
                "* BYE {} IMAP service is not available yet\r\n",
                self.hostname
            ),
        };
        let _ = conn.write_all(refusal.as_bytes()).await;
    }
}
