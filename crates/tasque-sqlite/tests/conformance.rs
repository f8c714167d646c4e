//! The shared conformance suite on SQLite: a fresh temporary file per case, and the same cases
//! on the in-memory mode.

use std::sync::Arc;

use tasque_durable::conformance::Backend;
use tasque_durable::Store;
use tasque_sqlite::{SqliteConfig, SqliteStore};

/// A fresh database file in its own temporary directory.
struct FileBackend(tempfile::TempDir);

#[async_trait::async_trait]
impl Backend for FileBackend {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        let config = SqliteConfig::file(self.0.path().join("tasque.db")).with_namespace(namespace);
        let store = SqliteStore::connect(config).await.expect("open");
        store.migrate().await.expect("migrate");
        Arc::new(store)
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
