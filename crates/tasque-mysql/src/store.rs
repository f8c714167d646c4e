//! `impl Store for MySqlStore`: each method delegates to its operation in `ops`. Wake-ups are
//! in-process only (see [`MySqlStore::announce`](crate::MySqlStore)): MySQL has no
//! LISTEN/NOTIFY, so workers in other processes poll.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tasque_durable::{
    AwaitEvent, AwaitOutcome, BlockingParams, CancelOutcome, Checkpoint, Claim, ClaimParams,
    CompleteParams, FailOutcome, JobFilter, JobId, JobInfo, JobResult, LeaseStatus,
    MigrationReport, Page, PageRequest, QueueInfo, RescueReport, Result, RunAt, RunId, RunWrite,
    SetCheckpoint, SleepParams, Spawn, SpawnOptions, SpawnResult, Store,
};

use crate::ops::spawn::encode_all;
use crate::{migrate, sql_err, MySqlStore};

#[async_trait]
impl Store for MySqlStore {
    fn namespace(&self) -> &str {
        &self.inner.ns
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        sqlx::query_scalar(&self.inner.sql.now)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        migrate::run(
            &self.inner.pool,
            &self.inner.sql,
            &self.inner.stem,
            migrate::SCHEMA_VERSION,
            true,
        )
        .await
    }

    async fn spawn(&self, spawn: Spawn) -> Result<SpawnResult> {
        let jobs = encode_all(vec![spawn], &self.inner.limits)?;
        Ok(self.spawn_encoded(jobs).await?.remove(0))
    }

    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>> {
        let jobs = encode_all(spawns, &self.inner.limits)?;
        self.spawn_encoded(jobs).await
    }

    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        self.claim_jobs(params).await
    }

    async fn extend_lease(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>> {
        self.extend_one(run, by).await
    }

    async fn extend_leases(&self, runs: Vec<RunId>, by: Duration) -> Result<Vec<LeaseStatus>> {
        self.extend_many(runs, by).await
    }

    async fn complete(&self, params: CompleteParams) -> Result<()> {
        self.complete_one(params).await
    }

    async fn complete_many(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        self.complete_batch(items).await
    }

    async fn fail(&self, run: RunId, reason: Value) -> Result<FailOutcome> {
        self.fail_run(run, reason, None).await
    }

    async fn fail_with_retry_at(
        &self,
        run: RunId,
        reason: Value,
        at: RunAt,
    ) -> Result<FailOutcome> {
        self.fail_run(run, reason, Some(at)).await
    }

    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport> {
        self.rescue(limit).await
    }

    async fn cancel(&self, job: JobId) -> Result<CancelOutcome> {
        self.cancel_job(job).await
    }

    async fn retry(&self, job: JobId, options: Option<SpawnOptions>) -> Result<SpawnResult> {
        self.retry_job(job, options).await
    }

    async fn schedule_run(&self, run: RunId, at: RunAt) -> Result<()> {
        self.schedule(run, at).await
    }

    async fn release(&self, runs: Vec<RunId>) -> Result<u64> {
        self.release_runs(runs).await
    }

    async fn get_job(&self, job: JobId) -> Result<JobInfo> {
        self.job(job).await
    }

    async fn get_result(&self, job: JobId) -> Result<JobResult> {
        self.job_result(job).await
    }

    async fn count(&self, filter: JobFilter) -> Result<u64> {
        self.count_jobs(filter).await
    }

    async fn scan(&self, filter: JobFilter, page: PageRequest) -> Result<Page> {
        self.scan_jobs(filter, page).await
    }

    async fn delete(&self, job: JobId) -> Result<()> {
        self.delete_job(job).await
    }

    async fn purge(&self, filter: JobFilter) -> Result<u64> {
        self.purge_jobs(filter).await
    }

    async fn clean(&self, older_than: Duration, batch_size: u32) -> Result<u64> {
        self.clean_jobs(older_than, batch_size).await
    }

    async fn create_queue(&self, name: &str) -> Result<QueueInfo> {
        self.ensure_queue(name).await
    }

    async fn list_queues(&self) -> Result<Vec<QueueInfo>> {
        self.queues().await
    }

    async fn pause_queue(&self, name: &str) -> Result<()> {
        self.set_paused(name, true).await
    }

    async fn resume_queue(&self, name: &str) -> Result<()> {
        self.set_paused(name, false).await
    }

    async fn get_checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        self.checkpoints(job).await
    }

    async fn set_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>> {
        self.checkpoint(params).await
    }

    async fn sleep_until(&self, params: SleepParams) -> Result<()> {
        self.sleep(params).await
    }

    async fn await_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        self.wait_event(params).await
    }

    async fn emit_event(&self, name: &str, payload: Value) -> Result<u64> {
        self.emit(name, payload).await
    }

    async fn set_queue_limit(&self, name: &str, limit: Option<u32>) -> Result<()> {
        self.queue_limit(name, limit).await
    }

    async fn set_queue_blocking(&self, name: &str, params: BlockingParams) -> Result<()> {
        self.queue_blocking(name, params).await
    }

    fn subscribe_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.inner.wakeups.subscribe())
    }

    fn insight(&self) -> Option<&dyn tasque_durable::Insight> {
        Some(self)
    }
}
