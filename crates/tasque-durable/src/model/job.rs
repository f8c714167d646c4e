//! Jobs as they are spawned, claimed and inspected.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JobId, JobState, RunId, Wake};
use crate::options::{CancellationPolicy, RetryStrategy, SpawnOptions};

/// A job to enqueue: queue, task name (the handler to run), JSON params and options.
#[derive(Clone, Debug, PartialEq)]
pub struct Spawn {
    /// The queue; created on first use.
    pub queue: String,
    /// The task name a worker dispatches on.
    pub task: String,
    /// The handler's input.
    pub params: Value,
    /// Options; unset fields take their defaults.
    pub options: SpawnOptions,
}

impl Spawn {
    /// A job with default options.
    pub fn new(queue: impl Into<String>, task: impl Into<String>, params: Value) -> Self {
        Spawn {
            queue: queue.into(),
            task: task.into(),
            params,
            options: SpawnOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SpawnOptions) -> Self {
        self.options = options;
        self
    }
}

/// What [`Store::spawn`](crate::Store::spawn) and [`Store::retry`](crate::Store::retry) return.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SpawnResult {
    /// The job.
    pub job_id: JobId,
    /// The job's current run: the pending run a claim will take (or, for an idempotent
    /// duplicate, whatever run the existing job is at).
    pub run_id: RunId,
    /// The attempt number of that run (1 for a new job).
    pub attempt: u32,
    /// False when the idempotency key matched an existing job, which is returned instead,
    /// and for retries (no new job is created).
    pub created: bool,
}

/// A claimed run: everything the handler and its worker need.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The job.
    pub job_id: JobId,
    /// This run; complete, fail, extend and reschedule with it.
    pub run_id: RunId,
    /// The queue the job was claimed from.
    pub queue: String,
    /// The task name to dispatch on.
    pub task: String,
    /// The handler's input.
    pub params: Value,
    /// The job's headers (`Value::Null` when none were given).
    pub headers: Value,
    /// This run's attempt number, from 1.
    pub attempt: u32,
    /// The job's attempt budget.
    pub max_attempts: u32,
    /// The job's retry strategy.
    pub retry: RetryStrategy,
    /// The job's priority.
    pub priority: i32,
    /// The per-run timeout the worker enforces, if any.
    pub timeout: Option<Duration>,
    /// When the lease ends unless extended (engine clock).
    pub lease_expires_at: DateTime<Utc>,
    /// The event this run's job last waited for, when the job was resumed from a wait (see
    /// [`Claim::wake`]); replaced by the job's next wait.
    pub wake_event: Option<String>,
    /// The payload of that event: `None` with a `wake_event` means the wait timed out.
    pub event_payload: Option<Value>,
}

impl Claim {
    /// Why this run's job was resumed from an event wait, if it was: the event and its payload,
    /// or the wait's timeout.
    pub fn wake(&self) -> Option<Wake> {
        let name = self.wake_event.clone()?;
        Some(match &self.event_payload {
            Some(payload) => Wake::Event {
                name,
                payload: payload.clone(),
            },
            None => Wake::TimedOut { name },
        })
    }
}

/// One failed attempt, as recorded in [`JobInfo::errors`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    /// The attempt that failed.
    pub attempt: u32,
    /// The run's sequence number.
    pub run: i64,
    /// When the failure was recorded (milliseconds since the Unix epoch, engine clock).
    pub at_ms: i64,
    /// The reason: the JSON given to `fail`, or `{"error": "lease expired"}` for a rescued run.
    pub reason: Value,
}

/// The full record of a job, as the inspector shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInfo {
    /// The job.
    pub id: JobId,
    /// Its current (or last) run.
    pub run_id: RunId,
    /// Its queue.
    pub queue: String,
    /// Its task name.
    pub task: String,
    /// Its params.
    pub params: Value,
    /// Its headers (`Value::Null` when none).
    pub headers: Value,
    /// Its state now (pending jobs are available or scheduled by their run time).
    pub state: JobState,
    /// Its priority.
    pub priority: i32,
    /// The current (or last) attempt number, from 1.
    pub attempt: u32,
    /// Its attempt budget.
    pub max_attempts: u32,
    /// Its retry strategy.
    pub retry: RetryStrategy,
    /// Its per-run timeout.
    pub timeout: Option<Duration>,
    /// Its cancellation policy.
    pub cancellation: CancellationPolicy,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// Its unique key, if it was spawned unique (see [`unique`](crate::unique)).
    pub unique_key: Option<String>,
    /// The result, once completed.
    pub result: Option<Value>,
    /// The final failure or cancellation reason, once failed or cancelled.
    pub failure: Option<Value>,
    /// Every failed attempt, oldest first.
    pub errors: Vec<AttemptError>,
    /// The worker holding (or that last held) the job.
    pub worker_id: Option<String>,
    /// When it was spawned.
    pub created_at: DateTime<Utc>,
    /// When its current run may start.
    pub run_at: DateTime<Utc>,
    /// When its first run started.
    pub first_started_at: Option<DateTime<Utc>>,
    /// When its latest run started.
    pub attempted_at: Option<DateTime<Utc>>,
    /// When it finished (completed, failed or cancelled).
    pub finished_at: Option<DateTime<Utc>>,
    /// When the running run's lease ends.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl JobInfo {
    /// The options the job has now, as `SpawnOptions` (no run time: the job already has one),
    /// for merging new options over them.
    pub fn current_options(&self) -> SpawnOptions {
        SpawnOptions {
            max_attempts: Some(self.max_attempts),
            retry: Some(self.retry.clone()),
            priority: Some(self.priority),
            run_at: None,
            timeout: self.timeout,
            cancellation: Some(self.cancellation),
            headers: Some(self.headers.clone()),
            idempotency_key: self.idempotency_key.clone(),
            // A job keeps its key: retry never moves it to another key.
            ordering_key: None,
            unique: None,
            // Dependencies are decided at spawn; a retried job waits for nothing.
            depends_on: None,
        }
    }
}

/// The outcome of a job: [`Store::get_result`](crate::Store::get_result).
#[derive(Clone, Debug, PartialEq)]
pub struct JobResult {
    /// Its state.
    pub state: JobState,
    /// The result, once completed.
    pub result: Option<Value>,
    /// The failure or cancellation reason, once failed or cancelled.
    pub failure: Option<Value>,
}

impl From<JobInfo> for JobResult {
    fn from(info: JobInfo) -> Self {
        JobResult {
            state: info.state,
            result: info.result,
            failure: info.failure,
        }
    }
}
