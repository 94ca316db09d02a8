//! What the IMAP listeners answer until the IMAP service is built: an honest refusal in the
//! protocol's own words, so that clients report a clear error instead of hanging. The
//! greeting is BYE (RFC 9051 §7.1.5), then the connection closes.

use async_trait::async_trait;
use sealpost_net::{Connection, Handler};
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
        let refusal = format!(
            "* BYE {} IMAP service is not available yet\r\n",
            self.hostname
        );
        let _ = conn.write_all(refusal.as_bytes()).await;
    }
}
