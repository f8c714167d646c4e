//! Upgrading a database made by the current release (0.1.0, schema version 5, built by its Rust-
//! coded migrations): `tests/fixtures/release-0.1.0.sql` is the `sqlite3 .dump` of a file that
//! release's `tasque` CLI migrated and enqueued four jobs into (see `tasque_testkit::upgrade`). The
//! file-based migrations take it to this build's version and lose nothing.

use tasque_durable::Store;
use tasque_sqlite::{SqliteConfig, SqliteStore, SCHEMA_VERSION};

const RELEASE_0_1_0: &str = include_str!("fixtures/release-0.1.0.sql");

/// A file holding the release's database, and the store on it.
async fn released() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::connect(SqliteConfig::file(&path))
        .await
        .expect("open an empty file");
    sqlx::raw_sql(RELEASE_0_1_0)
        .execute(store.pool())
        .await
        .expect("load the release's database");
    store.close().await;
    let store = SqliteStore::connect(SqliteConfig::file(&path))
        .await
        .expect("open the release's database");
    (dir, store)
}

#[tokio::test]
async fn a_release_0_1_0_database_upgrades_without_losing_a_job() {
    let (_dir, store) = released().await;
    tasque_testkit::upgrade::release_0_1_0_jobs_survive_the_upgrade(&store, 5, SCHEMA_VERSION)
        .await;
}

#[tokio::test]
async fn a_fresh_database_gets_every_migration_file() {
    let store = SqliteStore::memory().await.unwrap();
    let report = store.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM tasque_migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}
