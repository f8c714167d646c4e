//! Draining a queue in manual mode: run its jobs now, through a real worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tasque_durable::{FailureReason, JobFilter, JobId, JobState, Store};
use tasque_worker::{Handlers, Worker};

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
    /// sleeping workflows) by advancing the test clock to each one's run time in turn, until
    /// none is left (jobs waiting for an event stay: advance the clock past their timeout or
    /// emit the event).
    pub fn with_scheduled(mut self, yes: bool) -> Self {
        self.with_scheduled = yes;
        self
    }

    /// Also runs jobs that jobs enqueue into other queues (every queue that exists when the
    /// drain starts); without it, only the named queue is worked, including jobs that jobs
    /// enqueue into it.
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

pub(super) async fn drain(
    store: &Arc<dyn Store>,
    clock: &TestClock,
    handlers: &Handlers,
    queue: &str,
    options: &DrainOptions,
) -> Result<DrainReport, TestingError> {
    let mut queues = vec![queue.to_string()];
    if options.recursive {
        for known in store.list_queues().await? {
            if !queues.contains(&known.name) {
                queues.push(known.name);
            }
        }
    }
    let errors_before = error_counts(store, &queues).await?;
    let worker = Worker::builder(store.clone())
        .handlers(handlers.clone())
        .queues(queues.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .rescue_interval(Duration::from_millis(50))
        .build()?
        .start()?;
    let mut report = DrainReport::default();
    let mut result = Ok(());
    for _ in 0..options.max_rounds {
        worker.wake();
        if !worker.wait_until_empty(false, options.limit).await {
            result = Err(TestingError::DrainTimedOut {
                queue: queue.to_string(),
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
        if !options.with_scheduled {
            break;
        }
        match next_due(store, &queues).await? {
            Some(at) => {
                if at > clock.now() {
                    clock.set(at).await?;
                    report.clock_advances += 1;
                }
            }
            None => break,
        }
    }
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(5)).await;
    report.completed = stats.completed;
    report.failed = stats.failed;
    report.suspended = stats.suspended;
    report.deferred = stats.deferred;
    result.map(|()| report)
}

/// The earliest run time of a scheduled or sleeping job of the queues.
async fn next_due(
    store: &Arc<dyn Store>,
    queues: &[String],
) -> Result<Option<chrono::DateTime<chrono::Utc>>, TestingError> {
    let filter = JobFilter::all()
        .states([JobState::Scheduled, JobState::Sleeping])
        .queues(queues.iter().cloned());
    Ok(all_jobs(store, filter)
        .await?
        .iter()
        .map(|job| job.run_at)
        .min())
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
