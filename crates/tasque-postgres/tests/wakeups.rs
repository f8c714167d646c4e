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

/// The next announcement of a ready queue (finished-job announcements and reconnection
/// wake-ups, empty names, are skipped).
async fn next_queue(wakeups: &mut tokio::sync::broadcast::Receiver<String>) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), wakeups.recv())
            .await
            .expect("an announcement within 30 s")
            .expect("the listener is running");
        if !message.is_empty() && !message.starts_with(tasque_durable::client::FINISHED_PREFIX) {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_queue_is_not_announced_and_its_jobs_are_polled() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("w");
    let store = fresh.store("main").await;
    let mut wakeups = store.subscribe_wakeups().expect("inside a runtime");
    tokio::time::timeout(Duration::from_secs(10), store.wait_listener_generation(1))
        .await
        .expect("the listener connects");
    store.set_queue_notify("quiet", false).await.unwrap();
    // Every path into the quiet queue, then one job into a notifying queue: notifications
    // arrive in commit order, so the first one names the loud queue only if the quiet
    // spawns sent none.
    store
        .spawn(Spawn::new("quiet", "ping", json!(1)))
        .await
        .unwrap();
    store
        .spawn_many(vec![
            Spawn::new("quiet", "ping", json!(2)),
            Spawn::new("quiet", "ping", json!(3)),
        ])
        .await
        .unwrap();
    let call = format!(
        "SELECT job_id FROM \"{}\".spawn('quiet', 'ping', '4')",
        store.schema()
    );
    sqlx::query(&call).execute(&admin).await.unwrap();
    store
        .spawn(Spawn::new("loud", "ping", json!(5)))
        .await
        .unwrap();
    assert_eq!(next_queue(&mut wakeups).await, "loud");
    assert!(
        matches!(
            store.set_queue_notify("no such queue", false).await,
            Err(tasque_durable::Error::InvalidName { .. })
        ),
        "a bad queue name is refused"
    );

    // A polling worker runs the quiet queue's jobs.
    let (started, mut receiver) = mpsc::unbounded_channel();
    let handlers = Handlers::new();
    handlers.learn("ping", move |_ctx: JobContext, n: i64| {
        let started = started.clone();
        async move {
            let _ = started.send(n);
            Ok::<_, std::io::Error>(())
        }
    });
    let worker = Worker::builder(support::dyn_store(&store))
        .handlers(handlers)
        .queues(["quiet"])
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut ran = Vec::new();
    while ran.len() < 4 {
        let n = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
            .await
            .expect("the quiet queue's jobs run within 30 s")
            .expect("the worker is running");
        ran.push(n);
    }
    ran.sort_unstable();
    assert_eq!(ran, [1, 2, 3, 4]);
    worker.shutdown(Duration::from_secs(5)).await;

    // Notifying again.
    store.set_queue_notify("quiet", true).await.unwrap();
    store
        .spawn(Spawn::new("quiet", "ping", json!(6)))
        .await
        .unwrap();
    assert_eq!(next_queue(&mut wakeups).await, "quiet");
}
