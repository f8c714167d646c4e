//! # Tasque
//!
//! Background work for Rust services: bounded, isolated, retried, durable,
//! observable. This façade crate is the one dependency users add; it
//! re-exports the layers, with engines picked by cargo feature (as `sqlx`
//! does):
//!
//! * the **in-process queue** ([`Queue`], from `tasque-core`, always on):
//!   bounded concurrency, FIFO with priorities, caller refs, await and
//!   mailbox delivery, per-task timeouts counted from enqueue, panic
//!   isolation, named queues, supervision and graceful shutdown;
//! * the **durable queue** (feature `durable`): the job model and the
//!   [`durable::Store`] trait ([`durable`]), and the [`worker`] that claims
//!   jobs and runs them through the in-process queue, with engines
//!   [`sqlite`] (feature `sqlite`, **on by default**), `postgres` (feature
//!   `postgres`) and `mysql` (feature `mysql`);
//! * the **RabbitMQ source** `amqp` (feature `amqp`): deliveries run
//!   through the same engine, acked on success and nacked on failure;
//! * the **operator surface** lives in the `tasque` binary (crate
//!   `tasque-cli`).
//!
//! Feature `full` turns on every engine and source.
//!
//! See [`tasque_core`] for the in-process contract in full.
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tasque::{Outcome, Queue};
//!
//! let queue = Queue::builder("emails").max_concurrency(4).build()?;
//! let sent = queue.enqueue(async { "sent" })?;
//! assert_eq!(sent.await, Outcome::Ok("sent"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use tasque_core::*;

/// The in-process queue crate, for paths like `tasque::core::Queue`.
pub use tasque_core as core;

/// The durable model: jobs, runs, options, states and the `Store` trait every
/// engine implements.
#[cfg(feature = "durable")]
pub use tasque_durable as durable;

/// The durable worker: handlers by task name, claims, heartbeats, outcomes.
#[cfg(feature = "durable")]
pub use tasque_worker as worker;

#[cfg(feature = "durable")]
mod open;

#[cfg(feature = "durable")]
pub use open::{open, OpenError};

/// The client: typed jobs, enqueue (also inside the caller's transaction), wait.
#[cfg(feature = "durable")]
pub use tasque_durable::client::{
    Client, ClientError, Enqueued, Job, JobOptions, JobRef, JobSnapshot,
};

/// The worker and its handler set, for `Worker::builder(client.store().clone())`.
#[cfg(feature = "durable")]
pub use tasque_worker::{Handlers, JobContext, Worker};

/// Test helpers: test modes, enqueue assertions, a test worker and one virtual clock.
#[cfg(feature = "testing")]
pub mod testing;

/// The SQLite engine (embedded default).
#[cfg(feature = "sqlite")]
pub use tasque_sqlite as sqlite;

/// The PostgreSQL engine.
#[cfg(feature = "postgres")]
pub use tasque_postgres as postgres;

/// The MySQL / MariaDB engine.
#[cfg(feature = "mysql")]
pub use tasque_mysql as mysql;

/// The RabbitMQ source.
#[cfg(feature = "amqp")]
pub use tasque_amqp as amqp;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
