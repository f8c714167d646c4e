//! Issue 12, one validation everywhere: the schema's `spawn` and `spawn_batch` functions and the
//! Rust API's parser (`validate::parse_options`) accept and refuse the same option documents,
//! refuse with SQLSTATE 22023 and the same message, and store the same options; and schema
//! version 3 upgrades a database of version 2.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use tasque_durable::conformance::documents::{
    option_document, option_document_cases, option_named_in, same_stored_options,
};
use tasque_durable::validate::parse_options;
use tasque_durable::{JobId, JobState, Spawn, Store};
use tasque_postgres::PostgresStore;

/// What the SQL function did with a document: the job it stored, or the refusal's message.
type SqlOutcome = Result<JobId, String>;

/// Calls `spawn(queue, 'work', '{}', document)`; a refusal must be SQLSTATE 22023.
async fn sql_spawn(
    pool: &PgPool,
    store: &PostgresStore,
    queue: &str,
    document: &Value,
) -> SqlOutcome {
    let call = format!(
        "SELECT job_id FROM \"{}\".spawn($1, 'work', '{{}}', $2::jsonb)",
        store.schema()
    );
    match sqlx::query(&call)
        .bind(queue)
        .bind(document.to_string())
        .fetch_one(pool)
        .await
    {
        Ok(row) => Ok(JobId(row.get(0))),
        Err(err) => Err(refusal(err)),
    }
}

/// Calls `spawn_batch` with the document twice, in a transaction rolled back afterwards.
async fn sql_spawn_batch(
    pool: &PgPool,
    store: &PostgresStore,
    queue: &str,
    document: &Value,
) -> Result<(), String> {
    let call = format!(
        "SELECT job_id FROM \"{}\".spawn_batch($1::text[], $2::text[], $3::jsonb[], \
         $4::text[]::jsonb[])",
        store.schema()
    );
    let mut tx = pool.begin().await.expect("begin");
    let done = sqlx::query(&call)
        .bind(vec![queue, queue])
        .bind(vec!["work", "work"])
        .bind(vec!["{}", "{}"])
        .bind(vec![document.to_string(), document.to_string()])
        .fetch_all(&mut *tx)
        .await;
    tx.rollback().await.expect("rollback");
    done.map(|_| ()).map_err(refusal)
}

fn refusal(err: sqlx::Error) -> String {
    let Some(db) = err.as_database_error() else {
        panic!("not a database error: {err}");
    };
    assert_eq!(
        db.code().as_deref(),
        Some("22023"),
        "every refusal is SQLSTATE 22023: {db}"
    );
    db.message().to_string()
}

/// Feeds one document to the SQL functions and to the Rust API, and checks they agree.
async fn check_document(
    pool: &PgPool,
    store: &PostgresStore,
    document: &Value,
) -> Result<(), TestCaseError> {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let parsed = parse_options(document);
    let sql = sql_spawn(pool, store, &format!("sql{n}"), document).await;
    let batch = sql_spawn_batch(pool, store, &format!("batch{n}"), document).await;
    match (&parsed, &sql) {
        (Err(rust), Err(message)) => {
            prop_assert_eq!(message, &format!("tasque: {rust}"), "{}", document);
            prop_assert_eq!(
                batch.err(),
                Some(format!("tasque: job 1 of the batch: {rust}")),
                "{}",
                document
            );
        }
        (Ok(options), Ok(sql_job)) => {
            prop_assert!(batch.is_ok(), "{}: batch {:?}", document, batch);
            let rust_job = store
                .spawn(
                    Spawn::new(format!("rust{n}"), "work", json!({})).with_options(options.clone()),
                )
                .await
                .map_err(|e| TestCaseError::fail(format!("{document}: Rust spawn: {e}")))?;
            let from_sql = store.get_job(*sql_job).await.expect("sql job");
            let from_rust = store.get_job(rust_job.job_id).await.expect("rust job");
            if let Err(difference) = same_stored_options(&from_sql, &from_rust, options) {
                return Err(TestCaseError::fail(format!("{document}: {difference}")));
            }
        }
        _ => {
            return Err(TestCaseError::fail(format!(
                "{document}: Rust {parsed:?} but SQL {sql:?}"
            )))
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_listed_document_gets_its_outcome_from_sql_and_rust() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("d");
    let store = fresh.store("main").await;
    for case in option_document_cases() {
        let sql = sql_spawn(&pool, &store, "listed", &case.document).await;
        let named = sql.as_ref().err().and_then(|m| option_named_in(m));
        assert_eq!(named.as_deref(), case.refused, "{}: {sql:?}", case.document);
        let outcome = check_document(&pool, &store, &case.document).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}

#[tokio::test]
async fn integral_numbers_from_python_are_integers_and_refusals_are_22023() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("d");
    let store = fresh.store("main").await;
    // What Python's json writes for floats, as the issue reported (22P02 before).
    let document = json!({"max_attempts": 3.0, "timeout_ms": 30000.0, "delay_ms": 1000.0,
        "retry": {"kind": "fixed", "delay": 1000.0}});
    let id = sql_spawn(&pool, &store, "py", &document).await.unwrap();
    let job = store.get_job(id).await.unwrap();
    assert_eq!(
        (job.max_attempts, job.timeout),
        (3, Some(Duration::from_secs(30)))
    );
    assert_eq!(job.state, JobState::Scheduled);
    // 22007, 22008 and 22P02 before: all 22023 now (checked in sql_spawn), naming the option.
    for (document, option) in [
        (json!({"run_at": "next tuesday"}), "run_at"),
        (json!({"run_at": "infinity"}), "run_at"),
        (json!({"delay_ms": 9223372036854775807_i64}), "delay_ms"),
        (json!({"max_attempts": 3.5}), "max_attempts"),
    ] {
        let message = sql_spawn(&pool, &store, "py", &document).await.unwrap_err();
        assert_eq!(
            option_named_in(&message).as_deref(),
            Some(option),
            "{message}"
        );
    }
    let bad_name = sqlx::query(&format!(
        "SELECT * FROM \"{}\".spawn('bad queue', 'work')",
        store.schema()
    ))
    .fetch_one(&pool)
    .await
    .unwrap_err();
    assert_eq!(
        option_named_in(&refusal(bad_name)).as_deref(),
        Some("queue")
    );
}

/// The property test of issue 12: random option documents (valid, at the edges, wrong types,
/// floats, huge numbers, bad timestamps) get the same outcome from the SQL functions and from
/// the Rust API's parser: both accept (and store the same options) or both refuse with the same
/// message, SQLSTATE 22023.
#[test]
fn sql_functions_and_the_rust_parser_agree_on_random_documents() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(pool) = runtime.block_on(support::server()) else {
        return;
    };
    let fresh = support::Fresh::new("p");
    let store = runtime.block_on(fresh.store("main"));
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&option_document(), |document| {
        runtime.block_on(check_document(&pool, &store, &document))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    drop(store);
    runtime.block_on(pool.close());
    // The schema is dropped outside the runtime, by `fresh`.
    drop(fresh);
}

/// Schema version 3 upgrades a database of version 2: jobs are kept, and the new functions
/// (strict documents, direct single-row spawn) are in place.
#[tokio::test]
async fn version_3_upgrades_a_version_2_database() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("u");
    let store = fresh.unmigrated("main").await;
    let report = store.migrate_to(2).await.unwrap();
    assert_eq!((report.from, report.to), (0, 2));
    let call = format!(
        "SELECT job_id, created FROM \"{}\".spawn('old', 'work', '{{\"kept\": true}}', $1::jsonb)",
        store.schema()
    );
    let before: i64 = sqlx::query(&call)
        .bind(r#"{"max_attempts": 3}"#)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    // Version 2 still cast "3.0" with ::integer.
    let old = sqlx::query(&call)
        .bind(r#"{"timeout_ms": 30000.0}"#)
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        old.as_database_error().unwrap().code().as_deref(),
        Some("22P02")
    );

    let report = store.migrate().await.unwrap();
    assert_eq!(
        (report.from, report.to),
        (2, tasque_postgres::SCHEMA_VERSION)
    );
    let kept = store.get_job(JobId(before)).await.unwrap();
    assert_eq!((kept.params, kept.max_attempts), (json!({"kept": true}), 3));
    let row = sqlx::query(&call)
        .bind(r#"{"timeout_ms": 30000.0}"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    let job = store.get_job(JobId(row.get(0))).await.unwrap();
    assert_eq!(job.timeout, Some(Duration::from_secs(30)));
    assert!(row.get::<bool, _>(1));
}
