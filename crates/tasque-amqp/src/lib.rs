//! # tasque-amqp: RabbitMQ as a source of Tasque work
//!
//! A [`Consumer`] takes deliveries from one or more RabbitMQ queues and runs
//! each one as a task of an in-process [`tasque_core::Queue`], then settles
//! it with the broker. A crashing, failing or hung handler is therefore an
//! ack or nack decision, never a dead consumer: the failure mode where a
//! crashed worker leaves the broker believing its prefetched deliveries are
//! still busy (a "zombie" node that receives nothing) cannot happen here.
//!
//! ## The model: delivery → task → settlement
//!
//! * **Prefetch = concurrency.** The channel's `basic.qos` prefetch equals
//!   the engine's `max_concurrency`, so the broker never hands the consumer
//!   more messages than it can run at once, and every delivery starts at once.
//! * **Routing to a handler.** The task name comes from the
//!   [`x-tasque-task`](headers::TASK) header or, when absent, the routing
//!   key. Handlers are registered by name in a [`HandlerRegistry`], typed with
//!   serde: a JSON payload in, `Result<(), E: Display>` out.
//! * **One task per delivery.** The handler runs through the engine with a
//!   per-message timeout, so a panic becomes `Exit(Panicked)` and a hang
//!   becomes `Exit(Timeout)`, both caught; the slot is freed either way.
//! * **Settlement.** Success → `basic.ack`. A failed attempt (error, panic,
//!   timeout) is retried as chosen by [`RetryMode`]:
//!   * [`RetryMode::Republish`] (default): attempts are counted in the
//!     [`x-tasque-attempts`](headers::ATTEMPTS) header. RabbitMQ's requeue
//!     never changes headers, so the consumer republishes a copy to the tail
//!     of the source queue with the count raised (publisher-confirmed), then
//!     acks the original. After [`max_attempts`](ConsumerBuilder::max_attempts)
//!     failures the message is dead-lettered.
//!   * [`RetryMode::Requeue`]: `basic.nack` with requeue, uncounted.
//! * **Dead-lettering.** Exhausted messages, undecodable payloads and unknown
//!   task names go to the [`DeadLetter`] exchange or queue you name, with the
//!   reason in [`x-tasque-dead-letter-reason`](headers::DEAD_LETTER_REASON);
//!   the last two at once, never retried. Without a target they are rejected
//!   without requeue, which hands them to the queue's own broker-side
//!   dead-letter exchange if it has one.
//! * **Work cut short by us** (shutdown deadline, lost connection) is not the
//!   message's fault: it is requeued without counting an attempt.
//!
//! ## Reconnects
//!
//! A lost connection or channel ends the session. The broker takes back every
//! unacked delivery and will redeliver it, so the consumer cancels the tasks
//! of that session and drops their settlements: an ack for a delivery of a
//! dead channel is never sent on the new one (delivery tags belong to their
//! channel). Nothing is acked twice, nothing is lost, and no slot stays held
//! by work that can no longer be acknowledged. The consumer then reconnects
//! with exponential backoff and jitter, and checks the topology again.
//! Delivery is at-least-once: a handler may see a message again after a
//! reconnect, so handlers should be idempotent.
//!
//! ## Shutdown
//!
//! [`ConsumerHandle::shutdown`] cancels the broker consumers (no new
//! deliveries), lets running handlers finish within the grace period and
//! settles them as usual, then cancels the rest and nacks them with requeue.
//!
//! ## Observability
//!
//! [`ConsumerHandle::stats`] returns [`ConsumerStats`] (received, acked,
//! nacked, retried, dead-lettered, redelivered, dropped settlements,
//! reconnects, and the engine's counts). Each delivery runs in a
//! `tasque.amqp.delivery` tracing span with the queue, task, delivery tag,
//! message id and attempt.
//!
//! ## Administration
//!
//! [`Admin`] declares queues (durable, unless they exist), reports a queue's
//! ready messages and consumers ([`QueueStatus`]) and purges queues; the
//! `tasque amqp` commands of the CLI use it.
//!
//! ## Example
//!
//! ```no_run
//! # async fn example() -> Result<(), tasque_amqp::Error> {
//! use std::time::Duration;
//! use serde::Deserialize;
//! use tasque_amqp::{Consumer, DeadLetter, HandlerRegistry, Message, Publisher};
//!
//! #[derive(Deserialize)]
//! struct Welcome { email: String }
//!
//! let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
//! let handlers = HandlerRegistry::new().handler("welcome", |job: Welcome| async move {
//!     if job.email.contains('@') { Ok(()) } else { Err(format!("bad address {}", job.email)) }
//! });
//! let consumer = Consumer::builder(url)
//!     .queue("mail")
//!     .max_concurrency(16)
//!     .handlers(handlers)
//!     .timeout(Duration::from_secs(30))
//!     .max_attempts(3)
//!     .dead_letter(DeadLetter::queue("mail.dead"))
//!     .build()?
//!     .start()?;
//!
//! let publisher = Publisher::connect(url).await?;
//! let message = Message::json("welcome", &serde_json::json!({ "email": "a@example.com" }))?;
//! publisher.publish_to_queue("mail", &message).await?; // returns once the broker confirmed
//!
//! let stats = consumer.shutdown(Duration::from_secs(10)).await?;
//! println!("acked {}", stats.acked);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
mod config;
mod connect;
mod consumer;
mod error;
mod handler;
pub mod headers;
mod publisher;
mod session;
mod settle;
mod stats;

pub use admin::{Admin, QueueStatus};
pub use config::{
    ConsumerBuilder, DeadLetter, RetryMode, DEFAULT_MAX_ATTEMPTS, DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_TIMEOUT,
};
pub use connect::connection_properties;
pub use consumer::{Consumer, ConsumerHandle};
pub use error::Error;
pub use handler::{HandlerRegistry, MessageContext};
/// The AMQP client this crate is built on, for declaring topology and other
/// direct use.
pub use lapin;
pub use publisher::{Message, Publisher};
pub use stats::{ConsumerState, ConsumerStats};
/// Per-message timeouts are [`tasque_core`] timeouts.
pub use tasque_core::Timeout;
