//! The store the test helpers put between their workers or client and the engine: it
//! delegates everything, with two hooks.
//!
//! * **Only these jobs** (a drain that is not recursive, an inline enqueue): its claims hand
//!   out only the listed jobs; any other job claimed on the way is given back at once, no
//!   attempt counted, so jobs enqueued during the drain stay ready and untouched.
//! * **Inline** (the client of a [`TestEnv`](super::TestEnv) in inline mode): every spawn
//!   through it runs the spawned jobs, and only them, before it returns.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tasque_durable::{
    AwaitEvent, AwaitOutcome, BlockingParams, CancelOutcome, Checkpoint, Claim, ClaimParams,
    CompleteParams, Error, FailOutcome, JobFilter, JobId, JobInfo, JobResult, LeaseStatus,
    MigrationReport, Page, PageRequest, QueueInfo, RescueReport, Result, RunAt, RunId, RunWrite,
    SetCheckpoint, SleepParams, Spawn, SpawnOptions, SpawnResult, Store, WakeReport,
};
use tasque_worker::Handlers;

use super::{drain, DrainOptions, TestClock, TestingError};

/// What an inline spawn runs the spawned jobs with.
#[derive(Clone, Debug)]
pub(super) struct Inline {
    pub(super) clock: TestClock,
    pub(super) handlers: Handlers,
}

/// A delegating store with the hooks of the module docs.
pub(super) struct Gate {
    inner: Arc<dyn Store>,
    only: Option<HashSet<JobId>>,
    inline: Option<Inline>,
}

impl Gate {
    /// Claims hand out only the jobs in `only`.
    pub(super) fn only(inner: Arc<dyn Store>, only: HashSet<JobId>) -> Gate {
        Gate {
            inner,
            only: Some(only),
            inline: None,
        }
    }

    /// Spawns run the spawned jobs before returning.
    pub(super) fn inline(inner: Arc<dyn Store>, inline: Inline) -> Gate {
        Gate {
            inner,
            only: None,
            inline: Some(inline),
        }
    }

    /// Runs the jobs just spawned (only them), retries and scheduled runs included.
    async fn run_inline(&self, spawned: &[(String, JobId)]) -> Result<()> {
        let Some(inline) = &self.inline else {
            return Ok(());
        };
        let mut queues: Vec<String> = Vec::new();
        for (queue, _) in spawned {
            if !queues.contains(queue) {
                queues.push(queue.clone());
            }
        }
        let only: HashSet<JobId> = spawned.iter().map(|(_, id)| *id).collect();
        drain::drain(
            &self.inner,
            &inline.clock,
            &inline.handlers,
            &queues,
            &DrainOptions::new().with_scheduled(true),
            Some(only),
        )
        .await
        .map_err(|error| match error {
            TestingError::Store(error) => error,
            other => Error::Database(Box::new(other)),
        })?;
        Ok(())
    }
}

#[async_trait]
impl Store for Gate {
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        self.inner.now().await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.inner.migrate().await
    }

    async fn spawn(&self, spawn: Spawn) -> Result<SpawnResult> {
        let queue = spawn.queue.clone();
        let spawned = self.inner.spawn(spawn).await?;
        self.run_inline(&[(queue, spawned.job_id)]).await?;
        Ok(spawned)
    }

    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>> {
        let queues: Vec<String> = spawns.iter().map(|s| s.queue.clone()).collect();
        let spawned = self.inner.spawn_many(spawns).await?;
        let ran: Vec<(String, JobId)> = queues
            .into_iter()
            .zip(spawned.iter().map(|s| s.job_id))
            .collect();
        self.run_inline(&ran).await?;
        Ok(spawned)
    }

    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        let Some(only) = &self.only else {
            return self.inner.claim(params).await;
        };
        let wanted = params.limit as usize;
        let mut kept = Vec::new();
        let mut held = Vec::new();
        loop {
            let claims = self
                .inner
                .claim(ClaimParams {
                    limit: (wanted - kept.len()) as u32,
                    ..params.clone()
                })
                .await?;
            if claims.is_empty() {
                break;
            }
            for claim in claims {
                if only.contains(&claim.job_id) {
                    kept.push(claim);
                } else {
                    held.push(claim.run_id);
                }
            }
            if kept.len() >= wanted {
                break;
            }
        }
        if !held.is_empty() {
            self.inner.release(held).await?;
        }
        Ok(kept)
    }

    async fn extend_lease(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>> {
        self.inner.extend_lease(run, by).await
    }

    async fn extend_leases(&self, runs: Vec<RunId>, by: Duration) -> Result<Vec<LeaseStatus>> {
        self.inner.extend_leases(runs, by).await
    }

    async fn complete(&self, params: CompleteParams) -> Result<()> {
        self.inner.complete(params).await
    }

    async fn complete_many(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        self.inner.complete_many(items).await
    }

    async fn fail(&self, run: RunId, reason: Value) -> Result<FailOutcome> {
        self.inner.fail(run, reason).await
    }

    async fn fail_for_good(&self, run: RunId, reason: Value) -> Result<()> {
        self.inner.fail_for_good(run, reason).await
    }

    async fn fail_with_retry_at(
        &self,
        run: RunId,
        reason: Value,
        at: RunAt,
    ) -> Result<FailOutcome> {
        self.inner.fail_with_retry_at(run, reason, at).await
    }

    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport> {
        self.inner.rescue_expired(limit).await
    }

    async fn wake_due(&self) -> Result<WakeReport> {
        self.inner.wake_due().await
    }

    async fn cancel(&self, job: JobId) -> Result<CancelOutcome> {
        self.inner.cancel(job).await
    }

    async fn retry(&self, job: JobId, options: Option<SpawnOptions>) -> Result<SpawnResult> {
        self.inner.retry(job, options).await
    }

    async fn schedule_run(&self, run: RunId, at: RunAt) -> Result<()> {
        self.inner.schedule_run(run, at).await
    }

    async fn release(&self, runs: Vec<RunId>) -> Result<u64> {
        self.inner.release(runs).await
    }

    async fn get_job(&self, job: JobId) -> Result<JobInfo> {
        self.inner.get_job(job).await
    }

    async fn get_result(&self, job: JobId) -> Result<JobResult> {
        self.inner.get_result(job).await
    }

    async fn count(&self, filter: JobFilter) -> Result<u64> {
        self.inner.count(filter).await
    }

    async fn scan(&self, filter: JobFilter, page: PageRequest) -> Result<Page> {
        self.inner.scan(filter, page).await
    }

    async fn delete(&self, job: JobId) -> Result<()> {
        self.inner.delete(job).await
    }

    async fn purge(&self, filter: JobFilter) -> Result<u64> {
        self.inner.purge(filter).await
    }

    async fn clean(&self, older_than: Duration, batch_size: u32) -> Result<u64> {
        self.inner.clean(older_than, batch_size).await
    }

    async fn create_queue(&self, name: &str) -> Result<QueueInfo> {
        self.inner.create_queue(name).await
    }

    async fn list_queues(&self) -> Result<Vec<QueueInfo>> {
        self.inner.list_queues().await
    }

    async fn pause_queue(&self, name: &str) -> Result<()> {
        self.inner.pause_queue(name).await
    }

    async fn resume_queue(&self, name: &str) -> Result<()> {
        self.inner.resume_queue(name).await
    }

    async fn get_checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        self.inner.get_checkpoints(job).await
    }

    async fn set_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>> {
        self.inner.set_checkpoint(params).await
    }

    async fn sleep_until(&self, params: SleepParams) -> Result<()> {
        self.inner.sleep_until(params).await
    }

    async fn await_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        self.inner.await_event(params).await
    }

    async fn emit_event(&self, name: &str, payload: Value) -> Result<u64> {
        self.inner.emit_event(name, payload).await
    }

    async fn set_queue_limit(&self, name: &str, limit: Option<u32>) -> Result<()> {
        self.inner.set_queue_limit(name, limit).await
    }

    async fn set_queue_blocking(&self, name: &str, params: BlockingParams) -> Result<()> {
        self.inner.set_queue_blocking(name, params).await
    }

    fn subscribe_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.subscribe_wakeups()
    }

    async fn announce_finished(&self, jobs: &[JobId]) -> Result<()> {
        self.inner.announce_finished(jobs).await
    }

    async fn watch_finished(&self, job: JobId) -> Result<Option<u64>> {
        self.inner.watch_finished(job).await
    }

    async fn unwatch_finished(&self, job: JobId, token: u64) -> Result<()> {
        self.inner.unwatch_finished(job, token).await
    }

    fn schedules(&self) -> Option<&dyn tasque_durable::schedule::ScheduleEngine> {
        self.inner.schedules()
    }

    fn insight(&self) -> Option<&dyn tasque_durable::Insight> {
        self.inner.insight()
    }

    fn deps(&self) -> Option<tasque_durable::deps::Deps<'_>> {
        self.inner.deps()
    }
}
