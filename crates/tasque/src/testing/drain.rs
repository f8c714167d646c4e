//! Draining a queue in manual mode: run its jobs now, through a real worker.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tasque_durable::{FailureReason, JobFilter, JobId, JobState, Store};
use tasque_worker::{Handlers, RunningWorker, Worker};

use super::gate::Gate;
use super::{TestClock, TestingError};

/// How a [`drain`](super::TestEnv::drain_with) runs.
#[derive(Clone, Debug)]
pub struct DrainOptions {
    pub(super) with_scheduled: bool,
    pub(super) recursive: bool,
    pub(super) stop_on_error: bool,
    pub(super) limit: Duration,
    pub(super) max_rounds: u32,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            with_scheduled: false,
            recursive: false,
            stop_on_error: false,
            limit: Duration::from_secs(30),
            max_rounds: 1000,
        }
    }
}

impl DrainOptions {
    /// Ready jobs only, in the named queue, failures counted (not returned).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also runs jobs scheduled for later (delayed jobs, retries waiting out their backoff,
    /// sleeping workflows, workflows waiting for an event with a timeout) by advancing the
    /// test clock to each one's run time, wake time or timeout in turn, until none is left: a
    /// wait for an event then ends timed out (emit the event first to test its arrival). Jobs
    /// waiting for an event without a timeout stay waiting.
    pub fn with_scheduled(mut self, yes: bool) -> Self {
        self.with_scheduled = yes;
        self
    }

    /// Also runs the jobs that drained jobs enqueue, in the named queue or any other,
    /// including queues created during the drain (and every other queue's ready jobs). Without
    /// it, the drain runs only the jobs of the named queue that exist when it starts: jobs
    /// they enqueue stay enqueued, untouched, for assertions or a later drain.
    pub fn recursive(mut self, yes: bool) -> Self {
        self.recursive = yes;
        self
    }

    /// Returns the first failed attempt as [`TestingError::JobFailed`] instead of counting it.
    pub fn stop_on_error(mut self, yes: bool) -> Self {
        self.stop_on_error = yes;
        self
    }

    /// The most real time one round may take (default 30 s).
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }
}

/// What a drain did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Runs that completed their job.
    pub completed: u64,
    /// Failed attempts (retried later, or the job failed for good).
    pub failed: u64,
    /// Runs that suspended their job (a workflow sleep or event wait).
    pub suspended: u64,
    /// Runs given back for later without an attempt (snoozed, or no handler for the kind).
    pub deferred: u64,
    /// Times the clock was advanced to a scheduled job.
    pub clock_advances: u64,
}

/// Runs the jobs of `queues` as `options` say; with `only`, only those jobs (otherwise, when
/// not recursive, the jobs of `queues` when the drain starts).
pub(super) async fn drain(
    store: &Arc<dyn Store>,
    clock: &TestClock,
    handlers: &Handlers,
    queues: &[String],
    options: &DrainOptions,
    only: Option<HashSet<JobId>>,
) -> Result<DrainReport, TestingError> {
    let mut queues = queues.to_vec();
    let only = match only {
        Some(only) => Some(only),
        None if options.recursive => None,
        None => {
            let filter = JobFilter::all().queues(queues.iter().cloned());
            Some(
                all_jobs(store, filter)
                    .await?
                    .iter()
                    .map(|job| job.id)
                    .collect(),
            )
        }
    };
    if options.recursive {
        add_new_queues(store, &mut queues).await?;
    }
    let name = queues.join(", ");
    let errors_before = error_counts(store, &queues).await?;
    let mut worker = start(store, handlers, &queues, only.as_ref())?;
    let mut report = DrainReport::default();
    let mut result = Ok(());
    for _ in 0..options.max_rounds {
        worker.wake();
        let settled = match &only {
            None => worker.wait_until_empty(false, options.limit).await,
            // Settled in the database; then the worker's counts (written after) too.
            Some(only) => {
                settled(store, &queues, only, options.limit).await?
                    && worker.wait_until_idle(options.limit).await
            }
        };
        if !settled {
            result = Err(TestingError::DrainTimedOut {
                queue: name.clone(),
                limit: options.limit,
            });
            break;
        }
        if options.stop_on_error {
            if let Some(failure) = first_new_error(store, &queues, &errors_before).await? {
                result = Err(failure);
                break;
            }
        }
        if options.recursive && add_new_queues(store, &mut queues).await? {
            // Jobs enqueued into queues created during the drain: a worker for them too.
            add_stats(&mut report, &worker.stats());
            worker.shutdown(Duration::from_secs(5)).await;
            worker = start(store, handlers, &queues, None)?;
            continue;
        }
        if !options.with_scheduled {
            break;
        }
        match next_due(store, &queues, only.as_ref()).await? {
            Some(at) => {
                if at > clock.now() {
                    clock.set(at).await?;
                    report.clock_advances += 1;
                }
            }
            None => break,
        }
    }
    add_stats(&mut report, &worker.stats());
    worker.shutdown(Duration::from_secs(5)).await;
    result.map(|()| report)
}

fn start(
    store: &Arc<dyn Store>,
    handlers: &Handlers,
    queues: &[String],
    only: Option<&HashSet<JobId>>,
) -> Result<RunningWorker, TestingError> {
    let gated: Arc<dyn Store> = match only {
        Some(only) => Arc::new(Gate::only(store.clone(), only.clone())),
        None => store.clone(),
    };
    Ok(Worker::builder(gated)
        .handlers(handlers.clone())
        .queues(queues.to_vec())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .rescue_interval(Duration::from_millis(50))
        .build()?
        .start()?)
}

fn add_stats(report: &mut DrainReport, stats: &tasque_worker::WorkerStats) {
    report.completed += stats.completed;
    report.failed += stats.failed;
    report.suspended += stats.suspended;
    report.deferred += stats.deferred;
}

/// Adds the queues not yet in `queues`; whether there were any.
async fn add_new_queues(
    store: &Arc<dyn Store>,
    queues: &mut Vec<String>,
) -> Result<bool, TestingError> {
    let mut added = false;
    for known in store.list_queues().await? {
        if !queues.contains(&known.name) {
            queues.push(known.name);
            added = true;
        }
    }
    Ok(added)
}

/// Waits until none of the `only` jobs is ready or running; false after `limit`.
async fn settled(
    store: &Arc<dyn Store>,
    queues: &[String],
    only: &HashSet<JobId>,
    limit: Duration,
) -> Result<bool, TestingError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let filter = JobFilter::all()
            .states([JobState::Available, JobState::Running])
            .queues(queues.iter().cloned());
        let busy = all_jobs(store, filter)
            .await?
            .iter()
            .any(|job| only.contains(&job.id));
        if !busy {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The earliest time a job of the queues becomes ready without help: a scheduled job's run
/// time, a sleeper's wake time, a waiter's timeout (a wait without one never wakes by itself).
async fn next_due(
    store: &Arc<dyn Store>,
    queues: &[String],
    only: Option<&HashSet<JobId>>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, TestingError> {
    let filter = JobFilter::all()
        .states([JobState::Scheduled, JobState::Sleeping, JobState::Waiting])
        .queues(queues.iter().cloned());
    let jobs = all_jobs(store, filter).await?;
    let mut next: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut now = None;
    for job in jobs
        .iter()
        .filter(|job| only.is_none_or(|only| only.contains(&job.id)))
    {
        let due = match (job.state, store.insight()) {
            (JobState::Scheduled, _) | (JobState::Sleeping, None) => Some(job.run_at),
            (_, None) => None,
            (_, Some(insight)) => match insight.suspension(job.id).await? {
                Some(tasque_durable::insight::Suspension {
                    wakes_in_ms: Some(ms),
                    ..
                }) => {
                    let now = match now {
                        Some(now) => now,
                        None => *now.insert(store.now().await?),
                    };
                    now.checked_add_signed(chrono::TimeDelta::milliseconds(ms.max(0)))
                }
                _ => None,
            },
        };
        next = match (next, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(next)
}

async fn error_counts(
    store: &Arc<dyn Store>,
    queues: &[String],
) -> Result<HashMap<JobId, usize>, TestingError> {
    let filter = JobFilter::all().queues(queues.iter().cloned());
    Ok(all_jobs(store, filter)
        .await?
        .into_iter()
        .map(|job| (job.id, job.errors.len()))
        .collect())
}

async fn first_new_error(
    store: &Arc<dyn Store>,
    queues: &[String],
    before: &HashMap<JobId, usize>,
) -> Result<Option<TestingError>, TestingError> {
    let filter = JobFilter::all().queues(queues.iter().cloned());
    for job in all_jobs(store, filter).await? {
        let seen = before.get(&job.id).copied().unwrap_or(0);
        if let Some(error) = job.errors.get(seen) {
            return Ok(Some(TestingError::JobFailed {
                job: job.id,
                task: job.task,
                reason: FailureReason::from_json(&error.reason).to_string(),
            }));
        }
    }
    Ok(None)
}

async fn all_jobs(
    store: &Arc<dyn Store>,
    filter: JobFilter,
) -> Result<Vec<tasque_durable::JobInfo>, TestingError> {
    jobs_after(store, filter, 0).await
}

/// Every job matching `filter` with an id above `after`, by id.
pub(super) async fn jobs_after(
    store: &Arc<dyn Store>,
    filter: JobFilter,
    after: i64,
) -> Result<Vec<tasque_durable::JobInfo>, TestingError> {
    let mut page = if after > 0 {
        tasque_durable::PageRequest::after(JobId(after), 500)
    } else {
        tasque_durable::PageRequest::first(500)
    };
    let mut jobs = Vec::new();
    loop {
        let found = store.scan(filter.clone(), page).await?;
        jobs.extend(found.jobs);
        match found.next {
            Some(next) => page = tasque_durable::PageRequest::after(next, 500),
            None => return Ok(jobs),
        }
    }
}
