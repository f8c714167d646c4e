//! The shared conformance suite on SQLite in test mode: every statement rendered with the
//! virtual clock (`clock::use_virtual_clock`), no virtual time set, so each reads the
//! database clock through the clock table's fallback. Proves the rendered SQL of every
//! operation is valid and behaves as the production SQL does.

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};
use tasque_sqlite::{SqliteConfig, SqliteStore};

/// A fresh in-memory database in test mode; namespaces share its single connection.
struct TestModeBackend(SqliteStore);

#[async_trait::async_trait]
impl Backend for TestModeBackend {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        assert!(tasque_sqlite::clock::virtual_clock_in_use());
        Arc::new(self.0.with_namespace(namespace).expect("namespace"))
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        let set = match what {
            Corruption::RetryStrategy => "retry = 'not json {'",
            Corruption::RunAt => "run_at = -1e300",
        };
        let sql = format!("UPDATE tasque_jobs SET {set} WHERE ns = ?1 AND id = ?2");
        let done = sqlx::query(&sql)
            .bind(namespace)
            .bind(job.0)
            .execute(self.0.pool())
            .await
            .expect("corrupt");
        assert_eq!(done.rows_affected(), 1);
    }
}

async fn test_mode() -> TestModeBackend {
    let store = SqliteStore::connect(SqliteConfig::memory().with_virtual_clock())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    TestModeBackend(store)
}

tasque_durable::conformance_tests!(test_mode);
