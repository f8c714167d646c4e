//! Issue 12, one validation everywhere: the schema's `spawn` and `spawn_batch` functions and the
//! Rust API's parser (`validate::parse_options`) accept and refuse the same option documents,
//! refuse with SQLSTATE 22023 and the same message, and store the same options; and schema
//! version 3 upgrades a database of version 2.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use sqlx::{PgPool, Row};
use tasque_durable::conformance::documents::{option_document_cases, option_named_in};
use tasque_durable::validate::parse_options;
use tasque_durable::{JobId, JobInfo, JobState, RunAt, Spawn, Store};
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

/// The options of a stored job that a document sets (the run time apart).
fn stored_options(job: &JobInfo) -> String {
    format!(
        "priority {}, attempts {}, retry {:?}, timeout {:?}, {:?}, headers {}, key {:?}",
        job.priority,
        job.max_attempts,
        job.retry,
        job.timeout,
        job.cancellation,
        job.headers,
        job.idempotency_key
    )
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
            for job in [&from_sql, &from_rust] {
                match options.run_at {
                    Some(RunAt::At(at)) => prop_assert_eq!(job.run_at, at, "{}", document),
                    Some(RunAt::After(delay)) => prop_assert_eq!(
                        (job.run_at - job.created_at).to_std().ok(),
                        Some(delay),
                        "{}",
                        document
                    ),
                    _ => prop_assert_eq!(job.run_at, job.created_at, "{}", document),
                }
            }
            prop_assert_eq!(
                stored_options(&from_sql),
                stored_options(&from_rust),
                "{}",
                document
            );
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

/// A random value of an integer option: in range, at and past its ends, integral and
/// fractional floats, huge numbers and other types.
fn int_value(lo: i64, hi: i64) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (lo..=hi).prop_map(Value::from),
        2 => prop::sample::select(vec![lo - 1, lo, hi, hi + 1, 0, -1]).prop_map(Value::from),
        2 => (lo..=hi).prop_map(|n| json!(n as f64)),
        1 => (lo..hi).prop_map(|n| json!(n as f64 + 0.5)),
        1 => prop::sample::select(vec![
            json!(i64::MAX), json!(i64::MIN), json!(u64::MAX), json!(1e300), json!(-1e300),
            json!(9.2e18), json!(1e-300), json!(2.5e-7),
        ]),
        1 => prop::sample::select(vec![json!("3"), json!(true), json!(null), json!([1]), json!({})]),
    ]
    .boxed()
}

/// A random duration option (milliseconds).
fn millis_value() -> BoxedStrategy<Value> {
    int_value(1, 31_557_600_000_000)
}

/// A random timestamp text: mostly the documented shape with random (sometimes impossible)
/// fields, sometimes other formats; or not a string.
fn run_at_value() -> BoxedStrategy<Value> {
    let shaped = (
        prop_oneof![
            Just(0u32),
            Just(998),
            Just(999),
            Just(1000),
            Just(9999),
            0u32..=9999
        ],
        0u32..=13,
        0u32..=32,
        prop::sample::select(vec!["T", "t", " ", "X"]),
        (0u32..=24, 0u32..=60, 0u32..=60),
        prop_oneof![Just(String::new()), "\\.[0-9]{1,10}"],
        prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            Just(String::new()),
            (prop::sample::select(vec!['+', '-']), 0u32..=24, 0u32..=60)
                .prop_map(|(sign, h, m)| format!("{sign}{h:02}:{m:02}")),
        ],
    )
        .prop_map(|(y, mo, d, sep, (h, mi, s), frac, zone)| {
            json!(format!(
                "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}"
            ))
        });
    prop_oneof![
        8 => shaped,
        1 => prop::sample::select(vec![
            json!("infinity"), json!("-infinity"), json!("now"), json!(""), json!("2030-01-31"),
            json!("2030-01-31T08:00:00+0100"), json!("epoch"), json!(" 2030-01-31T08:00:00Z"),
        ]),
        1 => prop::sample::select(vec![json!(1_900_000_000), json!(null), json!({})]),
    ]
    .boxed()
}

/// A random retry strategy document.
fn retry_value() -> BoxedStrategy<Value> {
    let factor = prop_oneof![
        (1.0f64..3.0).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            json!(1),
            json!(1000),
            json!(1000.5),
            json!(0.5),
            json!("2")
        ]),
    ];
    let cap = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        millis_value().prop_map(Some)
    ];
    prop_oneof![
        Just(json!({"kind": "none"})),
        millis_value().prop_map(|delay| json!({"kind": "fixed", "delay": delay})),
        (millis_value(), factor, cap).prop_map(|(base, factor, cap)| {
            let mut r = json!({"kind": "exponential", "base": base, "factor": factor});
            if let Some(cap) = cap {
                r["cap"] = cap;
            }
            r
        }),
        prop::sample::select(vec![
            json!({"kind": "sometimes"}),
            json!({"kind": "none", "delay": 1}),
            json!({"kind": "fixed"}),
            json!({"kind": "fixed", "delay": 5, "zz": 1}),
            json!("fixed"),
            json!(null),
            json!({}),
        ]),
    ]
    .boxed()
}

/// A random option document: a random subset of the known options with random values, and
/// sometimes an unknown key or no object at all.
fn document() -> impl Strategy<Value = Value> {
    let values = (
        (
            prop::option::of(int_value(1, 2_147_483_647)),
            prop::option::of(int_value(-2_147_483_648, 2_147_483_647)),
            prop::option::weighted(0.3, run_at_value()),
            prop::option::weighted(0.3, millis_value()),
            prop::option::weighted(0.3, millis_value()),
        ),
        (
            prop::option::weighted(0.3, retry_value()),
            prop::option::weighted(0.2, millis_value()),
            prop::option::weighted(0.2, millis_value()),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    Just(json!({"trace": "t"})),
                    Just(json!(null)),
                    Just(json!([1])),
                    Just(json!("h"))
                ],
            ),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    "[a-z0-9é ✓-]{1,20}".prop_map(Value::from),
                    Just(json!("")),
                    Just(json!("a\u{7}b")),
                    Just(json!("a\u{9f}b")),
                    Just(json!("k".repeat(256))),
                    Just(json!(5)),
                ],
            ),
            prop::option::weighted(
                0.05,
                prop::sample::select(vec!["colour", "zz", "b", "runat"]),
            ),
        ),
    );
    let object = values.prop_map(
        |(
            (attempts, priority, run_at, delay, timeout),
            (retry, duration, max_delay, headers, key, unknown),
        )| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put("max_attempts", attempts);
            put("priority", priority);
            put("run_at", run_at);
            put("delay_ms", delay);
            put("timeout_ms", timeout);
            put("retry", retry);
            put("max_duration_ms", duration);
            put("max_delay_ms", max_delay);
            put("headers", headers);
            put("idempotency_key", key);
            if let Some(k) = unknown {
                put(k, Some(json!(1)));
            }
            Value::Object(m)
        },
    );
    prop_oneof![
        30 => object,
        1 => prop::sample::select(vec![json!([]), json!(null), json!("{}"), json!(3)]),
    ]
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
    let outcome = runner.run(&document(), |document| {
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
