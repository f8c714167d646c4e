//! The test worker: one typed handler run on given args against the real engine.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tasque_durable::client::Job;
use tasque_durable::{
    ClaimParams, FailureReason, JobInfo, JobState, PollOrder, SetCheckpoint, Spawn, Store,
};
use tasque_worker::{Handlers, JobContext, Worker};

use super::TestingError;

/// What one run of a handler by [`TestEnv::perform`](super::TestEnv::perform) led to.
#[derive(Clone, Debug, PartialEq)]
pub enum Performed<T> {
    /// The handler returned `Ok`: the job completed with this output.
    Completed(T),
    /// The attempt failed and the job will be retried (at `job.run_at`).
    Retrying(FailureReason),
    /// The attempt failed and the job failed for good.
    Failed(FailureReason),
    /// The handler snoozed the job (it runs again at `job.run_at`, no attempt counted).
    Snoozed,
    /// The handler suspended the job: a workflow sleep (`job.state` is sleeping) or an event
    /// wait (waiting).
    Suspended,
    /// The job was cancelled while it ran.
    Cancelled,
}

/// A handler's run and the job as it ended.
#[derive(Clone, Debug)]
pub struct Performance<T> {
    /// What the run led to.
    pub outcome: Performed<T>,
    /// The job's record after the run (its state, attempts, errors, run time...).
    pub job: JobInfo,
}

static PERFORMED: AtomicU64 = AtomicU64::new(0);

/// Runs `handler` once on `args` in a queue of its own, with `steps` stored first as the
/// job's checkpoints (so a workflow resumes after them), then deletes the job.
pub(super) async fn perform<J, F, Fut, E>(
    store: &Arc<dyn Store>,
    args: J,
    handler: F,
    steps: Vec<(String, Value)>,
) -> Result<Performance<J::Output>, TestingError>
where
    J: Job,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let queue = format!(
        "tasque_test_perform_{}_{}",
        std::process::id(),
        PERFORMED.fetch_add(1, Ordering::Relaxed)
    );
    let options = args.options().spawn_options().clone();
    let params = serde_json::to_value(&args).map_err(|source| TestingError::Encode {
        kind: J::KIND,
        source,
    })?;
    let spawned = store
        .spawn(Spawn::new(queue.clone(), J::KIND, params).with_options(options))
        .await?;
    if !steps.is_empty() {
        seed_steps(store, &queue, steps).await?;
    }
    let handlers = Handlers::new();
    handlers.register(handler);
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .queues([queue.clone()])
        .concurrency(1)
        .poll_interval(Duration::from_millis(20))
        .build()?
        .start()?;
    let emptied = worker
        .wait_until_empty(false, Duration::from_secs(60))
        .await;
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(5)).await;
    if !emptied {
        return Err(TestingError::DrainTimedOut {
            queue,
            limit: Duration::from_secs(60),
        });
    }
    let job = store.get_job(spawned.job_id).await?;
    let outcome = outcome::<J>(&job, stats.deferred > 0)?;
    store.delete(job.id).await?;
    Ok(Performance { outcome, job })
}

/// Stores `steps` as checkpoints of the queue's one job: claims its run, writes them, gives
/// the run back (no attempt counted).
async fn seed_steps(
    store: &Arc<dyn Store>,
    queue: &str,
    steps: Vec<(String, Value)>,
) -> Result<(), TestingError> {
    let claims = store
        .claim(ClaimParams {
            queues: vec![queue.to_string()],
            limit: 1,
            lease: Duration::from_secs(60),
            worker_id: "tasque-test-seeder".to_string(),
            order: PollOrder::default(),
        })
        .await?;
    let claim = claims
        .into_iter()
        .next()
        .ok_or(TestingError::NotClaimable)?;
    for (name, value) in steps {
        store
            .set_checkpoint(SetCheckpoint {
                run: claim.run_id,
                name,
                value,
                extend_lease: Duration::from_secs(60),
            })
            .await?;
    }
    store.release(vec![claim.run_id]).await?;
    Ok(())
}

fn outcome<J: Job>(job: &JobInfo, deferred: bool) -> Result<Performed<J::Output>, TestingError> {
    let last_error = || {
        job.errors.last().map_or_else(
            || FailureReason::from_json(job.failure.as_ref().unwrap_or(&Value::Null)),
            |e| FailureReason::from_json(&e.reason),
        )
    };
    Ok(match job.state {
        JobState::Completed => {
            let output = job.result.clone().unwrap_or(Value::Null);
            Performed::Completed(serde_json::from_value(output).map_err(|source| {
                TestingError::Decode {
                    job: job.id,
                    kind: J::KIND,
                    source,
                }
            })?)
        }
        JobState::Failed => Performed::Failed(last_error()),
        JobState::Cancelled => Performed::Cancelled,
        JobState::Sleeping | JobState::Waiting => Performed::Suspended,
        JobState::Scheduled | JobState::Available if deferred => Performed::Snoozed,
        JobState::Scheduled | JobState::Available => Performed::Retrying(last_error()),
        JobState::Running | JobState::OnHold => return Err(TestingError::NotClaimable),
    })
}
