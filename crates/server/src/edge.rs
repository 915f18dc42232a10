//! The edge of every request, as one tower layer (a static answer pays for one layer, not
//! five): the request id (the client's `x-request-id` when it sent one, else a new one made of a
//! per-process random prefix and a counter: no UUID and no system call per request), the tracing
//! span carrying it, the error bodies in the client's format ([`crate::error::render_errors`]),
//! the security headers, and `x-request-id` on the answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::{ErrorFormat, REQUEST_ID_HEADER};

static REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Request ids a thread takes from the shared counter at once: the counter's cache line moves
/// between cores once per block instead of once per request.
const ID_BLOCK: u64 = 1024;

/// A per-process random prefix (so that ids of several servers on one database, and of
/// restarts, do not collide) and a counter: unique, cheap, and short. Each thread numbers from
/// a block of its own, so ids are unique but not in the order of the requests across threads.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // The standard library seeds `RandomState` from the operating system's random source.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish()
    });
    thread_local! {
        // The next id of this thread's block and the block's end.
        static BLOCK: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    let n = BLOCK.with(|block| {
        let (mut next, mut end) = block.get();
        if next == end {
            next = COUNTER.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        block.set((next + 1, end));
        next
    });
    // 16 hex digits, '-', then the counter in hex: at most 33 bytes, built on the stack.
    let mut buf = [0u8; 33];
    let hex = b"0123456789abcdef";
    for (i, b) in buf[..16].iter_mut().enumerate() {
        *b = hex[((prefix >> (60 - 4 * i)) & 0xf) as usize];
    }
    buf[16] = b'-';
    let digits = if n == 0 { 1 } else { (64 - n.leading_zeros() as usize).div_ceil(4) };
    for i in 0..digits {
        buf[17 + i] = hex[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf[..17 + digits]).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The answers given before tower and axum see a request (`listener.rs`): the public catalogue
/// from the caches ([`crate::routes::public::catalogue_hot`]). They carry what this layer adds
/// to every answer (`x-request-id`, the security headers) and are never errors, so nothing
/// else of it applies. `None`: the request goes through the routers as any other.
/// A large body comes with its file copy ([`crate::zerocopy`]).
pub(crate) fn hot_answer<B>(
    state: &crate::AppState,
    req: &Request<B>,
    client: std::net::IpAddr,
) -> Option<(Response, Option<crate::zerocopy::FileBody>)> {
    if !req.uri().path().ends_with(crate::routes::public::CATALOGUE_ROUTE) {
        return None;
    }
    let (mut res, file) = crate::routes::public::catalogue_hot(state, req, client)?;
    state.metrics.catalogue_answered_early();
    crate::portal::security_headers(&mut res);
    let request_id = req.headers().get(&REQUEST_ID).cloned().unwrap_or_else(new_request_id);
    tracing::debug!(
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id.to_str().unwrap_or(""),
        status = res.status().as_u16(),
        "finished processing request (from the caches)"
    );
    res.headers_mut().insert(REQUEST_ID.clone(), request_id);
    Some((res, file))
}

/// With a state, the public catalogue is answered here, before the routers
/// (`routes::public::catalogue_at_edge`); everything else goes on to them.
#[derive(Clone, Default)]
pub struct EdgeLayer(pub Option<crate::AppState>);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    state: Option<crate::AppState>,
}

impl<S> Service<Request<Body>> for Edge<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let request_id = match req.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = new_request_id();
                req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let path = req.uri().path();
        let format = ErrorFormat::for_request(path, req.headers());
        // Only an HTML error page links below the tenant root.
        let base = match format {
            ErrorFormat::Html => crate::tenant::tenant_base(path).to_string(),
            _ => String::new(),
        };
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %path,
            request_id = %request_id.to_str().unwrap_or("")
        );
        let started = Instant::now();
        let answer: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> = match &self.state {
            Some(state) if req.uri().path().ends_with(crate::routes::public::CATALOGUE_ROUTE) => {
                // The router is always ready: the one polled ready goes into the future, a clone stays.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let state = state.clone();
                let (parts, body) = req.into_parts();
                Box::pin(async move {
                    match crate::routes::public::catalogue_at_edge(&state, &parts).await {
                        Some(res) => Ok(res),
                        None => inner.call(Request::from_parts(parts, body)).await,
                    }
                })
            }
            // Called now, on the service our caller polled ready (no clone of it); awaited below.
            _ => Box::pin(self.inner.call(req)),
        };
        Box::pin(
            async move {
                let Ok(res) = answer.await;
                let mut res = crate::error::render_errors(res, format, request_id.to_str().unwrap_or(""), &base);
                crate::portal::security_headers(&mut res);
                if res.status().is_server_error() {
                    tracing::error!(
                        status = res.status().as_u16(),
                        latency_ms = started.elapsed().as_millis() as u64,
                        "response failed"
                    );
                } else {
                    tracing::debug!(
                        status = res.status().as_u16(),
                        latency_us = started.elapsed().as_micros() as u64,
                        "finished processing request"
                    );
                }
                if !res.headers().contains_key(&REQUEST_ID) {
                    res.headers_mut().insert(REQUEST_ID.clone(), request_id);
                }
                Ok(res)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_share_the_process_prefix() {
        let a = new_request_id();
        let b = new_request_id();
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_ne!(a, b);
        assert!(a.len() >= 18 && a.as_bytes()[16] == b'-', "{a}");
        assert_eq!(a[..16], b[..16]);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'), "{a}");
        let many: std::collections::HashSet<String> = (0..1000).map(|_| new_request_id().to_str().unwrap().to_string()).collect();
        assert_eq!(many.len(), 1000);
        // Threads number from blocks of their own: still unique across them, past a block each.
        let per_thread = ID_BLOCK as usize + 10;
        let all: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|_| new_request_id().to_str().unwrap().to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), 4 * per_thread);
    }
}
