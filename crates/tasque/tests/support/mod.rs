//! Shared by the client tests: one store per engine, each in its own namespace, file, schema
//! or table set.
//!
//! Server engines are found through `TASQUE_TEST_POSTGRES_URL` and `TASQUE_TEST_MYSQL_URL`
//! (defaults in SPEC). Under `CI=true` an unreachable server fails the test; elsewhere the
//! case is skipped with a loud message.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;
use tasque_testkit::in_ci;

use tasque_durable::Store;
use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::SqliteStore;

/// Generous: the CI machine is loaded.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn postgres_url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub fn mysql_url() -> String {
    std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

/// `None` (after a loud message) for an unreachable server outside CI; a panic under CI.
fn reachable<T>(what: &str, url: &str, opened: tasque_durable::Result<T>) -> Option<T> {
    match opened {
        Ok(store) => Some(store),
        Err(error) if in_ci() => panic!("{what} at {url} is unreachable under CI: {error}"),
        Err(error) => {
            eprintln!("\n!!!!!!!! SKIPPED: {what} at {url} is unreachable ({error}) !!!!!!!!\n");
            None
        }
    }
}

fn tag() -> String {
    format!("tqc{:08x}", rand::random::<u32>())
}

/// A migrated in-memory SQLite store.
pub async fn sqlite_memory() -> SqliteStore {
    let store = SqliteStore::memory().await.expect("open memory");
    store.migrate().await.expect("migrate");
    store
}

/// A migrated SQLite store on a fresh file (kept alive by the returned directory).
pub async fn sqlite_file() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("client.db"))
        .await
        .expect("open file");
    store.migrate().await.expect("migrate");
    (store, dir)
}

/// A migrated PostgreSQL store under a random schema prefix; drop its schema with
/// [`drop_postgres`].
pub async fn postgres() -> Option<PostgresStore> {
    let config = PostgresConfig::new(postgres_url())
        .with_schema_prefix(format!("{}_", tag()))
        .with_namespace("client");
    let store = reachable(
        "PostgreSQL",
        &postgres_url(),
        PostgresStore::connect(config).await,
    )?;
    store.migrate().await.expect("migrate");
    Some(store)
}

pub async fn drop_postgres(store: &PostgresStore) {
    store.drop_schema().await.expect("drop schema");
    store.close().await;
}

/// A migrated MySQL/MariaDB store under a random table prefix; drop it with [`drop_mysql`].
pub async fn mysql() -> Option<MySqlStore> {
    let config = MySqlConfig::new(mysql_url())
        .with_table_prefix(format!("{}_", tag()))
        .with_namespace("client");
    let store = reachable("MySQL", &mysql_url(), MySqlStore::connect(config).await)?;
    store.migrate().await.expect("migrate");
    Some(store)
}

pub async fn drop_mysql(store: &MySqlStore) {
    store.drop_tables().await.expect("drop tables");
    store.close().await;
}

/// Runs `case` on every engine: SQLite in memory and on a file, PostgreSQL, MariaDB.
pub async fn on_every_engine<F, Fut>(case: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    case(Arc::new(sqlite_memory().await)).await;
    let (file, _dir) = sqlite_file().await;
    case(Arc::new(file)).await;
    if let Some(pg) = postgres().await {
        case(Arc::new(pg.clone())).await;
        drop_postgres(&pg).await;
    }
    if let Some(my) = mysql().await {
        case(Arc::new(my.clone())).await;
        drop_mysql(&my).await;
    }
}
