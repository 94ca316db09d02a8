//! One client connection: a plaintext or TLS byte stream with our own bounded read buffer.
//!
//! The buffer is ours (not a `BufReader`) so that [`Connection::start_tls`] can throw away
//! whatever plaintext arrived after the upgrade command before the handshake begins.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::ServerConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::error::NetError;
use crate::service::ServiceKind;

/// Any byte stream a connection can run over: a TCP socket, a TLS stream, a test duplex.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> AsyncStream for T {}

/// Idle timeout when none is set: RFC 5321 §4.5.3.2.7 gives the SMTP server 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// TLS handshake timeout when none is set (SECURITY-TESTS §1: 30-60 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the read buffer; a read never asks the socket for more.
const READ_BUF_LEN: usize = 8 * 1024;
/// How much of an over-long line one `read_line` call discards silently before reporting
/// [`NetError::LineTooLong`] again (so a 1 MiB EHLO costs one error, an endless line many).
const SKIP_LIMIT: usize = 1024 * 1024;

/// What was negotiated on a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// IANA-style suite name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The server name the client asked for (SNI), lower-case.
    pub sni: Option<String>,
    /// The ALPN protocol selected, if the client offered ALPN.
    pub alpn: Option<String>,
}

/// A client connection owned by one handler task.
pub struct Connection {
    id: u64,
    peer: SocketAddr,
    service: ServiceKind,
    /// `None` after a failed TLS handshake consumed the stream.
    stream: Option<Box<dyn AsyncStream>>,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The previous `read_line` hit the length limit: drop bytes up to the next LF first.
    skipping_line: bool,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    tls_config: Option<Arc<ServerConfig>>,
    tls: Option<TlsInfo>,
    span: tracing::Span,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("service", &self.service)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Wraps a freshly accepted plaintext stream.
    ///
    /// Creates the connection's tracing span
    /// `conn{id peer service tls_version cipher}`; the TLS fields are filled in by
    /// [`Connection::start_tls`].
    pub fn new(
        stream: impl AsyncStream + 'static,
        id: u64,
        peer: SocketAddr,
        service: ServiceKind,
    ) -> Connection {
        let span = tracing::info_span!(
            "conn",
            id,
            peer = %peer,
            service = service.name(),
            tls_version = tracing::field::Empty,
            cipher = tracing::field::Empty,
        );
        Connection {
            id,
            peer,
            service,
            stream: Some(Box::new(stream)),
            buf: vec![0; READ_BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            skipping_line: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            tls_config: None,
            tls: None,
            span,
        }
    }

    /// Process-unique connection number (also in the span and the logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The service of the listener that accepted the connection.
    pub fn service(&self) -> ServiceKind {
        self.service
    }

    /// The connection's tracing span; handlers run inside it.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Whether the stream is TLS now.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What TLS negotiated, once it is active.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The timeout of every read and write from now on.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Changes the idle timeout (e.g. 30 s before login, 30 min after, RFC 9051 §5.4).
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle_timeout = idle;
    }

    /// Changes the time a TLS handshake may take.
    pub fn set_handshake_timeout(&mut self, limit: Duration) {
        self.handshake_timeout = limit;
    }

    /// The TLS configuration [`Connection::start_tls_default`] uses.
    pub fn set_tls_config(&mut self, config: Option<Arc<ServerConfig>>) {
        self.tls_config = config;
    }

    /// Bytes received but not yet returned by a read.
    ///
    /// A handler may check this before STARTTLS to reject pipelined plaintext outright
    /// instead of letting [`Connection::start_tls`] discard it.
    pub fn buffered_len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Refills the (empty) buffer with one read that must complete before `deadline`.
    /// Returns the number of bytes read; 0 means end of stream.
    async fn fill(&mut self, deadline: Instant) -> Result<usize, NetError> {
        self.start = 0;
        self.end = 0;
        let stream = self.stream.as_mut().ok_or(NetError::Closed)?;
        let n = timeout_at(deadline, stream.read(&mut self.buf[..]))
            .await
            .map_err(|_| NetError::Timeout(self.idle_timeout))??;
        self.end = n;
        Ok(n)
    }

    /// Reads one line including its LF (and CR, if any).
    ///
    /// At most `max_len` bytes are taken for the line (terminator included); a longer line
    /// gives [`NetError::LineTooLong`], and the next call first discards the rest of that
    /// line. The whole call must finish within the idle timeout: a client trickling one byte
    /// at a time does not extend it (SECURITY-TESTS RL-08). `Ok(None)`: the peer closed the
    /// connection between lines; closing in the middle of a line is
    /// [`NetError::UnexpectedEof`].
    pub async fn read_line(&mut self, max_len: usize) -> Result<Option<Vec<u8>>, NetError> {
        let deadline = deadline_after(self.idle_timeout);
        if max_len == 0 {
            return Err(NetError::LineTooLong { max: 0 });
        }
        if self.skipping_line && !self.skip_rest_of_line(deadline).await? {
            return if self.skipping_line {
                Err(NetError::LineTooLong { max: max_len })
            } else {
                Ok(None)
            };
        }
        let mut line = Vec::new();
        loop {
            if self.buffered().is_empty() && self.fill(deadline).await? == 0 {
                return if line.is_empty() {
                    Ok(None)
                } else {
                    Err(NetError::UnexpectedEof)
                };
            }
            let room = max_len.saturating_sub(line.len());
            let avail = self.buffered();
            let window = avail.get(..room).unwrap_or(avail);
            if let Some(pos) = window.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(window.get(..=pos).unwrap_or(window));
                self.consume(pos + 1);
                return Ok(Some(line));
            }
            let taken = window.len();
            line.extend_from_slice(window);
            self.consume(taken);
            if line.len() >= max_len {
                // RFC 5321 §4.5.3.1.4, SECURITY-TESTS RL-02: bounded, never read to the end.
                self.skipping_line = true;
                return Err(NetError::LineTooLong { max: max_len });
            }
        }
    }

    /// Drops bytes up to and including the next LF, at most [`SKIP_LIMIT`] of them.
    /// `Ok(true)`: the LF was found. `Ok(false)`: the limit was reached (still skipping) or
    /// the stream ended (no longer skipping).
    async fn skip_rest_of_line(&mut self, deadline: Instant) -> Result<bool, NetError> {
        let mut discarded = 0usize;
        while discarded < SKIP_LIMIT {
            if self.buffered().is_empty() && self.fill(deadline).await? == 0 {
                self.skipping_line = false;
                return Ok(false);
            }
            let avail = self.buffered();
            let window = avail.get(..SKIP_LIMIT - discarded).unwrap_or(avail);
            if let Some(pos) = window.iter().position(|&b| b == b'\n') {
                self.consume(pos + 1);
                self.skipping_line = false;
                return Ok(true);
            }
            let taken = window.len();
            self.consume(taken);
            discarded += taken;
        }
        Ok(false)
    }

    /// Reads up to `dst.len()` bytes: buffered bytes first, otherwise one read from the
    /// stream that must deliver within the idle timeout. Returns 0 at end of stream.
    ///
    /// For counted data (IMAP literals, BDAT chunks) and for protocol cores doing their own
    /// framing; it ends any pending skip of an over-long line.
    pub async fn read_chunk(&mut self, dst: &mut [u8]) -> Result<usize, NetError> {
        self.skipping_line = false;
        if dst.is_empty() {
            return Ok(0);
        }
        let avail = self.buffered();
        if !avail.is_empty() {
            let n = avail.len().min(dst.len());
            if let (Some(to), Some(from)) = (dst.get_mut(..n), avail.get(..n)) {
                to.copy_from_slice(from);
            }
            self.consume(n);
            return Ok(n);
        }
        let stream = self.stream.as_mut().ok_or(NetError::Closed)?;
        let n = timeout(self.idle_timeout, stream.read(dst))
            .await
            .map_err(|_| NetError::Timeout(self.idle_timeout))??;
        Ok(n)
    }

    /// Fills `dst` completely; each read must make progress within the idle timeout.
    /// The caller sizes `dst` (after checking any client-announced length against its limit).
    pub async fn read_exact_into(&mut self, dst: &mut [u8]) -> Result<(), NetError> {
        let mut filled = 0;
        while let Some(rest) = dst.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.read_chunk(rest).await? {
                0 => return Err(NetError::UnexpectedEof),
                n => filled += n,
            }
        }
        Ok(())
    }

    /// Writes all of `data`; the peer must take it within the idle timeout (a client that
    /// never reads cannot hold output forever, SECURITY-TESTS RL-13).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), NetError> {
        let idle = self.idle_timeout;
        let stream = self.stream.as_mut().ok_or(NetError::Closed)?;
        timeout(idle, stream.write_all(data))
            .await
            .map_err(|_| NetError::Timeout(idle))??;
        Ok(())
    }

    /// Flushes buffered output (TLS records in particular).
    pub async fn flush(&mut self) -> Result<(), NetError> {
        let idle = self.idle_timeout;
        let stream = self.stream.as_mut().ok_or(NetError::Closed)?;
        timeout(idle, stream.flush())
            .await
            .map_err(|_| NetError::Timeout(idle))??;
        Ok(())
    }

    /// Flushes and closes the write side (sends TLS close_notify, then FIN).
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        let idle = self.idle_timeout;
        let stream = self.stream.as_mut().ok_or(NetError::Closed)?;
        timeout(idle, stream.shutdown())
            .await
            .map_err(|_| NetError::Timeout(idle))??;
        Ok(())
    }

    /// Upgrades to TLS in place with `config` (STARTTLS/STLS, or implicit TLS at accept).
    ///
    /// Every byte received before the handshake and not yet read is discarded first, so
    /// commands pipelined after STARTTLS are never executed. On failure the connection is
    /// unusable (every later call returns [`NetError::Closed`]): there is no plaintext
    /// fallback (RFC 3207 §4.1).
    pub async fn start_tls(&mut self, config: Arc<ServerConfig>) -> Result<(), NetError> {
        if self.tls.is_some() {
            return Err(NetError::AlreadyTls);
        }
        // RFC 3207 §4.2, CVE-2011-0411: plaintext that followed STARTTLS is thrown away here.
        let discarded = self.buffered_len();
        self.start = 0;
        self.end = 0;
        self.skipping_line = false;
        if discarded > 0 {
            tracing::debug!(
                discarded,
                "discarded plaintext pipelined after the TLS upgrade command"
            );
        }
        let stream = self.stream.take().ok_or(NetError::Closed)?;
        let acceptor = TlsAcceptor::from(config);
        let tls = match timeout(self.handshake_timeout, acceptor.accept(stream)).await {
            // RFC 3207 §4.1: a failed upgrade leaves no stream, so no plaintext fallback.
            Err(_) => return Err(NetError::HandshakeTimeout(self.handshake_timeout)),
            Ok(Err(e)) => return Err(NetError::Handshake(e)),
            Ok(Ok(tls)) => tls,
        };
        let info = tls_info_of(tls.get_ref().1);
        self.span.record("tls_version", info.version.as_str());
        self.span.record("cipher", info.cipher.as_str());
        tracing::debug!(parent: &self.span, sni = ?info.sni, alpn = ?info.alpn, "TLS established");
        self.tls = Some(info);
        self.stream = Some(Box::new(tls));
        Ok(())
    }

    /// [`Connection::start_tls`] with the service's configuration (set by the listener).
    pub async fn start_tls_default(&mut self) -> Result<(), NetError> {
        let config = self.tls_config.clone().ok_or(NetError::NoTlsConfig)?;
        self.start_tls(config).await
    }
}

/// `now + limit`, saturating at a year for absurdly large limits instead of panicking.
fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

fn tls_info_of(conn: &ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    TlsInfo {
        version,
        cipher,
        sni: conn.server_name().map(str::to_ascii_lowercase),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}

#[cfg(test)]
mod tests;
