//! Failure handling against a real broker: panics and timeouts are retried
//! until every message is acked once; exhausted, undecodable and unknown-task
//! messages are dead-lettered with their reason.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tasque_amqp::{headers, Consumer, DeadLetter, HandlerRegistry, Message, RetryMode};
use tokio::sync::mpsc;

#[derive(Deserialize)]
struct Job {
    id: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_with_panics_and_timeouts_are_each_acked_exactly_once() {
    let mut broker = require_broker!("thousand_messages_with_panics_and_timeouts");
    let queue = broker.queue("work").await;
    let dead = broker.queue("dead").await;
    let (done, mut ids) = mpsc::unbounded_channel();
    let finished_at = Arc::new(Mutex::new(Vec::with_capacity(1000)));
    let finish_times = Arc::clone(&finished_at);
    // On the first delivery, 10% panic (id % 20 in {0, 1}) and 5% hang past
    // the timeout (id % 20 == 2); every retry succeeds.
    let handlers = HandlerRegistry::new().handler_with_context("work", move |job: Job, context| {
        let (done, finish_times) = (done.clone(), Arc::clone(&finish_times));
        async move {
            if context.attempt == 1 && job.id % 20 < 2 {
                panic!("planned panic for message {}", job.id);
            }
            if context.attempt == 1 && job.id % 20 == 2 {
                std::future::pending::<()>().await;
            }
            if context.attempt == 1 {
                finish_times.lock().unwrap().push(Instant::now());
            }
            done.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .max_concurrency(20)
        .handlers(handlers)
        .timeout(Duration::from_secs(1))
        .max_attempts(3)
        .dead_letter(DeadLetter::queue(&dead))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    broker.publish_ids(&queue, "work", 0..1000).await;

    let mut seen = common::collect_ids(&mut ids, 1000, Duration::from_secs(90)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    common::drain_ids(&mut ids, &mut seen);

    let repeated: Vec<_> = seen.iter().filter(|(_, &count)| count != 1).collect();
    assert!(
        repeated.is_empty(),
        "ids handled more than once: {repeated:?}"
    );
    assert_eq!(stats.acked, 1000, "{stats:?}");
    assert_eq!(
        stats.retried, 150,
        "100 panics + 50 timeouts retried once: {stats:?}"
    );
    assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    assert_eq!(stats.received, 1150, "{stats:?}");
    assert_eq!(
        stats.engine.failed, 100,
        "panics caught by the engine: {stats:?}"
    );
    assert_eq!(stats.engine.timed_out, 50, "{stats:?}");
    // Receiving never stopped: while panicking and hung handlers failed
    // (the hung ones holding a slot until their timeout), first deliveries
    // kept succeeding far more often than once per timeout.
    let times = finished_at.lock().unwrap().clone();
    let longest_gap = times.windows(2).map(|pair| pair[1] - pair[0]).max();
    assert!(
        longest_gap < Some(Duration::from_secs(1)),
        "successes stalled for {longest_gap:?}"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    assert_eq!(broker.ready(&dead).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_mode_redelivers_failures_until_each_message_is_acked_once() {
    let mut broker = require_broker!("requeue_mode_redelivers_failures");
    let queue = broker.queue("requeue").await;
    let (done, mut ids) = mpsc::unbounded_channel();
    let failed_once = Arc::new(Mutex::new(HashSet::new()));
    let handlers = HandlerRegistry::new().handler("work", move |job: Job| {
        let done = done.clone();
        let failed_once = Arc::clone(&failed_once);
        async move {
            if job.id % 10 == 0 && failed_once.lock().unwrap().insert(job.id) {
                panic!("planned panic for message {}", job.id);
            }
            done.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .max_concurrency(10)
        .handlers(handlers)
        .retry_mode(RetryMode::Requeue)
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    broker.publish_ids(&queue, "work", 0..200).await;

    let mut seen = common::collect_ids(&mut ids, 200, Duration::from_secs(60)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    common::drain_ids(&mut ids, &mut seen);

    assert!(seen.values().all(|&count| count == 1), "{seen:?}");
    assert_eq!(stats.acked, 200, "{stats:?}");
    assert_eq!(stats.nacked, 20, "{stats:?}");
    assert_eq!(
        stats.redelivered, 20,
        "the broker flags requeued messages: {stats:?}"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_is_dead_lettered_after_its_attempt_limit() {
    let mut broker = require_broker!("always_failing_message_is_dead_lettered");
    let queue = broker.queue("failing").await;
    let dead = broker.queue("failing-dead").await;
    let (tried, mut attempts) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().handler_with_context("flaky", move |_: Job, context| {
        let tried = tried.clone();
        async move {
            tried.send(context.attempt).expect("test alive");
            Err(format!(
                "upstream unavailable on attempt {}",
                context.attempt
            ))
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .handlers(handlers)
        .max_attempts(3)
        .dead_letter(DeadLetter::queue(&dead))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    let message = Message::json("flaky", &serde_json::json!({ "id": 7 }))
        .expect("encode")
        .message_id("always-fails")
        .header("x-origin", "test");
    broker
        .publisher
        .publish_to_queue(&queue, &message)
        .await
        .expect("confirmed");

    let delivery = broker.next_message(&dead, Duration::from_secs(30)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    let mut seen_attempts = Vec::new();
    while let Ok(attempt) = attempts.try_recv() {
        seen_attempts.push(attempt);
    }
    assert_eq!(seen_attempts, vec![1, 2, 3]);
    let reason = common::header(&delivery, headers::DEAD_LETTER_REASON).expect("reason header");
    assert!(reason.contains("gave up after 3 attempts"), "{reason}");
    assert!(
        reason.contains("upstream unavailable on attempt 3"),
        "{reason}"
    );
    assert_eq!(
        common::header(&delivery, headers::ATTEMPTS).as_deref(),
        Some("3")
    );
    assert_eq!(
        common::header(&delivery, headers::SOURCE_QUEUE),
        Some(queue.clone())
    );
    assert_eq!(
        common::header(&delivery, "x-origin").as_deref(),
        Some("test")
    );
    assert_eq!(
        delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str()),
        Some("always-fails")
    );
    assert_eq!(delivery.data, message.payload());
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.acked),
        (2, 1, 0),
        "{stats:?}"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_payloads_and_unknown_tasks_are_dead_lettered_at_once() {
    let mut broker = require_broker!("undecodable_and_unknown_are_dead_lettered");
    let queue = broker.queue("poison").await;
    let dead = broker.queue("poison-dead").await;
    let (ran, mut runs) = mpsc::unbounded_channel::<u32>();
    let handlers = HandlerRegistry::new().handler("work", move |job: Job| {
        let ran = ran.clone();
        async move {
            ran.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .handlers(handlers)
        .dead_letter(DeadLetter::queue(&dead))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    let garbage = Message::raw(&b"{not json"[..]).task("work");
    broker
        .publisher
        .publish_to_queue(&queue, &garbage)
        .await
        .expect("confirmed");
    let first = broker.next_message(&dead, Duration::from_secs(30)).await;
    let unknown = Message::json("no-such-task", &serde_json::json!({ "id": 1 })).expect("encode");
    broker
        .publisher
        .publish_to_queue(&queue, &unknown)
        .await
        .expect("confirmed");
    let second = broker.next_message(&dead, Duration::from_secs(30)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");

    let reason = common::header(&first, headers::DEAD_LETTER_REASON).expect("reason");
    assert!(reason.starts_with("undecodable payload"), "{reason}");
    assert_eq!(first.data, b"{not json");
    assert_eq!(
        common::header(&first, headers::ATTEMPTS).as_deref(),
        Some("1")
    );
    let reason = common::header(&second, headers::DEAD_LETTER_REASON).expect("reason");
    assert!(
        reason.contains("unknown task") && reason.contains("no-such-task"),
        "{reason}"
    );
    assert!(runs.try_recv().is_err(), "no handler ran");
    assert_eq!(
        (stats.dead_lettered, stats.retried, stats.received),
        (2, 0, 2),
        "{stats:?}"
    );
    assert_eq!(broker.ready(&queue).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panicking_before_its_future_fails_the_attempt_and_consuming_goes_on_issue_12() {
    let mut broker = require_broker!("handler_panicking_before_its_future");
    let queue = broker.queue("eager").await;
    let dead = broker.queue("eager-dead").await;
    let (done, mut ids) = mpsc::unbounded_channel();
    // The panic is in the handler's synchronous part, before any future exists.
    let handlers = HandlerRegistry::new().handler("eager", move |job: Job| {
        assert!(job.id != 0, "eager handler refuses message 0");
        let done = done.clone();
        async move {
            done.send(job.id).expect("test alive");
            Ok::<(), String>(())
        }
    });
    let consumer = Consumer::builder(broker.url.clone())
        .queue(&queue)
        .handlers(handlers)
        .max_attempts(2)
        .dead_letter(DeadLetter::queue(&dead))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    broker.publish_ids(&queue, "eager", 0..20).await;
    let delivery = broker.next_message(&dead, Duration::from_secs(30)).await;
    let mut seen = common::collect_ids(&mut ids, 19, Duration::from_secs(30)).await;
    broker.publish_ids(&queue, "eager", 20..30).await;
    let later = common::collect_ids(&mut ids, 10, Duration::from_secs(30)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    common::drain_ids(&mut ids, &mut seen);

    let reason = common::header(&delivery, headers::DEAD_LETTER_REASON).expect("reason");
    assert!(reason.contains("refuses message 0"), "{reason}");
    assert!(seen.values().all(|&count| count == 1), "{seen:?}");
    assert!(later.keys().all(|id| (20..30).contains(id)), "{later:?}");
    assert_eq!(stats.restarts, 0, "the consumer loop never died: {stats:?}");
    assert_eq!(
        (stats.acked, stats.retried, stats.dead_lettered),
        (29, 1, 1),
        "{stats:?}"
    );
    broker.cleanup().await;
}
