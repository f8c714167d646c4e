//! # tasque-worker: the durable worker
//!
//! A worker is a source of jobs feeding the in-process queue of
//! [`tasque_core`]: it claims ready jobs from a [`Store`](tasque_durable::Store)
//! under a lease, runs each through a bounded [`tasque_core::Queue`] (panic
//! isolation, per-run timeout), renews the leases of running jobs, and writes
//! each outcome back. Claiming, heartbeats and the final complete/fail are the
//! only durable-specific parts.
//!
//! * **Handlers** are registered by task name, typed with serde
//!   ([`Handlers::learn`]): params in, result out. `Err` fails the attempt with
//!   its message; a panic or a timeout fails it with the reason recorded;
//!   params that do not decode fail it with a clear reason. A job whose task
//!   name no handler knows is **deferred** (given back for later, no attempt
//!   counted), so rolling deploys never burn attempts.
//! * **Blocking handlers** ([`Handlers::learn_blocking`]) run on tokio's blocking pool. A
//!   thread cannot be killed: when its attempt ends early (timeout, cancel, lost lease,
//!   shutdown deadline) its cancel token is raised, and a handler that ignores it keeps its
//!   slot until the thread returns ([`WorkerStats::busy_slots`]).
//! * **Slots.** A claim never takes more jobs than the worker has free slots.
//! * **Batching.** Completions are written in batches (`complete_many`): one
//!   round trip finishes many jobs.
//! * **Heartbeats.** Leases of running jobs are renewed every third of the
//!   lease; a job cancelled in the store, or whose lease was lost, has its
//!   handler aborted and its outcome dropped.
//! * **Leader.** One worker per namespace is elected leader through the database
//!   (a lease row timed by the database clock) and runs the maintenance services:
//!   the rescuer (jobs whose lease expired, a crashed worker's, become claimable
//!   again; this counts as a failed attempt), the cleaner and the scheduler of
//!   periodic jobs ([`WorkerBuilder::schedule`]). When the leader dies, another
//!   worker takes over within the lease's time to live ([`WorkerBuilder::leader_lease`]).
//! * **Supervision.** Every background loop (claim loop, reporter, heartbeat,
//!   leader election, rescuer, cleaner, scheduler, wake-up forwarder) runs under a [`tasque_core::Supervisor`]:
//!   a panic, or a return while the worker is not stopping, is logged at `error`
//!   and the loop restarts on the same shared state after a capped backoff
//!   (counted in [`WorkerStats::restarts`]). A job the store cannot decode is
//!   failed for good by the claim that took it (`"kind": "undecodable_job"`).
//! * **Shutdown.** [`RunningWorker::shutdown`] stops claiming, lets running
//!   jobs finish within a grace period, then aborts and *releases* the rest:
//!   they are claimable at once, not after their lease expires.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn tasque_durable::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use serde::Deserialize;
//! use tasque_worker::{Handlers, JobContext, Worker};
//!
//! #[derive(Deserialize)]
//! struct Email { to: String }
//!
//! let handlers = Handlers::new();
//! handlers.learn("send_email", |_ctx: JobContext, email: Email| async move {
//!     println!("sending to {}", email.to);
//!     Ok::<_, std::io::Error>("sent")
//! });
//! let worker = Worker::builder(store).handlers(handlers).concurrency(20).build()?.start()?;
//! // ... later
//! worker.shutdown(Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! # Durable workflows
//!
//! A handler can be a durable workflow through its [`JobContext`]:
//!
//! * [`JobContext::step`] runs a closure once per job and stores its result as a checkpoint;
//!   every later run of the job (after a failure, a crash, a sleep or an event wait) gets the
//!   stored result back instead of running the closure again. Each write extends the lease.
//! * [`JobContext::sleep_for`] / [`JobContext::sleep_until`] end the run and free its slot
//!   at once; the job is claimed again at the wake time, replays its steps, and the sleep
//!   call returns. No attempt is counted.
//! * [`JobContext::wait_for_event`] returns an event's payload ([`EventOutcome`]); if the
//!   event was not emitted yet, the run ends (holding no slot) and the job resumes when it is
//!   (`Store::emit_event`, `tasque emit`) or when the timeout passes.
//!
//! A suspending call never returns in the run that suspends: the worker drops the handler's
//! future and writes nothing more for that run (counted in [`WorkerStats::suspended`]).
//!
//! **Replay.** Each call is identified by its name, unique within the job (a job waits for a
//! given event name at most once). Code between calls runs again on every re-run, so side
//! effects belong inside steps. Sleeps and waits store their own checkpoints, named
//! `tasque:sleep:NAME` and `tasque:event:EVENT` (the [`RESERVED_PREFIX`] user steps may not
//! use): a sleep records its wake time before suspending, so a re-run returns at once once that
//! time has passed and never restarts the clock (a run that comes back early, e.g. after a
//! crash, suspends again until the same time); a wait records what it got (the payload, or
//! timed out) as soon as it knows, so later runs get the same answer even if the event is
//! emitted again. A run that lost its lease (or whose job was cancelled) gets
//! [`Error::LeaseLost`] (or [`Error::Cancelled`]) from its next workflow write, and its
//! outcome is dropped whatever the handler returns.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use serde_json::json;
//! use tasque_durable::{JobState, Spawn, Store};
//! use tasque_worker::{EventOutcome, Handlers, JobContext, Worker};
//!
//! type BoxError = Box<dyn std::error::Error + Send + Sync>;
//!
//! let store: Arc<dyn Store> = Arc::new(tasque_sqlite::SqliteStore::memory().await?);
//! store.migrate().await?;
//! let handlers = Handlers::new();
//! handlers.learn("onboard", |ctx: JobContext, email: String| async move {
//!     // Runs once per job, however often the handler runs.
//!     let account: u64 = ctx
//!         .step("create-account", || async { Ok::<_, BoxError>(42) })
//!         .await?;
//!     // Ends this run; a new run resumes here 200 ms later.
//!     ctx.sleep_for("grace-period", Duration::from_millis(200)).await?;
//!     // An event emitted before the wait satisfies it at once.
//!     let confirmed = match ctx.wait_for_event("email-confirmed", Duration::from_secs(60)).await? {
//!         EventOutcome::Received(payload) => payload,
//!         EventOutcome::TimedOut => json!(null),
//!     };
//!     Ok::<_, BoxError>(json!({ "account": account, "email": email, "confirmed": confirmed }))
//! });
//! let worker = Worker::builder(store.clone())
//!     .handlers(handlers)
//!     .poll_interval(Duration::from_millis(20))
//!     .build()?
//!     .start()?;
//! let job = store
//!     .spawn(Spawn::new("default", "onboard", json!("ada@example.com")))
//!     .await?
//!     .job_id;
//! store.emit_event("email-confirmed", json!({ "via": "link" })).await?;
//! while store.get_result(job).await?.state != JobState::Completed {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//! }
//! let result = store.get_result(job).await?.result;
//! assert_eq!(result, Some(json!({ "account": 42, "email": "ada@example.com", "confirmed": { "via": "link" } })));
//! worker.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod context;
mod control;
mod error;
mod handlers;
mod inflight;
mod maintenance;
mod report;
mod span;
mod stop;
mod typed;
mod verdict;
mod worker;
mod workflow;

pub use config::{
    WorkerBuilder, DEFAULT_CONCURRENCY, DEFAULT_DEFER_UNKNOWN, DEFAULT_LEADER_LEASE, DEFAULT_LEASE,
    DEFAULT_POLL_INTERVAL, DEFAULT_SCHEDULER_INTERVAL, DEFAULT_WAKE_INTERVAL,
};
pub use context::JobContext;
pub use error::Error;
pub use handlers::Handlers;
pub use worker::{RunningWorker, ShutdownReport, Worker};
pub use workflow::{EventOutcome, RESERVED_PREFIX};

/// Counts of what a running worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerStats {
    /// Jobs running now.
    pub running: usize,
    /// Slots taken now: the running jobs, plus blocking handlers whose attempt already
    /// ended (timed out, cancelled, released) but whose thread has not returned yet.
    pub busy_slots: usize,
    /// Runs completed.
    pub completed: u64,
    /// Failed attempts recorded.
    pub failed: u64,
    /// Runs deferred (unknown task names, snoozes).
    pub deferred: u64,
    /// Runs that ended by suspending their job (a sleep or an event wait).
    pub suspended: u64,
    /// Runs released (shutdown).
    pub released: u64,
    /// Runs aborted because their job was cancelled or their lease lost.
    pub aborted: u64,
    /// Outcomes the store refused because the run no longer owned its job.
    pub stale: u64,
    /// Outcomes that could not be written because the store failed.
    pub store_errors: u64,
    /// Restarts of the worker's background loops (claim loop, reporter, heartbeat, rescuer,
    /// cleaner, wake-up forwarder) after a panic or an unexpected end, each also logged at
    /// `error`.
    pub restarts: u64,
}
