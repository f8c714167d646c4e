//! A worker meets undecodable rows on SQLite (a fresh file per case): the shared cases of
//! `support/undecodable_cases.rs`.

#[macro_use]
#[path = "support/undecodable_cases.rs"]
mod undecodable_cases;

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};
use tasque_sqlite::SqliteStore;

/// A migrated database file (in a directory removed with it); every namespace opens on it.
struct File {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

#[async_trait::async_trait]
impl Backend for File {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        Arc::new(self.store.with_namespace(namespace).expect("namespace"))
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
            .execute(self.store.pool())
            .await
            .expect("corrupt");
        assert_eq!(done.rows_affected(), 1);
    }
}

async fn fresh() -> Option<File> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("jobs.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    Some(File { _dir: dir, store })
}

undecodable_cases!(fresh());
