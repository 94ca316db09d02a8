//! Listening sockets: bind every address up front, accept under limits, one task per
//! connection, graceful shutdown.

mod limits;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use limits::Limits;

use crate::connection::Connection;
use crate::error::{NetError, io_reason};
use crate::service::ServiceKind;
use crate::tls::{CertStore, server_config};
use limits::{IpSlot, PerIp, RateLimitedLog};

/// One address to listen on for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSpec {
    /// What the port speaks.
    pub service: ServiceKind,
    /// Where to listen (port 0: any free port, see [`BoundListeners::local_addrs`]).
    pub addr: SocketAddr,
}

/// Serves one accepted connection.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs the protocol on `conn` until it ends.
    ///
    /// When `shutdown` is cancelled the handler finishes the current transaction, says
    /// goodbye (SMTP 421, IMAP `* BYE`, POP3 `-ERR`) and returns; it is dropped mid-way if it
    /// has not returned by the end of [`Limits::shutdown_grace`]. The listener closes the
    /// connection after the handler returns (with a TLS close_notify where TLS is up), so a
    /// handler simply returns when its session is over.
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken);
}

/// Every configured address, bound and listening, not yet accepting.
#[derive(Debug)]
pub struct BoundListeners {
    listeners: Vec<Bound>,
}

#[derive(Debug)]
struct Bound {
    service: ServiceKind,
    local: SocketAddr,
    socket: std::net::TcpListener,
}

/// Binds every address at once, so that a port in use fails start-up rather than later.
///
/// The error names the service and the address, e.g.
/// "cannot listen on 127.0.0.1:2525 for smtp: address already in use".
pub fn bind(specs: &[ListenerSpec]) -> Result<BoundListeners, NetError> {
    let mut listeners = Vec::with_capacity(specs.len());
    for spec in specs {
        let bind_error = |e: std::io::Error| NetError::Bind {
            service: spec.service,
            addr: spec.addr,
            reason: io_reason(&e),
            kind: e.kind(),
        };
        let socket = std::net::TcpListener::bind(spec.addr).map_err(bind_error)?;
        socket.set_nonblocking(true).map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        listeners.push(Bound {
            service: spec.service,
            local,
            socket,
        });
    }
    Ok(BoundListeners { listeners })
}

/// State shared by the accept loops and the connection tasks.
struct Shared {
    limits: Limits,
    global: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
    refused_log: RateLimitedLog,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Cancelled when the grace period is over: drops every connection still running.
    hard_stop: CancellationToken,
    next_id: AtomicU64,
}

/// One listener with what its connections need.
struct Acceptor {
    service: ServiceKind,
    local: SocketAddr,
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    tls: Arc<ServerConfig>,
}

impl BoundListeners {
    /// The bound addresses (with the actual port where port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<(ServiceKind, SocketAddr)> {
        self.listeners
            .iter()
            .map(|b| (b.service, b.local))
            .collect()
    }

    /// Accepts connections on every listener until `shutdown` is cancelled, then stops
    /// accepting, waits up to `limits.shutdown_grace` for open connections, drops the rest
    /// and returns `Ok(())`.
    ///
    /// Fails before accepting anything if a listener's service has no handler or its TLS
    /// configuration cannot be built.
    pub async fn serve(
        self,
        handlers: HashMap<ServiceKind, Arc<dyn Handler>>,
        certs: Arc<CertStore>,
        limits: Limits,
        shutdown: CancellationToken,
    ) -> Result<(), NetError> {
        let mut configs: HashMap<ServiceKind, Arc<ServerConfig>> = HashMap::new();
        let mut acceptors = Vec::with_capacity(self.listeners.len());
        for bound in self.listeners {
            let service = bound.service;
            let handler = handlers
                .get(&service)
                .cloned()
                .ok_or(NetError::NoHandler { service })?;
            // One ServerConfig per service, built once: a reload changes the certificate the
            // shared resolver hands out, never the configuration of live sessions.
            let tls = match configs.get(&service) {
                Some(tls) => Arc::clone(tls),
                None => {
                    let tls = server_config(Arc::clone(&certs), service)?;
                    configs.insert(service, Arc::clone(&tls));
                    tls
                }
            };
            let listener = TcpListener::from_std(bound.socket).map_err(|e| NetError::Bind {
                service,
                addr: bound.local,
                reason: io_reason(&e),
                kind: e.kind(),
            })?;
            acceptors.push(Acceptor {
                service,
                local: bound.local,
                listener,
                handler,
                tls,
            });
        }
        let shared = Arc::new(Shared {
            global: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            limits,
            per_ip: Arc::new(PerIp::default()),
            refused_log: RateLimitedLog::new(Duration::from_secs(10)),
            tracker: TaskTracker::new(),
            shutdown,
            hard_stop: CancellationToken::new(),
            next_id: AtomicU64::new(1),
        });
        let mut loops = JoinSet::new();
        for acceptor in acceptors {
            tracing::info!(service = acceptor.service.name(), addr = %acceptor.local, "listening");
            loops.spawn(accept_loop(acceptor, Arc::clone(&shared)));
        }
        shared.shutdown.cancelled().await;
        // Each loop sees the same token, stops accepting and drops its socket.
        while loops.join_next().await.is_some() {}
        drain(&shared).await;
        Ok(())
    }
}

async fn accept_loop(acceptor: Acceptor, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            accepted = acceptor.listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => admit(&acceptor, &shared, socket, peer),
            Err(e) => {
                tracing::warn!(service = acceptor.service.name(), addr = %acceptor.local,
                    error = %e, "accept failed");
                // Out of file descriptors and the like: pause instead of spinning.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::select! {
                        () = shared.shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    tracing::info!(service = acceptor.service.name(), addr = %acceptor.local,
        "stopped accepting connections");
}

/// Tells a refused client why, without waiting: one non-blocking write into the fresh
/// socket's empty send buffer, which a reply this small always fits.
fn refuse_busy(service: ServiceKind, socket: &TcpStream) {
    if let Some(reply) = service.busy_reply() {
        let _ = socket.try_write(reply);
    }
}

/// Applies the limits to a new socket and starts its task, or closes it at once.
fn admit(acceptor: &Acceptor, shared: &Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let Ok(permit) = Arc::clone(&shared.global).try_acquire_owned() else {
        if let Some(suppressed) = shared.refused_log.allow() {
            tracing::warn!(peer = %peer, limit = shared.limits.max_connections, suppressed,
                "connection refused: server connection limit reached");
        }
        refuse_busy(acceptor.service, &socket);
        return;
    };
    let Some(slot) = shared
        .per_ip
        .try_acquire(peer.ip(), shared.limits.max_connections_per_ip)
    else {
        if let Some(suppressed) = shared.refused_log.allow() {
            tracing::warn!(peer = %peer, limit = shared.limits.max_connections_per_ip,
                suppressed, "connection refused: per-IP connection limit reached");
        }
        refuse_busy(acceptor.service, &socket);
        return;
    };
    // Replies are small and latency-bound; Nagle only delays them.
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(peer = %peer, error = %e, "cannot set TCP_NODELAY");
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut conn = Connection::new(socket, id, peer, acceptor.service);
    conn.set_idle_timeout(shared.limits.idle_timeout);
    conn.set_handshake_timeout(shared.limits.handshake_timeout);
    conn.set_tls_config(Some(Arc::clone(&acceptor.tls)));
    let handler = Arc::clone(&acceptor.handler);
    let task_shared = Arc::clone(shared);
    shared
        .tracker
        .spawn(run_connection(conn, handler, task_shared, permit, slot));
}

/// How long the final flush and close_notify may take.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs one connection: implicit TLS if the service has it, then the handler.
async fn run_connection(
    mut conn: Connection,
    handler: Arc<dyn Handler>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    _slot: IpSlot,
) {
    let span = conn.span().clone();
    let shutdown = shared.shutdown.clone();
    let work = async move {
        tracing::debug!("connection accepted");
        if conn.service().implicit_tls() {
            // RFC 8314 §3: on an implicit-TLS port the handshake comes before any protocol
            // byte; it is bounded by the handshake timeout (SECURITY-TESTS TLS-09).
            let handshake = tokio::select! {
                () = shutdown.cancelled() => return,
                result = conn.start_tls_default() => result,
            };
            if let Err(e) = handshake {
                tracing::debug!(error = %e, "closing: TLS handshake failed");
                return;
            }
        }
        handler.handle(&mut conn, shutdown).await;
        // RFC 8446 §6.1: end TLS with close_notify, so that clients can tell a complete
        // session from a truncated one. Bounded: a peer that stops reading cannot hold us.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.shutdown()).await;
        tracing::debug!("connection closed");
    }
    .instrument(span.clone());
    tokio::select! {
        () = work => {}
        () = shared.hard_stop.cancelled() => {
            tracing::debug!(parent: &span, "connection dropped at the end of the shutdown grace period");
        }
    }
}

/// Waits up to the grace period for connection tasks, then drops the remaining ones.
async fn drain(shared: &Shared) {
    shared.tracker.close();
    let open = shared.tracker.len();
    if open > 0 {
        tracing::info!(open, grace = ?shared.limits.shutdown_grace,
            "waiting for open connections to finish");
    }
    if tokio::time::timeout(shared.limits.shutdown_grace, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = shared.tracker.len(),
            "shutdown grace period over; closing the remaining connections"
        );
        shared.hard_stop.cancel();
        // Every task is parked in a select on `hard_stop` and ends at its next poll.
        let _ = tokio::time::timeout(Duration::from_secs(5), shared.tracker.wait()).await;
    }
}
