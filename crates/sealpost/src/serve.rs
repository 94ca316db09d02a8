//! `sealpost serve`: every configured listener until SIGTERM/SIGINT.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use sealpost_config::{Config, ServiceName};
use sealpost_dns::Resolver;
use sealpost_net::{CertPaths, CertStore, Handler, Limits, ListenerSpec, ServiceKind};
use sealpost_queue::deliver::DeliveryOptions;
use sealpost_queue::mta_sts::MtaSts;
use sealpost_queue::route::Router;
use sealpost_queue::scheduler::{QueueSettings, Scheduler};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use sealpost_imap::service::ImapService;
use sealpost_pop3::service::Pop3Service;
use sealpost_sender_auth::SenderAuth;
use sealpost_smtp::service::{InboundAuth, SmtpLimits, SmtpService};
use sealpost_store::authenticate::Authenticator;
use sealpost_store::{Directory, RecentSubmissions, Store};

use crate::exit::CliError;
use crate::manage::open_store;
use crate::reports::QueueReports;

pub fn service_kind(name: ServiceName) -> ServiceKind {
    match name {
        ServiceName::Smtp => ServiceKind::Smtp,
        ServiceName::Submission => ServiceKind::Submission,
        ServiceName::Submissions => ServiceKind::Submissions,
        ServiceName::Imap => ServiceKind::Imap,
        ServiceName::Imaps => ServiceKind::Imaps,
        ServiceName::Pop3 => ServiceKind::Pop3,
        ServiceName::Pop3s => ServiceKind::Pop3s,
    }
}

pub fn cert_paths(config: &Config) -> (CertPaths, Vec<CertPaths>) {
    let default = CertPaths {
        cert: config.tls.default.cert.clone(),
        key: config.tls.default.key.clone(),
    };
    let additional = config
        .tls
        .additional
        .iter()
        .map(|files| CertPaths {
            cert: files.cert.clone(),
            key: files.key.clone(),
        })
        .collect();
    (default, additional)
}

fn init_logging(level: &str) {
    // RUST_LOG, when set, overrides [log] level (for debugging one module).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub async fn serve(config_path: &Path) -> Result<(), CliError> {
    let config = Config::load(config_path)?;
    run(&config, CancellationToken::new()).await
}

/// Runs the server of `config` until a signal or `shutdown` is cancelled.
pub async fn run(config: &Config, shutdown: CancellationToken) -> Result<(), CliError> {
    init_logging(&config.log_level);
    let (default, additional) = cert_paths(config);
    let certs = CertStore::load(default, additional).map_err(CliError::usage)?;
    let store = open_store(config).await?;
    let specs: Vec<ListenerSpec> = config
        .listen
        .iter()
        .map(|(name, addr)| ListenerSpec {
            service: service_kind(*name),
            addr: *addr,
        })
        .collect();
    if specs.is_empty() {
        return Err(CliError::usage(anyhow!(
            "{}: [listen] names no address, so there is nothing to serve",
            config.source.display()
        )));
    }
    // One resolver (and one DNS cache) for the queue and sender authentication.
    let resolver = Resolver::from_config(config).map_err(CliError::usage)?;
    let scheduler = scheduler(config, &store, &resolver)?;
    // The signal handlers come before the listeners: once a port accepts, a SIGHUP or
    // SIGTERM must find them (the default action would end the process).
    sealpost_net::spawn_reload_on_sighup(Arc::clone(&certs)).map_err(CliError::runtime)?;
    spawn_shutdown_on_signal(shutdown.clone())?;
    let listeners = sealpost_net::bind(&specs).map_err(CliError::runtime)?;
    let inbound_auth = inbound_auth(config, &resolver);
    let handlers = handlers(config, &store, &specs, scheduler.waker(), inbound_auth);
    let limits = Limits {
        max_connections: config.limits.max_connections,
        max_connections_per_ip: config.limits.max_connections_per_ip,
        handshake_timeout: config.limits.handshake_timeout,
        idle_timeout: config.limits.idle_timeout,
        shutdown_grace: config.limits.shutdown_grace,
    };
    let reporting = config.sender_auth.enabled.then(|| {
        tokio::spawn(crate::dmarc_reports::run(
            config.clone(),
            Arc::clone(&store),
            resolver.clone(),
            scheduler.waker(),
            shutdown.clone(),
        ))
    });
    let delivering = tokio::spawn(scheduler.run(shutdown.clone()));
    tracing::info!(
        hostname = %config.hostname,
        listeners = %specs.iter().map(|s| format!("{}={}", s.service.name(), s.addr)).collect::<Vec<_>>().join(" "),
        "sealpost is serving"
    );
    let served = listeners
        .serve(handlers, certs, limits, shutdown.clone())
        .await
        .map_err(CliError::runtime);
    // The listeners stop on shutdown, or on an error: the scheduler stops with them.
    shutdown.cancel();
    if let Some(reporting) = reporting
        && let Err(error) = reporting.await
    {
        tracing::error!(%error, "the DMARC report sender failed");
    }
    if let Err(error) = delivering.await {
        tracing::error!(%error, "the outbound scheduler failed");
    }
    served?;
    tracing::info!("sealpost stopped");
    Ok(())
}

/// The outbound queue's scheduler: `[dns]` and `[outbound]` of the configuration, with
/// DANE and MTA-STS enforced.
fn scheduler(
    config: &Config,
    store: &Arc<dyn Store>,
    resolver: &Resolver,
) -> Result<Scheduler, CliError> {
    let outbound = &config.outbound;
    let tls_error = |error: rustls::Error| anyhow!("cannot set up outbound TLS: {error}");
    let delivery =
        DeliveryOptions::opportunistic().map_err(|error| CliError::runtime(tls_error(error)))?;
    let roots =
        Arc::new(sealpost_net::trust_roots(outbound.ca_file.as_deref()).map_err(CliError::usage)?);
    let pkix_smtp = sealpost_net::pkix_client_config(Arc::clone(&roots), &[])
        .map_err(|error| CliError::runtime(tls_error(error)))?;
    // RFC 8461 §3.3: the policy comes over HTTPS/1.1.
    let pkix_https = sealpost_net::pkix_client_config(roots, &[b"http/1.1"])
        .map_err(|error| CliError::runtime(tls_error(error)))?;
    let router = Router::new(
        resolver.clone(),
        outbound.remote_port,
        Arc::clone(&delivery.tls),
    )
    .with_dane()
    .with_mta_sts(
        MtaSts::new(Arc::new(pkix_https), outbound.mta_sts_port),
        Arc::new(pkix_smtp),
    );
    let mut settings = QueueSettings::new(config.hostname.as_str(), outbound.remote_port, delivery);
    settings.max_connections = outbound.max_connections;
    settings.max_connections_per_domain = outbound.max_connections_per_domain;
    settings.retry.delay_warning = outbound.delay_warning;
    settings.retry.lifetime = outbound.lifetime;
    Ok(Scheduler::new(Arc::clone(store), router, settings))
}

/// Sender authentication on port 25 (`[sender_auth]`), over the `[dns]` resolver.
fn inbound_auth(config: &Config, resolver: &Resolver) -> Option<InboundAuth> {
    let settings = &config.sender_auth;
    settings.enabled.then(|| InboundAuth {
        checker: Arc::new(SenderAuth::new(resolver)),
        rules: settings.clone(),
    })
}

/// The handler of each configured service: SMTP on its three ports, POP3 and IMAP on two each.
fn handlers(
    config: &Config,
    store: &Arc<dyn Store>,
    specs: &[ListenerSpec],
    queue_waker: Arc<Notify>,
    inbound_auth: Option<InboundAuth>,
) -> HashMap<ServiceKind, Arc<dyn Handler>> {
    let directory: Arc<dyn Directory> = Arc::clone(store) as Arc<dyn Directory>;
    let authenticator = Arc::new(Authenticator::new(directory));
    let limits = SmtpLimits {
        max_message_size: config.smtp.max_message_size,
        max_recipients: config.smtp.max_recipients,
        max_errors: config.smtp.max_errors,
        max_auth_failures: config.smtp.max_auth_failures,
    };
    // Submissions filed in Sent, so that IMAP does not store the client's copy again.
    let recent_submissions = Arc::new(RecentSubmissions::default());
    let mut smtp_service = SmtpService::new(
        config.hostname.as_str(),
        Arc::clone(store),
        Arc::clone(&authenticator),
        limits,
    )
    .with_queue_waker(queue_waker)
    .with_sent_copies(
        config
            .smtp
            .save_sent
            .then(|| Arc::clone(&recent_submissions)),
    )
    .with_delivery_reports(Arc::new(QueueReports::new(
        config.hostname.as_str(),
        Arc::clone(store),
    )));
    if let Some(auth) = inbound_auth {
        smtp_service = smtp_service.with_inbound_auth(auth);
    }
    let smtp: Arc<dyn Handler> = Arc::new(smtp_service);
    let pop3: Arc<dyn Handler> = Arc::new(Pop3Service::new(
        config.hostname.as_str(),
        Arc::clone(store),
        Arc::clone(&authenticator),
    ));
    let imap: Arc<dyn Handler> = Arc::new(
        ImapService::new(config.hostname.as_str(), Arc::clone(store), authenticator)
            .with_max_sessions_per_user_ip(config.limits.max_sessions_per_user_ip)
            .with_recent_submissions(recent_submissions),
    );
    specs
        .iter()
        .map(|spec| {
            let handler = match spec.service {
                ServiceKind::Smtp | ServiceKind::Submission | ServiceKind::Submissions => {
                    Arc::clone(&smtp)
                }
                ServiceKind::Pop3 | ServiceKind::Pop3s => Arc::clone(&pop3),
                ServiceKind::Imap | ServiceKind::Imaps => Arc::clone(&imap),
            };
            (spec.service, handler)
        })
        .collect()
}

/// SIGTERM and SIGINT start a graceful shutdown: stop accepting, let sessions finish.
fn spawn_shutdown_on_signal(shutdown: CancellationToken) -> Result<(), CliError> {
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|error| CliError::runtime(anyhow!("cannot watch SIGTERM: {error}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|error| CliError::runtime(anyhow!("cannot watch SIGINT: {error}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            () = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    });
    Ok(())
}
