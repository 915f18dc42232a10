//! Server configuration: flags and environment variables (interface.md's table), and the
//! plain [`ServerConfig`] the library takes (tests build it directly).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where the data lives; shared by `serve` and the admin subcommands.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Git repos, file bodies and the SQLite database live here.
    #[arg(long, env = "SKILL_POOL_DATA_DIR", default_value = "./skill-pool-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// `sqlite://…` (embedded default: `sqlite://<data-dir>/skill-pool.db`) or `postgres://…`.
    #[arg(long, env = "SKILL_POOL_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("skill-pool.db").display()))
    }
}

/// `skill-pool-server serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Listen address.
    #[arg(long, env = "SKILL_POOL_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// The base every absolute URL in marketplace.json is built from (default `http://<bind>`).
    #[arg(long, env = "SKILL_POOL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// When set, `<tenant>.<base-domain>` addresses a tenant by its Host header.
    #[arg(long, env = "SKILL_POOL_BASE_DOMAIN", value_name = "DOMAIN")]
    pub base_domain: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs `--tls-key`. Unset:
    /// plain HTTP (put a TLS front such as nginx before it, or use these).
    #[arg(long, env = "SKILL_POOL_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SKILL_POOL_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The tenant served at the bare public URL (default: the first tenant created).
    #[arg(long, env = "SKILL_POOL_DEFAULT_TENANT", value_name = "SLUG")]
    pub default_tenant: Option<String>,
    /// The tenant created on the first start on an empty database.
    #[arg(long, env = "SKILL_POOL_BOOTSTRAP_TENANT", default_value = "default", value_name = "SLUG")]
    pub bootstrap_tenant: String,
    /// The job queue in Redis, e.g. `redis://127.0.0.1:6379`: several servers share the work and a job survives
    /// a crash. Unset: jobs run in-process (one server per database).
    #[arg(long, env = "SKILL_POOL_REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The prefix of every Redis key (several deployments can share one Redis).
    #[arg(long, env = "SKILL_POOL_REDIS_PREFIX", default_value = "skill-pool", value_name = "PREFIX")]
    pub redis_prefix: String,
    /// How often the mirror worker wakes to pull the mirrors that are due, in seconds (also the first back-off step).
    #[arg(long, env = "SKILL_POOL_MIRROR_TICK_SECS", default_value_t = 60, value_name = "SECS")]
    pub mirror_tick_secs: u64,
    /// Mirror pulls in parallel.
    #[arg(long, env = "SKILL_POOL_MIRROR_CONCURRENCY", default_value_t = 4, value_name = "N")]
    pub mirror_concurrency: usize,
    /// Comma list of hosts and CIDRs a mirror may reach although they are private, loopback or link-local
    /// (default: public addresses only), e.g. `git.internal,10.0.0.0/8`.
    #[arg(long, env = "SKILL_POOL_MIRROR_ALLOWED_HOSTS", value_name = "LIST")]
    pub mirror_allowed_hosts: Option<String>,
    /// A mirror pull (connect, fetch, read) must end within this many seconds.
    #[arg(long, env = "SKILL_POOL_MIRROR_TIMEOUT_SECS", default_value_t = 120, value_name = "SECS")]
    pub mirror_timeout_secs: u64,
    /// Largest tree a mirror may pull, e.g. `256MiB`.
    #[arg(long, env = "SKILL_POOL_MIRROR_MAX_BYTES", default_value = "256MiB", value_parser = parse_size, value_name = "SIZE")]
    pub mirror_max_bytes: u64,
    /// Public-surface requests per minute per client address (burst: a quarter of it); 0 turns the limit off.
    #[arg(long, env = "SKILL_POOL_RATE_LIMIT_PER_MIN", default_value_t = 1200, value_name = "N")]
    pub rate_limit_per_min: u32,
    /// Largest accepted upload (compressed), e.g. `64MiB`, `500KB`, `1048576`; unpacked limit 4× that, at most 20,000 files.
    #[arg(long, env = "SKILL_POOL_MAX_UPLOAD_BYTES", default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_upload_bytes: u64,
    /// Largest rendered catalogue of a tenant (uncompressed); a change past it is refused
    /// (Claude Code reads at most 5 MiB).
    #[arg(long, env = "SKILL_POOL_MAX_CATALOGUE_BYTES", default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_catalogue_bytes: u64,
    /// Memory for rendered catalogues (JSON and gzip), all tenants together; past it the least
    /// recently used are dropped and rendered again when asked for.
    #[arg(long, env = "SKILL_POOL_CATALOGUE_CACHE_BYTES", default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub catalogue_cache_bytes: u64,
    /// Per-tenant quota: bytes of distinct file bodies stored (unset: none).
    #[arg(long, env = "SKILL_POOL_QUOTA_BYTES", value_parser = parse_size, value_name = "SIZE")]
    pub quota_bytes: Option<u64>,
    /// Per-tenant quota: plugins (unset: none).
    #[arg(long, env = "SKILL_POOL_QUOTA_PLUGINS", value_name = "N")]
    pub quota_plugins: Option<u64>,
    /// Per-tenant quota: plugin versions, all plugins together (unset: none).
    #[arg(long, env = "SKILL_POOL_QUOTA_VERSIONS", value_name = "N")]
    pub quota_versions: Option<u64>,
    /// Largest JSON request body (`/v1` requests other than uploads).
    #[arg(long, env = "SKILL_POOL_MAX_JSON_BYTES", default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_json_bytes: u64,
    /// Most connections open at once (also kept below the process's open-file limit); past it,
    /// new connections wait in the listen queue.
    #[arg(long, env = "SKILL_POOL_MAX_CONNECTIONS", default_value_t = 4096, value_name = "N")]
    pub max_connections: usize,
    /// Time a client has to send a request's headers; also how long a kept-alive connection may
    /// sit idle between requests.
    #[arg(long, env = "SKILL_POOL_HEADER_TIMEOUT_SECS", default_value_t = 30, value_name = "SECS")]
    pub header_timeout_secs: u64,
    /// A response write that makes no progress for this long closes the connection (a client that
    /// stopped reading).
    #[arg(long, env = "SKILL_POOL_WRITE_TIMEOUT_SECS", default_value_t = 60, value_name = "SECS")]
    pub write_timeout_secs: u64,
    /// Most `git upload-pack` processes at once, in all (past it: `503`).
    #[arg(long, env = "SKILL_POOL_GIT_MAX_CONCURRENT", default_value_t = 32, value_name = "N")]
    pub git_max_concurrent: usize,
    /// Most `git upload-pack` processes at once for one client address (past it: `429`).
    #[arg(long, env = "SKILL_POOL_GIT_MAX_PER_ADDRESS", default_value_t = 8, value_name = "N")]
    pub git_max_per_address: usize,
    /// A clone whose client takes no data for this long is stopped (git killed).
    #[arg(long, env = "SKILL_POOL_GIT_IDLE_TIMEOUT_SECS", default_value_t = 60, value_name = "SECS")]
    pub git_idle_timeout_secs: u64,
    /// A clone is stopped after this long in any case.
    #[arg(long, env = "SKILL_POOL_GIT_MAX_SECS", default_value_t = 600, value_name = "SECS")]
    pub git_max_secs: u64,
    /// Disk space for cached answers to first fetches (the pack of a `git clone`, kept per head
    /// commit under `<data-dir>/pack-cache` and replayed without running git); the least
    /// recently used go first. `0` turns the cache off.
    #[arg(long, env = "SKILL_POOL_GIT_PACK_CACHE_SIZE", default_value = "1GiB", value_parser = parse_size_or_zero, value_name = "SIZE")]
    pub git_pack_cache_size: u64,
    /// Failed authentications (wrong or revoked tokens) allowed per client address and minute;
    /// past it, `429` without checking the token. 0: no limit.
    #[arg(long, env = "SKILL_POOL_AUTH_FAILURES_PER_MIN", default_value_t = 30, value_name = "N")]
    pub auth_failures_per_min: u32,
    /// Addresses allowed to read `/metrics` without a token (comma-separated CIDRs).
    #[arg(long, env = "SKILL_POOL_METRICS_ALLOW", default_value = "127.0.0.0/8,::1/128", value_name = "CIDRS", value_parser = check_cidrs)]
    pub metrics_allow: String,
    /// A bearer token that may read `/metrics` from any address.
    #[arg(long, env = "SKILL_POOL_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Parses `64MiB`, `500KB`, `1G`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size: use e.g. 64MiB or 1048576"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`: use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

/// [`parse_size`], or `0` (off).
pub fn parse_size_or_zero(s: &str) -> Result<u64, String> {
    if s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(0);
    }
    parse_size(s)
}

/// Bounds on connections (see `listener`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: std::time::Duration,
    pub write_timeout: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_timeout: std::time::Duration::from_secs(30),
            write_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Bounds on `git upload-pack`.
#[derive(Debug, Clone, Copy)]
pub struct GitLimits {
    pub max_concurrent: usize,
    pub max_per_address: usize,
    pub stream: skill_pool_git::upload_pack::StreamLimits,
    /// Bytes of the pack cache on disk; 0: no pack cache.
    pub pack_cache_bytes: u64,
}

impl Default for GitLimits {
    fn default() -> Self {
        GitLimits {
            max_concurrent: 32,
            max_per_address: 8,
            stream: Default::default(),
            pack_cache_bytes: 1 << 30,
        }
    }
}

fn check_cidrs(s: &str) -> Result<String, String> {
    parse_cidrs(s).map(|_| s.to_string())
}

/// Parses `127.0.0.0/8,::1/128` (a bare address is a /32 or /128).
pub fn parse_cidrs(s: &str) -> Result<Vec<ipnet::IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{p}` is not an address or CIDR range"))
        })
        .collect()
}

/// The certificate chain and key of HTTPS (PEM files, read at start).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the server library needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Without a trailing slash.
    pub public_url: String,
    pub base_domain: Option<String>,
    /// HTTPS: the certificate chain and key files (PEM).
    pub tls: Option<TlsFiles>,
    pub default_tenant: Option<String>,
    pub bootstrap_tenant: String,
    pub rate_limit_per_min: u32,
    pub max_upload_bytes: u64,
    pub max_json_bytes: u64,
    /// Catalogue size and per-tenant quotas.
    pub tenant_limits: skill_pool_registry::limits::TenantLimits,
    /// Bound of the rendered-catalogue cache (bytes, all tenants).
    pub catalogue_cache_bytes: u64,
    pub limits: ConnectionLimits,
    pub git: GitLimits,
    pub auth_failures_per_min: u32,
    /// Who may read `/metrics`.
    pub metrics_allow: Vec<ipnet::IpNet>,
    pub metrics_token: Option<String>,
    pub mirror: skill_pool_registry::mirrors::MirrorSettings,
    /// The Redis job queue (`None`: jobs run in-process).
    pub redis_url: Option<String>,
    pub redis_prefix: String,
}

impl ServerConfig {
    pub fn from_args(args: &ServeArgs, bound: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir: args.storage.data_dir.clone(),
            database_url: args.storage.database_url(),
            public_url: args
                .public_url
                .clone()
                .unwrap_or_else(|| {
                    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
                    format!("{scheme}://{bound}")
                })
                .trim_end_matches('/')
                .to_string(),
            base_domain: args.base_domain.clone().map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            default_tenant: args.default_tenant.clone(),
            bootstrap_tenant: args.bootstrap_tenant.clone(),
            rate_limit_per_min: args.rate_limit_per_min,
            max_upload_bytes: args.max_upload_bytes,
            max_json_bytes: args.max_json_bytes,
            tenant_limits: skill_pool_registry::limits::TenantLimits {
                max_catalogue_bytes: args.max_catalogue_bytes,
                max_bytes: args.quota_bytes,
                max_plugins: args.quota_plugins,
                max_versions: args.quota_versions,
            },
            catalogue_cache_bytes: args.catalogue_cache_bytes,
            limits: ConnectionLimits {
                max_connections: args.max_connections.max(1),
                header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
                write_timeout: std::time::Duration::from_secs(args.write_timeout_secs.max(1)),
            },
            git: GitLimits {
                max_concurrent: args.git_max_concurrent.max(1),
                max_per_address: args.git_max_per_address.max(1),
                stream: skill_pool_git::upload_pack::StreamLimits {
                    idle: std::time::Duration::from_secs(args.git_idle_timeout_secs.max(1)),
                    total: std::time::Duration::from_secs(args.git_max_secs.max(1)),
                },
                pack_cache_bytes: args.git_pack_cache_size,
            },
            auth_failures_per_min: args.auth_failures_per_min,
            // Checked when the arguments are parsed (`check_cidrs`).
            metrics_allow: parse_cidrs(&args.metrics_allow).unwrap_or_default(),
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            redis_url: args.redis_url.clone().filter(|u| !u.is_empty()),
            redis_prefix: args.redis_prefix.clone(),
            mirror: skill_pool_registry::mirrors::MirrorSettings {
                allowed_hosts: args
                    .mirror_allowed_hosts
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect(),
                timeout: std::time::Duration::from_secs(args.mirror_timeout_secs.max(1)),
                max_bytes: args.mirror_max_bytes,
                tick: std::time::Duration::from_secs(args.mirror_tick_secs.max(1)),
                concurrency: args.mirror_concurrency.max(1),
            },
        }
    }

    /// Defaults for tests and embedding: SQLite under `data_dir`, public URL from the bound address.
    pub fn for_data_dir(data_dir: PathBuf, bound: SocketAddr) -> ServerConfig {
        ServerConfig {
            database_url: format!("sqlite://{}", data_dir.join("skill-pool.db").display()),
            data_dir,
            public_url: format!("http://{bound}"),
            base_domain: None,
            tls: None,
            default_tenant: None,
            bootstrap_tenant: "default".into(),
            rate_limit_per_min: 1200,
            max_upload_bytes: 64 << 20,
            max_json_bytes: 8 << 20,
            tenant_limits: Default::default(),
            catalogue_cache_bytes: skill_pool_registry::catalogue::DEFAULT_CACHE_BYTES,
            limits: ConnectionLimits::default(),
            git: GitLimits::default(),
            auth_failures_per_min: 30,
            metrics_allow: parse_cidrs("127.0.0.0/8,::1/128").unwrap_or_default(),
            metrics_token: None,
            mirror: Default::default(),
            redis_url: None,
            redis_prefix: "skill-pool".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("500KB"), Ok(500 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(super::parse_size_or_zero("0"), Ok(0));
        assert_eq!(super::parse_size_or_zero("0MiB"), Ok(0));
        assert_eq!(super::parse_size_or_zero("2GiB"), Ok(2 << 30));
    }
}
