//! SQLite-specific behaviour: schema versions, several "processes" (independent pools) on one
//! file, the pragmas in force, and the in-memory mode.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tasque_durable::{
    ClaimParams, CompleteParams, Error, JobFilter, PollOrder, Spawn, SpawnOptions, Store,
};
use tasque_sqlite::{SqliteConfig, SqliteStore, SCHEMA_VERSION};

fn claim_params(worker: usize, limit: u32) -> ClaimParams {
    ClaimParams {
        queues: vec!["default".into()],
        limit,
        lease: Duration::from_secs(60),
        worker_id: format!("w{worker}"),
        order: PollOrder::PriorityThenAge,
    }
}

#[tokio::test]
async fn database_at_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let report = store.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    sqlx::query(
        "INSERT INTO tasque_migrations (version, name, applied_at) VALUES (?1, 'future', 0)",
    )
    .bind(SCHEMA_VERSION + 1)
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
}

#[tokio::test]
async fn file_mode_uses_wal_and_normal_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db")).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 1));
}

#[tokio::test]
async fn bad_namespace_is_refused() {
    let err = SqliteStore::connect(SqliteConfig::memory().with_namespace("a b"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidName {
                kind: "namespace",
                ..
            }
        ),
        "{err}"
    );
}

/// Independent pools on one file stand in for worker processes: each job is claimed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_pools_on_one_file_never_share_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = SqliteStore::open(&path).await.unwrap();
    first.migrate().await.unwrap();
    let total = 300;
    let batch = (0..total)
        .map(|n| Spawn::new("default", "work", json!(n)))
        .collect();
    first.spawn_many(batch).await.unwrap();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let path = path.clone();
        workers.spawn(async move {
            let store = SqliteStore::connect(SqliteConfig::file(path).with_max_connections(2))
                .await
                .unwrap();
            let mut mine = Vec::new();
            loop {
                let claims = store.claim(claim_params(w, 10)).await.unwrap();
                if claims.is_empty() {
                    return mine;
                }
                let items = claims
                    .iter()
                    .map(|c| CompleteParams::new(c.run_id, json!("ok")))
                    .collect();
                store.complete_many(items).await.unwrap();
                mine.extend(claims.into_iter().map(|c| c.job_id));
            }
        });
    }
    let mut seen = HashSet::new();
    while let Some(mine) = workers.join_next().await {
        for id in mine.unwrap() {
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), total);
    let completed = first
        .count(JobFilter::all().states([tasque_durable::JobState::Completed]))
        .await
        .unwrap();
    assert_eq!(completed, total as u64);
}

#[tokio::test]
async fn in_memory_stores_are_private() {
    let a = SqliteStore::memory().await.unwrap();
    let b = SqliteStore::memory().await.unwrap();
    a.migrate().await.unwrap();
    b.migrate().await.unwrap();
    a.spawn(Spawn::new("default", "work", json!(1)))
        .await
        .unwrap();
    assert_eq!(b.count(JobFilter::all()).await.unwrap(), 0);
    assert_eq!(a.count(JobFilter::all()).await.unwrap(), 1);
}

#[tokio::test]
async fn spawn_many_across_chunks_keeps_input_order_and_resolves_keys() {
    let store = SqliteStore::memory().await.unwrap();
    store.migrate().await.unwrap();
    let keyed = |n: i64, key: &str| {
        Spawn::new("q", "t", serde_json::json!(n))
            .with_options(SpawnOptions::new().with_idempotency_key(key))
    };
    let existing = store.spawn(keyed(-1, "taken")).await.unwrap();
    // 2,500 jobs: three insert chunks; keys taken before the batch, earlier in
    // the batch, and in an earlier chunk of the batch.
    let mut batch: Vec<Spawn> = (0..2500)
        .map(|n| Spawn::new("q", "t", serde_json::json!(n)))
        .collect();
    batch[10] = keyed(10, "taken");
    batch[20] = keyed(20, "fresh");
    batch[30] = keyed(30, "fresh");
    batch[2400] = keyed(2400, "fresh");
    let results = store.spawn_many(batch).await.unwrap();
    assert_eq!(results.len(), 2500);
    assert_eq!(results[10].job_id, existing.job_id);
    assert!(!results[10].created);
    assert!(results[20].created);
    for dup in [30, 2400] {
        assert_eq!(results[dup].job_id, results[20].job_id);
        assert!(!results[dup].created);
    }
    for (n, result) in results.iter().enumerate() {
        if [10, 30, 2400].contains(&n) {
            continue;
        }
        assert!(result.created, "job {n}");
        let info = store.get_job(result.job_id).await.unwrap();
        assert_eq!(
            info.params,
            serde_json::json!(n),
            "job {n} got another job's id"
        );
    }
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 2500 - 3 + 1);
}
