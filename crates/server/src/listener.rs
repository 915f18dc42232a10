//! Accepting connections with bounds, instead of `axum::serve`, which has none: a maximum
//! number of open connections (kept below the open-file limit, so a flood of held sockets
//! cannot starve the server of descriptors; past it, new connections wait in the listen
//! queue), a time limit on receiving a request's headers (which also closes kept-alive
//! connections left idle, and slowloris clients), a write timeout (a client that stops reading
//! is dropped), and `TCP_NODELAY` (small git answers are not held back by Nagle's algorithm).
//! With a certificate, connections speak TLS (rustls), the handshake bounded by the same
//! header timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::zerocopy::{FileBody, Slot, ZeroCopyStream};

/// Answers a request may get before tower and axum see it (`edge::hot_answer`), from the
/// request and the client's address, with the file copy of a large body; `None` sends it to the
/// application.
pub type HotPath = Arc<dyn Fn(&Request<Incoming>, std::net::IpAddr) -> Option<(Response, Option<FileBody>)> + Send + Sync>;

/// What a connection runs for each request: the hot answer when there is one (its large body
/// registered with the connection's socket, to be sent from its file), else the application,
/// with the client's address as `ConnectInfo`.
#[derive(Clone)]
struct ConnService {
    app: Router,
    hot: Option<HotPath>,
    addr: std::net::SocketAddr,
    slot: Slot,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<std::future::Ready<Result<Response, Infallible>>, tower::util::Oneshot<Router, Request<Incoming>>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        if let Some(hot) = &self.hot
            && let Some((res, file)) = hot(&req, self.addr.ip())
        {
            if let Some(file) = file {
                self.slot.set(file);
            }
            return Either::Left(std::future::ready(Ok(res)));
        }
        req.extensions_mut().insert(ConnectInfo(self.addr));
        Either::Right(self.app.clone().oneshot(req))
    }
}

/// Descriptors kept free for the database, blobs, repos and git pipes.
const FD_RESERVE: u64 = 64;

/// The connection cap in effect: the configured one, lowered to fit the open-file limit.
pub fn effective_max_connections(configured: usize) -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        Some(limit) if limit > FD_RESERVE * 2 => {
            // Each connection may hold a socket plus, for a clone, git's pipes (3).
            let fit = ((limit - FD_RESERVE) / 4) as usize;
            configured.min(fit.max(16))
        }
        Some(_) => configured.min(16),
        None => configured,
    }
}

/// True for accept errors that mean "out of descriptors or memory for now".
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(23 /* ENFILE */ | 24 /* EMFILE */ | 105 /* ENOBUFS */ | 12 /* ENOMEM */)
    )
}

/// Reads a PEM certificate chain and key into a TLS acceptor (HTTP/2 and HTTP/1.1 by ALPN).
pub fn tls_acceptor(files: &crate::config::TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate chain {}", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| format!("reading the TLS private key {}", files.key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// (up to `drain`). With `tls`, every connection is a TLS one. With `hot`, a request it answers
/// never reaches `app`.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    hot: Option<HotPath>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    if max < limits.max_connections {
        tracing::info!(
            max_connections = max,
            configured = limits.max_connections,
            "connection cap lowered to fit the open-file limit (ulimit -n)"
        );
    }
    let slots = Arc::new(Semaphore::new(max));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    // Each connection gets its own copy with its own timer (`conntimer.rs`): one sleep per
    // connection for the header-read timeout instead of one per request.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.write_timeout);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    let now = tokio::time::Instant::now();
                    if last_warning.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        last_warning = Some(now);
                    }
                    if is_resource_exhaustion(&e) {
                        // Wait for descriptors to be freed instead of spinning.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let file_body = Slot::default();
        let mut io = tokio_io_timeout::TimeoutStream::new(ZeroCopyStream::new(stream, file_body.clone()));
        io.set_write_timeout(Some(limits.write_timeout));
        let io = Box::pin(io);
        let service = ConnService {
            app: app.clone(),
            hot: hot.clone(),
            addr,
            slot: file_body,
        };
        let builder = {
            let mut own = (*builder).clone();
            own.http1().timer(crate::conntimer::ConnTimer::default());
            own
        };
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                    Ok(Err(e)) => tracing::debug!(client = %addr, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
                },
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(after_secs = drain.as_secs(), "connections still open at shutdown were closed");
    }
    Ok(())
}
