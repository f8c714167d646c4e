//! [`MeteredStore`]: a [`Store`] that counts and times what goes through it into [`Metrics`].
//!
//! # Contract
//!
//! It behaves exactly as the store it wraps (every call is passed through unchanged, errors
//! included) and records, on success: each created job (`enqueued`); each claim (queue wait,
//! read back from the engine's [`Insight`](tasque_durable::Insight) in one extra query per
//! non-empty claim); and each run's end through this store (completed, retried, failed,
//! snoozed, or cancelled / lost as heartbeats learn it) with its run time since the claim and,
//! for completions and final failures, its end-to-end time. Give it to a worker
//! (`Worker::builder(Arc::new(metered))`) to meter that worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use tasque_durable::{
    AwaitEvent, AwaitOutcome, BlockingParams, CancelOutcome, Checkpoint, Claim, ClaimParams,
    CompleteParams, FailOutcome, Insight, JobFilter, JobId, JobInfo, JobResult, LeaseStatus,
    MigrationReport, Page, PageRequest, QueueInfo, RescueReport, Result, RunAt, RunId, RunWrite,
    SetCheckpoint, SleepParams, Spawn, SpawnOptions, SpawnResult, Store,
};

use crate::metrics::Metrics;

/// A claimed run this store watches until it ends.
struct Tracked {
    queue: String,
    kind: String,
    claimed: Instant,
    /// The job's age at the claim (ms), when the engine told it.
    age_ms: Option<i64>,
}

/// A [`Store`] that records metrics. See the module documentation.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
    runs: Mutex<HashMap<RunId, Tracked>>,
}

impl MeteredStore {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Metrics) -> Self {
        MeteredStore {
            inner,
            metrics,
            runs: Mutex::default(),
        }
    }

    /// The metrics recorded into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Ends the watch of `run` with `outcome`; `final_` also records the end-to-end time.
    fn ended(&self, run: RunId, outcome: &str, final_: bool) {
        let Some(tracked) = self.runs.lock().remove(&run) else {
            return;
        };
        let labels = [tracked.queue.as_str(), tracked.kind.as_str()];
        self.metrics
            .finished
            .with_label_values(&[labels[0], labels[1], outcome])
            .inc();
        let ran = tracked.claimed.elapsed();
        self.metrics
            .run_time
            .with_label_values(&[labels[0], labels[1], outcome])
            .observe(ran.as_secs_f64());
        if let (true, Some(age)) = (final_, tracked.age_ms) {
            let total = Duration::from_millis(u64::try_from(age).unwrap_or(0)) + ran;
            self.metrics
                .end_to_end
                .with_label_values(&labels)
                .observe(total.as_secs_f64());
        }
    }

    /// Forgets `run` without counting an outcome (suspended or released runs).
    fn forget(&self, run: RunId) {
        self.runs.lock().remove(&run);
    }

    async fn watch_claims(&self, claims: &[Claim]) {
        if claims.is_empty() {
            return;
        }
        let mut timings = HashMap::new();
        if let Some(insight) = self.inner.insight() {
            let ids: Vec<JobId> = claims.iter().map(|c| c.job_id).collect();
            match insight.start_timings(&ids).await {
                Ok(found) => timings.extend(found.into_iter().map(|t| (t.job, t))),
                Err(error) => tracing::debug!(%error, "claim timings unavailable"),
            }
        }
        let now = Instant::now();
        let mut runs = self.runs.lock();
        for claim in claims {
            let timing = timings.get(&claim.job_id);
            if let Some(timing) = timing {
                self.metrics
                    .queue_wait
                    .with_label_values(&[claim.queue.as_str(), claim.task.as_str()])
                    .observe(timing.wait_ms.max(0) as f64 / 1000.0);
            }
            runs.insert(
                claim.run_id,
                Tracked {
                    queue: claim.queue.clone(),
                    kind: claim.task.clone(),
                    claimed: now,
                    age_ms: timing.map(|t| t.age_ms),
                },
            );
        }
    }

    fn fail_outcome(&self, run: RunId, outcome: &FailOutcome) {
        match outcome {
            FailOutcome::Retrying { .. } => self.ended(run, "retried", false),
            FailOutcome::Failed => self.ended(run, "failed", true),
        }
    }
}

#[async_trait]
impl Store for MeteredStore {
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
        let labels = [spawn.queue.clone(), spawn.task.clone()];
        let result = self.inner.spawn(spawn).await?;
        if result.created {
            self.metrics
                .enqueued
                .with_label_values(&[labels[0].as_str(), labels[1].as_str()])
                .inc();
        }
        Ok(result)
    }
    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>> {
        let labels: Vec<(String, String)> = spawns
            .iter()
            .map(|s| (s.queue.clone(), s.task.clone()))
            .collect();
        let results = self.inner.spawn_many(spawns).await?;
        for ((queue, kind), result) in labels.iter().zip(&results) {
            if result.created {
                self.metrics
                    .enqueued
                    .with_label_values(&[queue.as_str(), kind.as_str()])
                    .inc();
            }
        }
        Ok(results)
    }
    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        let claims = self.inner.claim(params).await?;
        self.watch_claims(&claims).await;
        Ok(claims)
    }
    async fn extend_lease(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>> {
        self.inner.extend_lease(run, by).await
    }
    async fn extend_leases(&self, runs: Vec<RunId>, by: Duration) -> Result<Vec<LeaseStatus>> {
        let statuses = self.inner.extend_leases(runs.clone(), by).await?;
        for (run, status) in runs.iter().zip(&statuses) {
            match status {
                LeaseStatus::Cancelled => self.ended(*run, "cancelled", false),
                LeaseStatus::Lost => self.ended(*run, "lost", false),
                LeaseStatus::Extended(_) => {}
            }
        }
        Ok(statuses)
    }
    async fn complete(&self, params: CompleteParams) -> Result<()> {
        let run = params.run;
        self.inner.complete(params).await?;
        self.ended(run, "completed", true);
        Ok(())
    }
    async fn complete_many(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        let runs: Vec<RunId> = items.iter().map(|i| i.run).collect();
        let writes = self.inner.complete_many(items).await?;
        for (run, write) in runs.iter().zip(&writes) {
            match write {
                RunWrite::Applied => self.ended(*run, "completed", true),
                RunWrite::Cancelled => self.ended(*run, "cancelled", false),
                RunWrite::Stale => self.ended(*run, "lost", false),
            }
        }
        Ok(writes)
    }
    async fn fail(&self, run: RunId, reason: Value) -> Result<FailOutcome> {
        let outcome = self.inner.fail(run, reason).await?;
        self.fail_outcome(run, &outcome);
        Ok(outcome)
    }
    async fn fail_with_retry_at(
        &self,
        run: RunId,
        reason: Value,
        at: RunAt,
    ) -> Result<FailOutcome> {
        let outcome = self.inner.fail_with_retry_at(run, reason, at).await?;
        self.fail_outcome(run, &outcome);
        Ok(outcome)
    }
    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport> {
        let report = self.inner.rescue_expired(limit).await?;
        let rescued = report.retried + report.failed;
        if rescued > 0 {
            self.metrics
                .finished
                .with_label_values(&["", "", "rescued"])
                .inc_by(rescued);
        }
        Ok(report)
    }
    async fn wake_due(&self) -> Result<tasque_durable::WakeReport> {
        self.inner.wake_due().await
    }
    async fn cancel(&self, job: JobId) -> Result<CancelOutcome> {
        self.inner.cancel(job).await
    }
    async fn retry(&self, job: JobId, options: Option<SpawnOptions>) -> Result<SpawnResult> {
        self.inner.retry(job, options).await
    }
    async fn schedule_run(&self, run: RunId, at: RunAt) -> Result<()> {
        self.inner.schedule_run(run, at).await?;
        self.ended(run, "snoozed", false);
        Ok(())
    }
    async fn release(&self, runs: Vec<RunId>) -> Result<u64> {
        let released = self.inner.release(runs.clone()).await?;
        for run in runs {
            self.forget(run);
        }
        Ok(released)
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
        let run = params.run;
        self.inner.sleep_until(params).await?;
        self.forget(run);
        Ok(())
    }
    async fn await_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        let run = params.run;
        let outcome = self.inner.await_event(params).await?;
        if matches!(outcome, AwaitOutcome::Suspended) {
            self.forget(run);
        }
        Ok(outcome)
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
    fn insight(&self) -> Option<&dyn Insight> {
        self.inner.insight()
    }

    fn schedules(&self) -> Option<&dyn tasque_durable::schedule::ScheduleEngine> {
        self.inner.schedules()
    }

    fn registry(&self) -> Option<&dyn tasque_durable::registry::WorkerRegistry> {
        self.inner.registry()
    }

    fn flow(&self) -> Option<tasque_durable::flow::Flow<'_>> {
        self.inner.flow()
    }

    fn deps(&self) -> Option<tasque_durable::deps::Deps<'_>> {
        self.inner.deps()
    }
}
