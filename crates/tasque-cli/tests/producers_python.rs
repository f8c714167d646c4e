//! The README's "Producers in other languages" recipes, run for real (issue 12): the Python
//! programs in `examples/producers/` (psycopg, PyMySQL, pika, in the virtual environment of
//! `scripts/python-env`) enqueue against the real servers, then a real worker (the library's
//! `Worker`, the `tasque` binary's `work`, or its RabbitMQ mode) runs what they enqueued, and
//! each job must run exactly once with the params the producer gave, refusals must come back
//! with the documented SQLSTATE, and failures must end as documented.
//!
//! Servers are found as every server test finds them (`TASQUE_TEST_POSTGRES_URL`,
//! `TASQUE_TEST_MYSQL_URL`, `TASQUE_TEST_AMQP_URL`); under `CI=true` an unreachable server or
//! a missing Python environment fails the test, elsewhere it is skipped loudly. Each test
//! works in its own namespace or queues.

mod producers;

#[path = "../../tasque-postgres/tests/support/mod.rs"]
mod pg;

#[path = "../../tasque-mysql/tests/support/mod.rs"]
mod my;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use producers::{produce, python, tasque, Ran, PATIENCE};
use serde_json::{json, Value};
use tasque_durable::{JobId, JobState, RetryStrategy, Store};
use tasque_worker::{Handlers, Worker};

/// A random namespace with the characters that need quoting (capitals, '-').
fn odd_namespace(tag: &str) -> String {
    format!("py-{tag}-App{:08x}", rand::random::<u32>())
}

/// Runs a worker on `queues` with `handlers` until nothing is ready or running.
async fn work_until_empty(store: Arc<dyn Store>, queues: &[&str], handlers: Handlers) {
    let worker = Worker::builder(store)
        .handlers(handlers)
        .queues(queues.iter().copied())
        .concurrency(8)
        .poll_interval(Duration::from_millis(20))
        .build()
        .expect("worker settings")
        .start()
        .expect("worker starts");
    let emptied = worker.wait_until_empty(false, PATIENCE).await;
    worker.shutdown(Duration::from_secs(10)).await;
    assert!(
        emptied,
        "the worker did not run out of work within {PATIENCE:?}"
    );
}

fn as_pairs(value: &Value) -> Vec<(i64, i64)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_i64().unwrap(), pair[1].as_i64().unwrap()))
        .collect()
}

mod postgres {
    use super::*;

    /// A migrated PostgreSQL namespace under the real schema prefix (`tasque_`), so the
    /// Python code and the `tasque` binary find it exactly as in production; dropped at the end.
    pub struct Namespace {
        /// Drops the schema when the test ends.
        _fresh: pg::Fresh,
        pub name: String,
        pub store: tasque_postgres::PostgresStore,
    }

    impl Namespace {
        pub async fn new(tag: &str) -> Option<Namespace> {
            pg::server().await?;
            let mut fresh = pg::Fresh::new(tag);
            fresh.prefix = "tasque_".to_owned();
            let name = odd_namespace(tag);
            let store = fresh.store(&name).await;
            Some(Namespace {
                _fresh: fresh,
                name,
                store,
            })
        }

        pub fn dyn_store(&self) -> Arc<dyn Store> {
            pg::dyn_store(&self.store)
        }

        pub async fn jobs(&self) -> i64 {
            let sql = format!("SELECT count(*) FROM \"{}\".jobs", self.store.schema());
            sqlx::query_scalar(&sql)
                .fetch_one(self.store.pool())
                .await
                .unwrap()
        }
    }

    pub async fn setup(test: &str, tag: &str) -> Option<(std::path::PathBuf, Namespace)> {
        let python = python(test)?;
        let namespace = Namespace::new(tag).await?;
        Some((python, namespace))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spawn_in_the_producers_transaction_committed_jobs_run_once_rolled_back_never_exist(
) {
    let Some((python, ns)) = postgres::setup("postgres_transactional", "tx").await else {
        return;
    };
    let url = pg::url();
    let out = produce(
        &python,
        "postgres_producer.py",
        &["transactional", &url, &ns.name],
    )
    .await;
    let committed = as_pairs(&out["committed"]);
    let rolled_back: Vec<i64> = serde_json::from_value(out["rolled_back"].clone()).unwrap();
    assert_eq!((committed.len(), rolled_back.len()), (20, 5), "{out}");

    let orders_sql = format!("SELECT count(*) FROM \"{}\".orders", ns.store.schema());
    let orders: i64 = sqlx::query_scalar(&orders_sql)
        .fetch_one(ns.store.pool())
        .await
        .unwrap();
    assert_eq!(orders, 20, "only the committed orders are stored");
    assert_eq!(ns.jobs().await, 20, "only the committed jobs exist");
    for id in &rolled_back {
        let missing = ns.store.get_job(JobId(*id)).await;
        assert!(
            matches!(missing, Err(tasque_durable::Error::NotFound(_))),
            "rolled-back job {id}: {missing:?}"
        );
    }

    let ran = Ran::default();
    let handlers = Handlers::new();
    ran.record(&handlers, "order_confirmation");
    work_until_empty(ns.dyn_store(), &["mail"], handlers).await;
    let expected: BTreeMap<i64, Value> = committed
        .iter()
        .map(|(order, job)| (*job, json!({ "order": order })))
        .collect();
    assert_eq!(ran.once_each(), expected);
    for (_, job) in &committed {
        let job = ns.store.get_job(JobId(*job)).await.unwrap();
        assert_eq!(job.state, JobState::Completed);
        assert_eq!(job.max_attempts, 5);
        assert_eq!(
            job.idempotency_key.as_deref(),
            Some(format!("order-{}", job.params["order"]).as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spawn_options_reach_the_job_and_the_worker() {
    let Some((python, ns)) = postgres::setup("postgres_options", "opt").await else {
        return;
    };
    let out = produce(
        &python,
        "postgres_producer.py",
        &["options", &pg::url(), &ns.name],
    )
    .await;
    let id = |name: &str| JobId(out[name]["job_id"].as_i64().unwrap());

    let full = ns.store.get_job(id("full")).await.unwrap();
    assert_eq!(full.queue, "reports");
    assert_eq!(full.priority, -5);
    assert_eq!(full.max_attempts, 3);
    assert_eq!(full.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        full.retry,
        RetryStrategy::Fixed {
            delay: Duration::from_millis(500)
        }
    );
    assert_eq!(full.headers, json!({ "trace": "abc" }));
    assert_eq!(full.idempotency_key.as_deref(), Some("weekly-report"));
    assert_eq!(out["full"]["created"], true);
    assert_eq!(
        (id("again"), &out["again"]["created"]),
        (id("full"), &json!(false)),
        "the same idempotency key returns the existing job"
    );

    let delayed = ns.store.get_job(id("delayed")).await.unwrap();
    assert_eq!(delayed.state, JobState::Scheduled);
    let delay = (delayed.run_at - delayed.created_at).num_seconds();
    assert!(
        (3590..=3610).contains(&delay),
        "delay_ms 3600000: {delay} s"
    );
    let future = ns.store.get_job(id("future")).await.unwrap();
    assert_eq!(
        (future.state, future.run_at.to_rfc3339()),
        (JobState::Scheduled, "2099-01-01T00:00:00+00:00".to_owned())
    );
    assert_eq!(
        ns.store.get_job(id("past")).await.unwrap().state,
        JobState::Available
    );

    let ran = Ran::default();
    let handlers = Handlers::new();
    ran.record(&handlers, "build_report");
    work_until_empty(ns.dyn_store(), &["reports"], handlers).await;
    let ran: Vec<(i64, Value)> = ran.once_each().into_iter().collect();
    assert_eq!(
        ran,
        vec![
            (id("full").0, json!({ "report": "weekly" })),
            (id("past").0, json!({ "report": "past" })),
        ],
        "the due jobs ran once each; the delayed and future ones wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spawn_batch_enqueues_in_one_call_and_one_bad_job_refuses_the_batch() {
    let Some((python, ns)) = postgres::setup("postgres_batch", "batch").await else {
        return;
    };
    let out = produce(
        &python,
        "postgres_producer.py",
        &["batch", &pg::url(), &ns.name],
    )
    .await;
    let ids: Vec<i64> = serde_json::from_value(out["job_ids"].clone()).unwrap();
    assert_eq!(ids.len(), 100);
    assert_eq!(out["refused"]["sqlstate"], "22023", "{out}");
    let message = out["refused"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("job 2") && message.contains("max_attempts"),
        "the refusal names the job and the option: {message}"
    );
    assert_eq!(ns.jobs().await, 100, "the refused batch wrote nothing");

    let ran = Ran::default();
    let handlers = Handlers::new();
    ran.record(&handlers, "count");
    work_until_empty(ns.dyn_store(), &["batch"], handlers).await;
    let expected: BTreeMap<i64, Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (*id, json!({ "n": n })))
        .collect();
    assert_eq!(
        ran.once_each(),
        expected,
        "returned in input order, each run once"
    );
}

/// Option documents and names the SQL function refuses with SQLSTATE 22023 (the labels of
/// `REFUSED_OPTIONS` in postgres_producer.py, plus the bad names).
const REFUSED: &[&str] = &[
    "zero_attempts",
    "attempts_as_text",
    "fractional_attempts",
    "priority_too_big",
    "unknown_option",
    "run_at_and_delay",
    "run_at_not_a_time",
    "run_at_infinity",
    "run_at_minus_infinity",
    "run_at_out_of_range",
    "delay_near_i64_max",
    "negative_timeout",
    "unknown_retry_kind",
    "cap_below_base",
    "headers_not_an_object",
    "empty_idempotency_key",
    "options_not_an_object",
    "queue_with_space",
    "empty_task",
];

/// The option (or argument) a refusal's message must name.
fn named_option(label: &str) -> &'static str {
    match label {
        "zero_attempts" | "attempts_as_text" | "fractional_attempts" => "max_attempts",
        "priority_too_big" => "priority",
        "unknown_option" => "option",
        "run_at_and_delay"
        | "run_at_not_a_time"
        | "run_at_infinity"
        | "run_at_minus_infinity"
        | "run_at_out_of_range" => "run_at",
        "delay_near_i64_max" => "delay_ms",
        "negative_timeout" => "timeout_ms",
        "unknown_retry_kind" => "retry",
        "cap_below_base" => "retry.cap",
        "headers_not_an_object" => "headers",
        "empty_idempotency_key" => "idempotency_key",
        "options_not_an_object" => "options",
        "queue_with_space" => "queue",
        "empty_task" => "task",
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusals_are_sqlstate_22023_name_the_option_and_write_nothing() {
    let Some((python, ns)) = postgres::setup("postgres_refusals", "ref").await else {
        return;
    };
    let out = produce(
        &python,
        "postgres_producer.py",
        &["refusals", &pg::url(), &ns.name],
    )
    .await;
    let wrong: Vec<String> = REFUSED
        .iter()
        .filter(|label| out[**label]["sqlstate"] != "22023")
        .map(|label| format!("{label}: {}", out[*label]))
        .collect();
    assert!(wrong.is_empty(), "not refused with 22023: {wrong:#?}");
    for label in REFUSED {
        let message = out[*label]["message"].as_str().unwrap_or_default();
        let option = named_option(label);
        assert!(
            message.contains(option),
            "{label}: {message:?} names {option}"
        );
    }
    // Python's json writes 3.0 for a float: integer-valued numbers are integers.
    for label in ["python_floats", "float_priority"] {
        assert!(out[label]["accepted"].is_i64(), "{label}: {}", out[label]);
    }
    assert_eq!(ns.jobs().await, 2, "only the accepted documents wrote jobs");
    let floats = JobId(out["python_floats"]["accepted"].as_i64().unwrap());
    let floats = ns.store.get_job(floats).await.unwrap();
    assert_eq!(
        (floats.max_attempts, floats.timeout),
        (3, Some(Duration::from_secs(1)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_exec_jobs_from_python_run_in_tasque_work_and_failures_retry_then_fail() {
    let Some((python, ns)) = postgres::setup("postgres_exec", "exec").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().display().to_string();
    let out = produce(
        &python,
        "postgres_producer.py",
        &["exec", &pg::url(), &ns.name, &dir_text],
    )
    .await;
    let url = pg::url();
    tasque(&[
        "--database-url",
        &url,
        "--namespace",
        &ns.name,
        "work",
        "--until-empty",
        "--wait-scheduled",
        "--poll-interval",
        "20ms",
    ])
    .await;

    let writes = ns
        .store
        .get_job(JobId(out["writes"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(writes.state, JobState::Completed, "{:?}", writes.failure);
    assert_eq!(writes.result.as_ref().unwrap()["exit_code"], 0);
    let greeting = std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap();
    assert_eq!(greeting, "hello from python", "argv, cwd and env were used");

    let fails = ns
        .store
        .get_job(JobId(out["fails"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(fails.state, JobState::Failed);
    assert_eq!(fails.attempt, 2, "max_attempts 2: tried twice");
    assert_eq!(fails.errors.len(), 2, "{:?}", fails.errors);
    let report = &fails.failure.as_ref().unwrap()["report"];
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["stderr_tail"], "no such invoice\n");
}

#[test]
fn readme_python_recipes_are_the_tested_examples() {
    let blocks = producers::readme_python_blocks();
    assert!(
        blocks.len() >= 3,
        "the README shows the recipes: {blocks:?}"
    );
    let examples: Vec<String> = [
        "postgres_producer.py",
        "mysql_producer.py",
        "rabbitmq_producer.py",
    ]
    .iter()
    .map(|name| std::fs::read_to_string(producers::example(name)).unwrap())
    .collect();
    for block in &blocks {
        assert!(
            examples.iter().any(|code| code.contains(block.as_str())),
            "this README block is not code from examples/producers/:\n{block}"
        );
    }
}

#[path = "../../tasque-amqp/tests/common/mod.rs"]
mod amqp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_python_publishes_before_any_worker_each_message_acked_once_failures_dead_lettered(
) {
    let Some(python) = python("rabbitmq_publish") else {
        return;
    };
    let Some(mut broker) = amqp::broker("rabbitmq_publish").await else {
        return;
    };
    let queue = broker.name("py-work");
    let dead = broker.name("py-dead");
    let nobody = broker.name("py-nobody");
    for name in [&queue, &dead, &nobody] {
        broker.track(name);
    }
    let url = broker.url.clone();
    let script = "rabbitmq_producer.py";

    // No queue yet: mandatory hands the message back instead of losing it.
    let unroutable = produce(&python, script, &["unroutable", &url, &nobody]).await;
    assert_eq!(unroutable["returned_with_mandatory"], true, "{unroutable}");

    // The producer declares the queue itself, as the worker would, before any worker ran.
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().display().to_string();
    let published = produce(&python, script, &["publish", &url, &queue, &dir_text, "40"]).await;
    assert_eq!(published["published"], 42);
    assert_eq!(broker.ready(&queue).await, 42, "nothing was lost");

    let worked = tasque(&[
        "--json",
        "amqp",
        "--url",
        &url,
        "work",
        "--queue",
        &queue,
        "--concurrency",
        "4",
        "--max-attempts",
        "2",
        "--dead-letter-queue",
        &dead,
        "--until-empty",
    ])
    .await;
    let worked: Value = serde_json::from_str(&worked).unwrap();
    assert_eq!(worked["acked"], 40, "{worked}");
    assert_eq!(
        worked["retried"], 1,
        "the failing command's first attempt: {worked}"
    );
    assert_eq!(worked["dead_lettered"], 2, "{worked}");
    assert_eq!(
        worked["received"], 43,
        "40 + 2 attempts + the garbled one: {worked}"
    );

    let ran = std::fs::read_to_string(dir.path().join("ran.txt")).unwrap();
    let mut ran: Vec<u32> = ran.lines().map(|line| line.parse().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..40).collect::<Vec<u32>>(),
        "each command ran exactly once"
    );
    assert_eq!(broker.ready(&queue).await, 0);

    let dead_letters = produce(&python, script, &["dead_letters", &url, &dead]).await;
    let dead_letters = dead_letters.as_array().unwrap();
    assert_eq!(dead_letters.len(), 2, "{dead_letters:?}");
    let by_reason = |needle: &str| {
        dead_letters
            .iter()
            .find(|m| {
                m["headers"]["x-tasque-dead-letter-reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains(needle))
            })
            .unwrap_or_else(|| panic!("no dead letter for {needle:?}: {dead_letters:?}"))
    };
    let declined = by_reason("gave up after 2 attempts");
    let headers = &declined["headers"];
    assert!(
        headers["x-tasque-dead-letter-reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 4: card declined"),
        "{headers}"
    );
    assert_eq!(headers["x-tasque-attempts"], 2, "{headers}");
    assert_eq!(headers["x-tasque-task"], "exec", "{headers}");
    assert_eq!(
        headers["x-tasque-source-queue"],
        queue.as_str(),
        "{headers}"
    );
    assert!(
        headers["x-tasque-last-error"]
            .as_str()
            .is_some_and(|e| e.contains("status 4")),
        "the retried copy said why its attempt failed: {headers}"
    );
    assert_eq!(declined["params"]["argv"][0], "sh", "the body is kept");

    let garbled = by_reason("undecodable payload");
    assert_eq!(
        garbled["headers"]["x-tasque-attempts"], 1,
        "never retried: {garbled}"
    );
    broker.cleanup().await;
}

mod mysql {
    use super::*;

    /// A migrated MySQL namespace with an odd name under a random table prefix; its tables
    /// are dropped at the end.
    pub struct Namespace {
        pub fresh: my::Fresh,
        pub name: String,
        pub store: tasque_mysql::MySqlStore,
    }

    impl Namespace {
        pub async fn new(tag: &str) -> Option<Namespace> {
            my::server().await?;
            let fresh = my::Fresh::new(tag);
            let name = odd_namespace(tag);
            let store = fresh.store(&name).await;
            Some(Namespace { fresh, name, store })
        }

        pub fn dyn_store(&self) -> Arc<dyn Store> {
            my::dyn_store(&self.store)
        }

        pub async fn jobs(&self) -> i64 {
            let sql = format!("SELECT COUNT(*) FROM `{}_jobs`", self.store.table_stem());
            sqlx::query_scalar(&sql)
                .fetch_one(self.store.pool())
                .await
                .unwrap()
        }

        /// Runs the MySQL example's `scenario` in this namespace.
        pub async fn produce(&self, python: &std::path::Path, scenario: &str) -> Value {
            let url = my::url();
            let args = [scenario, &url, &self.name, &self.fresh.prefix];
            produce(python, "mysql_producer.py", &args).await
        }
    }

    pub async fn setup(test: &str, tag: &str) -> Option<(std::path::PathBuf, Namespace)> {
        let python = python(test)?;
        let namespace = Namespace::new(tag).await?;
        Some((python, namespace))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_spawn_procedure_in_the_producers_transaction_committed_jobs_run_once() {
    let Some((python, ns)) = mysql::setup("mysql_transactional", "mytx").await else {
        return;
    };
    let out = ns.produce(&python, "transactional").await;
    let committed = as_pairs(&out["committed"]);
    let rolled_back: Vec<i64> = serde_json::from_value(out["rolled_back"].clone()).unwrap();
    assert_eq!((committed.len(), rolled_back.len()), (10, 3), "{out}");
    assert_eq!(out["orders"], 10, "only the committed orders are stored");
    assert_eq!(
        ns.jobs().await,
        11,
        "the committed jobs and the options job"
    );
    for id in &rolled_back {
        let missing = ns.store.get_job(JobId(*id)).await;
        assert!(
            matches!(missing, Err(tasque_durable::Error::NotFound(_))),
            "rolled-back job {id}: {missing:?}"
        );
    }
    assert_eq!(
        (out["again"]["job_id"].as_i64(), &out["again"]["created"]),
        (Some(committed[0].1), &json!(false)),
        "the same idempotency key returns the existing job"
    );

    let options = JobId(out["options"].as_i64().unwrap());
    let options = ns.store.get_job(options).await.unwrap();
    assert_eq!(options.state, JobState::Scheduled);
    assert_eq!((options.queue.as_str(), options.priority), ("reports", -5));
    assert_eq!(options.max_attempts, 3);
    assert_eq!(options.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        options.retry,
        RetryStrategy::Fixed {
            delay: Duration::from_millis(500)
        }
    );
    assert_eq!(options.headers, json!({ "trace": "abc" }));
    let delay = (options.run_at - options.created_at).num_seconds();
    assert!(
        (3590..=3610).contains(&delay),
        "delay_ms 3600000: {delay} s"
    );

    let ran = Ran::default();
    let handlers = Handlers::new();
    ran.record(&handlers, "order_confirmation");
    work_until_empty(ns.dyn_store(), &["mail"], handlers).await;
    let expected: BTreeMap<i64, Value> = committed
        .iter()
        .map(|(order, job)| (*job, json!({ "order": order })))
        .collect();
    assert_eq!(ran.once_each(), expected);
}

/// The labels of `REFUSED_OPTIONS` in mysql_producer.py, plus the bad names.
const MYSQL_REFUSED: &[&str] = &[
    "zero_attempts",
    "attempts_as_text",
    "fractional_attempts",
    "priority_too_big",
    "unknown_option",
    "run_at_and_delay",
    "run_at_not_a_time",
    "run_at_out_of_range",
    "delay_near_i64_max",
    "unknown_retry_kind",
    "headers_not_an_object",
    "empty_idempotency_key",
    "options_not_an_object",
    "queue_with_space",
    "empty_task",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_refusals_are_sqlstate_22023_name_the_option_and_write_nothing() {
    let Some((python, ns)) = mysql::setup("mysql_refusals", "myref").await else {
        return;
    };
    let out = ns.produce(&python, "refusals").await;
    let wrong: Vec<String> = MYSQL_REFUSED
        .iter()
        .filter(|label| out[**label]["sqlstate"] != "22023")
        .map(|label| format!("{label}: {}", out[*label]))
        .collect();
    assert!(wrong.is_empty(), "not refused with 22023: {wrong:#?}");
    for label in MYSQL_REFUSED {
        let message = out[*label]["message"].as_str().unwrap_or_default();
        let option = named_option(label);
        assert!(
            message.contains(option),
            "{label}: {message:?} names {option}"
        );
    }
    assert!(
        out["python_floats"]["accepted"].is_i64(),
        "{}",
        out["python_floats"]
    );
    assert_eq!(ns.jobs().await, 1, "only the accepted document wrote a job");
    let floats = JobId(out["python_floats"]["accepted"].as_i64().unwrap());
    let floats = ns.store.get_job(floats).await.unwrap();
    assert_eq!(
        (floats.max_attempts, floats.timeout),
        (3, Some(Duration::from_secs(1)))
    );
}
