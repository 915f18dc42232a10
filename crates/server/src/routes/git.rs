//! Git smart HTTP, read-only: `info/refs` and `git-upload-pack` for internal (and mirrored)
//! plugins, protocol v0 and v2. The repo is brought to the served commit first; then
//! `git upload-pack --stateless-rpc` answers, streamed.

use std::io::Read;

use futures_util::StreamExt;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use skill_pool_core::ErrorCode;
use skill_pool_git::answers::{self, Shape, SmallAnswers};
use skill_pool_git::upload_pack::{self, Protocol};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;
use crate::extract::{ClientAddr, GitAccess, Path, Query};
use crate::metrics::{GitAnswerFrom, GitAnswerKind};
use crate::{AppState, gitslots};

/// Negotiation requests are small; a bound keeps a hostile body from costing memory.
const MAX_REQUEST_BYTES: usize = 16 << 20;

#[derive(Debug, Deserialize)]
pub struct InfoRefsQuery {
    service: Option<String>,
}

fn plugin_slug(repo: &str) -> Result<&str, ApiError> {
    repo.strip_suffix(".git")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::not_found("repository not found"))
}

fn protocol(headers: &HeaderMap) -> Protocol {
    let v2 = headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(':').any(|p| p.trim() == "version=2"));
    if v2 { Protocol::V2 } else { Protocol::V0 }
}

fn no_cache(res: &mut Response, content_type: &'static str) {
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
}

pub async fn info_refs(
    State(state): State<AppState>,
    GitAccess { tenant }: GitAccess,
    Path(repo): Path<String>,
    Query(q): Query<InfoRefsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match q.service.as_deref() {
        Some("git-upload-pack") => {}
        Some("git-receive-pack") => return Err(read_only()),
        _ => {
            return Err(ApiError::new(
                ErrorCode::SmartHttpOnly,
                "this server speaks git smart HTTP only: use git 1.6.6 or newer",
            ));
        }
    }
    let served = state.registry.served_repo(tenant.id, plugin_slug(&repo)?).await?;
    let protocol = protocol(&headers);
    // The same for every request until the head moves: answered from memory after the first.
    let key = SmallAnswers::key(
        &served.path,
        &served.head,
        if protocol == Protocol::V2 { "info/refs v2" } else { "info/refs v0" },
    );
    let body = match state.git_answers.get(&key) {
        Some(body) => {
            state.metrics.git_answered(GitAnswerKind::Advertisement, GitAnswerFrom::Memory);
            body
        }
        None => {
            let body = upload_pack::advertise_refs(&served.path, protocol)
                .await
                .map_err(skill_pool_registry::RegistryError::from)?;
            state.git_answers.put(key, body.clone());
            state.metrics.git_answered(GitAnswerKind::Advertisement, GitAnswerFrom::Git);
            body
        }
    };
    let mut res = body.into_response();
    no_cache(&mut res, upload_pack::content_type_advertisement());
    Ok(res)
}

pub async fn upload_pack(
    State(state): State<AppState>,
    GitAccess { tenant }: GitAccess,
    Path(repo): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let served = state.registry.served_repo(tenant.id, plugin_slug(&repo)?).await?;
    let raw = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| ApiError::too_large("the git request is too large"))?;
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let request = if gzipped {
        // Inflating is CPU work: off the async runtime, so one large request cannot stall others.
        tokio::task::spawn_blocking(move || gunzip_bounded(&raw)).await.map_err(|e| {
            tracing::error!(error = %e, "inflating a git request failed");
            ApiError::internal()
        })??
    } else {
        raw
    };
    upload_pack::check_request(&request).map_err(|e| ApiError::bad_request(format!("not a git upload-pack request: {e}")))?;
    let protocol = protocol(&headers);
    let slug = plugin_slug(&repo)?.to_string();
    // Answers that depend on the head alone are replayed: `ls-refs` from memory, the pack of a
    // first fetch from disk (recorded below the first time). No git process, so no slot.
    let mut record = None;
    let shape = answers::shape(protocol, &request);
    let kind = match &shape {
        Some(Shape::LsRefs(_)) => GitAnswerKind::LsRefs,
        _ => GitAnswerKind::Fetch,
    };
    match shape {
        Some(Shape::LsRefs(shape)) => {
            let key = SmallAnswers::key(&served.path, &served.head, &shape);
            if let Some(body) = state.git_answers.get(&key) {
                state.metrics.git_answered(kind, GitAnswerFrom::Memory);
                return Ok(git_result(Body::from(body), None));
            }
            // git refusing the request (an error) goes through the streamed path below.
            let slot = take_slot(&state, client)?;
            let answered = upload_pack::answer_small(&served.path, protocol, request.clone()).await;
            drop(slot);
            if let Ok(body) = answered {
                state.git_answers.put(key, body.clone());
                state.metrics.git_answered(kind, GitAnswerFrom::Git);
                return Ok(git_result(Body::from(body), None));
            }
        }
        Some(Shape::FirstFetch(shape)) => {
            if let Some(cache) = &state.pack_cache {
                let at = cache.entry_path(served.tenant_id, served.plugin_id, &served.head, &shape);
                if let Some(pack) = cache.open(&at).await {
                    state.metrics.git_answered(kind, GitAnswerFrom::PackCache);
                    let stream = ReaderStream::with_capacity(pack.file, 64 * 1024);
                    let stream = count_install(&state, tenant.id, slug, protocol, &request, stream, ());
                    return Ok(git_result(Body::from_stream(stream), Some(pack.size)));
                }
                record = Some(upload_pack::Record {
                    cache: cache.clone(),
                    path: at,
                });
            }
        }
        None => {}
    }
    let slot = take_slot(&state, client)?;
    let stream = upload_pack::upload_pack(&served.path, protocol, request.clone(), state.config.git.stream, record)
        .await
        .map_err(skill_pool_registry::RegistryError::from)?;
    state.metrics.git_answered(kind, GitAnswerFrom::Git);
    // The slot lives as long as the answer's stream.
    let stream = count_install(&state, tenant.id, slug, protocol, &request, stream, slot);
    Ok(git_result(Body::from_stream(stream), None))
}

/// A git process slot for `client`, or the answer that says why not.
fn take_slot(state: &AppState, client: Option<std::net::IpAddr>) -> Result<gitslots::GitSlot, ApiError> {
    state.git_slots.take(client).map_err(|refused| {
        state.metrics.git_refused(refused == gitslots::Refused::Busy);
        let mut err = match refused {
            gitslots::Refused::Busy => ApiError::new(
                ErrorCode::Unavailable,
                "the server is serving as many clones as it allows: try again shortly",
            ),
            gitslots::Refused::Address => ApiError::new(
                ErrorCode::RateLimited,
                "too many clones at once from this address: wait for one to finish",
            ),
        };
        err.retry_after = Some(2);
        err
    })
}

/// An upload-pack answer with its headers (a cached pack's length is known).
fn git_result(body: Body, length: Option<u64>) -> Response {
    let mut res = body.into_response();
    no_cache(&mut res, upload_pack::content_type_result());
    if let Some(len) = length {
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    res
}

/// Counts an install when the answer to a fetch that asked for a pack starts carrying it
/// (before the client can finish), in memory only; `held` lives as long as the stream.
fn count_install<S, H>(
    state: &AppState,
    tenant: skill_pool_store::TenantId,
    slug: String,
    protocol: Protocol,
    request: &[u8],
    stream: S,
    held: H,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    H: Send + 'static,
{
    let mut install = upload_pack::pack_request_wants(request).map(|wants| (wants, upload_pack::PackWatch::default()));
    let (registry, metrics) = (state.registry.clone(), state.metrics.clone());
    stream.map(move |chunk| {
        let _held = &held;
        if let (Ok(bytes), Some((wants, watch))) = (&chunk, install.as_mut())
            && watch.feed(protocol, bytes)
        {
            registry.record_pack_fetch(tenant, &slug, wants);
            metrics.pack_fetched();
            install = None;
        }
        chunk
    })
}

/// A gzip body, inflated to at most [`MAX_REQUEST_BYTES`].
fn gunzip_bounded(raw: &[u8]) -> Result<bytes::Bytes, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("the gzip request body is corrupt: {e}")))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::too_large("the git request is too large"));
    }
    Ok(bytes::Bytes::from(out))
}

fn read_only() -> ApiError {
    ApiError::new(
        ErrorCode::ReadOnly,
        "plugin repositories are read-only: publish with `skill-pool plugin publish`",
    )
}

pub async fn receive_pack() -> impl IntoResponse {
    read_only()
}
