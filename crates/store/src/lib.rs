//! skill-pool persistence: one sqlx pool over SQLite (the embedded default) or PostgreSQL,
//! the migrations of both, one module per aggregate, and the content-addressed body store.
//!
//! Invariants: only this crate names sqlx; every tenant-owned query takes a [`TenantId`];
//! SQL is written once in the dialect both backends share (`$n` parameters, `RETURNING`),
//! with times as unix milliseconds and no booleans, so the `Any` driver maps every column.
//!
//! Each query is written once: reads as default methods of one `…Reads` trait per aggregate,
//! generic over [`Db`] (the pool, `&Store`, or a transaction, [`Tx`]), so the same function
//! serves a plain read and a read inside a write; writes as methods of [`Tx`]. Rows are
//! decoded with `sqlx::FromRow` into typed values (core's enums, [`TenantId`]); a value this
//! version does not know is [`StoreError::Corrupt`], never a default. `use
//! skill_pool_store::prelude::*` brings the read traits into scope.

#![allow(async_fn_in_trait)] // the read traits are used with the concrete `&Store` and `Tx` only

pub mod audit;
pub mod blobs;
pub mod installs;
pub mod mirrors;
pub mod pieces;
pub mod plugins;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod users;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Connection, Executor};

pub use blobs::BlobStore;

/// Database ids with a private field: only the store makes them (from rows it read or wrote),
/// so an id in a use case always comes from the store, never from a request body.
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// The number, for paths on disk and logs.
            pub fn get(self) -> i64 {
                self.0
            }

            /// Any id, for tests that probe rows of another tenant or that do not exist.
            #[cfg(any(test, feature = "testing"))]
            pub fn for_tests(id: i64) -> $name {
                $name(id)
            }
        }

        impl sqlx::Type<Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <i64 as sqlx::Type<Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <i64 as sqlx::Type<Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> std::result::Result<Self, sqlx::error::BoxDynError> {
                <i64 as sqlx::Decode<'r, Any>>::decode(value).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}

ids!(
    /// A tenant's id: from a routed tenant or an admin command that looked the tenant up.
    TenantId,
    /// A plugin's id.
    PluginId,
    /// A piece version's id (what plugin versions pin).
    PieceVersionId,
);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url `{0}`: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// A unique constraint refused the write: a concurrent writer won, or the row exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database was busy (SQLite lock) or a serialization failure happened: try again.
    #[error("database busy: {0}")]
    Busy(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("blob store: {0}")]
    Blob(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the operation may succeed when the transaction is run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Busy(_))
    }

    /// A write the storage refused for want of room or of write access, as the I/O error kind it
    /// amounts to: `StorageFull` (blob store ENOSPC/EDQUOT, SQLite `SQLITE_FULL`, PostgreSQL
    /// `disk_full`) or `ReadOnlyFilesystem`/`PermissionDenied` (a read-only data dir, SQLite
    /// `SQLITE_READONLY`, a read-only PostgreSQL). `None` for every other error.
    pub fn storage_fault(&self) -> Option<std::io::ErrorKind> {
        use std::io::ErrorKind as K;
        match self {
            StoreError::Blob(e) => storage_fault_kind(e.kind()),
            StoreError::Database(sqlx::Error::Io(e)) => storage_fault_kind(e.kind()),
            StoreError::Database(sqlx::Error::Database(db)) => {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                // PostgreSQL's SQLSTATE has five characters; SQLite's (extended) codes are shorter
                // numbers whose low byte is the primary code (SQLITE_READONLY_* = 8 + n·256).
                let sqlite_primary = (code.len() < 5).then(|| code.parse::<u32>().ok()).flatten().map(|c| c & 0xff);
                match (code.as_str(), sqlite_primary) {
                    ("53100", _) | (_, Some(13)) => Some(K::StorageFull),
                    ("25006", _) | (_, Some(8)) => Some(K::ReadOnlyFilesystem),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// The I/O error kinds that mean "the storage cannot take this write".
pub fn storage_fault_kind(kind: std::io::ErrorKind) -> Option<std::io::ErrorKind> {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied
    )
    .then_some(kind)
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.message().to_string());
            }
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED, 517 SQLITE_BUSY_SNAPSHOT;
            // PostgreSQL: 40001 serialization_failure, 40P01 deadlock_detected.
            if matches!(code.as_str(), "5" | "6" | "517" | "40001" | "40P01") || db.message().contains("database is locked") {
                return StoreError::Busy(db.message().to_string());
            }
        }
        if let sqlx::Error::ColumnDecode { index, source } = &e {
            return StoreError::Corrupt(format!("column {index}: {source}"));
        }
        if let sqlx::Error::PoolTimedOut = e {
            return StoreError::Busy("timed out waiting for a database connection".into());
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Pool settings; the defaults suit a small server.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The database and the body store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    blobs: BlobStore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// Connects (creating the SQLite file if needed) without migrating.
    pub async fn connect(url: &str, blobs: BlobStore, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let connect_options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time anyway; readers run in parallel under WAL.
                Backend::Sqlite => options.max_connections.min(8),
                Backend::Postgres => options.max_connections,
            })
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await?;
        Ok(Store { pool, backend, blobs })
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    /// Connections in use and idle, for `/metrics`.
    pub fn pool_stats(&self) -> (u32, u32) {
        let size = self.pool.size();
        let idle = self.pool.num_idle() as u32;
        (size.saturating_sub(idle), idle)
    }

    /// A transaction for reads that must see one consistent state.
    pub async fn read(&self) -> Result<Tx> {
        Ok(Tx {
            inner: self.pool.begin().await?,
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails half-way on a lock upgrade.
    pub async fn write(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { inner })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Where a query runs: the pool (`&Store`: each query on a connection of its own) or a
/// transaction (`Tx`: inside it, seeing its own writes).
pub trait Db: Send {
    /// The sqlx executor to run one query on.
    #[doc(hidden)]
    fn executor(&mut self) -> impl sqlx::Executor<'_, Database = Any>;
}

impl Db for &Store {
    fn executor(&mut self) -> impl sqlx::Executor<'_, Database = Any> {
        &self.pool
    }
}

impl Db for Store {
    fn executor(&mut self) -> impl sqlx::Executor<'_, Database = Any> {
        &self.pool
    }
}

impl Db for Tx {
    fn executor(&mut self) -> impl sqlx::Executor<'_, Database = Any> {
        &mut *self.inner
    }
}

/// The read traits, for `use skill_pool_store::prelude::*`.
pub mod prelude {
    pub use crate::Db;
    pub use crate::audit::AuditReads;
    pub use crate::blobs::BlobReads;
    pub use crate::installs::InstallReads;
    pub use crate::mirrors::MirrorReads;
    pub use crate::pieces::PieceReads;
    pub use crate::plugins::PluginReads;
    pub use crate::sessions::SessionReads;
    pub use crate::tenants::TenantReads;
    pub use crate::tokens::TokenReads;
    pub use crate::usage::UsageReads;
    pub use crate::users::UserReads;
}

/// A database transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 (UTC, millisecond precision) for a stored time.
/// The UTC day of a unix-millisecond time, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

/// The URL without its password, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_764_633_599_999), "2025-12-01");
        assert_eq!(utc_day(1_764_633_600_000), "2025-12-02");
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
