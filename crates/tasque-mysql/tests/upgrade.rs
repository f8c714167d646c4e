//! Upgrading a database made by the current release (0.1.0, schema version 3):
//! `tests/fixtures/release-0.1.0.sql` is the `mysqldump` of the tables of namespace `fxrelease`
//! that release's `tasque` CLI migrated and enqueued four jobs into (available in `mail`,
//! available with priority 3 and idempotency key `k2`, scheduled an hour out (moved to 2099 in the
//! file, so that it does not come due), cancelled); the stored routines (for producers in other
//! languages) are not in the file. Loaded under a fresh table prefix, this build's migrations
//! take it to this build's version and lose nothing.

mod support;

use serde_json::json;
use sqlx::Connection;
use tasque_durable::{CompleteParams, JobFilter, JobId, JobState, Spawn, SpawnOptions, Store};
use tasque_mysql::SCHEMA_VERSION;

const RELEASE_0_1_0: &str = include_str!("fixtures/release-0.1.0.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_0_1_0_database_upgrades_without_losing_a_job() {
    if support::server().await.is_none() {
        return;
    }
    let fresh = support::Fresh::new("up");
    let stem = format!("{}main", fresh.prefix);
    // Its own connection: the dump changes session settings.
    let mut conn = sqlx::MySqlConnection::connect(&support::url())
        .await
        .unwrap();
    sqlx::raw_sql(&RELEASE_0_1_0.replace("tasque_fxrelease", &stem))
        .execute(&mut conn)
        .await
        .expect("load the release's database");
    conn.close().await.unwrap();
    let store = fresh.unmigrated("main").await;
    let report = store.migrate().await.expect("migrate");
    assert_eq!((report.from, report.to), (3, SCHEMA_VERSION));
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 4);
    let mut states = Vec::new();
    for id in 1..=4 {
        states.push(store.get_job(JobId(id)).await.unwrap().state);
    }
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
    let report = store.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (SCHEMA_VERSION, SCHEMA_VERSION));
}
