//! A typed client of the skill-pool REST API (`<T>/v1`). Errors keep the server's error code,
//! message and request id, so callers (the CLI) can show them as they are.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skill_pool_core::ErrorCode;
use skill_pool_core::api::{
    AuditEntry, CreatePlugin, CreateToken, CreatedToken, ErrorBody, ImportCatalogue, ImportMirror, ImportReport, InstallPolicy, Job,
    JobAccepted, Page, Piece, PieceKind, PieceVersion, Plugin, PublishPieceResult, PublishPluginResult, PurgeResult, ServePlugin,
    SetInstallPolicy, TenantSettings, Token, UpdatePlugin, UpdateTenant, Usage, WhoAmI,
};
use skill_pool_core::catalogue::Catalogue;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message} ({status} {code}, request {request_id})")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        /// The field or file the server named, if any.
        field: Option<String>,
        request_id: String,
    },
    #[error("could not reach {url}: {detail}")]
    Transport {
        url: String,
        detail: String,
        /// The request ran out of time (as opposed to a refused or failed connection).
        timed_out: bool,
    },
    #[error("unexpected answer from {url}: {detail}")]
    Decode { url: String, detail: String },
    #[error("`{0}` is not a server URL: give the tenant root, e.g. http://127.0.0.1:8080/t/acme")]
    BadUrl(String),
}

impl ClientError {
    /// The server's error code, e.g. `version_conflict`.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Actor contains this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Action starts with this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Target contains this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Publish parameters shared by pieces and plugins.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Called with the number of bytes of an upload sent so far.
pub type UploadProgress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    progress: Option<UploadProgress>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Uploads are sent in pieces of this size when progress is reported.
const UPLOAD_CHUNK: usize = 64 << 10;

/// Uploads and publishes can take a while on a big folder.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Largest document [`fetch_document`] reads (what Claude Code accepts for a catalogue).
pub const MAX_DOCUMENT_BYTES: usize = 5 << 20;

/// GETs a public document (an upstream `marketplace.json`), at most [`MAX_DOCUMENT_BYTES`].
pub async fn fetch_document(url: &str) -> Result<Vec<u8>> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => return Err(ClientError::BadUrl(url.to_string())),
    }
    let http = reqwest::Client::builder()
        .user_agent(concat!("skill-pool-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ClientError::Transport {
            url: url.to_string(),
            detail: describe(&e),
            timed_out: e.is_timeout(),
        })?;
    let mut res = http.get(url).send().await.map_err(|e| ClientError::Transport {
        url: url.to_string(),
        detail: describe(&e),
        timed_out: e.is_timeout(),
    })?;
    if !res.status().is_success() {
        return Err(ClientError::Decode {
            url: url.to_string(),
            detail: format!("answered {}", res.status()),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| ClientError::Transport {
        url: url.to_string(),
        detail: describe(&e),
        timed_out: e.is_timeout(),
    })? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(ClientError::Decode {
                url: url.to_string(),
                detail: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
            });
        }
    }
    Ok(body)
}

impl Client {
    /// `base_url` is a tenant root `<T>`, e.g. `https://pool.example.com/t/acme`.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client> {
        Client::with_timeouts(base_url, token, Duration::from_secs(10), TIMEOUT)
    }

    /// A client with its own time limits: `connect` for the TCP/TLS connection, `total` for a
    /// whole request (a hook wants both short).
    pub fn with_timeouts(base_url: &str, token: Option<String>, connect: Duration, total: Duration) -> Result<Client> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        match url::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Err(ClientError::BadUrl(base_url.to_string())),
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("skill-pool-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect)
            .timeout(total)
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.clone(),
                detail: e.to_string(),
                timed_out: false,
            })?;
        Ok(Client {
            base,
            token,
            http,
            progress: None,
        })
    }

    /// Reports the bytes sent of every upload (a publish) to `progress`.
    pub fn with_upload_progress(mut self, progress: UploadProgress) -> Client {
        self.progress = Some(progress);
        self
    }

    /// An upload body: the bytes as they are, or in pieces that report progress.
    fn upload(&self, req: reqwest::RequestBuilder, data: Vec<u8>) -> reqwest::RequestBuilder {
        let Some(progress) = self.progress.clone() else {
            return req.body(data);
        };
        let len = data.len();
        let data = bytes::Bytes::from(data);
        let mut sent = 0usize;
        let chunks: Vec<std::result::Result<bytes::Bytes, std::io::Error>> = (0..len)
            .step_by(UPLOAD_CHUNK)
            .map(|start| Ok(data.slice(start..(start + UPLOAD_CHUNK).min(len))))
            .collect();
        let stream = futures_util::stream::iter(chunks).inspect(move |chunk| {
            if let Ok(c) = chunk {
                sent += c.len();
                progress(sent as u64);
            }
        });
        req.header(header::CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(stream))
    }

    /// The tenant's catalogue (`<T>/.claude-plugin/marketplace.json`), as Claude Code gets it.
    pub async fn catalogue(&self) -> Result<Catalogue> {
        self.json(self.request(Method::GET, "/.claude-plugin/marketplace.json")).await
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let req = req.build().map_err(|e| ClientError::Transport {
            url: self.base.clone(),
            detail: e.to_string(),
            timed_out: false,
        })?;
        let url = req.url().to_string();
        let res = self.http.execute(req).await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            detail: describe(&e),
            timed_out: e.is_timeout(),
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let request_id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = res.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error,
                message: body.message,
                field: body.field,
                request_id: body.request_id,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: ErrorCode::Unknown,
                field: None,
                message: format!("{url} answered {status} without a skill-pool error body: is this a skill-pool tenant URL?"),
                request_id,
            },
        })
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let res = self.send(req).await?;
        let url = res.url().to_string();
        let bytes = res.bytes().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            detail: describe(&e),
            timed_out: e.is_timeout(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    /// Follows `next_cursor` until the last page.
    async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self.request(Method::GET, path).query(&[("limit", "500")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: Page<T> = self.json(req).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(items),
            }
        }
    }

    /// Pins the served version of a plugin, or follows the newest again.
    pub async fn serve_plugin(&self, slug: &str, req: &ServePlugin) -> Result<Plugin> {
        self.json(self.request(Method::POST, &format!("/v1/plugins/{}/serve", seg(slug))).json(req))
            .await
    }

    /// Sets how the organisation wants a plugin installed.
    pub async fn set_install_policy(&self, slug: &str, policy: InstallPolicy) -> Result<Plugin> {
        let req = SetInstallPolicy { install_policy: policy };
        self.json(self.request(Method::POST, &format!("/v1/plugins/{}/policy", seg(slug))).json(&req))
            .await
    }

    /// What the tenant uses against its limits.
    /// `GET /v1/installs?days=…`: installs per plugin and distinct catalogue clients per day.
    pub async fn installs(&self, days: u32) -> Result<skill_pool_core::api::InstallSummary> {
        self.json(self.request(Method::GET, &format!("/v1/installs?days={days}"))).await
    }

    pub async fn usage(&self) -> Result<Usage> {
        self.json(self.request(Method::GET, "/v1/usage")).await
    }

    /// The tenant's settings (visibility, serving mode).
    pub async fn tenant_settings(&self) -> Result<TenantSettings> {
        self.json(self.request(Method::GET, "/v1/tenant")).await
    }

    /// Changes the tenant's settings (admin).
    pub async fn update_tenant(&self, change: &UpdateTenant) -> Result<TenantSettings> {
        self.json(self.request(Method::PATCH, "/v1/tenant").json(change)).await
    }

    /// The managed-settings fragment of the tenant (admin), allowing the `allow` marketplaces too.
    pub async fn managed_settings(&self, allow: &[String]) -> Result<serde_json::Value> {
        let query: Vec<(&str, &str)> = allow.iter().map(|a| ("allow", a.as_str())).collect();
        self.json(self.request(Method::GET, "/v1/managed-settings").query(&query)).await
    }

    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.json(self.request(Method::GET, "/v1/whoami")).await
    }

    // --- skills, agents, commands -------------------------------------------------------

    pub async fn list_pieces(&self, kind: PieceKind) -> Result<Vec<Piece>> {
        self.all(&format!("/v1/{}", kind.plural())).await
    }

    pub async fn show_piece(&self, kind: PieceKind, slug: &str) -> Result<Piece> {
        self.json(self.request(Method::GET, &format!("/v1/{}/{}", kind.plural(), seg(slug))))
            .await
    }

    pub async fn piece_versions(&self, kind: PieceKind, slug: &str) -> Result<Vec<PieceVersion>> {
        self.all(&format!("/v1/{}/{}/versions", kind.plural(), seg(slug))).await
    }

    pub async fn piece_version(&self, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersion> {
        self.json(self.request(
            Method::GET,
            &format!("/v1/{}/{}/versions/{}", kind.plural(), seg(slug), seg(version)),
        ))
        .await
    }

    /// Publishes a skill (`body` = tar.gz of its folder) or an agent or command (`body` = the markdown file).
    pub async fn publish_piece(&self, kind: PieceKind, body: Vec<u8>, opts: &PublishOptions) -> Result<PublishPieceResult> {
        let content_type = if kind == PieceKind::Skill {
            "application/gzip"
        } else {
            "text/markdown; charset=utf-8"
        };
        let req = self
            .request(Method::POST, &format!("/v1/{}", kind.plural()))
            .query(opts)
            .header(header::CONTENT_TYPE, content_type);
        let req = self.upload(req, body);
        self.json(req).await
    }

    pub async fn archive_piece(&self, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersion> {
        self.json(self.request(
            Method::POST,
            &format!("/v1/{}/{}/versions/{}/archive", kind.plural(), seg(slug), seg(version)),
        ))
        .await
    }

    /// The tar.gz of a piece version's files.
    pub async fn download_piece(&self, kind: PieceKind, slug: &str, version: &str) -> Result<Vec<u8>> {
        let res = self
            .send(self.request(
                Method::GET,
                &format!("/v1/{}/{}/versions/{}/download", kind.plural(), seg(slug), seg(version)),
            ))
            .await?;
        let url = res.url().to_string();
        Ok(res
            .bytes()
            .await
            .map_err(|e| ClientError::Transport {
                url,
                detail: describe(&e),
                timed_out: e.is_timeout(),
            })?
            .to_vec())
    }

    // --- plugins --------------------------------------------------------------------------

    pub async fn list_plugins(&self) -> Result<Vec<Plugin>> {
        self.all("/v1/plugins").await
    }

    pub async fn show_plugin(&self, slug: &str) -> Result<Plugin> {
        self.json(self.request(Method::GET, &format!("/v1/plugins/{}", seg(slug)))).await
    }

    pub async fn create_plugin(&self, req: &CreatePlugin) -> Result<PublishPluginResult> {
        self.json(self.request(Method::POST, "/v1/plugins").json(req)).await
    }

    /// Creates a mirrored plugin; its first pull runs as the returned job.
    pub async fn import_mirror(&self, req: &ImportMirror) -> Result<JobAccepted> {
        self.json(self.request(Method::POST, "/v1/plugins/import").json(req)).await
    }

    /// Pulls a mirror now, in the background.
    pub async fn refresh_mirror(&self, slug: &str) -> Result<JobAccepted> {
        self.json(self.request(Method::POST, &format!("/v1/plugins/{}/refresh", seg(slug))))
            .await
    }

    /// Follows a held mirror's rewritten upstream history.
    pub async fn accept_mirror(&self, slug: &str) -> Result<JobAccepted> {
        self.json(self.request(Method::POST, &format!("/v1/plugins/{}/accept", seg(slug))))
            .await
    }

    pub async fn job(&self, id: i64) -> Result<Job> {
        self.json(self.request(Method::GET, &format!("/v1/jobs/{id}"))).await
    }

    /// Lists every entry of an upstream catalogue as an external plugin.
    pub async fn import_catalogue(&self, req: &ImportCatalogue) -> Result<ImportReport> {
        self.json(self.request(Method::POST, "/v1/plugins/import-catalogue").json(req))
            .await
    }

    pub async fn update_plugin(&self, slug: &str, req: &UpdatePlugin) -> Result<PublishPluginResult> {
        self.json(self.request(Method::PATCH, &format!("/v1/plugins/{}", seg(slug))).json(req))
            .await
    }

    pub async fn delete_plugin(&self, slug: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &format!("/v1/plugins/{}", seg(slug))))
            .await
            .map(|_| ())
    }

    /// Purges one version (its semver or commit id) for good.
    pub async fn purge_plugin_version(&self, slug: &str, version: &str) -> Result<PurgeResult> {
        self.json(self.request(Method::POST, &format!("/v1/plugins/{}/versions/{}/purge", seg(slug), seg(version))))
            .await
    }

    /// Publishes a plugin folder packed as tar.gz.
    pub async fn publish_plugin(&self, tar_gz: Vec<u8>, opts: &PublishOptions) -> Result<PublishPluginResult> {
        let req = self
            .request(Method::POST, "/v1/plugins/publish")
            .query(opts)
            .header(header::CONTENT_TYPE, "application/gzip");
        let req = self.upload(req, tar_gz);
        self.json(req).await
    }

    // --- tokens and audit -----------------------------------------------------------------

    pub async fn list_tokens(&self) -> Result<Vec<Token>> {
        self.all("/v1/tokens").await
    }

    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken> {
        self.json(self.request(Method::POST, "/v1/tokens").json(req)).await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        self.send(self.request(Method::DELETE, &format!("/v1/tokens/{id}")))
            .await
            .map(|_| ())
    }

    /// The audit log, newest first, filtered (`GET /v1/audit`).
    pub async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        self.json(self.request(Method::GET, "/v1/audit").query(query)).await
    }
}

/// Escapes a path segment (slugs and versions are plain, but a typo must not become a path).
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

/// True when the error is a missing resource (404).
pub fn is_not_found(e: &ClientError) -> bool {
    e.status() == Some(StatusCode::NOT_FOUND.as_u16())
}
