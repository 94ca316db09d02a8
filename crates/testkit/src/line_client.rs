//! A line-oriented test client that can switch to TLS mid-stream (STARTTLS, STLS).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::tls::tls_client;

/// How long a test waits for the server before failing.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The client half of a test session: sends bytes, reads CRLF lines, upgrades to TLS.
/// Protocol-specific reading (IMAP tagged responses, POP3 multi-line bodies) is built on
/// [`LineClient::raw_line`] in each crate's tests.
pub struct LineClient {
    stream: Option<Box<dyn Io>>,
    buffer: Vec<u8>,
}

impl LineClient {
    pub fn new(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> LineClient {
        LineClient {
            stream: Some(Box::new(stream)),
            buffer: Vec::new(),
        }
    }

    /// TLS handshake as a client for `localhost` (any certificate accepted, see
    /// [`tls_client`]). Bytes read but not yet consumed are dropped, as a server must drop
    /// what was pipelined before the handshake.
    pub async fn upgrade(&mut self) {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_client()));
        let stream = self.stream.take().unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, stream).await.unwrap();
        self.buffer.clear();
        self.stream = Some(Box::new(tls));
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.as_mut().unwrap();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        let stream = self.stream.as_mut().unwrap();
        let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("the server answers within 20 s");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// One line with its CRLF, as bytes; empty at end of stream.
    pub async fn raw_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(lf) = self.buffer.iter().position(|&b| b == b'\n') {
                return self.buffer.drain(..=lf).collect();
            }
            if !self.fill().await {
                return std::mem::take(&mut self.buffer);
            }
        }
    }

    /// One line without CRLF.
    pub async fn line(&mut self) -> String {
        let line = self.raw_line().await;
        String::from_utf8_lossy(&line)
            .trim_end_matches("\r\n")
            .to_string()
    }

    /// Sends `line` with CRLF and returns the first line of the reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Whether the server closed the connection (nothing more to read).
    pub async fn closed(&mut self) -> bool {
        self.buffer.is_empty() && !self.fill().await
    }
}
