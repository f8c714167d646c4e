//! # tasque-core: the in-process queue
//!
//! A bounded-concurrency FIFO task queue for tokio. It is the engine of
//! Tasque: durable workers and broker consumers run their jobs through it.
//!
//! ## The contract
//!
//! * **Bounded.** A [`Queue`] runs at most `max_concurrency` tasks at once
//!   (default 10; 0 is refused). Work enqueued while a slot is free starts at
//!   once; otherwise it waits. Every completion, panic, timeout or cancel frees
//!   a slot and the next waiting task starts. Queues are independent: each has
//!   its own budget.
//! * **FIFO, with priorities.** Waiting tasks start in enqueue order within a
//!   priority; lower priority values start first (default 0).
//! * **Refs.** Enqueueing returns at once with a [`TaskRef`] (inside a
//!   [`TaskHandle`] or, for the message style, alone): unique per call, and
//!   decoupled from the running task.
//! * **Task forms.** An async future ([`Queue::enqueue`]); a blocking closure
//!   run on tokio's blocking pool ([`Queue::enqueue_blocking`]); or a named
//!   function with JSON arguments from a [`TaskRegistry`] ([`Queue::call`]),
//!   resolved and decoded at enqueue so a bad call is refused with an
//!   invalid-task [`Error`] and nothing is queued.
//! * **Exactly one outcome.** Every ref receives exactly one [`Outcome`]:
//!   `Ok(value)`, or `Exit(reason)` with an [`ExitReason`] (panicked with its
//!   message, timeout, cancelled, shut down, queue restarted). A task that
//!   returns `Err` has an `Ok` outcome whose value is that `Err`.
//! * **Isolation.** A panicking task does not disturb the queue or other
//!   tasks: its caller gets `Exit(Panicked)` and its slot is freed.
//! * **Timeouts from enqueue.** A per-task timeout ([`TaskOptions::timeout`])
//!   covers queue wait plus run time. Firing while queued, the task is dropped
//!   and never starts; firing while running, an async task is aborted at once
//!   and its slot freed. A blocking closure cannot be killed: its caller gets
//!   `Exit(Timeout)` at the deadline and its [`CancelToken`] is raised, but its
//!   slot stays taken until the thread returns, so `max_concurrency` remains a
//!   true bound on running work. When a task finishes as its timeout fires,
//!   whichever is handled first wins; the other is a no-op.
//! * **Two ways to receive.** Await a [`TaskHandle`] with a wait limit
//!   (default 5 s; the limit bounds only your wait and cancels nothing), or
//!   consume a [`Mailbox`] of `(TaskRef, Outcome)` deliveries in completion
//!   order, with selective receive of one ref. A caller that went away (dropped
//!   its handle or mailbox) is ignored; the task still runs and frees its slot.
//! * **Names.** A queue may be registered by name in the process-wide
//!   registry ([`Queue::lookup`]) or in a [`NameRegistry`] of your own; a taken
//!   name is refused.
//! * **Supervision.** No task can take the queue down. If the queue's own
//!   machinery fails, it restarts clean and every caller with work in flight
//!   gets `Exit(QueueRestarted)` instead of silence.
//! * **Long-lived loops.** A [`Supervisor`] runs a background loop as a task
//!   and restarts it, with capped backoff and an `error` log saying what
//!   happened, when it panics or ends while its owner is not stopping. A panic
//!   hook can tell a task's panic (caught and reported by its queue) from any
//!   other with [`in_queued_task`].
//! * **Shutdown.** [`Queue::shutdown`] stops accepting, drops waiting work
//!   with `Exit(Shutdown)`, lets running work finish until a deadline, then
//!   cancels it.
//! * **Introspection.** [`Queue::stats`] is a cheap snapshot of queued,
//!   running, completed, failed, timed-out, cancelled counts.
//! * **Tracing.** Each task runs in a `tasque.task` span with the queue name
//!   and task id.
//!
//! ## How it works
//!
//! A queue is one lock-protected state (the waiting line, the running slots)
//! plus *runners*: a runner is a tokio task spawned when a task gets a free
//! slot, and after that task ends it takes the next waiting task itself, so a
//! busy queue does not pay a spawn per task. Every task has a cell that its
//! outcome is delivered through; the first delivery wins, which is how races
//! between completion, timeout and cancel resolve to exactly one outcome.
//!
//! ## Example
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tasque_core::{ExitReason, Outcome, Queue, TaskOptions};
//!
//! let cpu = Queue::builder("cpu").max_concurrency(2).build()?;
//! let io = Queue::builder("io").max_concurrency(50).build()?;
//!
//! let sum = cpu.enqueue_blocking(TaskOptions::new(), |_cancel| (1..=100u64).sum::<u64>())?;
//! let slow = io.enqueue_with(
//!     TaskOptions::new().timeout(Duration::from_millis(50)),
//!     async { tokio::time::sleep(Duration::from_secs(60)).await },
//! )?;
//! let crash = io.enqueue(async { panic!("boom") })?;
//!
//! assert_eq!(sum.await, Outcome::Ok(5050));
//! assert_eq!(slow.await, Outcome::Exit(ExitReason::Timeout));
//! assert_eq!(crash.await, Outcome::<()>::Exit(ExitReason::Panicked("boom".into())));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cell;
mod entry;
mod error;
mod handle;
mod mailbox;
mod names;
mod options;
mod outcome;
mod queue;
mod registry;
mod runner;
mod shared;
mod stats;
mod supervise;
mod task_ref;
mod task_scope;
mod waiting;

pub use cell::{CancelToken, Delivery};
pub use error::{AwaitError, Error};
pub use handle::TaskHandle;
pub use mailbox::Mailbox;
pub use names::{global_names, LocalNames, NameRegistry};
pub use options::{TaskOptions, Timeout, DEFAULT_AWAIT_LIMIT, DEFAULT_MAX_CONCURRENCY};
pub use outcome::{ExitReason, Outcome};
pub use queue::{Queue, QueueBuilder};
pub use registry::TaskRegistry;
pub use stats::{QueueStats, ShutdownReport};
pub use supervise::{Supervisor, DEFAULT_MAX_RESTART_DELAY, DEFAULT_RESTART_DELAY};
pub use task_ref::TaskRef;
pub use task_scope::in_queued_task;
