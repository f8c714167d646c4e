//! Issue 12: enqueue from plain SQL on MySQL/MariaDB, `CALL <stem>_spawn(queue, task,
//! params_json, options_json)`, with the contract of PostgreSQL's `spawn` function: one result
//! row (job_id, run_seq, attempt, created), idempotency keys, the validation of the Rust API
//! (refusals are SQLSTATE 22023 naming the option), and the caller's transaction.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use sqlx::mysql::MySqlRow;
use sqlx::{Column, Row};
use tasque_durable::conformance::documents::{
    option_document, option_document_cases, option_named_in, same_stored_options,
    unique_refusal_cases,
};
use tasque_durable::unique::Uniqueness;
use tasque_durable::validate::parse_options;
use tasque_durable::{Error, JobFilter, JobId, JobState, Spawn, SpawnOptions, Store};
use tasque_mysql::MySqlStore;
use tasque_worker::{Handlers, JobContext, Worker};

/// `CALL <stem>_spawn(?, ?, ?, ?)` for a store's namespace.
fn call(store: &MySqlStore) -> String {
    format!("CALL `{}_spawn`(?, ?, ?, ?)", store.table_stem())
}

/// Calls the procedure through `executor`; the one row it returns, or the refusal's message
/// (which must be SQLSTATE 22023).
async fn spawn<'e>(
    executor: impl sqlx::MySqlExecutor<'e>,
    store: &MySqlStore,
    queue: &str,
    params: Option<&str>,
    options: Option<&str>,
) -> Result<MySqlRow, String> {
    let sql = call(store);
    let done = sqlx::query(&sql)
        .bind(queue)
        .bind("work")
        .bind(params)
        .bind(options)
        .fetch_one(executor)
        .await;
    done.map_err(|err| {
        let db = err.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("22023"), "{db}");
        db.message().to_string()
    })
}

// (By position: sqlx prepares the CALL before the procedure has said what it returns, so the
// row's names are not indexed; other clients see job_id, run_seq, attempt, created.)
fn job_id(row: &MySqlRow) -> JobId {
    JobId(row.get(0))
}

fn created(row: &MySqlRow) -> bool {
    row.get::<i64, _>(3) != 0
}

#[tokio::test]
async fn a_job_spawned_by_call_is_claimed_and_run_by_a_worker() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let row = spawn(&pool, &store, "default", Some("21"), None)
        .await
        .unwrap();
    assert!(created(&row));
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["job_id", "run_seq", "attempt", "created"]);
    assert_eq!(row.get::<i64, _>(1), 1);
    assert_eq!(row.get::<i32, _>(2), 1);
    let id = job_id(&row);
    let job = store.get_job(id).await.unwrap();
    assert_eq!(job.state, JobState::Available);
    assert_eq!((job.max_attempts, job.priority), (20, 0));

    let handlers = Handlers::new();
    handlers.learn("work", |_ctx: JobContext, n: i64| async move {
        Ok::<_, std::io::Error>(n * 2)
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
    let done = store.get_result(id).await.unwrap();
    assert_eq!(
        (done.state, done.result),
        (JobState::Completed, Some(json!(42)))
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_existing_job_to_sql_and_rust() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let options = r#"{"idempotency_key": "order-7", "priority": -1}"#;
    let first = spawn(&pool, &store, "mail", Some("{}"), Some(options))
        .await
        .unwrap();
    let again = spawn(&pool, &store, "mail", Some("{}"), Some(options))
        .await
        .unwrap();
    assert!(created(&first));
    assert!(!created(&again));
    assert_eq!(job_id(&first), job_id(&again));
    let other_queue = spawn(&pool, &store, "sms", Some("{}"), Some(options))
        .await
        .unwrap();
    assert!(created(&other_queue));
    let rust = store
        .spawn(
            Spawn::new("mail", "work", json!({}))
                .with_options(SpawnOptions::new().with_idempotency_key("order-7")),
        )
        .await
        .unwrap();
    assert!(!rust.created);
    assert_eq!(rust.job_id, job_id(&first));
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 2);
}

/// The `unique` option, as PostgreSQL's `spawn` takes it: a held slot returns its holder to
/// SQL and to Rust alike (`created` 0); a finished holder outside the chosen states frees the
/// slot; a bad `unique` document is refused (22023) naming the option, as the Rust parser does.
#[tokio::test]
async fn a_unique_slot_returns_its_holder_to_sql_and_rust_and_bad_documents_are_refused() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let options = json!({"unique": {"key": "report:7", "period_ms": 3600000}}).to_string();
    let first = spawn(&pool, &store, "reports", Some("{}"), Some(&options))
        .await
        .unwrap();
    let again = spawn(&pool, &store, "reports", Some("{}"), Some(&options))
        .await
        .unwrap();
    assert!(created(&first));
    assert!(!created(&again));
    assert_eq!(job_id(&again), job_id(&first));
    assert_eq!(again.get::<i64, _>(1), 1);
    let info = store.get_job(job_id(&first)).await.unwrap();
    assert_eq!(info.unique_key.as_deref(), Some("report:7"));
    let unique = Uniqueness::key("report:7").period(Duration::from_secs(3600));
    let from_rust = store
        .spawn(
            Spawn::new("reports", "build", json!({}))
                .with_options(SpawnOptions::new().with_unique(unique)),
        )
        .await
        .unwrap();
    assert_eq!(
        (from_rust.created, from_rust.job_id),
        (false, job_id(&first))
    );
    // A slot made by Rust is found by SQL too, and states decide who holds it.
    let mask = json!({"unique": {"key": "k2", "states": ["AVAILABLE", "scheduled", "running",
        "sleeping", "waiting", "cancelled"]}})
    .to_string();
    let parsed = parse_options(&serde_json::from_str(&mask).unwrap()).unwrap();
    let rust = store
        .spawn(Spawn::new("q", "work", json!({})).with_options(parsed))
        .await
        .unwrap();
    let sql = spawn(&pool, &store, "q", Some("{}"), Some(&mask))
        .await
        .unwrap();
    assert_eq!((created(&sql), job_id(&sql)), (false, rust.job_id));
    store.cancel(rust.job_id).await.unwrap();
    let held = spawn(&pool, &store, "q", Some("{}"), Some(&mask))
        .await
        .unwrap();
    assert_eq!(
        (created(&held), job_id(&held)),
        (false, rust.job_id),
        "a cancelled job holds the slot when its states say so"
    );
    let plain = json!({"unique": {"key": "k3"}}).to_string();
    let one = spawn(&pool, &store, "q", Some("{}"), Some(&plain))
        .await
        .unwrap();
    store.cancel(job_id(&one)).await.unwrap();
    let two = spawn(&pool, &store, "q", Some("{}"), Some(&plain))
        .await
        .unwrap();
    assert!(created(&two) && job_id(&two) != job_id(&one));

    for (bad, option) in unique_refusal_cases() {
        let parsed = parse_options(&bad);
        assert!(
            matches!(&parsed, Err(Error::InvalidOption { option: o, .. }) if *o == option),
            "rust: {bad} gave {parsed:?}"
        );
        let message = spawn(&pool, &store, "q", Some("{}"), Some(&bad.to_string()))
            .await
            .expect_err("refused");
        assert!(message.contains(&format!("`{option}`")), "{bad}: {message}");
    }
}

#[tokio::test]
async fn every_refusal_class_is_22023_naming_the_option_and_writes_nothing() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let refusals = option_document_cases().into_iter().filter_map(|case| {
        case.refused
            .map(|option| (case.document.to_string(), option))
    });
    let others = [
        (r#"{"max_attempts": 3}"#.to_string(), "params"),
        ("not json".to_string(), "options"),
    ];
    for (document, option) in refusals.chain(others) {
        let params = if option == "params" {
            "{not json"
        } else {
            "{}"
        };
        let message = spawn(&pool, &store, "q", Some(params), Some(&document))
            .await
            .expect_err(&document);
        assert_eq!(
            option_named_in(&message).as_deref(),
            Some(option),
            "{document}: {message}"
        );
    }
    for (queue, task) in [
        ("bad queue", "work"),
        ("q", ""),
        (&*"q".repeat(129), "work"),
    ] {
        let message = sqlx::query(&call(&store))
            .bind(queue)
            .bind(task)
            .bind("{}")
            .bind("{}")
            .fetch_one(&pool)
            .await
            .unwrap_err();
        let db = message.as_database_error().unwrap();
        assert_eq!(db.code().as_deref(), Some("22023"), "{db}");
        let named = option_named_in(db.message());
        assert!(matches!(named.as_deref(), Some("queue" | "task")), "{db}");
    }
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    assert!(store.list_queues().await.unwrap().is_empty());
}

#[tokio::test]
async fn accepted_documents_store_what_the_rust_api_stores() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let accepted = option_document_cases()
        .into_iter()
        .filter(|case| case.refused.is_none());
    for (n, case) in accepted.enumerate() {
        let document = case.document.to_string();
        let row = spawn(
            &pool,
            &store,
            &format!("sql{n}"),
            Some("{}"),
            Some(&document),
        )
        .await
        .unwrap_or_else(|message| panic!("{document}: {message}"));
        let options = parse_options(&case.document).unwrap();
        let rust = store
            .spawn(Spawn::new(format!("rust{n}"), "work", json!({})).with_options(options.clone()))
            .await
            .unwrap();
        let from_sql = store.get_job(job_id(&row)).await.unwrap();
        let from_rust = store.get_job(rust.job_id).await.unwrap();
        if let Err(difference) = same_stored_options(&from_sql, &from_rust, &options) {
            panic!("{document}: {difference}");
        }
    }
    // Python's json writes floats as 3.0: integers all the same.
    let row = spawn(
        &pool,
        &store,
        "py",
        Some(r#"{"to": "a@b.c"}"#),
        Some(r#"{"max_attempts": 3.0, "timeout_ms": 30000.0, "delay_ms": 1000.0}"#),
    )
    .await
    .unwrap();
    let job = store.get_job(job_id(&row)).await.unwrap();
    assert_eq!(
        (job.max_attempts, job.timeout),
        (3, Some(Duration::from_secs(30)))
    );
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.params, json!({"to": "a@b.c"}));
}

#[tokio::test]
async fn a_spawn_in_a_transaction_rolled_back_leaves_nothing_not_even_its_queue() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    let mut tx = pool.begin().await.unwrap();
    let row = spawn(&mut *tx, &store, "fresh-queue", Some("1"), None)
        .await
        .unwrap();
    assert!(created(&row));
    tx.rollback().await.unwrap();
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    assert!(store.list_queues().await.unwrap().is_empty());

    let mut tx = pool.begin().await.unwrap();
    let row = spawn(&mut *tx, &store, "fresh-queue", Some("2"), None)
        .await
        .unwrap();
    assert_eq!(
        store.count(JobFilter::all()).await.unwrap(),
        0,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    let job = store.get_job(job_id(&row)).await.unwrap();
    assert_eq!((job.queue.as_str(), job.params), ("fresh-queue", json!(2)));
}

#[tokio::test]
async fn odd_namespaces_are_called_with_backquotes() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = fresh.store("my-App.v2:eu").await;
    assert!(store.table_stem().ends_with("my-App.v2:eu"));
    let row = spawn(&pool, &store, "default", Some(r#"{"n": 1}"#), Some("{}"))
        .await
        .unwrap();
    assert_eq!(
        store.get_job(job_id(&row)).await.unwrap().params,
        json!({"n": 1})
    );
}

/// Random option documents (valid, at the edges, wrong types, floats, huge numbers, bad
/// timestamps) get the same outcome from the procedure and from the Rust API's parser: both
/// refuse naming the same option (SQLSTATE 22023), or both accept and store the same options.
#[test]
fn the_procedure_and_the_rust_parser_agree_on_random_documents() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(pool) = runtime.block_on(support::server()) else {
        return;
    };
    let fresh = support::Fresh::new("r");
    let store = runtime.block_on(fresh.store("main"));
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let outcome = runner.run(&option_document(), |document| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(async {
            let text = document.to_string();
            let sql = spawn(&pool, &store, &format!("sql{n}"), Some("{}"), Some(&text)).await;
            match (parse_options(&document), sql) {
                (Err(rust), Err(message)) => {
                    let (ours, theirs) = (
                        option_named_in(&rust.to_string()),
                        option_named_in(&message),
                    );
                    prop_assert_eq!(ours, theirs, "{}: {} / {}", text, rust, message);
                }
                (Ok(options), Ok(row)) => {
                    let rust = store
                        .spawn(
                            Spawn::new(format!("rust{n}"), "work", json!({}))
                                .with_options(options.clone()),
                        )
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{text}: Rust spawn: {e}")))?;
                    let from_sql = store.get_job(job_id(&row)).await.expect("sql job");
                    let from_rust = store.get_job(rust.job_id).await.expect("rust job");
                    if let Err(difference) = same_stored_options(&from_sql, &from_rust, &options) {
                        return Err(TestCaseError::fail(format!("{text}: {difference}")));
                    }
                }
                (rust, sql) => {
                    return Err(TestCaseError::fail(format!(
                        "{text}: Rust {rust:?} but the procedure {:?}",
                        sql.map(|row| job_id(&row))
                    )))
                }
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    drop(store);
    runtime.block_on(pool.close());
    drop(fresh);
}
