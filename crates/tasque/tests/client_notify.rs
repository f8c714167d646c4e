//! On PostgreSQL, a finished job is announced on the namespace's channel (NOTIFY), so a
//! `Client::wait` in another process wakes at once; workers ignore these messages.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::PATIENCE;
use tasque::durable::client::parse_finished;
use tasque::durable::Store;
use tasque::{Client, Handlers, Job, JobContext, Worker};

#[derive(Serialize, Deserialize)]
struct Ping;

impl Job for Ping {
    const KIND: &'static str = "ping";
    type Output = String;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_finished_jobs_to_other_stores_on_its_channel() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    // Another "process": a second store on the same namespace, with its own listener.
    let waiter_store = tasque_postgres::PostgresStore::connect(
        tasque_postgres::PostgresConfig::new(support::postgres_url())
            .with_schema_prefix(pg.schema().trim_end_matches("client").to_string())
            .with_namespace("client"),
    )
    .await
    .unwrap();
    assert_eq!(waiter_store.schema(), pg.schema());
    let mut announcements = waiter_store.subscribe_wakeups().unwrap();
    tokio::time::timeout(PATIENCE, waiter_store.wait_listener_generation(1))
        .await
        .expect("the listener connects");
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let handlers = Handlers::new();
    handlers.register(|_: Ping, _ctx: JobContext| async move { Ok::<_, String>("pong".into()) });
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let job = Client::new(store).enqueue(Ping).await.unwrap();
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
    let waiter = Client::new(Arc::new(waiter_store.clone()) as Arc<dyn Store>);
    assert_eq!(waiter.wait(&job, PATIENCE).await.unwrap(), "pong");
    worker.shutdown(Duration::from_secs(5)).await;
    waiter_store.close().await;
    support::drop_postgres(&pg).await;
}
