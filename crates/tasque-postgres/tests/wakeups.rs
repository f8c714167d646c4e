//! LISTEN/NOTIFY: an idle worker with a long poll interval is woken by a spawn at once, also
//! after its listening connection was terminated.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use tasque_durable::{Spawn, Store};
use tasque_postgres::PostgresStore;
use tasque_worker::{Handlers, JobContext, RunningWorker, Worker};
use tokio::sync::mpsc;

/// A worker polling every 10 s whose `ping` handler reports each job it starts.
fn start_worker(store: &PostgresStore) -> (RunningWorker, mpsc::UnboundedReceiver<i64>) {
    let (started, receiver) = mpsc::unbounded_channel();
    let handlers = Handlers::new();
    handlers.learn("ping", move |_ctx: JobContext, n: i64| {
        let started = started.clone();
        async move {
            let _ = started.send(n);
            Ok::<_, std::io::Error>(())
        }
    });
    let worker = Worker::builder(support::dyn_store(store))
        .handlers(handlers)
        .poll_interval(Duration::from_secs(10))
        .build()
        .unwrap()
        .start()
        .unwrap();
    (worker, receiver)
}

/// Spawns job `n` and waits (at most `limit`) for the worker to start it.
async fn spawn_and_wait(
    store: &PostgresStore,
    started: &mut mpsc::UnboundedReceiver<i64>,
    n: i64,
    limit: Duration,
) -> Duration {
    let at = Instant::now();
    store
        .spawn(Spawn::new("default", "ping", json!(n)))
        .await
        .unwrap();
    let got = tokio::time::timeout(limit, started.recv())
        .await
        .unwrap_or_else(|_| {
            panic!("job {n} did not start within {limit:?} (poll interval is 10 s)")
        });
    assert_eq!(got, Some(n));
    at.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_an_idle_worker_well_before_its_poll() {
    if support::server().await.is_none() {
        return;
    }
    let fresh = support::Fresh::new("w");
    let store = fresh.store("main").await;
    let (worker, mut started) = start_worker(&store);
    tokio::time::timeout(Duration::from_secs(10), store.wait_listener_generation(1))
        .await
        .expect("the listener connects");
    for n in 0..5 {
        let took = spawn_and_wait(&store, &mut started, n, Duration::from_millis(900)).await;
        assert!(took < Duration::from_millis(900), "{took:?}");
    }
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_after_its_connection_is_terminated() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("w");
    let app = format!("tasque-wakeup-test-{:08x}", rand::random::<u32>());
    let store = fresh
        .store_with(fresh.config("main").with_application_name(&app))
        .await;
    let (worker, mut started) = start_worker(&store);
    tokio::time::timeout(Duration::from_secs(10), store.wait_listener_generation(1))
        .await
        .expect("the listener connects");
    spawn_and_wait(&store, &mut started, 1, Duration::from_millis(900)).await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&app)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(
        killed,
        [true],
        "exactly the listening backend was terminated"
    );
    tokio::time::timeout(Duration::from_secs(10), store.wait_listener_generation(2))
        .await
        .expect("the listener reconnects");
    spawn_and_wait(&store, &mut started, 2, Duration::from_millis(900)).await;
    worker.shutdown(Duration::from_secs(5)).await;
}
