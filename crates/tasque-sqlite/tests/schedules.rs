//! The shared schedule cases (periodic jobs and the leader lease) on SQLite: a fresh
//! temporary file per case.

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

async fn fresh() -> FileBackend {
    FileBackend(tempfile::tempdir().expect("temp dir"))
}

tasque_durable::schedule_conformance_tests!(fresh);
