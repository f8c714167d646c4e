//! RabbitMQ restarted (stopped and started by this test) under a running consumer (issue 18):
//! the consumer reconnects on its own, no message is lost, and none is acked twice: a
//! message is handled again only as a broker redelivery of one that was unacked when the
//! connection died. This binary holds this one test only, so nothing else in it uses the
//! broker while it is down; the broker is always started again (a guard). Needs root
//! (`rabbitmqctl`); under `CI=true` an unreachable broker fails the test.

mod common;
#[path = "../../tasque-worker/tests/support/servers.rs"]
mod servers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tasque_amqp::{Admin, Consumer, ConsumerState, HandlerRegistry, MessageContext};

#[derive(Deserialize)]
struct Job {
    id: u32,
}

const TOTAL: u32 = 2_000;
const PREFETCH: usize = 20;
const PATIENCE: Duration = Duration::from_secs(180);
/// How long each handling takes: the whole run lasts about 15 s, so that the restart (begun
/// a third of the way in) lands while messages are in flight.
const HANDLER: Duration = Duration::from_millis(150);

/// Each handling of a message: its id and whether the broker marked it redelivered.
type Handled = Arc<Mutex<Vec<(u32, bool)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_under_a_consumer_loses_nothing_and_acks_nothing_twice() {
    let mut broker = require_broker!("rabbitmq_restart_under_a_consumer");
    let server = servers::Server::rabbitmq(&broker.url);
    // A durable queue and persistent messages: both survive the restart.
    let queue = broker.name("restart");
    let admin = Admin::connect(&broker.url).await.unwrap();
    assert!(admin.ensure_queue(&queue).await.unwrap());
    admin.close().await;
    broker.track(&queue);
    broker.publish_ids(&queue, "work", 0..TOTAL).await;

    let handled: Handled = Arc::default();
    let record = handled.clone();
    let handlers = HandlerRegistry::new().handler_with_context(
        "work",
        move |job: Job, context: MessageContext| {
            let record = record.clone();
            async move {
                tokio::time::sleep(HANDLER).await;
                record
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((job.id, context.redelivered));
                Ok::<(), String>(())
            }
        },
    );
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .max_concurrency(PREFETCH)
        .handlers(handlers)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(2))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    let count = |handled: &Handled| handled.lock().unwrap_or_else(|e| e.into_inner()).len();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while count(&handled) < (TOTAL / 3) as usize {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The test's own connections die with the broker; only the consumer must recover.
    broker.forget_connections().await;
    tokio::task::spawn_blocking(move || server.restart(Duration::from_secs(3)))
        .await
        .expect("restart the broker");
    common::wait_state(
        &consumer,
        PATIENCE,
        |state| matches!(state, ConsumerState::Consuming { session } if *session >= 2),
    )
    .await;

    let distinct = |handled: &Handled| {
        let handled = handled.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u32> = handled.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    while distinct(&handled) < TOTAL as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {TOTAL} messages were handled: some were lost",
            distinct(&handled)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = consumer
        .shutdown(Duration::from_secs(10))
        .await
        .expect("stopped");

    let handled = handled.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut times: HashMap<u32, Vec<bool>> = HashMap::new();
    for (id, redelivered) in &handled {
        times.entry(*id).or_default().push(*redelivered);
    }
    assert_eq!(times.len(), TOTAL as usize, "a message was lost");
    let again: Vec<_> = times.iter().filter(|(_, seen)| seen.len() > 1).collect();
    for (id, seen) in &again {
        // The later handlings are the broker's redeliveries of a message unacked at the loss.
        assert!(
            seen[1..].iter().all(|redelivered| *redelivered),
            "message {id} was handled again without a redelivery: {seen:?}"
        );
    }
    assert!(
        stats.settlements_dropped + stats.redelivered >= 1,
        "the restart landed while messages were in flight: {stats:?}"
    );
    // Unacked at the loss: at most a prefetch worth of messages.
    assert!(
        again.len() <= PREFETCH,
        "{} messages handled twice",
        again.len()
    );
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(
        stats.acked <= u64::from(TOTAL) + stats.redelivered,
        "an ack beyond one per delivery: {stats:?}"
    );
    broker.reconnect().await;
    assert_eq!(broker.ready(&queue).await, 0, "messages left behind");
    broker.cleanup().await;
    eprintln!(
        "restart test: {} handlings of {TOTAL} messages, {} handled twice; {stats:?}",
        handled.len(),
        again.len()
    );
}
