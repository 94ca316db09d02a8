//! Harness for the integration tests: a running server with an echo handler, TLS clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod certs;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use sealpost_net::{
    BoundListeners, CancellationToken, CertStore, Connection, Handler, Limits, ListenerSpec,
    NetError, ServiceKind, bind,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Greets with the TLS parameters, echoes lines, and knows a few test commands:
/// `STARTTLS`, `SLOW` (a 300 ms transaction), `HANG` (never returns), `QUIT`.
pub struct Echo;

#[async_trait::async_trait]
impl Handler for Echo {
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken) {
        let _ = echo(conn, &shutdown).await;
    }
}

fn greeting(conn: &Connection) -> String {
    match conn.tls_info() {
        Some(i) => format!(
            "HELLO {} {} {}\r\n",
            i.version,
            i.cipher,
            i.alpn.as_deref().unwrap_or("-")
        ),
        None => "HELLO plain\r\n".to_owned(),
    }
}

async fn echo(conn: &mut Connection, shutdown: &CancellationToken) -> Result<(), NetError> {
    let hello = greeting(conn);
    conn.write_all(hello.as_bytes()).await?;
    conn.flush().await?;
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => {
                conn.write_all(b"BYE\r\n").await?;
                conn.flush().await?;
                return Ok(());
            }
            line = conn.read_line(1024) => line?,
        };
        let Some(line) = line else { return Ok(()) };
        match line.as_slice() {
            b"STARTTLS\r\n" => {
                conn.write_all(b"GO\r\n").await?;
                conn.flush().await?;
                conn.start_tls_default().await?;
                let hello = greeting(conn);
                conn.write_all(hello.as_bytes()).await?;
            }
            b"SLOW\r\n" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                conn.write_all(b"DONE\r\n").await?;
            }
            b"HANG\r\n" => std::future::pending::<()>().await,
            b"QUIT\r\n" => {
                conn.write_all(b"BYE\r\n").await?;
                conn.flush().await?;
                return Ok(());
            }
            other => {
                conn.write_all(b"ECHO ").await?;
                conn.write_all(other).await?;
            }
        }
        conn.flush().await?;
    }
}

/// A running `serve` on 127.0.0.1 ephemeral ports.
pub struct Server {
    pub addrs: HashMap<ServiceKind, SocketAddr>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), NetError>>,
}

impl Server {
    pub async fn start(services: &[ServiceKind], certs: Arc<CertStore>, limits: Limits) -> Server {
        let specs: Vec<ListenerSpec> = services
            .iter()
            .map(|&service| ListenerSpec {
                service,
                addr: "127.0.0.1:0".parse().unwrap(),
            })
            .collect();
        let bound: BoundListeners = bind(&specs).unwrap();
        let addrs = bound.local_addrs().into_iter().collect();
        let handler: Arc<dyn Handler> = Arc::new(Echo);
        let handlers = services
            .iter()
            .map(|&s| (s, Arc::clone(&handler)))
            .collect();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(bound.serve(handlers, certs, limits, shutdown.clone()));
        Server {
            addrs,
            shutdown,
            task,
        }
    }

    pub fn addr(&self, service: ServiceKind) -> SocketAddr {
        self.addrs[&service]
    }

    /// Cancels and waits for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A client that accepts any certificate (to look at what the server sends); `send_sni`
/// says whether it names the server in its hello.
pub fn trusting_client(send_sni: bool) -> Arc<ClientConfig> {
    let mut config = sealpost_testkit::tls_client();
    config.enable_sni = send_sni;
    Arc::new(config)
}

pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(certs::server_name(name), tcp)
        .await
}

/// The alert the server sent, if the error is one.
pub fn alert_of(err: &io::Error) -> Option<rustls::AlertDescription> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

/// Line-oriented client over any stream.
pub struct Client<S> {
    pub io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(io: S) -> Self {
        Client {
            io: BufReader::new(io),
        }
    }

    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
            .await
            .expect("server reply within 10 s")
            .unwrap();
        line
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    pub async fn call(&mut self, data: &str) -> String {
        self.send(data.as_bytes()).await;
        self.line().await
    }

    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }
}

/// Reads until EOF (or error) and returns what arrived; fails after `within`.
pub async fn read_to_close<S: AsyncRead + Unpin>(io: &mut S, within: Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("connection closed in time");
    out
}
