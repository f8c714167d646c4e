//! The durable queue's model: jobs, runs, options, states, and the [`Store`] trait that every
//! database engine implements.
//!
//! # The model
//!
//! A **job** is the durable unit of work: a queue, a task name (which handler runs it), JSON
//! params, JSON headers and [`SpawnOptions`]. Each attempt at it is a **run**, named by a
//! [`RunId`] (the job id and a sequence number). A worker [claims](Store::claim) ready jobs under
//! a **lease**; while the lease holds, no other claimer sees the job. The worker heartbeats
//! ([`Store::extend_leases`]) and finally [completes](Store::complete) or [fails](Store::fail)
//! the run. Every such write names the run, and is applied only if that run still owns the job:
//! a worker whose lease expired and whose job was rescued or claimed again gets
//! [`Error::StaleRun`] and changes nothing.
//!
//! Delivery is at-least-once: a job runs more than once only when a lease really expired (the
//! worker crashed, hung, or lost its database), and that counts as a failed attempt.
//!
//! # States and transitions
//!
//! ```text
//!            spawn (run at now)            spawn (run at later)
//!                   │                               │
//!                   ▼          time passes          ▼
//!              ┌─────────┐ ◄──────────────── ┌───────────┐
//!              │available│                   │ scheduled │ ◄─── fail / rescue, attempts left
//!              └────┬────┘                   └───────────┘ ◄─── schedule_run (no attempt counted)
//!          claim    │   ▲ release (no attempt counted)  ▲
//!                   ▼   │                               │
//!              ┌─────────┐ ─────────────────────────────┘
//!              │ running │ ── complete ──► completed
//!              └─────────┘ ── fail / rescue, no attempts left ──► failed ──┐
//!       cancel (any unfinished state) ──────────────────► cancelled ───────┤
//!       retry (failed or cancelled) ──► available, attempt 1, new run ◄────┘
//! ```
//!
//! | from | operation | to | notes |
//! |---|---|---|---|
//! | — | [`spawn`](Store::spawn) | available / scheduled | run 1, attempt 1; an idempotency key already used in the queue, or a [`unique`] slot held, returns that job |
//! | available | [`claim`](Store::claim) | running | lease starts; first claim records the first start |
//! | running | [`extend_lease`](Store::extend_lease) | running | only the owning run |
//! | running | [`complete`](Store::complete) | completed (or deleted) | only the owning run |
//! | running | [`fail`](Store::fail), lease expiry ([`rescue_expired`](Store::rescue_expired)) | scheduled (new run, attempt + 1) or failed | [`retry`] policy |
//! | running | [`schedule_run`](Store::schedule_run), [`release`](Store::release) | scheduled / available (new run, same attempt) | attempt not counted |
//! | pending, running | [`cancel`](Store::cancel), cancellation policy | cancelled | finished jobs: a reported no-op |
//! | failed, cancelled | [`retry`](Store::retry) | available / scheduled (new run, attempt 1) | other states refused |
//! | not running | [`delete`](Store::delete), [`purge`](Store::purge), [`clean`](Store::clean) (finished only) | gone | running jobs are never deleted |
//!
//! | running | [`set_checkpoint`](Store::set_checkpoint) | running | stores a step result, extends the lease |
//! | running | [`sleep_until`](Store::sleep_until) | sleeping → available at the wake time (new run, same attempt) | slot freed, attempt not counted |
//! | running | [`await_event`](Store::await_event) | waiting → available when the event is emitted or the timeout passes (new run, same attempt) | returns at once, still running, if the event exists |
//!
//! # Workflows
//!
//! A job can be a durable workflow: its handler stores each step's result as a
//! [`Checkpoint`], suspends itself ([`Store::sleep_until`], [`Store::await_event`]) and is resumed
//! by a later run that replays the stored steps. Events ([`Store::emit_event`]) are stored per
//! namespace: a wait on an event already emitted returns its payload at once. The claim of a
//! resumed run says why it woke ([`Claim::wake`]). The worker crate wraps all this as
//! `JobContext::step`, `sleep_for` and `wait_for_event`.
//!
//! # Queue limits and blocking queues
//!
//! The claim itself enforces a queue's concurrency limit ([`Store::set_queue_limit`]) across all
//! workers and machines, and blocking mode ([`Store::set_queue_blocking`]): one job at a time,
//! in creation order (priority is ignored). The head of a blocking queue is its oldest
//! unfinished job (pending, running, sleeping or waiting); while it waits out a retry backoff,
//! a delay, a sleep or an event, nothing behind it runs. When it exhausts its attempts, the
//! queue's [`BlockedPolicy`] decides: `continue` (the default) leaves it failed and moves on,
//! `stay_blocked` keeps the queue held by it until an operator retries, cancels or deletes it.
//!
//! # Periodic jobs
//!
//! [`schedule`] declares periodic jobs ([`schedule::Schedule`]: a fixed interval or a cron
//! expression in an IANA zone) and computes their ticks as pure functions of an instant.
//! Engines store them behind [`schedule::ScheduleEngine`] (reached through
//! [`Store::schedules`]), where a fire is one transaction that compare-and-swaps the
//! schedule's last tick and inserts the job: exactly one job per tick across processes. The
//! same trait holds the leader lease the worker's maintenance services run under.
//!
//! # Engines
//!
//! An engine crate implements the narrow [`engine::Engine`] interface (guarded primitives, one
//! params struct per operation, no policy); every engine is then a [`Store`] through the one
//! generic implementation in [`engine`], which validates, encodes and applies every policy; for
//! periodic jobs it also implements [`schedule::ScheduleEngine`]. It proves itself by running
//! the shared suite in `conformance` (cargo feature `conformance`) from its own tests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod batch;
pub mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod deps;
pub mod engine;
mod error;
mod failure;
pub mod flow;
pub mod insight;
pub mod model;
pub mod options;
pub mod registry;
pub mod retry;
pub mod schedule;
mod store;
pub mod trace;
pub mod unique;
pub mod validate;

pub use error::{Error, Result};
pub use failure::{FailureKind, FailureReason};
pub use insight::Insight;
pub use model::{
    AttemptError, AwaitEvent, AwaitOutcome, BlockedPolicy, BlockingParams, Checkpoint, Claim,
    JobFilter, JobId, JobInfo, JobResult, JobState, Page, PageRequest, PageStart, QueueInfo, RunId,
    SetCheckpoint, SleepParams, Spawn, SpawnResult, StateCounts, Wake,
};
pub use options::{CancellationPolicy, RetryStrategy, RunAt, SpawnOptions, DEFAULT_MAX_ATTEMPTS};
pub use store::{
    CancelOutcome, ClaimParams, CompleteParams, FailOutcome, LeaseStatus, MigrationReport,
    PollOrder, RescueReport, RunWrite, Store, WakeReport,
};
pub use validate::Limits;
