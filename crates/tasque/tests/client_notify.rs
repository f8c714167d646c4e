//! On PostgreSQL, a finished job that some process waits for is announced on the namespace's
//! channel (NOTIFY), so a `Client::wait` in another process wakes at once; workers ignore these
//! messages. A job nobody waits for is not announced.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::PATIENCE;
use tasque::durable::client::parse_finished;
use tasque::durable::{JobId, Store};
use tasque::{Client, Handlers, Job, JobContext, Worker};
use tasque_postgres::PostgresStore;
use tokio::sync::broadcast::Receiver;

#[derive(Serialize, Deserialize)]
struct Ping;

impl Job for Ping {
    const KIND: &'static str = "ping";
    type Output = String;
}

/// Another "process": a second store on the namespace of `pg`, with its own listener.
async fn other_process(pg: &PostgresStore) -> (PostgresStore, Receiver<String>) {
    let store = PostgresStore::connect(
        tasque_postgres::PostgresConfig::new(support::postgres_url())
            .with_schema_prefix(pg.schema().trim_end_matches("client").to_string())
            .with_namespace("client"),
    )
    .await
    .unwrap();
    assert_eq!(store.schema(), pg.schema());
    let announcements = store.subscribe_wakeups().unwrap();
    tokio::time::timeout(PATIENCE, store.wait_listener_generation(1))
        .await
        .expect("the listener connects");
    (store, announcements)
}

/// Waiters' rows for `job` in the namespace's `waiters` table.
async fn waiters(pg: &PostgresStore, job: JobId) -> i64 {
    let pool = sqlx::PgPool::connect(&support::postgres_url())
        .await
        .unwrap();
    let count = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".waiters WHERE job_id = $1",
        pg.schema()
    ))
    .bind(job.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    count
}

/// Sends `marker` on the namespace's channel, then returns every finished-job announcement
/// received before it (notifications arrive in commit order).
async fn announcements_until_marker(
    pg: &PostgresStore,
    announcements: &mut Receiver<String>,
    marker: &str,
) -> Vec<JobId> {
    let pool = sqlx::PgPool::connect(&support::postgres_url())
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(pg.schema())
        .bind(marker)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut finished = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let message = announcements.recv().await.unwrap();
            if message == marker {
                return;
            }
            finished.extend(parse_finished(&message).unwrap_or_default());
        }
    })
    .await
    .expect("the marker arrives");
    finished
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_a_finished_job_another_process_waits_for() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    let (waiter_store, mut announcements) = other_process(&pg).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let job = Client::new(store.clone()).enqueue(Ping).await.unwrap();
    // The other process registers its interest before any worker runs the job, as its
    // `Client::wait` does. (A wait in this process would also be woken by the process's own
    // hub, withdraw its interest and so, racing the worker's NOTIFY, leave nothing to
    // announce.)
    waiter_store
        .watch_finished(job.job_id)
        .await
        .unwrap()
        .expect("PostgreSQL announces finished jobs");
    assert_eq!(waiters(&pg, job.job_id).await, 1);
    let handlers = Handlers::new();
    handlers.register(|_: Ping, _ctx: JobContext| async move { Ok::<_, String>("pong".into()) });
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let announced = tokio::time::timeout(PATIENCE, async {
        loop {
            let message = announcements.recv().await.unwrap();
            if parse_finished(&message).is_some_and(|jobs| jobs.contains(&job.job_id)) {
                return message;
            }
        }
    })
    .await
    .expect("the finished job is announced");
    assert!(announced.starts_with("#finished:"), "{announced}");
    // The announcement withdrew the interest.
    assert_eq!(waiters(&pg, job.job_id).await, 0);
    // Told, the other process reads the outcome.
    let waiter = Client::new(Arc::new(waiter_store.clone()) as Arc<dyn Store>);
    assert_eq!(waiter.wait(&job, PATIENCE).await.unwrap(), "pong");
    worker.shutdown(Duration::from_secs(5)).await;
    waiter_store.close().await;
    support::drop_postgres(&pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_only_watched_jobs() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    let (waiter_store, mut announcements) = other_process(&pg).await;
    let (a, b) = (JobId(1_000_001), JobId(1_000_002));
    // Nobody waits: nothing is announced.
    pg.announce_finished(&[a, b]).await.unwrap();
    let heard = announcements_until_marker(&pg, &mut announcements, "marker-1").await;
    assert!(heard.is_empty(), "announced unwatched jobs: {heard:?}");
    // A waiter watches `b` (twice, as two waits would): only `b` is announced, once.
    let first = waiter_store.watch_finished(b).await.unwrap().unwrap();
    let second = waiter_store.watch_finished(b).await.unwrap().unwrap();
    assert_ne!(first, second);
    pg.announce_finished(&[a, b]).await.unwrap();
    let heard = announcements_until_marker(&pg, &mut announcements, "marker-2").await;
    assert_eq!(heard, vec![b]);
    assert_eq!(waiters(&pg, b).await, 0);
    // An interest withdrawn before the job ends is not announced.
    let token = waiter_store.watch_finished(a).await.unwrap().unwrap();
    waiter_store.unwatch_finished(a, token).await.unwrap();
    pg.announce_finished(&[a]).await.unwrap();
    let heard = announcements_until_marker(&pg, &mut announcements, "marker-3").await;
    assert!(
        heard.is_empty(),
        "announced a withdrawn interest: {heard:?}"
    );
    waiter_store.close().await;
    support::drop_postgres(&pg).await;
}
