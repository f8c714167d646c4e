//! Transactional enqueue (SPEC Part 2, spawn row: "a job exists iff the caller's transaction
//! commits") and exact JSON round trips (params, headers, results, failure reasons,
//! checkpoints, event payloads: big integers, unicode, nested objects).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, ClaimParams, CompleteParams, JobFilter, JobState, PollOrder,
    RetryStrategy, RunAt, SetCheckpoint, Spawn, SpawnOptions, Store,
};
use tasque_worker::{Handlers, JobContext, Worker};

#[tokio::test]
async fn rolled_back_spawn_leaves_no_job_and_committed_one_is_worked() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("t");
    let store = fresh.store("main").await;
    // The caller's own table, written in the same transaction as the jobs.
    let orders = format!("{}orders", fresh.prefix);
    sqlx::query(&format!(
        "CREATE TABLE `{orders}` (id BIGINT AUTO_INCREMENT PRIMARY KEY, total INT NOT NULL) \
         ENGINE=InnoDB"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let insert_order = format!("INSERT INTO `{orders}` (total) VALUES (42)");
    let count_orders = format!("SELECT COUNT(*) FROM `{orders}`");

    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(&insert_order).execute(&mut *tx).await.unwrap();
    store
        .spawn_in_tx(&mut tx, Spawn::new("default", "echo", json!(1)))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    let n: i64 = sqlx::query_scalar(&count_orders)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // A transaction on the caller's own pool, not the store's.
    let mut tx = admin.begin().await.unwrap();
    sqlx::query(&insert_order).execute(&mut *tx).await.unwrap();
    let spawned = store
        .spawn_many_in_tx(
            &mut tx,
            vec![
                Spawn::new("default", "echo", json!(2)),
                Spawn::new("default", "echo", json!(3)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.count(JobFilter::all()).await.unwrap(),
        0,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar(&count_orders)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(n, 1);

    let handlers = Handlers::new();
    handlers.learn("echo", |_ctx: JobContext, n: i64| async move {
        Ok::<_, std::io::Error>(n * 10)
    });
    let worker = Worker::builder(support::dyn_store(&store))
        .handlers(handlers)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .unwrap();
    assert!(
        worker
            .wait_until_empty(false, Duration::from_secs(20))
            .await
    );
    worker.shutdown(Duration::from_secs(5)).await;
    for (result, n) in spawned.iter().zip([20, 30]) {
        let got = store.get_result(result.job_id).await.unwrap();
        assert_eq!(
            (got.state, got.result),
            (JobState::Completed, Some(json!(n)))
        );
    }
    sqlx::query(&format!("DROP TABLE `{orders}`"))
        .execute(&admin)
        .await
        .unwrap();
}

/// A value that JSON-normalising storage would change: integers beyond 2^53 and 64 bits,
/// floats, unicode of every plane, escapes, deep nesting, key order.
fn tricky(tag: &str) -> Value {
    let text = r#"{"z": 1, "a": [18446744073709551615, -9223372036854775808, 9007199254740993,
        0.1, -2.5, 1.5e300, 0, -0, 1e-7], "unicode": "héllo wörld ✓ 日本語 עברית 🦀 \u0000 \t \" \\",
        "nested": {"deeper": {"deepest": [[], {}, [null, true, false, {"k": "v"}]]}},
        "big": 123456789012345678901234567890, "tag": "TAG"}"#;
    serde_json::from_str(&text.replace("TAG", tag)).unwrap()
}

#[tokio::test]
async fn json_round_trips_exactly() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("t");
    let store = fresh.store("main").await;
    let options = SpawnOptions::new()
        .with_headers(tricky("headers"))
        .with_retry(RetryStrategy::None)
        .with_max_attempts(2);
    let spawned = store
        .spawn(Spawn::new("default", "work", tricky("params")).with_options(options))
        .await
        .unwrap();

    // Stored verbatim: the column holds exactly what serde_json wrote.
    let raw: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT params FROM `{}_jobs` WHERE id = ?",
        store.table_stem()
    ))
    .bind(spawned.job_id.0)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        serde_json::to_string(&tricky("params")).unwrap()
    );

    let claim = |limit| ClaimParams {
        queues: vec!["default".into()],
        limit,
        lease: Duration::from_secs(60),
        worker_id: "json-test".into(),
        order: PollOrder::PriorityThenAge,
    };
    let first = store.claim(claim(1)).await.unwrap().remove(0);
    assert_eq!(first.params, tricky("params"));
    assert_eq!(first.headers, tricky("headers"));
    store
        .set_checkpoint(SetCheckpoint {
            run: first.run_id,
            name: "step ✓ 🦀".into(),
            value: tricky("checkpoint"),
            extend_lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    store
        .fail_with_retry_at(first.run_id, tricky("reason"), RunAt::Now)
        .await
        .unwrap();

    store.emit_event("ready", tricky("event")).await.unwrap();
    let second = store.claim(claim(1)).await.unwrap().remove(0);
    let got = store
        .await_event(AwaitEvent {
            run: second.run_id,
            name: "ready".into(),
            timeout: None,
        })
        .await
        .unwrap();
    assert_eq!(got, AwaitOutcome::Received(tricky("event")));
    store
        .complete(CompleteParams::new(second.run_id, tricky("result")))
        .await
        .unwrap();

    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.params, tricky("params"));
    assert_eq!(info.headers, tricky("headers"));
    assert_eq!(info.result, Some(tricky("result")));
    assert_eq!(info.errors.len(), 1);
    assert_eq!(info.errors[0].reason, tricky("reason"));
    let checkpoints = store.get_checkpoints(spawned.job_id).await.unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].name, "step ✓ 🦀");
    assert_eq!(checkpoints[0].value, tricky("checkpoint"));
}
