//! Shared test support: finding the broker (fail under CI, skip loudly
//! otherwise), uniquely named queues that are deleted afterwards, and waiting
//! on events with limits instead of sleeping.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use tasque_amqp::lapin::message::Delivery;
use tasque_amqp::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use tasque_amqp::lapin::types::{AMQPValue, FieldTable};
use tasque_amqp::lapin::{Channel, Connection};
use tasque_amqp::{ConsumerHandle, ConsumerState, Message, Publisher};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The broker used when `TASQUE_TEST_AMQP_URL` is not set.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The test broker's URL.
pub fn url() -> String {
    std::env::var("TASQUE_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Connects to the test broker, or returns `None` (skip) outside CI. Under
/// `CI=true` an unreachable broker fails the test.
pub async fn broker(test: &str) -> Option<Broker> {
    let url = url();
    let reached = timeout(Duration::from_secs(10), connect(&url)).await;
    let why = match reached {
        Ok(Ok(broker)) => return Some(broker),
        Ok(Err(error)) => error.to_string(),
        Err(_) => "connecting timed out after 10 s".to_owned(),
    };
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("RabbitMQ is unreachable at {url} and CI=true, so {test} fails: {why}");
    }
    // Written to the real stderr, past the test harness's output capture,
    // so that a skip is seen even when the test "passes".
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: RabbitMQ is unreachable at {url}: {why}\n\
         !!!!!!!! start it with scripts/services (under CI=true this test fails instead)\n"
    );
    None
}

/// Returns the broker or skips the test (see [`broker`]).
#[macro_export]
macro_rules! require_broker {
    ($test:expr) => {
        match common::broker($test).await {
            Some(broker) => broker,
            None => return,
        }
    };
}

async fn connect(url: &str) -> anyhow::Result<Broker> {
    let properties = tasque_amqp::connection_properties("tasque-amqp test admin");
    let connection = Connection::connect(url, properties).await?;
    let admin = connection.create_channel().await?;
    let publisher = Publisher::connect(url).await?;
    Ok(Broker {
        url: url.to_owned(),
        connection,
        admin,
        publisher,
        suffix: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        queues: Vec::new(),
    })
}

/// The test's view of the broker.
pub struct Broker {
    /// The broker URL.
    pub url: String,
    connection: Connection,
    admin: Channel,
    /// A confirm-mode publisher.
    pub publisher: Publisher,
    suffix: String,
    queues: Vec<String>,
}

impl Broker {
    /// A name unique to this test run.
    pub fn name(&self, what: &str) -> String {
        format!("tasque-test-{what}-{}", self.suffix)
    }

    /// Declares a fresh queue; it is deleted by [`cleanup`](Broker::cleanup)
    /// and, should a test die first, expires after ten idle minutes.
    pub async fn queue(&mut self, what: &str) -> String {
        let name = self.name(what);
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongInt(600_000));
        self.admin
            .queue_declare(&name, QueueDeclareOptions::default(), arguments)
            .await
            .expect("declare test queue");
        self.queues.push(name.clone());
        name
    }

    /// Deletes `queue`, declared by someone else (a producer, a worker), at
    /// [`cleanup`](Broker::cleanup) too.
    pub fn delete_at_cleanup(&mut self, queue: &str) {
        self.queues.push(queue.to_owned());
    }

    /// Messages ready in `queue` (not counting unacked ones).
    pub async fn ready(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        self.admin
            .queue_declare(queue, passive, FieldTable::default())
            .await
            .expect("queue exists")
            .message_count()
    }

    /// Takes every ready message out of `queue` (acking them).
    pub async fn take_all(&self, queue: &str) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let no_ack = BasicGetOptions { no_ack: true };
        while let Some(message) = self.admin.basic_get(queue, no_ack).await.expect("get") {
            taken.push(message.delivery);
        }
        taken
    }

    /// Waits up to `limit` for the next message in `queue` and acks it.
    pub async fn next_message(&self, queue: &str, limit: Duration) -> Delivery {
        use futures_util::StreamExt;
        let channel = self.connection.create_channel().await.expect("channel");
        let mut consumer = channel
            .basic_consume(
                queue,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let delivery = timeout(limit, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("no message reached {queue} within {limit:?}"))
            .expect("consumer open")
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        let _ = channel.close(200, "done").await;
        delivery
    }

    /// Publishes JSON messages `{"id": n}` for task `task` to `queue`, with
    /// the id as message id too.
    pub async fn publish_ids(&self, queue: &str, task: &str, ids: std::ops::Range<u32>) {
        let messages: Vec<Message> = ids
            .map(|id| {
                Message::json(task, &serde_json::json!({ "id": id }))
                    .expect("encode")
                    .message_id(id.to_string())
            })
            .collect();
        self.publisher
            .publish_batch("", queue, &messages)
            .await
            .expect("publish confirmed");
    }

    /// Deletes the test's queues and closes the connections.
    pub async fn cleanup(self) {
        for queue in &self.queues {
            let _ = self
                .admin
                .queue_delete(queue, QueueDeleteOptions::default())
                .await;
        }
        let _ = self.publisher.close().await;
        let _ = self.connection.close(200, "test done").await;
    }
}

/// A string header of a delivery.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    match delivery.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => Some(String::from_utf8_lossy(value.as_bytes()).into()),
        AMQPValue::ShortString(value) => Some(value.to_string()),
        AMQPValue::LongLongInt(value) => Some(value.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Waits up to `limit` until the consumer's state satisfies `wanted`.
pub async fn wait_state(
    handle: &ConsumerHandle,
    limit: Duration,
    wanted: impl FnMut(&ConsumerState) -> bool,
) -> ConsumerState {
    let mut states = handle.watch_state();
    let reached = timeout(limit, states.wait_for(wanted)).await;
    match reached {
        Ok(Ok(state)) => state.clone(),
        _ => panic!(
            "consumer state not reached within {limit:?}; now {:?}",
            handle.state()
        ),
    }
}

/// Receives ids until `distinct` different ones were seen, within `limit`;
/// returns how often each id was received.
pub async fn collect_ids(
    ids: &mut mpsc::UnboundedReceiver<u32>,
    distinct: usize,
    limit: Duration,
) -> HashMap<u32, u32> {
    let mut seen: HashMap<u32, u32> = HashMap::new();
    let collected = timeout(limit, async {
        while seen.len() < distinct {
            let id = ids.recv().await.expect("handlers alive");
            *seen.entry(id).or_default() += 1;
        }
    })
    .await;
    assert!(
        collected.is_ok(),
        "only {} of {distinct} ids arrived within {limit:?}",
        seen.len()
    );
    seen
}

/// Adds ids still buffered in the channel (without waiting) to `seen`.
pub fn drain_ids(ids: &mut mpsc::UnboundedReceiver<u32>, seen: &mut HashMap<u32, u32>) {
    while let Ok(id) = ids.try_recv() {
        *seen.entry(id).or_default() += 1;
    }
}

/// Closes, from the server side, every broker connection whose client
/// properties carry `connection_name`, with `rabbitmqctl`. Returns how many.
pub fn close_connections_named(connection_name: &str) -> usize {
    let listed = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl runs (it needs root or the rabbitmq user)");
    assert!(
        listed.status.success(),
        "rabbitmqctl list_connections failed: {listed:?}"
    );
    let listing = String::from_utf8_lossy(&listed.stdout);
    let mut closed = 0;
    for line in listing
        .lines()
        .filter(|line| line.contains(connection_name))
    {
        let pid = line.split('\t').next().expect("pid column").trim();
        let status = Command::new("rabbitmqctl")
            .args([
                "close_connection",
                pid,
                "tasque test: closed from the server side",
            ])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success(), "closing {pid} failed");
        closed += 1;
    }
    closed
}
