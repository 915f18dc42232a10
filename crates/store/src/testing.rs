//! Test fixtures: a fresh database per test, on SQLite and on PostgreSQL.
//!
//! PostgreSQL tests read `SKILL_POOL_TEST_POSTGRES_URL`; without it they skip with a printed
//! reason, except under `CI=true`, where a missing database fails the run.

use std::path::Path;

use crate::{BlobStore, Store, StoreOptions};

/// A database of its own for one test, with a temporary data directory (blobs, repos).
pub struct TestDb {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    drop_pg: Option<(String, String)>,
}

/// Whether this run must not skip tests that need a service.
pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// `SKILL_POOL_TEST_POSTGRES_URL`, or `None` after printing why the test is skipped (panics under CI).
pub fn postgres_url() -> Option<String> {
    match std::env::var("SKILL_POOL_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if ci() => panic!("CI=true requires SKILL_POOL_TEST_POSTGRES_URL (PostgreSQL) for the storage tests"),
        _ => {
            eprintln!("skipping: SKILL_POOL_TEST_POSTGRES_URL is not set, PostgreSQL tests do not run");
            None
        }
    }
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", data_dir.path().join("skill-pool.db").display());
        TestDb {
            url,
            data_dir,
            drop_pg: None,
        }
    }

    /// A new database on the test PostgreSQL server, dropped when this value is dropped.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_url()?;
        let name = format!("sp_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::any::install_default_drivers();
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {}: {e}", crate::redact_url(&admin_url)));
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = sqlx::Connection::close(admin).await;
        let url = replace_database(&admin_url, &name);
        Some(TestDb {
            url,
            data_dir: tempfile::tempdir().expect("temp dir"),
            drop_pg: Some((admin_url, name)),
        })
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    /// A connected and migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(
            &self.url,
            BlobStore::new(self.data_dir.path().join("blobs")),
            &StoreOptions::default(),
        )
        .await
        .expect("connect test store");
        store.migrate().await.expect("migrate test store");
        store
    }
}

impl TestDb {
    /// Every row of every table, as text (`table: row` lines), to assert what is *not* stored.
    pub async fn dump_all_rows(&self) -> String {
        let store = self.store().await;
        let pool = store.pool();
        let backend = store.backend();
        let tables: Vec<String> = match backend {
            crate::Backend::Sqlite => {
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .fetch_all(pool)
                    .await
            }
            crate::Backend::Postgres => {
                sqlx::query_scalar("SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = current_schema()")
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("list tables");
        let mut out = String::new();
        for table in tables {
            let sql = match backend {
                crate::Backend::Sqlite => {
                    let columns: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .expect("columns");
                    let quoted: Vec<String> = columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
                    format!("SELECT {} FROM \"{table}\"", quoted.join(" || ',' || "))
                }
                crate::Backend::Postgres => format!("SELECT CAST(row_to_json(t) AS TEXT) FROM \"{table}\" t"),
            };
            let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.expect("rows");
            for row in rows {
                out.push_str(&format!("{table}: {row}\n"));
            }
            out.push_str(&format!("{table}\n"));
        }
        store.close().await;
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.drop_pg.take() {
            // Drop runs outside async context (and maybe while panicking): use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async move {
                    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await.ok()?;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::Executor::execute(&mut admin, sql.as_str()).await.ok()
                })
            })
            .join();
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs one async test body on SQLite and on PostgreSQL:
/// `both_backends!(name, |db: TestDb| async move { … });`
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::testing::TestDb::sqlite();
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::testing::TestDb::postgres().await {
                    ($body)(db).await;
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(replace_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            replace_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
