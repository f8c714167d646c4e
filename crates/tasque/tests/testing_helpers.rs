//! The test helpers (`tasque::testing`) on SQLite, and the virtual clock and the test worker
//! on PostgreSQL and MySQL/MariaDB.
//! Each assertion's failure message is checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tasque::durable::{JobState, RetryStrategy};
use tasque::testing::{DrainOptions, Expect, Mode, Performed, TestClock, TestEnv, TestingError};
use tasque::{assert_enqueued, refute_enqueued, Client, Job, JobContext, JobOptions};
use tasque_worker::EventOutcome;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SendEmail {
    to: String,
    order: u64,
}

impl Job for SendEmail {
    const KIND: &'static str = "send_email";
    type Output = String;

    fn options(&self) -> JobOptions {
        JobOptions::new().queue("mail")
    }
}

/// A job that fails its first attempt (retried an hour later), then sleeps a day, then waits a
/// week for a confirmation event.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Onboard {
    user: u64,
}

impl Job for Onboard {
    const KIND: &'static str = "onboard";
    type Output = String;

    fn options(&self) -> JobOptions {
        JobOptions::new()
            .max_attempts(3)
            .retry(RetryStrategy::Fixed {
                delay: Duration::from_secs(3600),
            })
    }
}

async fn onboard(job: Onboard, ctx: JobContext) -> Result<String, BoxError> {
    if ctx.attempt() == 1 {
        return Err("the mail server is down".into());
    }
    let account: u64 = ctx
        .step("create-account", || async move {
            Ok::<_, BoxError>(job.user * 10)
        })
        .await?;
    ctx.sleep_for("cool-off", Duration::from_secs(86_400))
        .await?;
    let week = Duration::from_secs(7 * 86_400);
    Ok(match ctx.wait_for_event("confirmed", week).await? {
        EventOutcome::Received(payload) => format!("account {account} confirmed: {payload}"),
        EventOutcome::TimedOut => format!("account {account} expired"),
    })
}

/// The job of the issue: an hour of backoff, a day of sleep and a week of waiting for an
/// event that never comes, driven by the virtual clock: one drain with scheduled jobs advances
/// the clock to the retry, the sleep's end and the wait's timeout in turn.
async fn retry_sleep_and_week_long_wait(env: &TestEnv) {
    let started = Instant::now();
    let start = env.clock().now();
    env.handlers().register(onboard);
    let job = env.client().enqueue(Onboard { user: 4 }).await.unwrap();
    let report = env
        .drain_with("default", DrainOptions::new().with_scheduled(true))
        .await
        .unwrap();
    assert_eq!(
        (report.failed, report.suspended, report.completed),
        (1, 2, 1),
        "{report:?}"
    );
    assert_eq!(report.clock_advances, 3, "{report:?}");
    let info = env.job(job.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    let done: String = env
        .client()
        .wait(job, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done, "account 40 expired");
    let elapsed = env.clock().now() - start;
    assert_eq!(
        elapsed.num_seconds(),
        3600 + 86_400 + 7 * 86_400,
        "an hour of backoff, a day of sleep and a week of waiting"
    );
    eprintln!(
        "8 virtual days ({} ms of backoff, sleep and wait) took {} ms",
        elapsed.num_milliseconds(),
        started.elapsed().as_millis()
    );
    let steps = env.checkpoints(job.job_id).await.unwrap();
    assert!(steps
        .iter()
        .any(|c| c.name == "create-account" && c.value == json!(40)));
}

#[tokio::test]
async fn sqlite_retry_backoff_sleep_and_event_timeout_follow_the_virtual_clock() {
    let env = TestEnv::manual().await.unwrap();
    retry_sleep_and_week_long_wait(&env).await;
}

#[tokio::test]
async fn postgres_retry_backoff_sleep_and_event_timeout_follow_the_virtual_clock() {
    let Some(store) = postgres().await else {
        return;
    };
    let clock = TestClock::postgres(&store).await.unwrap();
    let env = TestEnv::new(Client::new(Arc::new(store.clone())), clock, Mode::Manual);
    retry_sleep_and_week_long_wait(&env).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn postgres_connections_all_see_the_virtual_time_and_production_ones_do_not() {
    let Some(store) = postgres().await else {
        return;
    };
    let clock = TestClock::postgres(&store).await.unwrap();
    let later = clock
        .advance(Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    // Every pooled connection reads the same virtual time.
    let reads = futures_now(Arc::new(store.clone()), 8).await;
    assert!(reads.iter().all(|at| *at == later), "{reads:?}");
    // A store on the same schema outside test mode keeps the database clock.
    let plain = tasque::postgres::PostgresStore::connect(
        tasque::postgres::PostgresConfig::new(postgres_url())
            .with_schema_prefix(store.schema().trim_end_matches("clock").to_string())
            .with_namespace("clock"),
    )
    .await
    .unwrap();
    let real = tasque::durable::Store::now(&plain).await.unwrap();
    assert!((real - chrono::Utc::now()).num_seconds().abs() < 600);
    plain.close().await;
    store.drop_schema().await.unwrap();
}

/// `n` concurrent readings of the store's clock (on as many pooled connections).
async fn futures_now(
    store: Arc<dyn tasque::durable::Store>,
    n: usize,
) -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.now().await.unwrap() }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

fn postgres_url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A migrated PostgreSQL store in test mode under a random schema; `None` outside CI when
/// the server is unreachable (a panic under CI).
async fn postgres() -> Option<tasque::postgres::PostgresStore> {
    let config = tasque::postgres::PostgresConfig::new(postgres_url())
        .with_schema_prefix(format!("tqt{:08x}_", rand::random::<u32>()))
        .with_namespace("clock")
        .with_virtual_clock();
    match tasque::postgres::PostgresStore::connect(config).await {
        Ok(store) => {
            tasque::durable::Store::migrate(&store).await.unwrap();
            Some(store)
        }
        Err(error) if tasque_testkit::in_ci() => panic!("PostgreSQL unreachable under CI: {error}"),
        Err(error) => {
            eprintln!("\n!!!!!!!! SKIPPED: PostgreSQL is unreachable ({error}) !!!!!!!!\n");
            None
        }
    }
}

#[tokio::test]
async fn mysql_retry_backoff_sleep_and_event_timeout_follow_the_virtual_clock() {
    let Some(store) = mysql().await else {
        return;
    };
    let env = TestEnv::from_mysql(store.clone(), Mode::Manual)
        .await
        .unwrap();
    retry_sleep_and_week_long_wait(&env).await;
    store.drop_tables().await.unwrap();
}

#[tokio::test]
async fn mysql_connections_all_see_the_virtual_time_and_production_ones_do_not() {
    let Some(store) = mysql().await else {
        return;
    };
    let clock = TestClock::mysql(&store).await.unwrap();
    let later = clock
        .advance(Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    // Every pooled connection reads the same virtual time.
    let reads = futures_now(Arc::new(store.clone()), 8).await;
    assert!(reads.iter().all(|at| *at == later), "{reads:?}");
    // A store on the same tables outside test mode keeps the server clock, and a clock
    // refuses it.
    let plain = tasque::mysql::MySqlStore::connect(
        tasque::mysql::MySqlConfig::new(mysql_url())
            .with_table_prefix(store.table_stem().trim_end_matches("clock").to_string())
            .with_namespace("clock"),
    )
    .await
    .unwrap();
    assert_eq!(plain.table_stem(), store.table_stem());
    let real = tasque::durable::Store::now(&plain).await.unwrap();
    assert!((real - chrono::Utc::now()).num_seconds().abs() < 600);
    assert!(matches!(
        TestClock::mysql(&plain).await,
        Err(TestingError::NotInTestMode)
    ));
    plain.close().await;
    store.drop_tables().await.unwrap();
}

#[tokio::test]
async fn mysql_spawn_procedure_of_a_test_mode_namespace_reads_the_virtual_clock() {
    use sqlx::Row;
    let Some(store) = mysql().await else {
        return;
    };
    let clock = TestClock::mysql(&store).await.unwrap();
    let later = clock
        .advance(Duration::from_secs(10 * 86_400))
        .await
        .unwrap();
    // Enqueued from plain SQL (the namespace's stored procedure, created by the test-mode
    // migration): stamped with the virtual time, not the server's.
    let row = sqlx::query(&format!("CALL `{}_spawn`(?, ?, ?, ?)", store.table_stem()))
        .bind("default")
        .bind("from_sql")
        .bind(Some("1"))
        .bind(None::<&str>)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let job = tasque::durable::JobId(row.get(0));
    let info = tasque::durable::Store::get_job(&store, job).await.unwrap();
    assert_eq!((info.created_at, info.run_at), (later, later));
    assert_eq!(info.state, JobState::Available);
    store.drop_tables().await.unwrap();
}

fn mysql_url() -> String {
    std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

/// A migrated MySQL/MariaDB store in test mode under a random table prefix; `None` outside CI
/// when the server is unreachable (a panic under CI).
async fn mysql() -> Option<tasque::mysql::MySqlStore> {
    let config = tasque::mysql::MySqlConfig::new(mysql_url())
        .with_table_prefix(format!("tqt{:08x}_", rand::random::<u32>()))
        .with_namespace("clock")
        .with_virtual_clock();
    match tasque::mysql::MySqlStore::connect(config).await {
        Ok(store) => {
            tasque::durable::Store::migrate(&store).await.unwrap();
            Some(store)
        }
        Err(error) if tasque_testkit::in_ci() => panic!("MySQL unreachable under CI: {error}"),
        Err(error) => {
            eprintln!("\n!!!!!!!! SKIPPED: MySQL/MariaDB is unreachable ({error}) !!!!!!!!\n");
            None
        }
    }
}

#[tokio::test]
async fn assert_enqueued_matches_kind_queue_args_subset_priority_and_schedule() {
    let env = TestEnv::manual().await.unwrap();
    let email = SendEmail {
        to: "a@b.c".into(),
        order: 7,
    };
    env.client()
        .enqueue_with(
            email.clone(),
            JobOptions::new()
                .priority(3)
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let job = assert_enqueued!(
        env,
        Expect::job::<SendEmail>()
            .queue("mail")
            .args(json!({"order": 7}))
            .priority(3)
            .scheduled_in(Duration::from_secs(3600))
    );
    assert_eq!(job.state, JobState::Scheduled);
    refute_enqueued!(env, Expect::job::<SendEmail>().args(json!({"order": 8})));
    refute_enqueued!(env, Expect::any().queue("default"));
    assert_eq!(env.all_enqueued::<SendEmail>().await.unwrap(), vec![email]);
}

#[tokio::test]
async fn a_failed_assert_enqueued_lists_the_jobs_that_were_there() {
    let env = TestEnv::manual().await.unwrap();
    env.client()
        .enqueue(SendEmail {
            to: "a@b.c".into(),
            order: 7,
        })
        .await
        .unwrap();
    let failure = tasque::testing::Enqueues::view(&env)
        .assert_enqueued(&Expect::job::<SendEmail>().args(json!({"order": 8})))
        .await
        .unwrap_err();
    let message = failure.message();
    assert!(
        message.starts_with(
            "expected an enqueued job with kind \"send_email\", args containing {\"order\":8}, \
             but found none; the 1 enqueued job(s) were:\n  job 1: kind \"send_email\", queue \
             \"mail\", args {\"order\":7,\"to\":\"a@b.c\"}, priority 0, scheduled at "
        ),
        "{message}"
    );
    // A waiting assertion says how long it waited; an empty namespace says so.
    let empty = TestEnv::manual().await.unwrap();
    let failure = tasque::testing::Enqueues::view(&empty)
        .assert_enqueued(&Expect::any().within(Duration::from_millis(30)))
        .await
        .unwrap_err();
    assert_eq!(
        failure.message(),
        "expected an enqueued job with any job (waited 30ms), but found none; the 0 enqueued \
         job(s) were:\n  (none)"
    );
}

#[tokio::test]
async fn a_failed_refute_enqueued_lists_the_matching_jobs() {
    let env = TestEnv::manual().await.unwrap();
    env.client()
        .enqueue_with(
            SendEmail {
                to: "a@b.c".into(),
                order: 7,
            },
            JobOptions::new().run_at(env.clock().now() + chrono::TimeDelta::seconds(90)),
        )
        .await
        .unwrap();
    let failure = tasque::testing::Enqueues::view(&env)
        .refute_enqueued(&Expect::job::<SendEmail>().scheduled_in(Duration::from_secs(90)))
        .await
        .unwrap_err();
    let at = (env.clock().now() + chrono::TimeDelta::seconds(90))
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string();
    assert_eq!(
        failure.message(),
        format!(
            "expected no enqueued job with kind \"send_email\", scheduled at {at} (±1s), but \
             found 1:\n  job 1: kind \"send_email\", queue \"mail\", args \
             {{\"order\":7,\"to\":\"a@b.c\"}}, priority 0, scheduled at {at}"
        )
    );
}

#[tokio::test]
#[should_panic(
    expected = "assert_enqueued! failed: expected an enqueued job with kind \"send_email\""
)]
async fn the_assert_enqueued_macro_panics_with_the_message() {
    let env = TestEnv::manual().await.unwrap();
    assert_enqueued!(env, Expect::job::<SendEmail>());
}

#[tokio::test]
#[should_panic(
    expected = "refute_enqueued! failed: expected no enqueued job with any job, but found 1"
)]
async fn the_refute_enqueued_macro_panics_with_the_message() {
    let env = TestEnv::manual().await.unwrap();
    env.client()
        .enqueue(SendEmail {
            to: "x".into(),
            order: 1,
        })
        .await
        .unwrap();
    refute_enqueued!(env, Expect::any());
}

#[tokio::test]
async fn assert_enqueued_within_waits_for_a_background_enqueue() {
    let env = TestEnv::manual().await.unwrap();
    let client = env.client().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client
            .enqueue(SendEmail {
                to: "late".into(),
                order: 2,
            })
            .await
            .unwrap();
    });
    assert_enqueued!(
        env,
        Expect::job::<SendEmail>().within(Duration::from_secs(30))
    );
}

#[tokio::test]
async fn a_scope_sees_only_the_jobs_enqueued_inside_it() {
    let env = TestEnv::manual().await.unwrap();
    let email = |order| SendEmail {
        to: "a@b.c".into(),
        order,
    };
    env.client().enqueue(email(1)).await.unwrap();
    let (_, scope) = env
        .scoped(async {
            env.client().enqueue(email(2)).await.unwrap();
        })
        .await
        .unwrap();
    env.client().enqueue(email(3)).await.unwrap();
    assert_eq!(
        scope.all_enqueued::<SendEmail>().await.unwrap(),
        vec![email(2)]
    );
    assert_enqueued!(scope, Expect::job::<SendEmail>().args(json!({"order": 2})));
    refute_enqueued!(scope, Expect::job::<SendEmail>().args(json!({"order": 1})));
    refute_enqueued!(scope, Expect::job::<SendEmail>().args(json!({"order": 3})));
}

#[tokio::test]
async fn drain_runs_ready_jobs_counts_failures_and_can_stop_at_the_first_error() {
    let env = TestEnv::manual().await.unwrap();
    env.handlers()
        .register(|email: SendEmail, _ctx: JobContext| async move {
            if email.order == 0 {
                Err("order 0 does not exist".to_string())
            } else {
                Ok(format!("sent {}", email.order))
            }
        });
    for order in [1, 2] {
        env.client()
            .enqueue(SendEmail {
                to: "a".into(),
                order,
            })
            .await
            .unwrap();
    }
    let report = env.drain("mail").await.unwrap();
    assert_eq!((report.completed, report.failed), (2, 0));
    refute_enqueued!(env, Expect::any());
    env.client()
        .enqueue_with(
            SendEmail {
                to: "a".into(),
                order: 0,
            },
            JobOptions::new().max_attempts(1),
        )
        .await
        .unwrap();
    let error = env
        .drain_with("mail", DrainOptions::new().stop_on_error(true))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TestingError::JobFailed { task, reason, .. }
            if task == "send_email" && reason.contains("order 0 does not exist")),
        "{error}"
    );
}

#[tokio::test]
async fn drain_with_scheduled_advances_the_clock_to_delayed_jobs() {
    let env = TestEnv::manual().await.unwrap();
    env.handlers()
        .register(|email: SendEmail, _ctx: JobContext| async move { Ok::<_, String>(email.to) });
    env.client()
        .enqueue_with(
            SendEmail {
                to: "later".into(),
                order: 1,
            },
            JobOptions::new().delay(Duration::from_secs(2 * 86_400)),
        )
        .await
        .unwrap();
    let start = env.clock().now();
    assert_eq!(env.drain("mail").await.unwrap().completed, 0);
    let report = env
        .drain_with("mail", DrainOptions::new().with_scheduled(true))
        .await
        .unwrap();
    assert_eq!((report.completed, report.clock_advances), (1, 1));
    assert_eq!((env.clock().now() - start).num_days(), 2);
}

/// Waits up to `hours` for the payment of an order.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AwaitPayment {
    order: u64,
    hours: u64,
}

impl Job for AwaitPayment {
    const KIND: &'static str = "await_payment";
    type Output = String;
}

#[tokio::test]
async fn drain_with_scheduled_advances_the_clock_to_event_wait_timeouts() {
    let env = TestEnv::manual().await.unwrap();
    env.handlers()
        .register(|job: AwaitPayment, ctx: JobContext| async move {
            let limit = Duration::from_secs(job.hours * 3600);
            Ok::<_, BoxError>(
                match ctx
                    .wait_for_event(&format!("paid-{}", job.order), limit)
                    .await?
                {
                    EventOutcome::Received(_) => format!("order {} paid", job.order),
                    EventOutcome::TimedOut => format!("order {} expired", job.order),
                },
            )
        });
    let start = env.clock().now();
    let late = env
        .client()
        .enqueue(AwaitPayment {
            order: 1,
            hours: 48,
        })
        .await
        .unwrap();
    let soon = env
        .client()
        .enqueue(AwaitPayment { order: 2, hours: 2 })
        .await
        .unwrap();
    // Without scheduled jobs, the drain leaves both waiting.
    let report = env.drain("default").await.unwrap();
    assert_eq!((report.suspended, report.clock_advances), (2, 0));
    assert_eq!(env.job(soon.job_id).await.unwrap().state, JobState::Waiting);
    // With them, the clock goes to each timeout in turn: two hours, then two days.
    let report = env
        .drain_with("default", DrainOptions::new().with_scheduled(true))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.clock_advances),
        (2, 2),
        "{report:?}"
    );
    assert_eq!((env.clock().now() - start).num_hours(), 48);
    let soon_id = soon.job_id;
    let soon: String = env
        .client()
        .wait(soon, Duration::from_secs(30))
        .await
        .unwrap();
    let late: String = env
        .client()
        .wait(late, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (soon.as_str(), late.as_str()),
        ("order 2 expired", "order 1 expired")
    );
    // The short wait ended at its own timeout, not at the long one's.
    let info = env.job(soon_id).await.unwrap();
    assert!(info.finished_at.unwrap() - start < chrono::TimeDelta::hours(3));
}

#[tokio::test]
async fn inline_mode_runs_the_job_with_its_retries_before_enqueue_returns() {
    let env = TestEnv::inline().await.unwrap();
    env.handlers()
        .register(|email: SendEmail, ctx: JobContext| async move {
            if ctx.attempt() < 3 {
                panic!("flaky {}", email.order);
            }
            Ok::<_, String>(format!("sent on attempt {}", ctx.attempt()))
        });
    let job = env
        .enqueue_with(
            SendEmail {
                to: "a".into(),
                order: 5,
            },
            JobOptions::new()
                .max_attempts(3)
                .retry(RetryStrategy::Fixed {
                    delay: Duration::from_secs(600),
                }),
        )
        .await
        .unwrap();
    let info = env.job(job.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.result, Some(json!("sent on attempt 3")));
    assert_eq!(info.errors.len(), 2);
    assert!(info.errors[0].reason.to_string().contains("flaky 5"));
}

/// A job that enqueues, below depth 2, one more of itself (same queue) and an email (queue
/// `mail`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Fanout {
    depth: u32,
}

impl Job for Fanout {
    const KIND: &'static str = "fanout";
    type Output = u32;
}

/// Registers `Fanout` (enqueueing through a plain client of the env's store) and `SendEmail`.
fn register_fanout(env: &TestEnv) {
    let client = Client::new(env.store().clone());
    env.handlers()
        .register(move |job: Fanout, _ctx: JobContext| {
            let client = client.clone();
            async move {
                if job.depth < 2 {
                    client
                        .enqueue(Fanout {
                            depth: job.depth + 1,
                        })
                        .await?;
                    client
                        .enqueue(SendEmail {
                            to: format!("depth {}", job.depth),
                            order: 1,
                        })
                        .await?;
                }
                Ok::<_, BoxError>(job.depth)
            }
        });
    env.handlers()
        .register(|email: SendEmail, _ctx: JobContext| async move { Ok::<_, String>(email.to) });
}

#[tokio::test]
async fn a_drain_runs_only_the_jobs_there_when_it_starts_unless_recursive() {
    let env = TestEnv::manual().await.unwrap();
    register_fanout(&env);
    env.client().enqueue(Fanout { depth: 0 }).await.unwrap();
    let report = env.drain("default").await.unwrap();
    assert_eq!((report.completed, report.failed), (1, 0));
    // What the drained job enqueued, in its own queue and another, did not run.
    assert_enqueued!(env, Expect::job::<Fanout>().args(json!({"depth": 1})));
    assert_enqueued!(env, Expect::job::<SendEmail>().queue("mail"));
    assert_eq!(env.all_enqueued::<Fanout>().await.unwrap().len(), 1);

    // Recursive: those run, and what they enqueue, until nothing is left.
    let report = env
        .drain_with("default", DrainOptions::new().recursive(true))
        .await
        .unwrap();
    // Fanout 1, Fanout 2, the emails of depths 0 and 1.
    assert_eq!((report.completed, report.failed), (4, 0));
    refute_enqueued!(env, Expect::any());
}

#[tokio::test]
async fn a_recursive_drain_works_queues_created_during_the_drain() {
    let env = TestEnv::manual().await.unwrap();
    register_fanout(&env);
    env.client().enqueue(Fanout { depth: 0 }).await.unwrap();
    let before: Vec<String> = tasque::durable::Store::list_queues(&**env.store())
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(!before.contains(&"mail".to_string()), "{before:?}");
    let report = env
        .drain_with("default", DrainOptions::new().recursive(true))
        .await
        .unwrap();
    // Fanouts 0, 1, 2 and the two emails, in queue `mail`, created by the drain.
    assert_eq!((report.completed, report.failed), (5, 0));
    refute_enqueued!(env, Expect::any());
}

#[tokio::test]
async fn an_inline_enqueue_through_the_client_runs_only_that_job() {
    let env = TestEnv::inline().await.unwrap();
    register_fanout(&env);
    // A ready job stored without running (through the store's own client).
    let waiting = Client::new(env.store().clone())
        .enqueue(SendEmail {
            to: "stored".into(),
            order: 1,
        })
        .await
        .unwrap();
    let sent = env
        .client()
        .enqueue(SendEmail {
            to: "inline".into(),
            order: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        env.job(sent.job_id).await.unwrap().state,
        JobState::Completed
    );
    assert_eq!(
        env.job(waiting.job_id).await.unwrap().state,
        JobState::Available
    );
    // A job's own enqueues are not run by its inline run.
    let fanout = env.client().enqueue(Fanout { depth: 0 }).await.unwrap();
    let info = env.job(fanout.job_id).await.unwrap();
    assert_eq!(
        (info.state, info.result),
        (JobState::Completed, Some(json!(0)))
    );
    assert_enqueued!(env, Expect::job::<Fanout>().args(json!({"depth": 1})));
    // `env.enqueue` is the same.
    let again = env.enqueue(Fanout { depth: 5 }).await.unwrap();
    assert_eq!(
        env.job(again.job_id).await.unwrap().state,
        JobState::Completed
    );
}

/// A job whose handler enqueues a receipt through its context and returns the receipt's id.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Checkout {
    order: u64,
}

impl Job for Checkout {
    const KIND: &'static str = "checkout";
    type Output = i64;

    fn options(&self) -> JobOptions {
        JobOptions::new().queue("mail")
    }
}

/// The test worker runs each handler inside a transaction that is rolled back: the outcome
/// and the job as it ended are returned, and nothing of the run stays (the job, what the
/// handler enqueued, its completion), nor is any other job touched.
async fn perform_in_a_rolled_back_transaction(env: &TestEnv) {
    let count = || async {
        tasque::durable::Store::count(&**env.store(), tasque::durable::JobFilter::all())
            .await
            .unwrap()
    };
    // A job already waiting in the same queue: the performs neither run nor change it.
    let bystander = Client::new(env.store().clone())
        .enqueue(SendEmail {
            to: "bystander".into(),
            order: 3,
        })
        .await
        .unwrap();
    let before = env.job(bystander.job_id).await.unwrap();
    let email = SendEmail {
        to: "a@b.c".into(),
        order: 1,
    };
    let handler = |email: SendEmail, ctx: JobContext| async move {
        match email.order {
            0 => Err("no order".to_string()),
            1 => Ok(format!("sent to {}", email.to)),
            _ => {
                ctx.fail_for_good();
                Err(format!("order {} is cancelled", email.order))
            }
        }
    };

    let done = env.perform(email.clone(), handler).await.unwrap();
    assert_eq!(
        done.outcome,
        Performed::Completed("sent to a@b.c".to_string())
    );
    assert_eq!(done.job.state, JobState::Completed);
    assert_eq!((done.job.queue.as_str(), done.job.attempt), ("mail", 1));
    assert!(done.job.finished_at.is_some());
    assert_eq!(done.job.result, Some(json!("sent to a@b.c")));
    assert!(env.job(done.job.id).await.is_err());

    // A failing handler: retried later, with its error, and rolled back too.
    let failed = env
        .perform(
            SendEmail {
                order: 0,
                ..email.clone()
            },
            handler,
        )
        .await
        .unwrap();
    assert!(
        matches!(&failed.outcome, Performed::Retrying(reason) if reason.to_string().contains("no order")),
        "{:?}",
        failed.outcome
    );
    assert_eq!(failed.job.state, JobState::Scheduled);
    assert_eq!(failed.job.errors.len(), 1);
    assert!(env.job(failed.job.id).await.is_err());
    let final_failure = env
        .perform(SendEmail { order: 2, ..email }, handler)
        .await
        .unwrap();
    assert!(
        matches!(&final_failure.outcome, Performed::Failed(reason) if reason.to_string().contains("order 2 is cancelled")),
        "{:?}",
        final_failure.outcome
    );
    assert_eq!(final_failure.job.state, JobState::Failed);

    // A handler that enqueues through its context: the child exists inside the transaction
    // (the handler reads it back), and is gone with it.
    let checkout = env
        .perform(
            Checkout { order: 5 },
            |job: Checkout, ctx: JobContext| async move {
                let receipt = ctx
                    .client()
                    .enqueue(SendEmail {
                        to: "receipt".into(),
                        order: job.order,
                    })
                    .await?;
                // Running or not: the worker's gate may be giving it back at this moment.
                let seen = ctx.client().get(receipt.job_id).await?;
                assert_eq!(seen.info.task, "send_email");
                Ok::<_, BoxError>(receipt.job_id.0)
            },
        )
        .await
        .unwrap();
    let Performed::Completed(receipt) = checkout.outcome else {
        panic!("{:?}", checkout.outcome)
    };
    assert!(receipt > checkout.job.id.0);
    assert!(env.job(tasque::durable::JobId(receipt)).await.is_err());
    assert!(env.job(checkout.job.id).await.is_err());

    // Only the bystander is left, untouched.
    assert_eq!(count().await, 1);
    let left = env.job(bystander.job_id).await.unwrap();
    assert_eq!(
        (left.state, left.attempt, left.run_id, left.errors.len()),
        (JobState::Available, before.attempt, before.run_id, 0)
    );
    env.store().delete(bystander.job_id).await.unwrap();
}

#[tokio::test]
async fn perform_runs_one_handler_in_a_rolled_back_transaction() {
    let env = TestEnv::manual().await.unwrap();
    perform_in_a_rolled_back_transaction(&env).await;
}

#[tokio::test]
async fn perform_on_a_sqlite_file_rolls_back_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = tasque::sqlite::SqliteStore::connect(
        tasque::sqlite::SqliteConfig::file(dir.path().join("jobs.db")).with_virtual_clock(),
    )
    .await
    .unwrap();
    let env = TestEnv::from_sqlite(store, Mode::Manual).await.unwrap();
    perform_in_a_rolled_back_transaction(&env).await;
}

#[tokio::test]
async fn perform_from_resumes_a_workflow_after_given_steps_and_events_wake_it() {
    let env = TestEnv::manual().await.unwrap();
    let resumed = env
        .perform_from(
            Onboard { user: 1 },
            [("create-account".to_string(), json!(99))],
            |job: Onboard, ctx: JobContext| async move {
                // Skip the first attempt's failure and the sleep: start at the wait.
                let account: u64 = ctx
                    .step(
                        "create-account",
                        || async move { Ok::<_, BoxError>(job.user) },
                    )
                    .await?;
                let got = ctx
                    .wait_for_event("confirmed", Duration::from_secs(60))
                    .await?;
                Ok::<_, BoxError>(format!("{account}: {:?}", got.payload()))
            },
        )
        .await
        .unwrap();
    assert_eq!(resumed.outcome, Performed::Suspended);
    assert_eq!(resumed.job.state, JobState::Waiting);
    // Nothing of the run remains: no job, no checkpoint.
    assert!(env.job(resumed.job.id).await.is_err());
    assert!(env.checkpoints(resumed.job.id).await.unwrap().is_empty());
    assert_eq!(
        tasque::durable::Store::count(&**env.store(), tasque::durable::JobFilter::all())
            .await
            .unwrap(),
        0
    );

    // The full workflow with an event: emitted while it waits, it wakes it. (A drain with
    // scheduled jobs would run the wait to its timeout: the clock is advanced by hand.)
    env.handlers().register(onboard);
    let job = env.client().enqueue(Onboard { user: 2 }).await.unwrap();
    env.drain("default").await.unwrap();
    env.clock()
        .advance(Duration::from_secs(3600))
        .await
        .unwrap();
    env.drain("default").await.unwrap();
    env.clock()
        .advance(Duration::from_secs(86_400))
        .await
        .unwrap();
    env.drain("default").await.unwrap();
    assert_eq!(env.job(job.job_id).await.unwrap().state, JobState::Waiting);
    assert_eq!(
        env.emit_event("confirmed", json!({"by": "mail"}))
            .await
            .unwrap(),
        1
    );
    env.drain("default").await.unwrap();
    let done: String = env
        .client()
        .wait(job, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done, "account 20 confirmed: {\"by\":\"mail\"}");
}

/// Polls `check` every 20 ms for up to 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn lease_expiry_and_periodic_ticks_follow_the_virtual_clock() {
    use tasque::durable::schedule::Schedule;
    use tasque::durable::{ClaimParams, PollOrder};

    let env = TestEnv::manual().await.unwrap();
    let store = env.store().clone();
    // A run claimed under a one-minute lease, by a worker that then vanished.
    env.client()
        .enqueue(SendEmail {
            to: "lost".into(),
            order: 9,
        })
        .await
        .unwrap();
    let claimed = store
        .claim(ClaimParams {
            queues: vec!["mail".into()],
            limit: 1,
            lease: Duration::from_secs(60),
            worker_id: "vanished".into(),
            order: PollOrder::default(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // A leader worker (rescuer and scheduler) that works no queue of these jobs.
    let worker = tasque::Worker::builder(store.clone())
        .queues(["elsewhere"])
        .rescue_interval(Duration::from_millis(50))
        .scheduler_interval(Duration::from_millis(50))
        .schedule(
            Schedule::every("hourly-report", Duration::from_secs(3600))
                .task("report", json!({"kind": "hourly"}))
                .queue("reports"),
        )
        .build()
        .unwrap()
        .start()
        .unwrap();
    eventually("leadership", || async { worker.is_leader() }).await;
    refute_enqueued!(env, Expect::task("report"));
    // Two virtual minutes: the lease expired, the rescuer gives the job back (attempt counted).
    env.clock().advance(Duration::from_secs(120)).await.unwrap();
    let job = claimed[0].job_id;
    eventually("the rescue", || async {
        store.get_job(job).await.unwrap().errors.len() == 1
    })
    .await;
    assert_enqueued!(env, Expect::job::<SendEmail>().args(json!({"order": 9})));
    // An hour later, the periodic job has ticked.
    env.clock()
        .advance(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_enqueued!(
        env,
        Expect::task("report")
            .queue("reports")
            .args(json!({"kind": "hourly"}))
            .within(Duration::from_secs(30))
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

/// The test worker, drains and inline enqueues on a server engine's store in test mode.
async fn perform_drain_and_inline_on(client: Client, clock: TestClock) {
    let env = TestEnv::new(client.clone(), clock.clone(), Mode::Manual);

    // The test worker: the job's end state returned, nothing of it left.
    perform_in_a_rolled_back_transaction(&env).await;

    // A drain: only the jobs there at its start, unless recursive.
    register_fanout(&env);
    env.client().enqueue(Fanout { depth: 0 }).await.unwrap();
    assert_eq!(env.drain("default").await.unwrap().completed, 1);
    assert_enqueued!(env, Expect::job::<Fanout>().args(json!({"depth": 1})));
    let report = env
        .drain_with("default", DrainOptions::new().recursive(true))
        .await
        .unwrap();
    assert_eq!((report.completed, report.failed), (4, 0));
    refute_enqueued!(env, Expect::any());

    // Inline through the client: only that job.
    let inline = TestEnv::new(client, clock, Mode::Inline);
    register_fanout(&inline);
    let waiting = Client::new(inline.store().clone())
        .enqueue(SendEmail {
            to: "stored".into(),
            order: 1,
        })
        .await
        .unwrap();
    let sent = inline
        .client()
        .enqueue(SendEmail {
            to: "inline".into(),
            order: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        inline.job(sent.job_id).await.unwrap().state,
        JobState::Completed
    );
    assert_eq!(
        inline.job(waiting.job_id).await.unwrap().state,
        JobState::Available
    );
}

#[tokio::test]
async fn postgres_perform_leaves_no_job_and_drains_and_inline_enqueues_run_only_their_jobs() {
    let Some(store) = postgres().await else {
        return;
    };
    let clock = TestClock::postgres(&store).await.unwrap();
    perform_drain_and_inline_on(Client::new(Arc::new(store.clone())), clock).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn mysql_perform_leaves_no_job_and_drains_and_inline_enqueues_run_only_their_jobs() {
    let Some(store) = mysql().await else {
        return;
    };
    let clock = TestClock::mysql(&store).await.unwrap();
    perform_drain_and_inline_on(Client::new(Arc::new(store.clone())), clock).await;
    store.drop_tables().await.unwrap();
}
