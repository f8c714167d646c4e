//! Shared by the dashboard's tests: stores on every engine, an HTTP client over the router
//! (no socket), and a fixture of jobs in every interesting state.
//!
//! Server engines come from `TASQUE_TEST_POSTGRES_URL` / `TASQUE_TEST_MYSQL_URL` (defaults in
//! SPEC). Under `CI=true` an unreachable server fails the test; elsewhere it is skipped loudly.

#![allow(dead_code)]

pub mod fixture;
pub mod http;
pub mod suite;

use std::sync::Arc;
use std::time::Duration;
use tasque_testkit::in_ci;

use tasque_durable::Store;

fn unreachable(engine: &str, url: &str, error: impl std::fmt::Display) -> Option<Engine> {
    if in_ci() {
        panic!("{engine} at {url} is unreachable under CI: {error}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {engine} at {url} is unreachable ({error}); run scripts/services !!!!!!!!\n");
    None
}

/// A migrated store and what cleans it up.
pub struct Engine {
    pub store: Arc<dyn Store>,
    cleanup: Option<Box<dyn FnOnce() -> futures_cleanup::Cleanup + Send>>,
}

pub mod futures_cleanup {
    /// A clean-up future.
    pub type Cleanup = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

impl Engine {
    /// Drops the engine's tables or schema.
    pub async fn finish(mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup().await;
        }
    }
}

/// A random name suffix, so cases never meet.
pub fn tag() -> String {
    format!("{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ (std::process::id() << 8) ^ uuid::Uuid::new_v4().as_u128() as u32
}

/// A fresh in-memory SQLite store.
pub async fn sqlite() -> Option<Engine> {
    let store = tasque_sqlite::SqliteStore::memory().await.expect("sqlite");
    store.migrate().await.expect("migrate");
    Some(Engine {
        store: Arc::new(store),
        cleanup: None,
    })
}

/// A fresh PostgreSQL namespace (its own schema, dropped by [`Engine::finish`]).
pub async fn postgres() -> Option<Engine> {
    let url = std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let config = tasque_postgres::PostgresConfig::new(url.clone())
        .with_schema_prefix(format!("tqweb{}_", tag()))
        .with_namespace("web")
        .with_acquire_timeout(Duration::from_secs(10));
    let store = match tasque_postgres::PostgresStore::connect(config).await {
        Ok(store) => store,
        Err(error) => return unreachable("PostgreSQL", &url, error),
    };
    store.migrate().await.expect("migrate");
    let dropper = store.clone();
    Some(Engine {
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            Box::pin(async move {
                let _ = dropper.drop_schema().await;
                dropper.close().await;
            })
        })),
    })
}

/// A fresh MySQL/MariaDB namespace (its own tables, dropped by [`Engine::finish`]).
pub async fn mysql() -> Option<Engine> {
    let url = std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string());
    let config = tasque_mysql::MySqlConfig::new(url.clone())
        .with_table_prefix(format!("tqweb{}_", tag()))
        .with_namespace("web")
        .with_acquire_timeout(Duration::from_secs(10));
    let store = match tasque_mysql::MySqlStore::connect(config).await {
        Ok(store) => store,
        Err(error) => return unreachable("MariaDB", &url, error),
    };
    store.migrate().await.expect("migrate");
    let dropper = store.clone();
    Some(Engine {
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            Box::pin(async move {
                let _ = dropper.drop_tables().await;
                dropper.close().await;
            })
        })),
    })
}
