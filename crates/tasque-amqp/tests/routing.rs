//! One consumer reads several queues; without an `x-tasque-task` header the
//! routing key names the task.

mod common;

use std::time::Duration;

use serde::Deserialize;
use tasque_amqp::{Consumer, HandlerRegistry, Message};
use tokio::sync::mpsc;

#[derive(Deserialize)]
struct Job {
    id: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_queues_feed_one_consumer_and_the_routing_key_names_the_task() {
    let mut broker = require_broker!("several_queues_and_routing_key_tasks");
    let emails = broker.queue("emails").await;
    let images = broker.queue("images").await;
    let (done, mut ids) = mpsc::unbounded_channel();
    let (email_done, image_done) = (done.clone(), done);
    // Published to the default exchange, a message's routing key is its
    // queue's name, so each queue's name is also its task name here.
    let handlers = HandlerRegistry::new()
        .handler(emails.clone(), move |job: Job| {
            let done = email_done.clone();
            async move { done.send(job.id).map_err(|error| error.to_string()) }
        })
        .handler(images.clone(), move |job: Job| {
            let done = image_done.clone();
            async move { done.send(1000 + job.id).map_err(|error| error.to_string()) }
        });
    let consumer = Consumer::builder(broker.url.clone())
        .queues([&emails, &images])
        .max_concurrency(4)
        .handlers(handlers)
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    for id in 0..50 {
        let payload = serde_json::to_vec(&serde_json::json!({ "id": id })).expect("encode");
        let message = Message::raw(payload);
        broker
            .publisher
            .publish_to_queue(&emails, &message)
            .await
            .expect("confirmed");
        broker
            .publisher
            .publish_to_queue(&images, &message)
            .await
            .expect("confirmed");
    }

    let seen = common::collect_ids(&mut ids, 100, Duration::from_secs(30)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    assert!(
        seen.keys().filter(|&&id| id < 1000).count() == 50,
        "{seen:?}"
    );
    assert!(
        seen.keys().filter(|&&id| id >= 1000).count() == 50,
        "{seen:?}"
    );
    assert_eq!((stats.acked, stats.dead_lettered), (100, 0), "{stats:?}");
    broker.cleanup().await;
}
