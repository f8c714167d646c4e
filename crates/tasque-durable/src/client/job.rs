//! The [`Job`] trait (a typed job kind) and [`JobOptions`] (where and how it runs).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::options::{CancellationPolicy, RetryStrategy, SpawnOptions};
use crate::unique::Unique;

/// The queue a job goes to when neither its kind nor the caller names one.
pub const DEFAULT_QUEUE: &str = "default";

/// A typed job kind: its args are the implementing type itself, stored as the job's JSON
/// params; its [`Output`](Job::Output) is stored as the job's JSON result.
///
/// [`KIND`](Job::KIND) is the task name a worker dispatches on, so producers in other
/// languages (the SQL function, the CLI, RabbitMQ) reach the same handler by spawning that
/// string with params of the same JSON shape. [`options`](Job::options) gives the defaults of
/// every job of the kind (it sees the args, so an idempotency key can be derived from them);
/// options given at enqueue time override it field by field.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tasque_durable::client::{Job, JobOptions};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String, order: u64 }
///
/// impl Job for SendEmail {
///     const KIND: &'static str = "send_email";
///     type Output = String;
///
///     fn options(&self) -> JobOptions {
///         JobOptions::new()
///             .queue("mail")
///             .max_attempts(5)
///             .idempotency_key(format!("order-{}", self.order))
///     }
/// }
/// assert_eq!(SendEmail { to: "a@b.c".into(), order: 7 }.options().queue_name(), Some("mail"));
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The task name, unique among the kinds a worker handles.
    const KIND: &'static str;
    /// What a successful run returns, stored as the job's result.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The default options of this job (queue [`DEFAULT_QUEUE`] and the store's defaults
    /// unless overridden).
    fn options(&self) -> JobOptions {
        JobOptions::new()
    }
}

/// Where and how a job runs: its queue and its [`SpawnOptions`]. Every field is optional; an
/// unset one falls back to the kind's [`Job::options`], then to the store's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOptions {
    queue: Option<String>,
    spawn: SpawnOptions,
    unique: Option<Unique>,
}

impl JobOptions {
    /// Options with every field unset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options from spawn options, with no queue set.
    pub fn from_spawn(spawn: SpawnOptions) -> Self {
        JobOptions {
            queue: None,
            spawn,
            unique: None,
        }
    }

    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the maximum number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.spawn.max_attempts = Some(attempts);
        self
    }

    /// Sets the retry strategy.
    pub fn retry(mut self, retry: RetryStrategy) -> Self {
        self.spawn.retry = Some(retry);
        self
    }

    /// Sets the priority (lower runs first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.spawn.priority = Some(priority);
        self
    }

    /// Sets the per-run timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spawn.timeout = Some(timeout);
        self
    }

    /// Schedules the first run after a delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.spawn = self.spawn.with_delay(delay);
        self
    }

    /// Schedules the first run at an instant.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.spawn = self.spawn.with_run_at(at);
        self
    }

    /// Sets the cancellation policy.
    pub fn cancellation(mut self, policy: CancellationPolicy) -> Self {
        self.spawn.cancellation = Some(policy);
        self
    }

    /// Sets the headers (a JSON object).
    pub fn headers(mut self, headers: Value) -> Self {
        self.spawn.headers = Some(headers);
        self
    }

    /// Sets the idempotency key: enqueueing again with a key already used in the queue returns
    /// the existing job.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.spawn.idempotency_key = Some(key.into());
        self
    }

    /// Sets the ordering key: jobs of the queue with the same key start in enqueue order, at
    /// most the queue's key concurrency at a time (see [`crate::flow`]).
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.spawn.ordering_key = Some(key.into());
        self
    }

    /// Makes the job wait until every one of `parents` (existing jobs) completed; if one of
    /// them fails for good or is cancelled, the job is cancelled too, unless
    /// [`on_parent_failure`](Self::on_parent_failure) says `Run` (see [`crate::deps`]).
    pub fn depends_on(mut self, parents: impl IntoIterator<Item = crate::JobId>) -> Self {
        self.spawn = self.spawn.with_depends_on(parents);
        self
    }

    /// Sets what a parent's failure does to the job (see [`crate::deps::ParentFailure`]).
    pub fn on_parent_failure(mut self, policy: crate::deps::ParentFailure) -> Self {
        self.spawn = self.spawn.with_on_parent_failure(policy);
        self
    }

    /// Makes the job unique by its kind and the chosen args (see [`Unique`]): enqueueing a
    /// duplicate returns the existing job, with `created: false`.
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// The unique constraint, if set.
    pub fn unique_spec(&self) -> Option<&Unique> {
        self.unique.as_ref()
    }

    /// The queue, if set.
    pub fn queue_name(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// The spawn options.
    pub fn spawn_options(&self) -> &SpawnOptions {
        &self.spawn
    }

    /// These options with every unset field taken from `base`.
    pub fn or(self, base: JobOptions) -> JobOptions {
        JobOptions {
            queue: self.queue.or(base.queue),
            spawn: self.spawn.or(&base.spawn),
            unique: self.unique.or(base.unique),
        }
    }

    /// The queue (or [`DEFAULT_QUEUE`]) and the spawn options, the unique constraint resolved
    /// for a job of `kind` with `args`.
    pub(crate) fn into_parts(
        self,
        kind: &str,
        args: &Value,
    ) -> crate::Result<(String, SpawnOptions)> {
        let queue = self.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_string());
        let mut spawn = self.spawn;
        if let Some(unique) = &self.unique {
            spawn.unique = Some(unique.resolve(kind, &queue, args)?);
        }
        Ok((queue, spawn))
    }
}

impl From<SpawnOptions> for JobOptions {
    fn from(spawn: SpawnOptions) -> Self {
        JobOptions::from_spawn(spawn)
    }
}
