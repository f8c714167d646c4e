//! The connection is closed from the server side mid-run: the consumer
//! reconnects, the deliveries in flight at the loss are redelivered (their
//! settlements on the dead channel are dropped, not sent on the new one), and
//! every message is still processed.

mod common;

use std::time::Duration;

use serde::Deserialize;
use tasque_amqp::{Consumer, ConsumerState, HandlerRegistry};
use tokio::sync::{mpsc, watch};

#[derive(Deserialize)]
struct Job {
    id: u32,
}

/// Messages that complete before the connection is closed.
const BEFORE: u32 = 50;
/// Messages in all.
const TOTAL: u32 = 300;
/// The prefetch, hence how many messages are in flight at the loss.
const PREFETCH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_close_reconnects_and_every_message_is_still_processed() {
    let mut broker = require_broker!("server_side_close_reconnects");
    let queue = broker.queue("reconnect").await;
    let connection_name = broker.name("consumer-connection");
    let (done, mut ids) = mpsc::unbounded_channel();
    let (started, mut starts) = mpsc::unbounded_channel();
    // Messages after the first BEFORE wait for the gate, so that exactly a
    // prefetch worth of them is running when the connection is closed.
    let (open_gate, gate) = watch::channel(false);
    let handlers = HandlerRegistry::new().handler("work", move |job: Job| {
        let (done, started, mut gate) = (done.clone(), started.clone(), gate.clone());
        async move {
            if job.id >= BEFORE {
                started.send(job.id).expect("test alive");
                let _ = gate.wait_for(|open| *open).await;
            }
            done.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .max_concurrency(PREFETCH)
        .handlers(handlers)
        .connection_name(&connection_name)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    broker.publish_ids(&queue, "work", 0..TOTAL).await;

    let before = common::collect_ids(&mut ids, BEFORE as usize, Duration::from_secs(30)).await;
    let mut in_flight = Vec::new();
    for _ in 0..PREFETCH {
        let id = tokio::time::timeout(Duration::from_secs(30), starts.recv())
            .await
            .expect("a prefetch worth of handlers started")
            .expect("handlers alive");
        in_flight.push(id);
    }
    assert_eq!(common::close_connections_named(&connection_name), 1);
    common::wait_state(
        &consumer,
        Duration::from_secs(30),
        |state| matches!(state, ConsumerState::Consuming { session } if *session >= 2),
    )
    .await;
    open_gate.send_replace(true);

    let rest = (TOTAL - BEFORE) as usize;
    let mut after = common::collect_ids(&mut ids, rest, Duration::from_secs(60)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    common::drain_ids(&mut ids, &mut after);

    assert!(before.values().all(|&count| count == 1), "{before:?}");
    for id in &in_flight {
        assert!(after.contains_key(id), "in-flight message {id} was lost");
    }
    assert_eq!(before.len() + after.len(), TOTAL as usize);
    assert!(after.values().all(|&count| count == 1), "{after:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(
        stats.settlements_dropped >= PREFETCH as u64,
        "in-flight settlements of the dead channel are dropped: {stats:?}"
    );
    assert!(stats.redelivered >= PREFETCH as u64, "{stats:?}");
    assert_eq!(stats.acked, u64::from(TOTAL), "{stats:?}");
    assert_eq!(broker.ready(&queue).await, 0);
    broker.cleanup().await;
}
