//! What each listener answers until its protocol service is built: an honest refusal in the
//! protocol's own words, so that clients report a clear error instead of hanging.
//!
//! SMTP follows RFC 5321 §3.1: a 554 greeting, then 503 to every command until QUIT.
//! IMAP greets with BYE (RFC 9051 §7.1.5) and POP3 with -ERR (RFC 1939 §4); both close.

use async_trait::async_trait;
use sealpost_net::{Connection, Handler, ServiceKind};
use tokio_util::sync::CancellationToken;

/// Commands answered before the session is closed, so that a confused or hostile client
/// cannot keep the connection forever.
const MAX_COMMANDS: usize = 10;
/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
const MAX_LINE: usize = 512;

pub struct UnavailableHandler {
    hostname: String,
}

impl UnavailableHandler {
    pub fn new(hostname: &str) -> Self {
        Self {
            hostname: hostname.to_string(),
        }
    }

    async fn smtp(&self, conn: &mut Connection, shutdown: CancellationToken) {
        // RFC 5321 §3.1: a server that will not serve may greet with 554 and must then
        // answer 503 until QUIT.
        let greeting = format!("554 5.3.2 {} no mail service here yet\r\n", self.hostname);
        if conn.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..MAX_COMMANDS {
            let line = tokio::select! {
                line = conn.read_line(MAX_LINE) => line,
                () = shutdown.cancelled() => {
                    let _ = conn.write_all(b"421 4.3.2 shutting down\r\n").await;
                    return;
                }
            };
            let reply: &[u8] = match line {
                Ok(Some(line)) if is_quit(&line) => b"221 2.0.0 bye\r\n",
                Ok(Some(_)) => b"503 5.5.1 no mail service here yet; only QUIT is accepted\r\n",
                Ok(None) => return,
                Err(_) => b"500 5.5.2 line too long or unreadable\r\n",
            };
            if conn.write_all(reply).await.is_err() || reply.starts_with(b"221") {
                return;
            }
        }
        let _ = conn
            .write_all(b"421 4.7.0 too many commands, closing\r\n")
            .await;
    }
}

fn is_quit(line: &[u8]) -> bool {
    line.trim_ascii().eq_ignore_ascii_case(b"QUIT")
}

#[async_trait]
impl Handler for UnavailableHandler {
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken) {
        match conn.service() {
            ServiceKind::Smtp | ServiceKind::Submission | ServiceKind::Submissions => {
                self.smtp(conn, shutdown).await;
            }
            ServiceKind::Imap | ServiceKind::Imaps => {
                let bye = format!(
                    "* BYE {} IMAP service is not available yet\r\n",
                    self.hostname
                );
                let _ = conn.write_all(bye.as_bytes()).await;
            }
            ServiceKind::Pop3 | ServiceKind::Pop3s => {
                // RFC 3206 §4: SYS/PERM, a condition that retrying will not fix soon.
                let err = format!(
                    "-ERR [SYS/PERM] {} POP3 service is not available yet\r\n",
                    self.hostname
                );
                let _ = conn.write_all(err.as_bytes()).await;
            }
        }
    }
}
