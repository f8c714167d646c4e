//! The test worker: one typed handler run on given args against the real engine.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tasque_durable::client::{Client, Job};
use tasque_durable::{
    ClaimParams, FailureReason, JobInfo, JobState, PollOrder, SetCheckpoint, Store,
};
use tasque_worker::{Handlers, JobContext};

use super::gate::Gate;
use super::{drain, DrainOptions, TestClock, TestingError};

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

/// A handler's run and the job as it ended (read inside the transaction, before the
/// roll-back).
#[derive(Clone, Debug)]
pub struct Performance<T> {
    /// What the run led to.
    pub outcome: Performed<T>,
    /// The job's record after the run (its state, attempts, errors, run time...).
    pub job: JobInfo,
}

/// Runs `handler` once on `args` against the clock's engine inside one transaction that is
/// rolled back afterwards, with `steps` stored first as the job's checkpoints (so a workflow
/// resumes after them).
pub(super) async fn perform<J, F, Fut, E>(
    clock: &TestClock,
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
    let bound = clock.begin_bound().await?;
    let performed = run(&bound.store(), clock, args, handler, steps).await;
    // Rolled back on every path: nothing of the run stays.
    let rolled_back = bound.roll_back().await;
    let performance = performed?;
    rolled_back?;
    Ok(performance)
}

/// The run on the bound store: the job enqueued as the client would, then worked alone (other
/// jobs of its queue are not handed out), then read.
async fn run<J, F, Fut, E>(
    store: &Arc<dyn Store>,
    clock: &TestClock,
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
    let enqueued = Client::new(store.clone()).enqueue(args).await?;
    let id = enqueued.job_id;
    let queue = store.get_job(id).await?.queue;
    let only: Arc<dyn Store> = Arc::new(Gate::only(store.clone(), HashSet::from([id])));
    if !steps.is_empty() {
        seed_steps(&only, &queue, steps).await?;
    }
    let handlers = Handlers::new();
    handlers.register(handler);
    let report = drain::drain(
        store,
        clock,
        &handlers,
        &[queue],
        &DrainOptions::new().limit(Duration::from_secs(60)),
        Some(HashSet::from([id])),
    )
    .await?;
    let job = store.get_job(id).await?;
    let outcome = outcome::<J>(&job, report.deferred > 0)?;
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
