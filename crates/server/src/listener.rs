//! Accepting connections with bounds, instead of `axum::serve`, which has none: a maximum
//! number of open connections (kept below the open-file limit, so a flood of held sockets
//! cannot starve the server of descriptors; past it, new connections wait in the listen
//! queue), a time limit on receiving a request's headers (which also closes kept-alive
//! connections left idle, and slowloris clients), a write timeout (a client that stops reading
//! is dropped), and `TCP_NODELAY` (small git answers are not held back by Nagle's algorithm).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::ConnectionLimits;

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

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// (up to `drain`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
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
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(io));
        let service = app.clone().map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            req
        });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(io, service);
            let _ = watcher.watch(conn).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(after_secs = drain.as_secs(), "connections still open at shutdown were closed");
    }
    Ok(())
}
