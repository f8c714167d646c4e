//! Upgrading a database made by the current release (0.1.0): every engine keeps a dump of one
//! under `tests/fixtures/release-0.1.0.sql`, made by that release's `tasque` CLI, which migrated
//! namespace `fxrelease` and enqueued four jobs into it: job 1 available in `mail` with params
//! `{"to": "a@b.c"}`; job 2 available in `default` with priority 3 and idempotency key `k2`;
//! job 3 scheduled (its run time moved to 2099 in the dump, so that it never comes due); job 4
//! cancelled. The engine's test loads the dump into a fresh database and hands its store here.

use std::time::Duration;

use serde_json::json;
use tasque_durable::{
    ClaimParams, CompleteParams, JobFilter, JobId, JobState, PollOrder, Spawn, SpawnOptions, Store,
};

/// Migrating the release's database takes it from `from` (the release's version) to `latest`
/// (this build's) and loses nothing: the four jobs keep their states and params, the available
/// one of `default` is claimed and completed, its idempotency key still holds, new jobs get new
/// ids, and migrating again changes nothing.
pub async fn release_0_1_0_jobs_survive_the_upgrade(store: &dyn Store, from: i64, latest: i64) {
    let report = store.migrate().await.expect("migrate");
    assert_eq!((report.from, report.to), (from, latest));
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
    let claim = ClaimParams {
        queues: vec!["default".to_string()],
        limit: 10,
        lease: Duration::from_secs(3600),
        worker_id: "upgrade-test".to_string(),
        order: PollOrder::PriorityThenAge,
    };
    let claims = store.claim(claim).await.unwrap();
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
    assert_eq!((report.from, report.to), (latest, latest));
}
