//! The [`Store`] trait: the whole surface of the durable queue that workers, the CLI and users
//! call, one method per lifecycle operation.
//!
//! Every engine is a `Store` through the one generic implementation in
//! [`engine`](crate::engine): it validates inputs and applies policy (retry delays, the claim's
//! order, the rescuer's and cancel's loops), then calls the engine's guarded primitives. Every
//! write a worker makes carries its [`RunId`] and is guarded in the query itself ("only if this
//! run still owns the job"), so a stale owner is rejected without any lock held across the
//! handler.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Result;
use crate::insight::Insight;
use crate::model::{
    AwaitEvent, AwaitOutcome, BlockingParams, Checkpoint, Claim, JobFilter, JobId, JobInfo,
    JobResult, JobState, Page, PageRequest, QueueInfo, RunId, SetCheckpoint, SleepParams, Spawn,
    SpawnResult,
};
use crate::options::{RunAt, SpawnOptions};

/// The order in which ready jobs are claimed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum PollOrder {
    /// Lowest priority value first, then oldest run time, then lowest id.
    #[default]
    PriorityThenAge,
    /// Oldest run time first (the time the job became ready), then lowest id; priority ignored.
    Age,
}

/// Parameters of [`Store::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimParams {
    /// Queues to claim from (at least one).
    pub queues: Vec<String>,
    /// The most jobs to claim (at least 1): a worker asks for its free slots.
    pub limit: u32,
    /// How long the claimed runs stay invisible to other claimers unless extended (positive).
    pub lease: Duration,
    /// Who claims, recorded on the job (a valid name).
    pub worker_id: String,
    /// The poll order.
    pub order: PollOrder,
}

/// Parameters of [`Store::complete`] and one item of [`Store::complete_many`].
#[derive(Clone, Debug, PartialEq)]
pub struct CompleteParams {
    /// The run that finished.
    pub run: RunId,
    /// Its result.
    pub result: Value,
    /// Delete the job instead of keeping it completed.
    pub delete_on_success: bool,
}

impl CompleteParams {
    /// Completes `run` with `result`, keeping the job.
    pub fn new(run: RunId, result: Value) -> Self {
        CompleteParams {
            run,
            result,
            delete_on_success: false,
        }
    }
}

/// Whether a guarded write by a run was applied.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunWrite {
    /// Applied: the run still owned its job.
    Applied,
    /// Rejected: the run no longer owns its job (lease lost, released, finished, deleted).
    Stale,
    /// Rejected: the job was cancelled; the worker should abort the handler.
    Cancelled,
}

/// The state of one run after [`Store::extend_leases`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The lease now ends at this time (engine clock).
    Extended(DateTime<Utc>),
    /// The job was cancelled: abort the handler; its outcome will be rejected.
    Cancelled,
    /// The run no longer owns the job (rescued, released, finished or deleted): abort the handler.
    Lost,
}

/// What a failed attempt led to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// The job will run again: this attempt, at this time.
    Retrying {
        /// The next attempt's number.
        attempt: u32,
        /// When it may start (engine clock).
        at: DateTime<Utc>,
    },
    /// The job failed for good (out of attempts, or a strategy that does not retry).
    Failed,
}

/// What [`Store::cancel`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was cancelled; it was in this state (a running job's worker learns it at its
    /// next lease extension and its outcome is rejected).
    Cancelled {
        /// The state before cancelling.
        was: JobState,
    },
    /// The job had already finished; nothing changed (cancelling is idempotent).
    AlreadyFinished {
        /// Its (terminal) state.
        state: JobState,
    },
}

/// What one pass of [`Store::rescue_expired`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// Runs whose lease expired and whose job was made claimable again (attempt counted).
    pub retried: u64,
    /// Runs whose lease expired on their last attempt: their job failed for good.
    pub failed: u64,
    /// Jobs cancelled by their cancellation policy (max duration or max delay exceeded).
    pub cancelled: u64,
}

/// What one pass of [`Store::wake_due`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WakeReport {
    /// Sleepers whose time came and waiters whose timeout passed, now claimable.
    pub woken: u64,
    /// How long until the next sleeper or timed waiter is due, by the database clock (`None`
    /// when none sleeps or waits with a timeout).
    pub next_in: Option<Duration>,
}

/// What [`Store::migrate`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// Schema version before.
    pub from: i64,
    /// Schema version after (the newest this build knows).
    pub to: i64,
}

/// A durable job store. Database engines get it by implementing
/// [`engine::Engine`](crate::engine::Engine); other implementations (test doubles, wrappers)
/// implement it directly.
///
/// Every operation is scoped to the store's namespace: two stores on one database with
/// different namespaces never see each other's jobs or queues. Times come from the engine's
/// clock (the database's), never from the caller's machine.
///
/// Operations that take a [`RunId`] are guarded: they apply only while that run owns its job
/// (the job is running under it). Otherwise they fail with
/// [`Error::StaleRun`](crate::Error::StaleRun), or [`Error::RunCancelled`](crate::Error::RunCancelled)
/// when the job was cancelled; batch forms report per run instead.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The namespace this store works in.
    fn namespace(&self) -> &str;

    /// The engine's clock.
    async fn now(&self) -> Result<DateTime<Utc>>;

    /// Creates or upgrades the schema. Idempotent; safe to run concurrently with other
    /// processes. Refuses a database at a newer version with
    /// [`Error::SchemaTooNew`](crate::Error::SchemaTooNew).
    async fn migrate(&self) -> Result<MigrationReport>;

    /// Enqueues a job (creating its queue on first use). With an idempotency key already used
    /// in that queue, returns the existing job with `created: false` and changes nothing.
    async fn spawn(&self, spawn: Spawn) -> Result<SpawnResult>;

    /// Enqueues many jobs in one transaction, results in input order. All are validated first:
    /// one invalid job refuses the whole batch.
    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>>;

    /// Claims up to `limit` ready jobs from unpaused queues under a lease, atomically: no two
    /// claimers ever get the same run. Returns them in poll order.
    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>>;

    /// Extends a run's lease to `by` from now.
    async fn extend_lease(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>>;

    /// Extends many leases to `by` from now in one round trip (the worker's heartbeat),
    /// reporting per run (in input order) whether to keep going, or abort because the job was
    /// cancelled or the lease lost.
    async fn extend_leases(&self, runs: Vec<RunId>, by: Duration) -> Result<Vec<LeaseStatus>>;

    /// Completes a run with its result (or deletes the job, with `delete_on_success`).
    async fn complete(&self, params: CompleteParams) -> Result<()>;

    /// Completes many runs in one transaction, reporting per item (in input order). The batch
    /// behaves as its items completed one after another: a run listed twice is applied by its
    /// first occurrence and reported [`RunWrite::Stale`] after that (see
    /// [`batch`](crate::batch)).
    async fn complete_many(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>>;

    /// Records a failed attempt. The job's retry strategy and max attempts decide: the next
    /// attempt is scheduled, or the job fails for good with `reason` as its failure.
    async fn fail(&self, run: RunId, reason: Value) -> Result<FailOutcome>;

    /// Fails a run's job for good at once with `reason`, whatever attempts remain (a handler
    /// that knows retrying cannot help; params that do not decode). Guarded like
    /// [`fail`](Store::fail). The default, for engines without it, records an ordinary failed
    /// attempt; every Tasque engine overrides it.
    async fn fail_for_good(&self, run: RunId, reason: Value) -> Result<()> {
        self.fail(run, reason).await.map(|_| ())
    }

    /// Like [`fail`](Store::fail) but the next attempt (if any remain) starts at `at`,
    /// whatever the retry strategy says.
    async fn fail_with_retry_at(&self, run: RunId, reason: Value, at: RunAt)
        -> Result<FailOutcome>;

    /// The rescuer and policy enforcer: runs whose lease expired count as failed attempts
    /// (claimable again after the retry delay, or failed for good), at most `limit` of them;
    /// then jobs past their cancellation policy are cancelled.
    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport>;

    /// The sleeper wake-up (run by the leader's maintenance service, not by claims): makes
    /// sleepers whose time came and waiters whose timeout passed claimable, announcing their
    /// queues, and says how long until the next one is due.
    async fn wake_due(&self) -> Result<WakeReport>;

    /// Cancels a job. Pending: it never runs. Running: it is cancelled at once, its worker is
    /// told at its next lease extension and any outcome it reports is rejected. Finished:
    /// nothing changes, [`CancelOutcome::AlreadyFinished`] says so (only ever with a finished
    /// state). A job that keeps finishing and being revived under it gets
    /// [`Error::Contended`](crate::Error::Contended), never a wrong answer.
    async fn cancel(&self, job: JobId) -> Result<CancelOutcome>;

    /// Runs a failed or cancelled job again, as attempt 1 of a new run, with `options`
    /// (set fields) replacing its own. Any other state is refused with
    /// [`Error::InvalidState`](crate::Error::InvalidState). The idempotency key cannot change.
    async fn retry(&self, job: JobId, options: Option<SpawnOptions>) -> Result<SpawnResult>;

    /// Gives a claimed run back until `at` without counting an attempt (unknown task names
    /// during rolling deploys, snoozing). The job gets a new run id.
    async fn schedule_run(&self, run: RunId, at: RunAt) -> Result<()>;

    /// Gives claimed runs back, claimable at once, without counting an attempt (graceful
    /// shutdown). Runs that no longer own their job are skipped. Returns how many were released.
    async fn release(&self, runs: Vec<RunId>) -> Result<u64>;

    /// The full record of a job.
    async fn get_job(&self, job: JobId) -> Result<JobInfo>;

    /// The state, result and failure reason of a job.
    async fn get_result(&self, job: JobId) -> Result<JobResult>;

    /// How many jobs match.
    async fn count(&self, filter: JobFilter) -> Result<u64>;

    /// One page of matching jobs, by id ascending.
    async fn scan(&self, filter: JobFilter, page: PageRequest) -> Result<Page>;

    /// Deletes a job that is not running (a safe delete: running jobs are refused with
    /// [`Error::InvalidState`](crate::Error::InvalidState)).
    async fn delete(&self, job: JobId) -> Result<()>;

    /// Deletes every matching job that is not running. Returns how many were deleted.
    async fn purge(&self, filter: JobFilter) -> Result<u64>;

    /// The cleaner: deletes at most `batch_size` finished jobs (completed, failed, cancelled)
    /// that finished more than `older_than` ago. Returns how many; call again while it returns
    /// `batch_size`.
    async fn clean(&self, older_than: Duration, batch_size: u32) -> Result<u64>;

    /// Creates a queue if it does not exist (queues are also created on first use).
    async fn create_queue(&self, name: &str) -> Result<QueueInfo>;

    /// Every queue of the namespace, by name, with counts by state.
    async fn list_queues(&self) -> Result<Vec<QueueInfo>>;

    /// Pauses a queue (creating it if needed): its jobs are not claimed until resumed.
    async fn pause_queue(&self, name: &str) -> Result<()>;

    /// Resumes a paused queue (creating it if needed).
    async fn resume_queue(&self, name: &str) -> Result<()>;

    /// Every checkpoint (stored step result) of a job, by name. Unknown jobs have none.
    async fn get_checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>>;

    /// Stores (or replaces) a step result of the run's job and extends the run's lease, in one
    /// guarded write: a run that no longer owns its job writes nothing. Returns the new lease end.
    async fn set_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>>;

    /// Ends a run by suspending its job until a time: the job is `sleeping`, holds no lease and
    /// becomes claimable (as a new run of the same attempt) when the time comes. No attempt is
    /// counted.
    async fn sleep_until(&self, params: SleepParams) -> Result<()>;

    /// Waits for an event. If it was already emitted (events are stored per namespace), returns
    /// its payload and the run keeps running. Otherwise ends the run: the job is `waiting` until
    /// the event is emitted or the timeout passes, then claimable as a new run of the same
    /// attempt whose claim carries the event (or says it timed out). Atomic with
    /// [`emit_event`](Store::emit_event): a wait never misses an emit.
    async fn await_event(&self, params: AwaitEvent) -> Result<AwaitOutcome>;

    /// Emits an event: stores its payload under its name (replacing an earlier one) and wakes
    /// every job waiting for it. Returns how many jobs were woken.
    async fn emit_event(&self, name: &str, payload: Value) -> Result<u64>;

    /// Sets (or, with `None`, removes) a queue's concurrency limit across all workers, creating
    /// the queue if needed. The claim enforces it: never more than `limit` of its jobs run at
    /// once. A limit of 0 is refused.
    async fn set_queue_limit(&self, name: &str, limit: Option<u32>) -> Result<()>;

    /// Turns a queue's blocking mode on or off and sets its policy for exhausted jobs, creating
    /// the queue if needed. See the crate documentation for the contract.
    async fn set_queue_blocking(&self, name: &str, params: BlockingParams) -> Result<()>;

    /// Announcements of new ready jobs, for engines that can push them (PostgreSQL's
    /// LISTEN/NOTIFY); `None`, the default, for engines that cannot, whose workers poll.
    ///
    /// Each message is the name of a queue that just got a ready job in this namespace; an empty
    /// name means "any queue" (the engine may have missed announcements, e.g. while it
    /// reconnected). A receiver that lags behind (`RecvError::Lagged`) should treat that as
    /// "any queue" too. Announcements are hints: a worker still polls, so a lost one costs at
    /// most a poll interval. Call from inside a tokio runtime.
    fn subscribe_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Announces to other processes that `jobs` finished, for engines that can push (PostgreSQL:
    /// a NOTIFY on the wake-up channel carrying
    /// [`FINISHED_PREFIX`](crate::client::FINISHED_PREFIX) and the ids, which
    /// [`subscribe_wakeups`](Store::subscribe_wakeups) receivers see and workers ignore). Only
    /// jobs some waiter watches ([`watch_finished`](Store::watch_finished)) are announced, so a
    /// burn-down nobody waits on sends nothing. The default does nothing: waiters of other
    /// processes poll. A hint: an error changes no job.
    async fn announce_finished(&self, jobs: &[JobId]) -> Result<()> {
        let _ = jobs;
        Ok(())
    }

    /// Registers a waiter's interest in `job` finishing, so that
    /// [`announce_finished`](Store::announce_finished) in any process announces it; returns
    /// the token that withdraws it ([`unwatch_finished`](Store::unwatch_finished)). `None`, the
    /// default, for engines that do not announce. `Client::wait` calls it; the announcement of
    /// the job's end also withdraws every interest in it.
    async fn watch_finished(&self, job: JobId) -> Result<Option<u64>> {
        let _ = job;
        Ok(None)
    }

    /// Withdraws an interest registered by [`watch_finished`](Store::watch_finished) (a wait
    /// that ended without the announcement, e.g. at its limit). Nothing by default.
    async fn unwatch_finished(&self, job: JobId, token: u64) -> Result<()> {
        let _ = (job, token);
        Ok(())
    }

    /// The engine's storage of periodic jobs and of the leader lease; `None` (the default) for
    /// stores without it, whose workers each run maintenance themselves and take no schedules.
    fn schedules(&self) -> Option<&dyn crate::schedule::ScheduleEngine> {
        None
    }

    /// The engine's answers to dashboard and metrics questions ([`Insight`]); `None`, the
    /// default, for engines that do not give them (callers fall back to the inspector).
    fn insight(&self) -> Option<&dyn Insight> {
        None
    }

    /// The engine's worker registry (who works, on which queues); `None`, the default, for
    /// stores without one.
    fn registry(&self) -> Option<&dyn crate::registry::WorkerRegistry> {
        None
    }

    /// Flow control: ordering keys' policy, rate limits, and why a job waits
    /// ([`crate::flow`]); `None`, the default, for stores without it.
    fn flow(&self) -> Option<crate::flow::Flow<'_>> {
        None
    }

    /// Job dependencies: a job's parents and dependents ([`crate::deps`]); `None`, the
    /// default, for stores without them.
    fn deps(&self) -> Option<crate::deps::Deps<'_>> {
        None
    }
}
