//! The shared conformance suite on SQLite: a fresh temporary file per case, and the same cases
//! on the in-memory mode.

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};
use tasque_sqlite::{SqliteConfig, SqliteStore};

/// Makes a job undecodable with raw SQL: a retry strategy that is not JSON, or a run time far
/// out of range (a REAL where integer milliseconds belong), still due.
async fn corrupt(pool: &sqlx::SqlitePool, namespace: &str, job: JobId, what: Corruption) {
    let set = match what {
        Corruption::RetryStrategy => "retry = 'not json {'",
        Corruption::RunAt => "run_at = -1e300",
    };
    let sql = format!("UPDATE tasque_jobs SET {set} WHERE ns = ?1 AND id = ?2");
    let done = sqlx::query(&sql)
        .bind(namespace)
        .bind(job.0)
        .execute(pool)
        .await
        .expect("corrupt");
    assert_eq!(done.rows_affected(), 1);
}

/// A fresh database file in its own temporary directory.
struct FileBackend(tempfile::TempDir);

#[async_trait::async_trait]
impl Backend for FileBackend {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        Arc::new(self.store(namespace).await)
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        let store = self.store(namespace).await;
        corrupt(store.pool(), namespace, job, what).await;
        store.close().await;
    }
}

impl FileBackend {
    async fn store(&self, namespace: &str) -> SqliteStore {
        let config = SqliteConfig::file(self.0.path().join("tasque.db")).with_namespace(namespace);
        let store = SqliteStore::connect(config).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }
}

async fn file() -> FileBackend {
    FileBackend(tempfile::tempdir().expect("temp dir"))
}

/// A fresh in-memory database; namespaces share its single connection.
struct MemoryBackend(SqliteStore);

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        Arc::new(self.0.with_namespace(namespace).expect("namespace"))
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        corrupt(self.0.pool(), namespace, job, what).await;
    }
}

async fn memory() -> MemoryBackend {
    let store = SqliteStore::memory().await.expect("open");
    store.migrate().await.expect("migrate");
    MemoryBackend(store)
}

tasque_durable::conformance_tests!(file);

mod in_memory {
    use super::memory;

    tasque_durable::conformance_tests!(memory);
}
