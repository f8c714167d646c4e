//! Periodic jobs and leader election in one process, on SQLite: schedules registered on the
//! builder fire once per tick however many workers share the database, the leader role moves
//! when the leader stops, and invalid schedules are refused at build with nothing written.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::schedule::{MissedTicks, Schedule, ScheduleError, HEADER_TICK};
use tasque_durable::{JobFilter, JobState, PageRequest, Store};
use tasque_sqlite::SqliteStore;
use tasque_worker::{Error, Handlers, JobContext, RunningWorker, Worker};

const PATIENCE: Duration = Duration::from_secs(30);

async fn open(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let store = SqliteStore::open(dir.path().join("jobs.db")).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

fn every_second() -> Schedule {
    Schedule::every("tick", Duration::from_secs(1))
        .task("tick", json!({}))
        .missed(MissedTicks::CatchUp(100))
}

fn start(store: &Arc<dyn Store>, id: &str, schedules: Vec<Schedule>) -> RunningWorker {
    let handlers = Handlers::new();
    handlers.learn("tick", |_ctx: JobContext, _args: Value| async move {
        Ok::<_, std::io::Error>(())
    });
    Worker::builder(store.clone())
        .handlers(handlers)
        .worker_id(id)
        .poll_interval(Duration::from_millis(20))
        .leader_lease(Duration::from_millis(500))
        .schedules(schedules)
        .build()
        .unwrap()
        .start()
        .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ticks of every job fired so far, checking none is doubled.
async fn fired_ticks(store: &Arc<dyn Store>) -> usize {
    let page = store
        .scan(JobFilter::all(), PageRequest::first(1000))
        .await
        .unwrap();
    let ticks: Vec<String> = page
        .jobs
        .iter()
        .map(|j| {
            j.headers[HEADER_TICK]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let distinct: HashSet<&String> = ticks.iter().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick fired twice: {ticks:?}");
    ticks.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_fire_each_tick_once_and_run_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(&dir).await, open(&dir).await);
    let first = start(&a, "worker-a", vec![every_second()]);
    let second = start(&b, "worker-b", vec![every_second()]);
    eventually("three ticks fired", || async { fired_ticks(&a).await >= 3 }).await;
    eventually("one leader", || async {
        first.is_leader() != second.is_leader()
    })
    .await;
    let completed = JobFilter::all().states([JobState::Completed]);
    eventually("the fired jobs run", || async {
        a.count(completed.clone()).await.unwrap() >= 2
    })
    .await;
    first.shutdown(Duration::from_secs(5)).await;
    second.shutdown(Duration::from_secs(5)).await;
    fired_ticks(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_role_moves_when_the_leader_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(&dir).await, open(&dir).await);
    let first = start(&a, "worker-a", vec![every_second()]);
    eventually("worker a leads", || async { first.is_leader() }).await;
    let second = start(&b, "worker-b", vec![every_second()]);
    first.shutdown(Duration::from_secs(5)).await;
    eventually("worker b leads", || async { second.is_leader() }).await;
    let before = fired_ticks(&b).await;
    eventually("worker b fires", || async {
        fired_ticks(&b).await > before
    })
    .await;
    second.shutdown(Duration::from_secs(5)).await;
}

fn build_error(store: &Arc<dyn Store>, schedules: Vec<Schedule>) -> Error {
    match Worker::builder(store.clone()).schedules(schedules).build() {
        Ok(_) => panic!("an invalid schedule was accepted"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn invalid_schedules_are_refused_at_build_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let bad_expression = Schedule::cron("a", "* * * *").task("t", json!(null));
    assert!(matches!(
        build_error(&store, vec![bad_expression]),
        Error::Schedule(ScheduleError::InvalidExpression { .. })
    ));
    let bad_zone = Schedule::cron("b", "0 * * * *")
        .zone("Europe/Atlantis")
        .task("t", json!(null));
    assert!(matches!(
        build_error(&store, vec![bad_zone]),
        Error::Schedule(ScheduleError::UnknownZone { .. })
    ));
    let twice = vec![every_second(), every_second()];
    let error = build_error(&store, twice);
    assert!(matches!(
        error,
        Error::Schedule(ScheduleError::DuplicateId { .. })
    ));
    assert_eq!(error.to_string(), "duplicate schedule id \"tick\"");
    let engine = store.schedules().unwrap();
    assert!(engine.list_schedules().await.unwrap().is_empty());
}
