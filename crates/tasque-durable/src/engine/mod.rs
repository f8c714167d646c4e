//! The narrow engine interface: what a database engine implements, and nothing more.
//!
//! # The contract
//!
//! An engine stores and guards; it decides no policy. Each operation is one method taking one
//! params struct (see [`params`]), with the same name in every engine, grouped in traits that
//! mirror the engines' `ops/` files: [`EngineBase`], [`EngineSpawn`], [`EngineClaim`],
//! [`EngineRuns`], [`EngineMaintain`], [`EngineInspect`], [`EngineGated`], [`EngineWorkflow`].
//! A type implementing all of them is an [`Engine`], and every engine is a
//! [`Store`](crate::Store) through the one generic implementation in this module, which holds
//! every rule written once:
//!
//! - validation and encoding of every input (nothing reaches an engine unvalidated, so bad
//!   input is refused before anything is written);
//! - a run listed twice in a batch (see [`batch`](crate::batch));
//! - the claim's order across queues, and failing for good the runs a claim could not decode;
//! - the rescuer's loop (policy cancels, then each expired run's failed attempt);
//! - the cancel loop (a guarded write that lost a race is tried again; `AlreadyFinished` only
//!   for a finished job);
//! - retry's state check and option merge; queue listings assembled from settings and counts;
//! - the failure reasons the store itself writes ([`reasons`]).
//!
//! Guarded writes (those naming a [`RunId`](crate::RunId)) apply only while that run owns its
//! job; otherwise an engine answers [`Error::StaleRun`](crate::Error::StaleRun) or
//! [`Error::RunCancelled`](crate::Error::RunCancelled) (per run in batch forms), never a panic.
//! Adding an engine is implementing these traits (mostly SQL) and running the conformance
//! suite against it.

pub mod migrations;
pub mod params;
mod policy;
pub mod reasons;
pub mod rows;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{
    AwaitEvent, AwaitOutcome, Checkpoint, JobFilter, JobId, JobInfo, JobResult, Page, PageRequest,
    RunId, SleepParams, SpawnResult,
};
use crate::store::{ClaimParams, FailOutcome, LeaseStatus, MigrationReport, RunWrite};
use crate::validate::Limits;

pub use params::*;
pub use policy::{check_schema_version, due_in_ms};

/// The engine's identity, clock and schema.
#[async_trait]
pub trait EngineBase: Send + Sync + 'static {
    /// The namespace every operation is scoped to.
    fn ns(&self) -> &str;

    /// The payload limits inputs are validated against.
    fn limits(&self) -> &Limits;

    /// The database's clock.
    async fn clock_now(&self) -> Result<DateTime<Utc>>;

    /// Creates or upgrades the schema (idempotent, safe concurrently); refuses a newer one.
    async fn schema_migrate(&self) -> Result<MigrationReport>;

    /// Announcements of new ready jobs, for engines that can push them; `None` by default.
    fn wakeups_subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Tells other processes that `jobs` finished, for engines that can push (see
    /// [`Store::announce_finished`](crate::Store::announce_finished)); nothing by default.
    async fn finished_announce(&self, jobs: &[JobId]) -> Result<()> {
        let _ = jobs;
        Ok(())
    }

    /// Registers a waiter's interest in `job` finishing, for engines that announce only watched
    /// jobs (see [`Store::watch_finished`](crate::Store::watch_finished)); `None` by default.
    async fn finished_watch(&self, job: JobId) -> Result<Option<u64>> {
        let _ = job;
        Ok(None)
    }

    /// Withdraws an interest registered by [`finished_watch`](Engine::finished_watch); nothing
    /// by default.
    async fn finished_unwatch(&self, job: JobId, token: u64) -> Result<()> {
        let _ = (job, token);
        Ok(())
    }

    /// The engine's storage of periodic jobs and of the leader lease (see
    /// [`Store::schedules`](crate::Store::schedules)); `None` by default.
    fn schedule_engine(&self) -> Option<&dyn crate::schedule::ScheduleEngine> {
        None
    }

    /// The engine's answers to dashboard and metrics questions (see
    /// [`Store::insight`](crate::Store::insight)); `None` by default.
    fn insight_engine(&self) -> Option<&dyn crate::Insight> {
        None
    }

    /// The engine's worker registry (see [`Store::registry`](crate::Store::registry));
    /// `None` by default.
    fn registry_engine(&self) -> Option<&dyn crate::registry::WorkerRegistry> {
        None
    }

    /// The engine's flow control storage (see [`crate::flow`]); `None` by default.
    fn flow_engine(&self) -> Option<&dyn crate::flow::FlowEngine> {
        None
    }

    /// The engine's answers about job dependencies (see [`crate::deps`]); `None` by default.
    fn deps_engine(&self) -> Option<&dyn crate::deps::DepsEngine> {
        None
    }
}

/// Inserting jobs (`ops/spawn.rs`).
#[async_trait]
pub trait EngineSpawn {
    /// Inserts one job (creating its queue); an idempotency key already used in its queue
    /// returns that job with `created: false`.
    async fn job_insert(&self, job: JobInsert) -> Result<SpawnResult>;

    /// Inserts many jobs (not empty) in one transaction, results in input order.
    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<SpawnResult>>;
}

/// Claims and leases (`ops/claim.rs`).
#[async_trait]
pub trait EngineClaim {
    /// Makes due sleepers and waiters claimable, then claims up to `params.limit` ready jobs of
    /// the named, unpaused queues, honouring limits and blocking mode, in any order.
    async fn job_claim(&self, params: &ClaimParams) -> Result<Claimed>;

    /// Extends one lease; returns its new end.
    async fn job_extend_lease(&self, params: LeaseExtend) -> Result<DateTime<Utc>>;

    /// Extends many leases, reporting per run in input order.
    async fn job_extend_leases(&self, params: LeasesExtend) -> Result<Vec<LeaseStatus>>;
}

/// Guarded writes by a running run (`ops/runs.rs`).
#[async_trait]
pub trait EngineRuns {
    /// Completes runs (not empty, each listed once), reporting per run in input order.
    async fn job_complete_many(&self, items: Vec<JobComplete>) -> Result<Vec<RunWrite>>;

    /// Records a failed attempt: the job's retry strategy (or the forced time) and its max
    /// attempts decide whether it runs again.
    async fn job_fail(&self, params: JobFail) -> Result<FailOutcome>;

    /// The rescuer's write: like [`job_fail`](EngineRuns::job_fail) with the strategy's time,
    /// applied only while the run's lease is still expired.
    async fn job_fail_expired(&self, params: JobFailExpired) -> Result<FailOutcome>;

    /// Fails a run for good, reading nothing of its job (for rows that cannot be decoded).
    async fn job_fail_for_good(&self, params: JobFailForGood) -> Result<()>;

    /// Gives a run back until a time, no attempt counted (new run id).
    async fn job_schedule(&self, params: JobSchedule) -> Result<()>;

    /// Gives runs back, claimable at once, no attempt counted; returns how many.
    async fn job_release(&self, params: JobRelease) -> Result<u64>;
}

/// Operator and maintenance writes (`ops/maintain.rs`).
#[async_trait]
pub trait EngineMaintain {
    /// Cancels the unfinished jobs past their cancellation policy; returns how many.
    async fn job_cancel_by_policy(&self) -> Result<u64>;

    /// Runs whose lease expired, at most `limit`.
    async fn job_expired_runs(&self, params: JobExpired) -> Result<Vec<RunId>>;

    /// One guarded cancel: an unfinished job (or a failed one holding its blocking queue) is
    /// cancelled; a finished one is reported; a lost race says so.
    async fn job_cancel(&self, params: JobCancel) -> Result<CancelWrite>;

    /// Revives a failed or cancelled job as attempt 1 of a new run; `None` when the job is in
    /// another state (or gone) by the time of the write.
    async fn job_retry(&self, params: JobRetry) -> Result<Option<RunId>>;
}

/// Reading and deleting jobs; queues (`ops/inspect.rs`).
#[async_trait]
pub trait EngineInspect {
    /// A job's full record.
    async fn job_get(&self, job: JobId) -> Result<JobInfo>;

    /// A job's state, result and failure (readable even when other columns are corrupt).
    async fn job_get_result(&self, job: JobId) -> Result<JobResult>;

    /// How many jobs match (a validated filter).
    async fn job_count(&self, filter: &JobFilter) -> Result<u64>;

    /// One page of matching jobs by id (a validated filter and page).
    async fn job_scan(&self, filter: &JobFilter, page: PageRequest) -> Result<Page>;

    /// Deletes a job unless it is running: true when deleted, false when it exists but runs.
    async fn job_delete(&self, job: JobId) -> Result<bool>;

    /// Deletes the matching jobs that are not running; returns how many.
    async fn job_purge(&self, filter: &JobFilter) -> Result<u64>;

    /// Deletes one batch of old finished jobs; returns how many.
    async fn job_clean(&self, params: JobClean) -> Result<u64>;

    /// Creates a queue unless it exists.
    async fn queue_ensure(&self, name: &str) -> Result<()>;

    /// Sets a queue's paused flag, creating it if needed.
    async fn queue_set_paused(&self, params: QueuePause) -> Result<()>;

    /// Every queue's settings, by name.
    async fn queue_list(&self) -> Result<Vec<QueueRow>>;

    /// Job counts by queue and state.
    async fn queue_counts(&self) -> Result<Vec<QueueCount>>;
}

/// Gated queues: limits and blocking mode (`ops/gated.rs`).
#[async_trait]
pub trait EngineGated {
    /// Sets a queue's concurrency limit, creating it if needed.
    async fn queue_set_limit(&self, params: QueueLimit) -> Result<()>;

    /// Sets a queue's blocking mode, creating it if needed.
    async fn queue_set_blocking(&self, params: QueueBlocking) -> Result<()>;

    /// The job holding a blocking queue, if its head cannot move.
    async fn queue_blocked_by(&self, name: &str) -> Result<Option<JobId>>;
}

/// Checkpoints, sleeps and events (`ops/workflow.rs`).
#[async_trait]
pub trait EngineWorkflow {
    /// Every checkpoint of a job.
    async fn checkpoint_list(&self, job: JobId) -> Result<Vec<Checkpoint>>;

    /// Stores a checkpoint and extends the run's lease, guarded; returns the new lease end.
    async fn checkpoint_set(&self, params: CheckpointSet) -> Result<DateTime<Utc>>;

    /// Suspends the run's job until a time (validated), guarded.
    async fn job_sleep(&self, params: SleepParams) -> Result<()>;

    /// Waits for an event (validated), atomically with emits.
    async fn event_await(&self, params: AwaitEvent) -> Result<AwaitOutcome>;

    /// Stores an event and wakes its waiters; returns how many were woken.
    async fn event_emit(&self, params: EventEmit) -> Result<u64>;

    /// Makes due sleepers and timed-out waiters claimable (announcing their queues) and
    /// measures the time to the next one, by the database clock.
    async fn job_wake_due(&self) -> Result<crate::WakeReport>;
}

/// A whole engine: every part of the interface. Implemented for any type that implements the
/// parts; every `Engine` is a [`Store`](crate::Store).
pub trait Engine:
    EngineBase
    + EngineSpawn
    + EngineClaim
    + EngineRuns
    + EngineMaintain
    + EngineInspect
    + EngineGated
    + EngineWorkflow
{
}

impl<E> Engine for E where
    E: EngineBase
        + EngineSpawn
        + EngineClaim
        + EngineRuns
        + EngineMaintain
        + EngineInspect
        + EngineGated
        + EngineWorkflow
{
}
