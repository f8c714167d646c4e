//! Durable workflows through the worker on SQLite (a fresh file per case): the test kit's
//! shared cases (`tasque_testkit::workflow`).

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

tasque_testkit::workflow_cases!(fresh());
