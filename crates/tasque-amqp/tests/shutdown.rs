//! Graceful shutdown with work in flight: handlers that finish within the
//! grace period are acked, the rest are nacked back to the queue; nothing is
//! lost and nothing that did not succeed is acked.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use tasque_amqp::{Consumer, ConsumerState, HandlerRegistry};
use tokio::sync::{mpsc, watch};

#[derive(Deserialize)]
struct Job {
    id: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_work_in_flight_loses_nothing_and_acks_only_successes() {
    let mut broker = require_broker!("shutdown_with_work_in_flight");
    let queue = broker.queue("shutdown").await;
    let (done, mut ids) = mpsc::unbounded_channel();
    let (started, mut starts) = mpsc::unbounded_channel();
    let (open_gate, gate) = watch::channel(false);
    // Even ids finish once the gate opens (during the grace period); odd ids
    // never finish and are cut off at the deadline.
    let handlers = HandlerRegistry::new().handler("work", move |job: Job| {
        let (done, started, mut gate) = (done.clone(), started.clone(), gate.clone());
        async move {
            started.send(job.id).expect("test alive");
            if job.id % 2 == 1 {
                std::future::pending::<()>().await;
            }
            let _ = gate.wait_for(|open| *open).await;
            done.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .max_concurrency(10)
        .handlers(handlers)
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    broker.publish_ids(&queue, "work", 0..30).await;
    for _ in 0..10 {
        tokio::time::timeout(Duration::from_secs(30), starts.recv())
            .await
            .expect("the first ten messages started")
            .expect("handlers alive");
    }

    let mut states = consumer.watch_state();
    let stopping = tokio::spawn(consumer.shutdown(Duration::from_secs(1)));
    tokio::time::timeout(
        Duration::from_secs(10),
        states.wait_for(|state| *state == ConsumerState::Draining),
    )
    .await
    .expect("draining")
    .expect("state channel open");
    open_gate.send_replace(true);
    let stats = stopping.await.expect("joined").expect("stopped");

    let mut succeeded = HashSet::new();
    while let Ok(id) = ids.try_recv() {
        assert!(succeeded.insert(id), "{id} succeeded twice");
    }
    assert_eq!(succeeded, (0..10).filter(|id| id % 2 == 0).collect());
    assert_eq!(stats.acked, 5, "{stats:?}");
    assert_eq!(stats.nacked, 5, "cut-off handlers requeued: {stats:?}");
    assert_eq!(stats.retried + stats.dead_lettered, 0, "{stats:?}");
    assert!(
        starts.try_recv().is_err(),
        "nothing new started while draining"
    );

    let left: HashSet<u32> = broker
        .take_all(&queue)
        .await
        .iter()
        .map(|delivery| {
            let job: serde_json::Value = serde_json::from_slice(&delivery.data).expect("json");
            job["id"].as_u64().expect("id") as u32
        })
        .collect();
    let expected: HashSet<u32> = (0..30).filter(|id| !succeeded.contains(id)).collect();
    assert_eq!(
        left, expected,
        "every unsucceeded message is back in the queue"
    );
    broker.cleanup().await;
}
