//! Upgrading a database made by the current release (0.1.0, schema version 5, built by its
//! Rust-coded migrations): `tests/fixtures/release-0.1.0.sql` is the `sqlite3 .dump` of a file
//! that release's `tasque` CLI migrated and enqueued four jobs into (available in `mail`,
//! available with priority 3 and idempotency key `k2`, scheduled an hour out (moved to 2099 in the
//! file, so that it does not come due), cancelled). The file-based migrations take it to this
//! build's version and lose nothing.

use serde_json::json;
use tasque_durable::{CompleteParams, JobFilter, JobId, JobState, Spawn, SpawnOptions, Store};
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
    let report = store.migrate().await.expect("migrate");
    assert_eq!((report.from, report.to), (5, SCHEMA_VERSION));
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 4);
    let states: Vec<JobState> = {
        let mut states = Vec::new();
        for id in 1..=4 {
            states.push(store.get_job(JobId(id)).await.unwrap().state);
        }
        states
    };
    use JobState::*;
    assert_eq!(states, [Available, Available, Scheduled, Cancelled]);
    let first = store.get_job(JobId(1)).await.unwrap();
    assert_eq!(
        (first.queue.as_str(), first.params),
        ("mail", json!({"to": "a@b.c"}))
    );
    // The upgraded database works: its jobs are claimed and completed, its idempotency keys hold.
    let claims = store
        .claim(tasque_durable::conformance::claim_of("default", 10))
        .await
        .unwrap();
    assert_eq!(
        claims.iter().map(|c| c.job_id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    store
        .complete(CompleteParams::new(claims[0].run_id, json!("done")))
        .await
        .unwrap();
    let again = Spawn::new("default", "send", json!({"n": 2}))
        .with_options(SpawnOptions::new().with_idempotency_key("k2"));
    let spawned = store.spawn(again).await.unwrap();
    assert_eq!((spawned.job_id, spawned.created), (JobId(2), false));
    let new = store
        .spawn(Spawn::new("default", "send", json!({"n": 5})))
        .await
        .unwrap();
    assert!(
        new.created && new.job_id.0 > 4,
        "a new job after the release's: {new:?}"
    );
    // Migrating again changes nothing.
    let report = store.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (SCHEMA_VERSION, SCHEMA_VERSION));
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
