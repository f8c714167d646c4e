//! Durable workflows through the worker on SQLite (a fresh file per case): the shared cases of
//! `support/workflow_cases.rs`.

#[macro_use]
#[path = "support/workflow_cases.rs"]
mod workflow_cases;

use std::sync::Arc;

use tasque_durable::Store;
use tasque_sqlite::SqliteStore;

/// A migrated store on a fresh file, and the directory that keeps it.
async fn fresh() -> Option<(tempfile::TempDir, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("jobs.db")).await.unwrap();
    store.migrate().await.unwrap();
    Some((dir, Arc::new(store)))
}

workflow_cases!(fresh());
