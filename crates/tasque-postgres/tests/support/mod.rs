//! Shared by the PostgreSQL tests: the server URL, the CI rule, fresh schemas and clean-up.
//!
//! The server is `TASQUE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Under `CI=true` an unreachable server fails the test; elsewhere the test is skipped with a
//! loud message. Every case uses its own random schema prefix, dropped when it ends.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasque_testkit::in_ci;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};

/// The server under test.
pub fn url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A pool on the server, or `None` (after a loud message) when it is unreachable outside CI.
pub async fn server() -> Option<PgPool> {
    let connected = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url())
        .await;
    match connected {
        Ok(pool) => Some(pool),
        Err(error) if in_ci() => panic!("PostgreSQL at {} is unreachable under CI: {error}", url()),
        Err(error) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: PostgreSQL at {} is unreachable ({error}); \
                 set TASQUE_TEST_POSTGRES_URL or run scripts/services !!!!!!!!\n",
                url()
            );
            None
        }
    }
}

/// A random schema prefix, so cases never meet.
pub fn random_prefix(tag: &str) -> String {
    format!("tq{tag}{:08x}_", rand::random::<u32>())
}

/// A fresh set of namespaces under one random prefix; drops their schemas when dropped.
pub struct Fresh {
    pub prefix: String,
    schemas: Arc<Mutex<Vec<String>>>,
}

impl Fresh {
    /// A new prefix (nothing is created until a store is opened).
    pub fn new(tag: &str) -> Self {
        Fresh {
            prefix: random_prefix(tag),
            schemas: Arc::default(),
        }
    }

    /// The configuration of `namespace` under this prefix.
    pub fn config(&self, namespace: &str) -> PostgresConfig {
        PostgresConfig::new(url())
            .with_schema_prefix(self.prefix.clone())
            .with_namespace(namespace)
    }

    /// A migrated store in `namespace`.
    pub async fn store(&self, namespace: &str) -> PostgresStore {
        self.store_with(self.config(namespace)).await
    }

    /// Makes job `job` of `namespace` undecodable with raw SQL: a retry strategy that is JSON
    /// but not a strategy, or a run time of `-infinity` (still due).
    pub async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        let store = self.store(namespace).await;
        let set = match what {
            Corruption::RetryStrategy => "retry = '\"garbage\"'::jsonb",
            Corruption::RunAt => "run_at = '-infinity'",
        };
        let sql = format!("UPDATE {}.jobs SET {set} WHERE id = $1", store.schema());
        let done = sqlx::query(&sql)
            .bind(job.0)
            .execute(store.pool())
            .await
            .expect("corrupt");
        assert_eq!(done.rows_affected(), 1);
        store.close().await;
    }

    /// A store in `namespace`, not migrated (its schema is dropped at the end all the same).
    pub async fn unmigrated(&self, namespace: &str) -> PostgresStore {
        let store = PostgresStore::connect(self.config(namespace))
            .await
            .expect("connect");
        self.schemas
            .lock()
            .unwrap()
            .push(store.schema().to_string());
        store
    }

    /// A migrated store as configured (the config should come from [`Fresh::config`]).
    pub async fn store_with(&self, config: PostgresConfig) -> PostgresStore {
        let store = PostgresStore::connect(config).await.expect("connect");
        self.schemas
            .lock()
            .unwrap()
            .push(store.schema().to_string());
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let mut schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        schemas.sort();
        schemas.dedup();
        if schemas.is_empty() {
            return;
        }
        // Drop runs inside the test's runtime: clean up on a thread with its own.
        let cleaner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let Ok(pool) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url())
                    .await
                else {
                    return;
                };
                for schema in schemas {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    if let Err(error) = pool.execute(sql.as_str()).await {
                        eprintln!("could not drop test schema {schema}: {error}");
                    }
                }
                pool.close().await;
            });
        });
        let _ = cleaner.join();
    }
}

/// The shared suites' backend: each namespace a migrated store under this prefix.
#[async_trait::async_trait]
impl Backend for Fresh {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        Arc::new(self.store(namespace).await)
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        Fresh::corrupt(self, namespace, job, what).await;
    }
}

/// The store as the trait object the worker and the suite take.
pub fn dyn_store(store: &PostgresStore) -> Arc<dyn Store> {
    Arc::new(store.clone())
}
