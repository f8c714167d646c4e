//! Supervised loops (issue 12): a worker whose claim loop or rescuer panics logs it, restarts
//! the loop with backoff and keeps working; a handler that panics before returning its future
//! fails its attempt like any handler panic; shutdown works while a loop waits out its backoff.
//!
//! Faults are injected through a store that delegates to SQLite and panics on command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, BlockingParams, CancelOutcome, Checkpoint, Claim, ClaimParams,
    CompleteParams, FailOutcome, JobFilter, JobId, JobInfo, JobResult, JobState, LeaseStatus,
    MigrationReport, Page, PageRequest, QueueInfo, RescueReport, Result, RunAt, RunId, RunWrite,
    SetCheckpoint, SleepParams, Spawn, SpawnOptions, SpawnResult, Store,
};
use tasque_sqlite::SqliteStore;
use tasque_worker::{Handlers, JobContext, RunningWorker, Worker};
use tokio::sync::broadcast;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATIENCE: Duration = Duration::from_secs(30);

/// SQLite, with panics on command.
struct FaultyStore {
    inner: SqliteStore,
    /// How many of the next claims panic.
    claim_panics: AtomicU64,
    /// How many of the next rescues panic.
    rescue_panics: AtomicU64,
}

#[async_trait]
impl Store for FaultyStore {
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
        self.inner.spawn(spawn).await
    }

    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>> {
        self.inner.spawn_many(spawns).await
    }

    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        if self.claim_panics.load(Ordering::SeqCst) > 0 {
            self.claim_panics.fetch_sub(1, Ordering::SeqCst);
            panic!("injected fault in claim");
        }
        self.inner.claim(params).await
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

    async fn fail_with_retry_at(
        &self,
        run: RunId,
        reason: Value,
        at: RunAt,
    ) -> Result<FailOutcome> {
        self.inner.fail_with_retry_at(run, reason, at).await
    }

    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport> {
        if self.rescue_panics.load(Ordering::SeqCst) > 0 {
            self.rescue_panics.fetch_sub(1, Ordering::SeqCst);
            panic!("injected fault in rescue");
        }
        self.inner.rescue_expired(limit).await
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

    fn subscribe_wakeups(&self) -> Option<broadcast::Receiver<String>> {
        self.inner.subscribe_wakeups()
    }
}

async fn faulty(dir: &tempfile::TempDir) -> Arc<FaultyStore> {
    let inner = SqliteStore::open(dir.path().join("jobs.db")).await.unwrap();
    inner.migrate().await.unwrap();
    Arc::new(FaultyStore {
        inner,
        claim_panics: AtomicU64::new(0),
        rescue_panics: AtomicU64::new(0),
    })
}

fn start(store: Arc<FaultyStore>, handlers: Handlers) -> RunningWorker {
    Worker::builder(store)
        .handlers(handlers)
        .poll_interval(Duration::from_millis(20))
        .rescue_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap()
}

fn echo() -> Handlers {
    let handlers = Handlers::new();
    handlers.learn("echo", |_ctx: JobContext, n: u64| async move {
        Ok::<_, BoxError>(n)
    });
    handlers
}

async fn spawn_many(store: &FaultyStore, task: &str, count: u64) -> Vec<JobId> {
    let spawns = (0..count)
        .map(|n| Spawn::new("default", task, json!(n)))
        .collect();
    let spawned = store.spawn_many(spawns).await.unwrap();
    spawned.into_iter().map(|s| s.job_id).collect()
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn all_completed(store: &FaultyStore, jobs: &[JobId]) -> bool {
    for job in jobs {
        if store.get_result(*job).await.unwrap().state != JobState::Completed {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_loop_that_panics_twice_is_restarted_and_runs_every_job_issue_12() {
    let dir = tempfile::tempdir().unwrap();
    let store = faulty(&dir).await;
    store.claim_panics.store(2, Ordering::SeqCst);
    let jobs = spawn_many(&store, "echo", 5).await;
    let worker = start(store.clone(), echo());
    until("every job to complete", || all_completed(&store, &jobs)).await;
    assert_eq!(store.claim_panics.load(Ordering::SeqCst), 0);
    assert!(worker.stats().restarts >= 2, "{:?}", worker.stats());
    // Still claiming after the restarts.
    let more = spawn_many(&store, "echo", 3).await;
    until("later jobs to complete", || all_completed(&store, &more)).await;
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescuer_that_panics_is_restarted_and_rescues_issue_12() {
    let dir = tempfile::tempdir().unwrap();
    let store = faulty(&dir).await;
    store.rescue_panics.store(2, Ordering::SeqCst);
    // A run whose worker "crashed": claimed under a short lease by nobody that reports.
    let jobs = spawn_many(&store, "echo", 1).await;
    let params = ClaimParams {
        queues: vec!["default".into()],
        limit: 1,
        lease: Duration::from_millis(50),
        worker_id: "crashed".into(),
        order: Default::default(),
    };
    assert_eq!(store.claim(params).await.unwrap().len(), 1);
    let worker = start(store.clone(), echo());
    until("the expired job to be rescued and run", || {
        all_completed(&store, &jobs)
    })
    .await;
    assert_eq!(store.rescue_panics.load(Ordering::SeqCst), 0);
    assert!(worker.stats().restarts >= 2, "{:?}", worker.stats());
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_while_the_claim_loop_waits_out_its_backoff_issue_12() {
    let dir = tempfile::tempdir().unwrap();
    let store = faulty(&dir).await;
    store.claim_panics.store(u64::MAX, Ordering::SeqCst);
    let worker = start(store.clone(), echo());
    let deadline = Instant::now() + PATIENCE;
    while worker.stats().restarts < 3 {
        assert!(
            Instant::now() < deadline,
            "the claim loop was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The next wait is 1.6 s and growing; shutdown cuts it short.
    let report = tokio::time::timeout(PATIENCE, worker.shutdown(Duration::from_secs(5)))
        .await
        .expect("shutdown returned");
    assert_eq!(report.released, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_that_panics_before_returning_its_future_fails_its_attempt_issue_12() {
    let dir = tempfile::tempdir().unwrap();
    let store = faulty(&dir).await;
    let handlers = echo();
    handlers.learn("eager", |_ctx: JobContext, n: u64| {
        assert!(n != 0, "eager handler refuses zero");
        async move { Ok::<_, BoxError>(n) }
    });
    let options = SpawnOptions::new().with_max_attempts(1);
    let bad = store
        .spawn(Spawn::new("default", "eager", json!(0)).with_options(options))
        .await
        .unwrap()
        .job_id;
    let good = spawn_many(&store, "eager", 3).await;
    let worker = start(store.clone(), handlers);
    until("the panicking job to fail", || async {
        store.get_result(bad).await.unwrap().state == JobState::Failed
    })
    .await;
    let failure = store.get_result(bad).await.unwrap().failure.unwrap();
    assert_eq!(failure["kind"], "panic");
    assert!(failure["error"].as_str().unwrap().contains("refuses zero"));
    until("the other jobs to complete", || {
        all_completed(&store, &good[1..])
    })
    .await;
    assert_eq!(worker.stats().restarts, 0, "no loop died");
    let more = spawn_many(&store, "echo", 2).await;
    until("later jobs to complete", || all_completed(&store, &more)).await;
    worker.shutdown(Duration::from_secs(5)).await;
}
