//! Mirrored plugins: cloned from an upstream git repository into skill-pool, validated as a
//! plugin, and served from the tenant's git endpoint like an internal plugin (skill-pool's own
//! deterministic commits of the fetched trees, so any replica rebuilds the repo from the
//! database). A pull runs as a background job; a failed pull changes nothing that is served
//! (the last good copy keeps serving), records why in the mirror's status, and backs off.

use std::net::IpAddr;
use std::time::Duration;

use skill_pool_core::Role;
use skill_pool_core::api::{ImportMirror, Job, MirrorError, MirrorStatus, SourcingMode};
use skill_pool_core::archive::{FileMode, UploadFile};
use skill_pool_core::slug::Slug;
use skill_pool_git::fetch::{FetchClass, FetchLimits, fetch_tree};
use skill_pool_store::mirrors::{JobRow, MirrorRow, NewMirror, PullOutcome};
use skill_pool_store::prelude::*;
use skill_pool_store::{PluginId, StoreError, TenantId, format_ms, now_ms};

use crate::{Actor, Registry, RegistryError, Result, with_retry};

/// What mirrors may reach and how long and large a pull may be.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// Hosts and networks a mirror may reach although they are private, loopback or link-local
    /// (`SKILL_POOL_MIRROR_ALLOWED_HOSTS`): names (`git.internal`) and CIDRs (`10.0.0.0/8`).
    pub allowed_hosts: Vec<String>,
    pub timeout: Duration,
    pub max_bytes: u64,
    /// The worker's tick: the first back-off step after a failure.
    pub tick: Duration,
    /// Pulls at once.
    pub concurrency: usize,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings {
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(120),
            max_bytes: 256 << 20,
            tick: Duration::from_secs(60),
            concurrency: 4,
        }
    }
}

/// The default refresh interval.
pub const DEFAULT_REFRESH_SECS: i64 = 24 * 3600;
/// The shortest accepted (for tests and urgent upstreams).
pub const MIN_REFRESH_SECS: i64 = 2;

/// `24h`, `30m`, `90s`, `2d` or plain seconds.
pub fn parse_interval(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not an interval: use e.g. 24h, 30m or 90s"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("`{other}` is not a unit: use s, m, h or d")),
    };
    let secs = n.saturating_mul(mult);
    if secs > 366 * 86400 {
        return Err("the refresh interval may be at most a year".into());
    }
    if secs < MIN_REFRESH_SECS {
        return Err(format!("the refresh interval must be at least {MIN_REFRESH_SECS} s"));
    }
    Ok(secs)
}

/// Private, loopback, link-local, unspecified, multicast and cloud-metadata addresses: what a
/// mirror may not reach unless the operator allows it.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // carrier-grade NAT
                || v4.octets()[0] == 0
                || v4.octets()[0] >= 240 // reserved
                || v4.octets()[0..3] == [192, 0, 0] // IETF protocol assignments
                || v4.octets()[0] == 198 && (v4.octets()[1] & 0xfe) == 18 // benchmarking
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || (v6.segments()[0] & 0xffc0) == 0xfec0 // site local
                || v6.to_ipv4().is_some_and(|v4| is_internal(IpAddr::V4(v4))) // mapped and compatible
                || v6.segments()[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] // NAT64
                || v6.segments()[0] == 0x2002 // 6to4: the embedded address is checked below
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::new(
                        (v6.segments()[1] >> 8) as u8,
                        v6.segments()[1] as u8,
                        (v6.segments()[2] >> 8) as u8,
                        v6.segments()[2] as u8,
                    )))
        }
    }
}

fn allowed(rules: &[String], host: &str, ip: IpAddr) -> bool {
    rules.iter().any(|rule| {
        let rule = rule.trim();
        if let Ok(net) = rule.parse::<ipnet::IpNet>() {
            return net.contains(&ip);
        }
        if let Ok(addr) = rule.parse::<IpAddr>() {
            return addr == ip;
        }
        rule.eq_ignore_ascii_case(host)
    })
}

/// The SSRF guard: the URL's host, resolved, must be a public address (or allowed). Checked
/// again before every pull, as DNS may change; git follows no redirect.
pub(crate) async fn check_reachable(url: &str, rules: &[String]) -> std::result::Result<Vec<String>, String> {
    if url.contains('\\') {
        return Err(format!("`{url}`: a backslash in a URL is read differently by different parsers"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("`{url}`: mirrors fetch over https:// or http:// only"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are not accepted: they would be shown to every member and kept in the audit log".into());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` has no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let literal = host.parse::<IpAddr>().ok();
    let addrs: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| format!("resolving `{host}` took longer than 10 s"))?
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    for ip in &addrs {
        if is_internal(*ip) && !allowed(rules, &host, *ip) {
            return Err(format!(
                "`{host}` resolves to {ip}, a private, loopback, link-local or metadata address: list it in SKILL_POOL_MIRROR_ALLOWED_HOSTS to mirror from it"
            ));
        }
    }
    // The fetch connects to exactly the addresses checked here (no second resolution that a
    // rebinding DNS server could answer differently): `HOST:PORT:ADDR,…` for curl.
    if literal.is_some() {
        return Ok(Vec::new());
    }
    let list = addrs
        .iter()
        .map(|ip| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(vec![format!("{host}:{port}:{list}")])
}

/// The plugin name a mirror gets when none is given: the folder, else the repository name.
fn default_slug(url: &str, path: Option<&str>) -> Option<String> {
    let from = match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => p.rsplit('/').next()?.to_string(),
        None => url.trim_end_matches('/').rsplit('/').next()?.trim_end_matches(".git").to_string(),
    };
    Some(from.to_ascii_lowercase())
}

pub(crate) fn job_view(j: &JobRow) -> Job {
    Job {
        id: j.id,
        kind: j.kind.clone(),
        target: j.target.clone(),
        state: j.state.clone(),
        error: j.error.clone(),
        created_by: j.created_by.clone(),
        created_at: format_ms(j.created_at),
        started_at: j.started_at.map(format_ms),
        finished_at: j.finished_at.map(format_ms),
    }
}

pub(crate) fn status_view(m: &MirrorRow) -> MirrorStatus {
    MirrorStatus {
        url: m.url.clone(),
        path: m.path.clone(),
        git_ref: m.git_ref.clone(),
        refresh_interval_secs: m.refresh_secs,
        upstream_commit: m.upstream_commit.clone(),
        last_pulled_at: m.last_pulled_at.map(format_ms),
        last_success_at: m.last_success_at.map(format_ms),
        last_error: m.last_error.as_deref().and_then(|e| serde_json::from_str(e).ok()),
        held: m.held.clone(),
        next_pull_at: format_ms(m.next_pull_at),
    }
}

/// A failed pull: its class and message.
fn pull_error(class: &str, message: impl Into<String>) -> MirrorError {
    MirrorError {
        class: class.into(),
        message: message.into(),
    }
}

impl Registry {
    /// `POST /v1/plugins/import`: creates a mirrored plugin and queues its first pull.
    pub async fn import_mirror(&self, actor: &Actor, req: ImportMirror) -> Result<(String, Job)> {
        actor.require(Role::Admin)?;
        let url = req.url.trim().to_string();
        skill_pool_core::catalogue::check_external_source(&serde_json::json!({"source": "url", "url": url}))
            .map_err(|e| RegistryError::bad_request(format!("url: {}", e.message)).with_field("url"))?;
        if let Some(path) = req.path.as_deref() {
            skill_pool_core::catalogue::check_external_source(&serde_json::json!({"source": "git-subdir", "url": "o/r", "path": path}))
                .map_err(|e| RegistryError::bad_request(format!("path: {}", e.message)).with_field("path"))?;
        }
        if let Some(r) = req.git_ref.as_deref() {
            skill_pool_core::catalogue::check_external_source(&serde_json::json!({"source": "url", "url": "https://h/x", "ref": r}))
                .map_err(|e| RegistryError::bad_request(format!("ref: {}", e.message)).with_field("ref"))?;
        }
        let refresh_secs = match req.refresh_interval.as_deref() {
            Some(i) => parse_interval(i).map_err(|e| RegistryError::bad_request(e).with_field("refresh_interval"))?,
            None => DEFAULT_REFRESH_SECS,
        };
        // Last: it resolves the host (the checks above need no network).
        check_reachable(&url, &self.config().mirror.allowed_hosts)
            .await
            .map_err(|e| RegistryError::bad_request(e).with_field("url"))?;
        // What is stored (and fetched) is the URL as parsed, so the guard and git read the same one.
        let url = url::Url::parse(&url).map(|u| u.to_string()).unwrap_or(url);
        let req = ImportMirror {
            path: req
                .path
                .as_deref()
                .map(|p| p.trim_start_matches("./").trim_matches('/').to_string())
                .filter(|p| !p.is_empty()),
            ..req
        };
        let slug_text = match req.slug.clone().or_else(|| default_slug(&url, req.path.as_deref())) {
            Some(s) => s,
            None => return Err(RegistryError::bad_request("name the mirror: pass `slug`").with_field("slug")),
        };
        let slug = Slug::parse(&slug_text).map_err(|e| {
            RegistryError::bad_request(format!("plugin name `{slug_text}`: {e}"))
                .with_field("slug")
                .with_source(e)
        })?;
        let (slug, url, req) = (&slug, &url, &req);
        let (plugin_id, job) = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let plugin = match tx
                .insert_plugin(actor.tenant, slug.as_str(), SourcingMode::Mirror, "{}", None)
                .await
            {
                Ok(p) => p,
                Err(StoreError::Conflict(_)) => return Err(RegistryError::Conflict(format!("plugin `{slug}` already exists"))),
                Err(e) => return Err(e.into()),
            };
            tx.insert_mirror(
                actor.tenant,
                plugin.id,
                &NewMirror {
                    url,
                    path: req.path.as_deref(),
                    git_ref: req.git_ref.as_deref(),
                    refresh_secs,
                },
            )
            .await?;
            let job = tx
                .insert_job(actor.tenant, "mirror.pull", slug.as_str(), &actor.audit_name())
                .await?;
            crate::audit::record(
                &mut tx,
                actor,
                "plugin.import",
                &format!("plugin:{slug}"),
                serde_json::json!({"url": url, "path": req.path, "ref": req.git_ref, "refresh_secs": refresh_secs, "job": job.id}),
            )
            .await?;
            tx.commit().await?;
            Ok((plugin.id, job))
        })
        .await?;
        self.dispatch_pull(actor.tenant, plugin_id, job.id).await?;
        Ok((slug.to_string(), job_view(&job)))
    }

    /// `POST /v1/plugins/{slug}/refresh`: a pull now, in the background.
    pub async fn refresh_mirror(&self, actor: &Actor, slug: &str) -> Result<Job> {
        actor.require(Role::Admin)?;
        let plugin = self.mirror_row(actor, slug).await?;
        if let Some(m) = self.store().mirror(actor.tenant, plugin.id).await?
            && let Some(reason) = m.held
        {
            return Err(RegistryError::Conflict(format!(
                "plugin `{slug}` is held ({reason}): accept the upstream first (`skill-pool plugin accept {slug}`)"
            )));
        }
        self.queue_pull(actor, &plugin, false).await
    }

    /// `POST /v1/plugins/{slug}/accept`: follows an upstream whose history was rewritten (the hold
    /// is lifted and the next pull serves the upstream as it is now), in the background.
    pub async fn accept_mirror(&self, actor: &Actor, slug: &str) -> Result<Job> {
        actor.require(Role::Admin)?;
        let plugin = self.mirror_row(actor, slug).await?;
        let held = self.store().mirror(actor.tenant, plugin.id).await?.and_then(|m| m.held);
        if held.is_none() {
            return Err(RegistryError::Conflict(format!(
                "plugin `{slug}` is not held: there is nothing to accept"
            )));
        }
        self.queue_pull(actor, &plugin, true).await
    }

    async fn mirror_row(&self, actor: &Actor, slug: &str) -> Result<skill_pool_store::plugins::PluginRow> {
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        if plugin.mode != SourcingMode::Mirror {
            return Err(RegistryError::Conflict(format!(
                "plugin `{slug}` is {}: only mirrors are pulled",
                plugin.mode.as_str()
            )));
        }
        Ok(plugin)
    }

    async fn queue_pull(&self, actor: &Actor, plugin: &skill_pool_store::plugins::PluginRow, accept: bool) -> Result<Job> {
        let job = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            if accept {
                tx.mirror_due_now(actor.tenant, plugin.id, true).await?;
            }
            let job = tx
                .insert_job(actor.tenant, "mirror.pull", &plugin.slug, &actor.audit_name())
                .await?;
            let action = if accept { "plugin.accept" } else { "plugin.refresh" };
            crate::audit::record(
                &mut tx,
                actor,
                action,
                &format!("plugin:{}", plugin.slug),
                serde_json::json!({"job": job.id}),
            )
            .await?;
            tx.commit().await?;
            Ok(job)
        })
        .await?;
        self.dispatch_pull(actor.tenant, plugin.id, job.id).await?;
        Ok(job_view(&job))
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, actor: &Actor, id: i64) -> Result<Job> {
        actor.require(Role::Member)?;
        let row = self
            .store()
            .job(actor.tenant, id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("job {id} not found")))?;
        Ok(job_view(&row))
    }

    /// Jobs a stopped process left unfinished are marked failed (their mirrors are pulled again
    /// by the worker when due).
    pub async fn recover_jobs(&self) -> Result<usize> {
        if self.inner.queue.is_some() {
            // The Redis queue hands a stopped server's jobs to another consumer.
            return Ok(0);
        }
        let jobs = self.store().unfinished_jobs().await?;
        let mut tx = self.store().write().await?;
        for j in &jobs {
            tx.set_job_state(j.id, "failed", Some("the server stopped before the job ended"))
                .await?;
        }
        tx.commit().await?;
        Ok(jobs.len())
    }

    /// The worker's step: queues a pull for every mirror that is due (at most the concurrency at once).
    pub async fn pull_due_mirrors(&self) -> Result<usize> {
        let limit = self.config().mirror.concurrency.max(1) as i64;
        let due = self.store().due_mirrors(now_ms(), limit).await?;
        let mut queued = 0;
        for m in due {
            if self.pull_running(m.plugin_id) {
                continue;
            }
            // Claimed in the database, so that of several servers on one database only one
            // queues this pull; the pull sets the real next time when it ends.
            let now = now_ms();
            let until = now + (self.config().mirror.timeout.as_millis() as i64) + 60_000;
            let claimed = {
                let mut tx = self.store().write().await?;
                let claimed = tx.claim_due_mirror(m.tenant_id, m.plugin_id, now, until).await?;
                tx.commit().await?;
                claimed
            };
            if !claimed {
                continue;
            }
            let Some(plugin) = self.store().plugin_by_id(m.tenant_id, m.plugin_id).await? else {
                continue;
            };
            let slug = plugin.slug;
            let job = {
                let mut tx = self.store().write().await?;
                let job = tx.insert_job(m.tenant_id, "mirror.pull", &slug, "job:worker").await?;
                tx.commit().await?;
                job
            };
            self.dispatch_pull(m.tenant_id, m.plugin_id, job.id).await?;
            queued += 1;
        }
        Ok(queued)
    }

    /// Whether a pull of this mirror is queued or running in this process.
    fn pull_running(&self, plugin_id: PluginId) -> bool {
        self.inner
            .pulls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&plugin_id)
            .is_some_and(|n| *n > 0)
    }

    /// Queues a pull job: on Redis when configured, else on a task of this process.
    async fn dispatch_pull(&self, tenant: TenantId, plugin_id: PluginId, job_id: i64) -> Result<()> {
        match &self.inner.queue {
            Some(q) => q.enqueue(job_id).await,
            None => {
                self.spawn_pull(tenant, plugin_id, job_id);
                Ok(())
            }
        }
    }

    /// A job taken from the Redis queue: the mirror is locked in Redis while it is pulled, so
    /// two servers never pull it at once.
    pub(crate) async fn run_queued_job(&self, job_id: i64) {
        let Some(queue) = self.inner.queue.clone() else { return };
        let job = match self.store().job_by_id(job_id).await {
            Ok(Some(j)) => j,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, job = job_id, "cannot read a queued job");
                return;
            }
        };
        if job.state == "done" || job.state == "failed" {
            return;
        }
        let plugin = match self.store().plugin(job.tenant_id, &job.target).await {
            Ok(Some(p)) => p,
            _ => {
                let _ = self.finish_job(job_id, Some("the mirror was deleted")).await;
                return;
            }
        };
        let lock = format!("mirror:{}", plugin.id.get());
        // Short, and renewed while the pull runs: a server that dies frees the mirror quickly.
        let ttl = Duration::from_secs(15);
        let deadline = std::time::Instant::now() + self.config().mirror.timeout * 2 + Duration::from_secs(60);
        loop {
            match queue.lock(&lock, ttl).await {
                Ok(true) => break,
                Ok(false) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                Ok(false) => {
                    let _ = self.finish_job(job_id, Some("another server kept pulling this mirror")).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot lock the mirror in redis");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let renewer = {
            let (queue, lock) = (queue.clone(), lock.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    if !matches!(queue.renew(&lock, ttl).await, Ok(true)) {
                        tracing::warn!(lock = %lock, "lost the mirror's lock while pulling");
                    }
                }
            })
        };
        if let Err(e) = self.start_job(job_id).await {
            tracing::warn!(error = %e, job = job_id, "could not mark the job running");
        }
        let error = self.pull_to_end(job.tenant_id, plugin.id, job_id).await;
        renewer.abort();
        if let Err(e) = self.finish_job(job_id, error.as_deref()).await {
            tracing::warn!(error = %e, job = job_id, "could not record the job's end");
        }
        if let Err(e) = queue.unlock(&lock).await {
            tracing::warn!(error = %e, "could not release the mirror's lock");
        }
    }

    /// Runs one pull job in the background (one pull per mirror at a time; at most the
    /// configured number at once).
    fn spawn_pull(&self, tenant: TenantId, plugin_id: PluginId, job_id: i64) {
        let registry = self.clone();
        *self
            .inner
            .pulls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plugin_id)
            .or_insert(0) += 1;
        let serial = self.pull_lock(plugin_id);
        tokio::spawn(async move {
            // One pull of a mirror at a time (a manual refresh waits for the worker's pull and
            // then makes its own), at most the configured number of pulls at once.
            let _serial = serial.lock().await;
            let _permit = registry.inner.pull_slots.acquire().await;
            if let Err(e) = registry.start_job(job_id).await {
                tracing::warn!(error = %e, job = job_id, "could not mark the job running");
            }
            let error = registry.pull_to_end(tenant, plugin_id, job_id).await;
            if let Some(n) = registry.inner.pulls.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&plugin_id) {
                *n = n.saturating_sub(1);
            }
            if let Err(e) = registry.finish_job(job_id, error.as_deref()).await {
                tracing::warn!(error = %e, job = job_id, "could not record the job's end");
            }
        });
    }

    /// Runs one pull to its end and gives its error, if any. A panic inside the pull is an
    /// error too, so the job is always recorded as ended and the mirror stays pullable.
    async fn pull_to_end(&self, tenant: TenantId, plugin_id: PluginId, job_id: i64) -> Option<String> {
        let registry = self.clone();
        match tokio::spawn(async move { registry.pull(tenant, plugin_id, job_id).await }).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the pull stopped unexpectedly: {e}")),
        }
    }

    fn pull_lock(&self, plugin_id: PluginId) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.pull_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(plugin_id).or_default().clone()
    }

    async fn start_job(&self, id: i64) -> Result<()> {
        let mut tx = self.store().write().await?;
        tx.set_job_state(id, "running", None).await?;
        Ok(tx.commit().await?)
    }

    async fn finish_job(&self, id: i64, error: Option<&str>) -> Result<()> {
        let mut tx = self.store().write().await?;
        tx.set_job_state(id, if error.is_some() { "failed" } else { "done" }, error).await?;
        Ok(tx.commit().await?)
    }

    /// One pull: fetch, validate, publish as a new version (or recognise it as served), and
    /// record the outcome in the mirror's status. A failure changes nothing that is served.
    async fn pull(&self, tenant: TenantId, plugin_id: PluginId, job_id: i64) -> Result<()> {
        let Some(mirror) = self.store().mirror(tenant, plugin_id).await? else {
            return Err(RegistryError::NotFound("the mirror was deleted".into()));
        };
        let plugin = self
            .store()
            .plugin_by_id(tenant, plugin_id)
            .await?
            .ok_or_else(|| RegistryError::NotFound("the mirror was deleted".into()))?;
        let actor = Actor::job(tenant, job_id, "mirror");
        let result = self.pull_once(&actor, &plugin.slug, &mirror).await;
        let settings = &self.config().mirror;
        let now = now_ms();
        let held = match &result {
            Err(e) if e.class == "force_push" => Some(e.message.clone()),
            _ => None,
        };
        let (commit, error, failures, next) = match &result {
            Ok(commit) => (
                Some(commit.clone()),
                None,
                0,
                now.saturating_add(mirror.refresh_secs.saturating_mul(1000)),
            ),
            Err(e) => {
                let failures = mirror.failures + 1;
                // Exponential back-off from the tick, capped: a broken upstream sees a handful of
                // attempts, never one per tick.
                let base = settings.tick.as_millis().max(1000) as i64;
                let cap = mirror.refresh_secs.saturating_mul(1000).max(3_600_000);
                let delay = base.saturating_mul(1i64 << (failures - 1).clamp(0, 20)).min(cap);
                (None, Some(serde_json::to_string(e).unwrap_or_default()), failures, now + delay)
            }
        };
        {
            let mut tx = self.store().write().await?;
            tx.record_pull(
                tenant,
                plugin_id,
                &PullOutcome {
                    upstream_commit: commit.as_deref(),
                    error: error.as_deref(),
                    held: held.as_deref(),
                    failures,
                    next_pull_at: next,
                },
            )
            .await?;
            if let Err(e) = &result {
                crate::audit::record(
                    &mut tx,
                    &actor,
                    "mirror.pull_failed",
                    &format!("plugin:{}", plugin.slug),
                    serde_json::json!({"class": e.class, "message": e.message}),
                )
                .await?;
            }
            tx.commit().await?;
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(plugin = %plugin.slug, class = %e.class, error = %e.message, "mirror pull failed; the last good copy keeps serving");
                Err(RegistryError::Internal(format!("{}: {}", e.class, e.message)))
            }
        }
    }

    /// Fetches and publishes; the upstream commit on success.
    async fn pull_once(&self, actor: &Actor, slug: &str, mirror: &MirrorRow) -> std::result::Result<String, MirrorError> {
        let settings = &self.config().mirror;
        let pins = check_reachable(&mirror.url, &settings.allowed_hosts)
            .await
            .map_err(|e| pull_error("network", e))?;
        let limits = FetchLimits {
            timeout: settings.timeout,
            max_bytes: settings.max_bytes,
        };
        let cache = self
            .config()
            .data_dir
            .join("mirrors")
            .join(mirror.tenant_id.get().to_string())
            .join(format!("{}.git", mirror.plugin_id.get()));
        let fetched = fetch_tree(
            &mirror.url,
            mirror.git_ref.as_deref(),
            mirror.path.as_deref(),
            &cache,
            mirror.upstream_commit.as_deref(),
            &pins,
            &limits,
        )
        .await
        .map_err(|e| {
            if matches!(e.class, FetchClass::Timeout | FetchClass::Signal) {
                // A killed git may leave lock files behind: start the cache afresh.
                let _ = std::fs::remove_dir_all(&cache);
            }
            pull_error(e.class.as_str(), e.message)
        })?;
        let upstream = fetched.commit.to_hex();
        if fetched.descends == Some(false) {
            return Err(pull_error(
                "force_push",
                format!(
                    "the upstream history was rewritten: {} does not descend from {}, the commit served so far; accept it with `skill-pool plugin accept {slug}`",
                    &upstream[..12],
                    mirror.upstream_commit.as_deref().map_or("?", |c| &c[..12.min(c.len())])
                ),
            ));
        }
        let files: Vec<UploadFile> = fetched
            .files
            .into_iter()
            .map(|f| UploadFile {
                path: f.path,
                mode: if f.symlink {
                    FileMode::Symlink
                } else if f.executable {
                    FileMode::Executable
                } else {
                    FileMode::Regular
                },
                data: f.data,
            })
            .collect();
        match self.publish_mirror_tree(actor, slug, mirror.plugin_id, files).await {
            Ok(_) => Ok(upstream),
            Err(e) => {
                let class = match e.code() {
                    skill_pool_core::ErrorCode::PayloadTooLarge => "too_large",
                    c if c.http_status() >= 500 => "disk",
                    _ => "invalid_plugin",
                };
                Err(pull_error(class, e.to_string()))
            }
        }
    }

    /// The mirror's status, for `GET /v1/plugins/{slug}`.
    pub(crate) async fn mirror_status(&self, tenant: TenantId, plugin_id: PluginId) -> Result<Option<MirrorStatus>> {
        Ok(self.store().mirror(tenant, plugin_id).await?.as_ref().map(status_view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("24h"), Ok(86400));
        assert_eq!(parse_interval("30m"), Ok(1800));
        assert_eq!(parse_interval("5s"), Ok(5));
        assert_eq!(parse_interval("7"), Ok(7));
        assert!(parse_interval("1s").is_err());
        assert!(parse_interval("3 weeks").is_err());
    }

    #[tokio::test]
    async fn the_ssrf_guard() {
        for url in [
            "http://127.0.0.1/x.git",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/r.git",
            "http://[::1]/r.git",
            "http://localhost/r.git",
        ] {
            assert!(check_reachable(url, &[]).await.is_err(), "{url}");
        }
        assert!(check_reachable("http://127.0.0.1:9/x.git", &["127.0.0.1".into()]).await.is_ok());
        assert!(check_reachable("http://10.1.2.3/r.git", &["10.0.0.0/8".into()]).await.is_ok());
        assert!(check_reachable("http://localhost/r.git", &["localhost".into()]).await.is_ok());
        assert!(check_reachable("http://93.184.215.14/r.git", &[]).await.is_ok());
        assert!(check_reachable("ftp://93.184.215.14/r.git", &[]).await.is_err());
    }

    #[test]
    fn default_names() {
        assert_eq!(default_slug("https://h/org/Tools.git", None).as_deref(), Some("tools"));
        assert_eq!(default_slug("https://h/org/mono", Some("plugins/fmt/")).as_deref(), Some("fmt"));
    }
}
