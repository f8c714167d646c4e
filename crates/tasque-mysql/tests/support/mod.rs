//! Shared by the MySQL tests: the server URL, the CI rule, fresh table prefixes and clean-up.
//!
//! The server is `TASQUE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). Under
//! `CI=true` an unreachable server fails the test; elsewhere the test is skipped with a loud
//! message. Every case uses its own random table prefix; its tables are dropped when it ends.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasque_testkit::in_ci;

use sqlx::mysql::MySqlPoolOptions;
use sqlx::MySqlPool;
use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};
use tasque_mysql::{MySqlConfig, MySqlStore};

/// The server under test.
pub fn url() -> String {
    std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

/// A pool on the server, or `None` (after a loud message) when it is unreachable outside CI.
pub async fn server() -> Option<MySqlPool> {
    let connected = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url())
        .await;
    match connected {
        Ok(pool) => Some(pool),
        Err(error) if in_ci() => panic!("MySQL at {} is unreachable under CI: {error}", url()),
        Err(error) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: MySQL/MariaDB at {} is unreachable ({error}); \
                 set TASQUE_TEST_MYSQL_URL or run scripts/services !!!!!!!!\n",
                url()
            );
            None
        }
    }
}

/// A random table prefix, so cases never meet.
pub fn random_prefix(tag: &str) -> String {
    format!("tq{tag}{:08x}_", rand::random::<u32>())
}

/// A fresh set of namespaces under one random prefix; drops their tables when dropped.
pub struct Fresh {
    pub prefix: String,
    stores: Arc<Mutex<Vec<MySqlStore>>>,
}

impl Fresh {
    /// A new prefix (nothing is created until a store is opened).
    pub fn new(tag: &str) -> Self {
        Fresh {
            prefix: random_prefix(tag),
            stores: Arc::default(),
        }
    }

    /// The configuration of `namespace` under this prefix.
    pub fn config(&self, namespace: &str) -> MySqlConfig {
        MySqlConfig::new(url())
            .with_table_prefix(self.prefix.clone())
            .with_namespace(namespace)
    }

    /// A migrated store in `namespace`.
    pub async fn store(&self, namespace: &str) -> MySqlStore {
        self.store_with(self.config(namespace)).await
    }

    /// A store in `namespace`, not migrated (its tables are dropped at the end all the same).
    pub async fn unmigrated(&self, namespace: &str) -> MySqlStore {
        let store = MySqlStore::connect(self.config(namespace))
            .await
            .expect("connect");
        self.stores.lock().unwrap().push(store.clone());
        store
    }

    /// Makes job `job` of `namespace` undecodable with raw SQL: a retry strategy that is not
    /// JSON, or a zero-date run time (stored with a permissive `sql_mode`; still due).
    pub async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        let store = self.store(namespace).await;
        let set = match what {
            Corruption::RetryStrategy => "retry = 'not json {'",
            Corruption::RunAt => "run_at = '0000-00-00 00:00:00'",
        };
        let sql = format!(
            "UPDATE `{}_jobs` SET {set} WHERE id = ?",
            store.table_stem()
        );
        let mut conn = store.pool().acquire().await.expect("connection");
        sqlx::query("SET SESSION sql_mode = ''")
            .execute(&mut *conn)
            .await
            .expect("sql_mode");
        let done = sqlx::query(&sql)
            .bind(job.0)
            .execute(&mut *conn)
            .await
            .expect("corrupt");
        assert_eq!(done.rows_affected(), 1);
        // The connection goes back to the pool with its session changed: close it instead.
        conn.detach();
    }

    /// A migrated store as configured (the config should come from [`Fresh::config`]).
    pub async fn store_with(&self, config: MySqlConfig) -> MySqlStore {
        let store = MySqlStore::connect(config).await.expect("connect");
        self.stores.lock().unwrap().push(store.clone());
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let stores = std::mem::take(&mut *self.stores.lock().unwrap());
        if stores.is_empty() {
            return;
        }
        // Drop runs inside the test's runtime: clean up on a thread with its own.
        let cleaner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                for store in stores {
                    let config = MySqlConfig::new(url())
                        .with_max_connections(1)
                        .with_table_prefix(prefix_of(&store))
                        .with_namespace(store.namespace());
                    let Ok(own) = MySqlStore::connect(config).await else {
                        continue;
                    };
                    if let Err(error) = own.drop_tables().await {
                        eprintln!("could not drop test tables {}: {error}", own.table_stem());
                    }
                    own.close().await;
                }
            });
        });
        let _ = cleaner.join();
    }
}

/// The table prefix of a store opened by [`Fresh`] (its stem minus the namespace).
fn prefix_of(store: &MySqlStore) -> String {
    let stem = store.table_stem();
    stem[..stem.len() - store.namespace().len()].to_string()
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
pub fn dyn_store(store: &MySqlStore) -> Arc<dyn Store> {
    Arc::new(store.clone())
}
