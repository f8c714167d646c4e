//! Enqueue from plain SQL (the schema's `spawn` function), transactional enqueue, migrations.

mod support;

use std::time::Duration;

use serde_json::json;
use sqlx::Row;
use tasque_durable::{Error, JobFilter, JobId, JobState, RetryStrategy, Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};

#[tokio::test]
async fn sql_spawn_applies_defaults_options_and_idempotency() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("s");
    let store = fresh.store("main").await;
    let call = format!(
        "SELECT * FROM \"{}\".spawn($1, $2, $3::jsonb, $4::jsonb)",
        store.schema()
    );

    let row = sqlx::query(&format!(
        "SELECT * FROM \"{}\".spawn('mail', 'send', '{{\"to\": \"a@b.c\"}}')",
        store.schema()
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let id: i64 = row.get("job_id");
    assert!(row.get::<bool, _>("created"));
    let job = store.get_job(JobId(id)).await.unwrap();
    assert_eq!(job.state, JobState::Available);
    assert_eq!(job.params, json!({"to": "a@b.c"}));
    assert_eq!(job.max_attempts, 20);
    assert_eq!(job.retry, RetryStrategy::default());
    assert_eq!(job.priority, 0);

    let options = json!({"priority": -1, "max_attempts": 3, "delay_ms": 60000,
        "retry": {"kind": "fixed", "delay": 500}, "headers": {"trace": "x"},
        "idempotency_key": "order-7"});
    let first = sqlx::query(&call)
        .bind("mail")
        .bind("send")
        .bind("{}")
        .bind(options.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    let again = sqlx::query(&call)
        .bind("mail")
        .bind("send")
        .bind("{}")
        .bind(options.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(first.get::<bool, _>("created"));
    assert!(!again.get::<bool, _>("created"));
    assert_eq!(first.get::<i64, _>("job_id"), again.get::<i64, _>("job_id"));
    let job = store.get_job(JobId(first.get("job_id"))).await.unwrap();
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!((job.priority, job.max_attempts), (-1, 3));
    assert_eq!(
        job.retry,
        RetryStrategy::Fixed {
            delay: Duration::from_millis(500)
        }
    );
    assert_eq!(job.headers, json!({"trace": "x"}));
    // The Rust API sees the key the SQL caller used: one implementation.
    let rust = store
        .spawn(
            Spawn::new("mail", "send", json!({}))
                .with_options(tasque_durable::SpawnOptions::new().with_idempotency_key("order-7")),
        )
        .await
        .unwrap();
    assert!(!rust.created);
    assert_eq!(rust.job_id, job.id);
}

#[tokio::test]
async fn sql_spawn_refuses_invalid_input_and_writes_nothing() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("s");
    let store = fresh.store("main").await;
    let call = format!(
        "SELECT * FROM \"{}\".spawn($1, $2, '{{}}', $3::jsonb)",
        store.schema()
    );
    let bad = [
        ("bad queue", "t", json!({})),
        ("q", "", json!({})),
        ("q", "t", json!({"max_attempts": 0})),
        ("q", "t", json!({"max_attempts": 1.5})),
        ("q", "t", json!({"delay_ms": 0})),
        ("q", "t", json!({"timeout_ms": -5})),
        (
            "q",
            "t",
            json!({"retry": {"kind": "exponential", "base": 1000, "factor": 0.5}}),
        ),
        (
            "q",
            "t",
            json!({"retry": {"kind": "exponential", "base": 1000, "factor": 2, "cap": 10}}),
        ),
        ("q", "t", json!({"retry": {"kind": "sometimes"}})),
        ("q", "t", json!({"headers": [1, 2]})),
        ("q", "t", json!({"idempotency_key": ""})),
        (
            "q",
            "t",
            json!({"run_at": "2030-01-01T00:00:00Z", "delay_ms": 5}),
        ),
        ("q", "t", json!({"colour": "blue"})),
    ];
    for (queue, task, options) in bad {
        let err = sqlx::query(&call)
            .bind(queue)
            .bind(task)
            .bind(options.to_string())
            .fetch_one(&pool)
            .await
            .expect_err(&format!("{queue:?} {task:?} {options} should be refused"));
        let db = err.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("22023"), "{options}: {db}");
    }
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    assert!(store.list_queues().await.unwrap().is_empty());
}

#[tokio::test]
async fn rolled_back_spawn_leaves_no_job_and_committed_one_is_worked() {
    if support::server().await.is_none() {
        return;
    }
    let fresh = support::Fresh::new("s");
    let store = fresh.store("main").await;
    let mut tx = store.pool().begin().await.unwrap();
    store
        .spawn_in_tx(&mut tx, Spawn::new("default", "echo", json!(1)))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);

    let mut tx = store.pool().begin().await.unwrap();
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

    let handlers = Handlers::new();
    handlers.learn("echo", |_ctx: JobContext, n: i64| async move {
        Ok::<_, std::io::Error>(n * 10)
    });
    let worker = Worker::builder(support::dyn_store(&store))
        .handlers(handlers)
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
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("s");
    let store = fresh.store("main").await;
    sqlx::query(&format!(
        "INSERT INTO \"{}\".migrations (version, name) VALUES (99, 'future')",
        store.schema()
    ))
    .execute(&pool)
    .await
    .unwrap();
    let refused = tasque_postgres::PostgresStore::connect(fresh.config("main")).await;
    assert!(
        matches!(
            refused,
            Err(Error::SchemaTooNew {
                found: 99,
                supported: tasque_postgres::SCHEMA_VERSION
            })
        ),
        "{refused:?}"
    );
    assert!(matches!(
        store.migrate().await,
        Err(Error::SchemaTooNew { .. })
    ));
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_once() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("s");
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(
            tasque_postgres::PostgresStore::connect(fresh.config("main"))
                .await
                .unwrap(),
        );
    }
    let results = futures_util::future::join_all(stores.iter().map(|s| s.migrate())).await;
    let _cleanup = fresh.store("main").await; // registers the schema for clean-up
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let versions: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".migrations",
        stores[0].schema()
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(versions, tasque_postgres::SCHEMA_VERSION);
}

/// The `unique` option of `spawn` and `spawn_batch`: a held slot returns the existing job to
/// SQL and to Rust alike; a bad `unique` document is refused (22023) naming the option and
/// agreeing with the Rust parser.
#[tokio::test]
async fn sql_spawn_unique_returns_the_holder_and_refuses_bad_documents() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("s");
    let store = fresh.store("main").await;
    let call = format!(
        "SELECT * FROM \"{}\".spawn('reports', 'build', '{{}}', $1::jsonb)",
        store.schema()
    );
    let options = json!({"unique": {"key": "report:7", "period_ms": 3600000}});
    let first = sqlx::query(&call)
        .bind(options.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    let again = sqlx::query(&call)
        .bind(options.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(first.get::<bool, _>("created"));
    assert!(!again.get::<bool, _>("created"));
    let id: i64 = first.get("job_id");
    assert_eq!(again.get::<i64, _>("job_id"), id);
    let info = store.get_job(JobId(id)).await.unwrap();
    assert_eq!(info.unique_key.as_deref(), Some("report:7"));
    // The Rust API finds the same slot.
    let unique =
        tasque_durable::unique::Uniqueness::key("report:7").period(Duration::from_secs(3600));
    let from_rust = store
        .spawn(
            Spawn::new("reports", "build", json!({}))
                .with_options(tasque_durable::SpawnOptions::new().with_unique(unique)),
        )
        .await
        .unwrap();
    assert_eq!((from_rust.created, from_rust.job_id), (false, JobId(id)));
    // A batch with a duplicate inside and one of the existing slot.
    let batch = format!(
        "SELECT * FROM \"{}\".spawn_batch(ARRAY['r','r','r'], ARRAY['b','b','b'], \
         ARRAY['{{}}','{{}}','{{}}']::jsonb[], $1::jsonb[])",
        store.schema()
    );
    let docs = vec![
        json!({"unique": {"key": "x"}}).to_string(),
        json!({"unique": {"key": "x"}}).to_string(),
        options.to_string(),
    ];
    let rows = sqlx::query(&batch)
        .bind(docs)
        .fetch_all(&pool)
        .await
        .unwrap();
    let created: Vec<bool> = rows.iter().map(|r| r.get("created")).collect();
    assert_eq!(created, vec![true, false, false]);
    assert_eq!(
        rows[1].get::<i64, _>("job_id"),
        rows[0].get::<i64, _>("job_id")
    );
    assert_eq!(rows[2].get::<i64, _>("job_id"), id);

    for (bad, option) in tasque_durable::conformance::documents::unique_refusal_cases() {
        let parsed = tasque_durable::validate::parse_options(&bad);
        assert!(
            matches!(&parsed, Err(Error::InvalidOption { option: o, .. }) if *o == option),
            "rust: {bad} gave {parsed:?}"
        );
        let refused = sqlx::query(&call)
            .bind(bad.to_string())
            .fetch_one(&pool)
            .await
            .expect_err("refused");
        let db = refused.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("22023"), "{bad}");
        assert!(
            db.message().contains(&format!("`{option}`")),
            "{bad}: {}",
            db.message()
        );
    }
    let states = json!({"unique": {"key": "k2", "states": ["AVAILABLE", "scheduled", "running", "sleeping", "waiting", "failed"]}});
    let parsed = tasque_durable::validate::parse_options(&states).unwrap();
    assert_eq!(parsed.unique.unwrap().states.mask(), 47);
    let row = sqlx::query(&call)
        .bind(states.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(row.get::<bool, _>("created"));
}
