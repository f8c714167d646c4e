//! The [`Client`]: the one entry point a Rust user holds to enqueue typed jobs, inspect them
//! and await their outcome, over any [`Store`].
//!
//! # Contract
//!
//! * **Typed jobs.** A [`Job`] is a serde type with a kind name ([`Job::KIND`], the task name a
//!   worker dispatches on), an output type and default options. [`Client::enqueue`] stores its
//!   JSON as the job's params; options given at enqueue time override the kind's field by
//!   field; the store's defaults fill the rest. String kinds stay available
//!   ([`Client::enqueue_raw`]) for jobs that come from other languages.
//! * **Awaiting.** [`Client::wait`] returns a job's typed output, or its failure as a typed
//!   [`ClientError`], once it finishes, or [`ClientError::TimedOut`] after the limit (the job
//!   keeps going). It wakes when a worker of this process finishes the job, when the engine
//!   announces it (PostgreSQL's NOTIFY, from any process: the wait registers its interest with
//!   [`Store::watch_finished`](crate::Store::watch_finished), and only watched jobs are
//!   announced), and otherwise polls with an interval growing from 25 ms to 1 s: never a loop
//!   in user code.
//! * **Transactions.** [`Client::enqueue_in_tx`] enqueues inside the caller's own `sqlx`
//!   transaction on every engine: the job exists if and only if it commits. It needs a client
//!   over the concrete engine (`Client<PostgresStore>`...), since the transaction's type names
//!   the engine; [`Client::into_dyn`] turns it into a `Client` over `dyn Store` afterwards.
//! * **Progress.** A handler's last recorded progress ([`PROGRESS_CHECKPOINT`]) is read back by
//!   [`Client::get`].
//!
//! Clients are cheap to clone: clones share the store.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn tasque_durable::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use tasque_durable::client::{Client, ClientError, Job};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { image: String, width: u32 }
//!
//! impl Job for Resize {
//!     const KIND: &'static str = "resize";
//!     type Output = String;
//! }
//!
//! let client = Client::new(store);
//! let job = client.enqueue(Resize { image: "cat.png".into(), width: 64 }).await?;
//! assert!(job.created);
//! // No worker runs it here, so the wait times out (the job itself is untouched).
//! let waited = client.wait(&job, Duration::from_millis(50)).await;
//! assert!(matches!(waited, Err(ClientError::TimedOut { .. })));
//! # Ok(()) }
//! ```

mod error;
mod hub;
mod job;
mod tx;
mod wait;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use error::ClientError;
pub use hub::{
    announce_finished, announce_finished_locally, finished_messages, parse_finished,
    FINISHED_PREFIX,
};
pub use job::{Job, JobOptions, DEFAULT_QUEUE};
pub use tx::SpawnInTx;

use crate::failure::{FailureKind, FailureReason};
use crate::model::{JobId, JobInfo, JobResult, JobState, RunId, Spawn, SpawnResult};
use crate::options::SpawnOptions;
use crate::store::CancelOutcome;
use crate::Store;

/// The checkpoint under which a handler's progress is stored (`ctx.set_progress(json)` in the
/// worker): the last value written wins and survives the job's later runs.
pub const PROGRESS_CHECKPOINT: &str = "tasque:progress";

/// A typed handle on an enqueued job.
pub struct Enqueued<J> {
    /// The job.
    pub job_id: JobId,
    /// Its pending run.
    pub run_id: RunId,
    /// False when the idempotency key or the unique constraint matched an existing job, which
    /// is returned instead.
    pub created: bool,
    kind: PhantomData<fn() -> J>,
}

impl<J> Enqueued<J> {
    /// True when this enqueue was a duplicate: an existing job (same idempotency key, or same
    /// unique key in one of its unique states) was returned and nothing was inserted.
    pub fn is_duplicate(&self) -> bool {
        !self.created
    }
}

impl<J> Enqueued<J> {
    fn from_result(result: SpawnResult) -> Self {
        Enqueued {
            job_id: result.job_id,
            run_id: result.run_id,
            created: result.created,
            kind: PhantomData,
        }
    }
}

impl<J> Clone for Enqueued<J> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<J> Copy for Enqueued<J> {}

impl<J> std::fmt::Debug for Enqueued<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueued")
            .field("kind", &std::any::type_name::<J>())
            .field("job_id", &self.job_id)
            .field("run_id", &self.run_id)
            .field("created", &self.created)
            .finish()
    }
}

/// Something that names a job of kind `J`: a typed handle, or a bare [`JobId`] (then name the
/// kind: `client.wait::<SendEmail>(id, limit)`).
pub trait JobRef<J> {
    /// The job.
    fn job_id(&self) -> JobId;
}

impl<J> JobRef<J> for JobId {
    fn job_id(&self) -> JobId {
        *self
    }
}

impl<J> JobRef<J> for Enqueued<J> {
    fn job_id(&self) -> JobId {
        self.job_id
    }
}

impl<J> JobRef<J> for &Enqueued<J> {
    fn job_id(&self) -> JobId {
        self.job_id
    }
}

/// A job's record with its last recorded progress: what [`Client::get`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSnapshot {
    /// The job's full record.
    pub info: JobInfo,
    /// The last progress its handler recorded, if any.
    pub progress: Option<Value>,
}

/// Enqueues typed jobs and awaits them, over any [`Store`]. See the [module docs](self).
pub struct Client<S: ?Sized = dyn Store> {
    store: Arc<S>,
}

impl<S: ?Sized> Clone for Client<S> {
    fn clone(&self) -> Self {
        Client {
            store: self.store.clone(),
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl<S: Store> Client<S> {
    /// A client over a concrete engine, which keeps [`enqueue_in_tx`](Client::enqueue_in_tx)
    /// available.
    pub fn from_store(store: S) -> Self {
        Client {
            store: Arc::new(store),
        }
    }

    /// The same client over `dyn Store`.
    pub fn into_dyn(self) -> Client {
        Client { store: self.store }
    }
}

impl<S: Store + ?Sized> Client<S> {
    /// A client over `store`.
    pub fn new(store: Arc<S>) -> Self {
        Client { store }
    }

    /// The store beneath.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Enqueues `job` with its kind's default options.
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<Enqueued<J>, ClientError> {
        self.enqueue_with(job, JobOptions::new()).await
    }

    /// Enqueues `job`; set fields of `options` override the kind's defaults.
    pub async fn enqueue_with<J: Job>(
        &self,
        job: J,
        options: JobOptions,
    ) -> Result<Enqueued<J>, ClientError> {
        let spawn = encode(&job, options)?;
        let result = self.store.spawn(spawn).await?;
        Ok(Enqueued::from_result(result))
    }

    /// Enqueues many jobs of one kind in one round trip, handles in input order. One invalid
    /// job refuses the whole batch before anything is written.
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<Enqueued<J>>, ClientError> {
        let spawns = encode_all(jobs)?;
        let results = self.store.spawn_many(spawns).await?;
        Ok(results.into_iter().map(Enqueued::from_result).collect())
    }

    /// Enqueues a job by task name with JSON params (jobs handled by string kind, e.g. for
    /// producers in other languages).
    pub async fn enqueue_raw(
        &self,
        queue: &str,
        task: &str,
        params: Value,
        options: SpawnOptions,
    ) -> Result<SpawnResult, ClientError> {
        let spawn = Spawn::new(queue, task, params).with_options(with_trace_context(options));
        Ok(self.store.spawn(spawn).await?)
    }

    /// Enqueues `job` inside the caller's transaction `tx` (an `sqlx::Transaction` of the
    /// engine's database): the job exists if and only if `tx` commits.
    pub async fn enqueue_in_tx<J: Job, Tx: Send + ?Sized>(
        &self,
        tx: &mut Tx,
        job: J,
    ) -> Result<Enqueued<J>, ClientError>
    where
        S: SpawnInTx<Tx>,
    {
        let spawn = encode(&job, JobOptions::new())?;
        let mut results = self.store.spawn_many_within(tx, vec![spawn]).await?;
        let result = results
            .pop()
            .ok_or_else(|| crate::Error::Corrupt("a one-job spawn returned no result".into()))?;
        Ok(Enqueued::from_result(result))
    }

    /// Enqueues many jobs inside the caller's transaction `tx`, handles in input order.
    pub async fn enqueue_many_in_tx<J: Job, Tx: Send + ?Sized>(
        &self,
        tx: &mut Tx,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<Enqueued<J>>, ClientError>
    where
        S: SpawnInTx<Tx>,
    {
        let spawns = encode_all(jobs)?;
        let results = self.store.spawn_many_within(tx, spawns).await?;
        Ok(results.into_iter().map(Enqueued::from_result).collect())
    }

    /// A job's record and its last recorded progress.
    pub async fn get(&self, job: JobId) -> Result<JobSnapshot, ClientError> {
        let info = self.store.get_job(job).await?;
        let progress = self
            .store
            .get_checkpoints(job)
            .await?
            .into_iter()
            .find(|c| c.name == PROGRESS_CHECKPOINT)
            .map(|c| c.value);
        Ok(JobSnapshot { info, progress })
    }

    /// Cancels a job (see [`Store::cancel`]); this process's waiters learn it at once.
    pub async fn cancel(&self, job: JobId) -> Result<CancelOutcome, ClientError> {
        let outcome = self.store.cancel(job).await?;
        if let CancelOutcome::Cancelled { .. } = outcome {
            // A hint only: waiters elsewhere poll if the engine cannot announce.
            let _ = announce_finished(&*self.store, &[job]).await;
        }
        Ok(outcome)
    }

    /// Deletes a periodic job's schedule: it fires no more, and the jobs it already fired are
    /// kept. Returns false if no schedule has this id (always, on an engine without
    /// schedules). A worker that still declares the schedule registers it again when it
    /// starts, so remove it from the code or configuration too.
    pub async fn delete_schedule(&self, id: &str) -> Result<bool, ClientError> {
        match self.store.schedules() {
            Some(engine) => Ok(engine.delete_schedule(id).await?),
            None => Ok(false),
        }
    }

    /// Runs a failed or cancelled job again (see [`Store::retry`]).
    pub async fn retry(
        &self,
        job: JobId,
        options: Option<SpawnOptions>,
    ) -> Result<SpawnResult, ClientError> {
        Ok(self.store.retry(job, options).await?)
    }

    /// Waits at most `limit` for a job of kind `J` to finish, and returns its typed output;
    /// a failure or cancellation is a typed error, and so is the limit passing (the job keeps
    /// going). A job deleted meanwhile (a worker with `delete_on_success`, a purge) is
    /// [`Error::NotFound`](crate::Error::NotFound) through [`ClientError::Store`].
    pub async fn wait<J: Job>(
        &self,
        job: impl JobRef<J>,
        limit: Duration,
    ) -> Result<J::Output, ClientError> {
        let id = job.job_id();
        let result = self.wait_result(id, limit).await?;
        match result.state {
            JobState::Completed => {
                let value = result.result.unwrap_or(Value::Null);
                serde_json::from_value(value).map_err(|source| ClientError::Decode {
                    job: id,
                    kind: J::KIND,
                    source,
                })
            }
            JobState::Cancelled => Err(ClientError::Cancelled {
                job: id,
                reason: result.failure.as_ref().map(FailureReason::from_json),
            }),
            _ => Err(ClientError::Failed {
                job: id,
                reason: result.failure.as_ref().map_or_else(
                    || FailureReason::new(FailureKind::Error, "no reason recorded"),
                    FailureReason::from_json,
                ),
            }),
        }
    }

    /// Waits at most `limit` for a job to finish (completed, failed or cancelled) and returns
    /// its untyped outcome.
    pub async fn wait_result(&self, job: JobId, limit: Duration) -> Result<JobResult, ClientError> {
        wait::until_finished(&*self.store, job, limit).await
    }
}

/// A typed job as a spawn: its kind, its JSON args, `options` over the kind's defaults.
fn encode<J: Job>(job: &J, options: JobOptions) -> Result<Spawn, ClientError> {
    let params = serde_json::to_value(job).map_err(|source| ClientError::Encode {
        kind: J::KIND,
        source,
    })?;
    let (queue, options) = options.or(job.options()).into_parts(J::KIND, &params)?;
    Ok(Spawn::new(queue, J::KIND, params).with_options(with_trace_context(options)))
}

fn encode_all<J: Job>(jobs: impl IntoIterator<Item = J>) -> Result<Vec<Spawn>, ClientError> {
    jobs.into_iter()
        .map(|job| encode(&job, JobOptions::new()))
        .collect()
}

/// The options with the enqueuing span's trace context added to the headers (no-op until a
/// propagator is installed; see [`crate::trace`]).
fn with_trace_context(options: SpawnOptions) -> SpawnOptions {
    crate::trace::inject(options)
}
