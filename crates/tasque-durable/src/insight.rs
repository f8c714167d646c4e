//! [`Insight`]: the read-only questions an operator surface (a dashboard, a metrics endpoint)
//! asks a store beyond [`Store`](crate::Store)'s inspector.
//!
//! # Contract
//!
//! - Every answer is read-only and scoped to the store's namespace.
//! - Every query is bounded: each reads an index range or at most `limit` rows, never the whole
//!   jobs table, so it stays cheap at millions of jobs.
//! - Times are reported as millisecond durations measured on the engine's clock (ages relative
//!   to the engine's `now`, or differences of two stored times), so no caller ever compares a
//!   database time with its own clock.
//!
//! A store offers it through [`Store::insight`](crate::Store::insight); stores that do not
//! answer `None`, and callers fall back to what [`Store`](crate::Store) gives.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{JobId, JobState};

/// The age of the oldest ready job of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueAge {
    /// The queue.
    pub queue: String,
    /// How long its oldest ready (available) job has been ready, in milliseconds (0 or more).
    pub oldest_ready_ms: i64,
}

/// One recently finished job, as [`Insight::recent_finished`] samples it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedJob {
    /// Its queue.
    pub queue: String,
    /// Its task name.
    pub task: String,
    /// How it finished: completed, failed or cancelled.
    pub state: JobState,
    /// How long ago it finished, in milliseconds.
    pub finished_ago_ms: i64,
    /// Its last run's queue wait (start minus ready time), when it ever started.
    pub wait_ms: Option<i64>,
    /// Its last run's duration (finish minus start), when it ever started.
    pub run_ms: Option<i64>,
    /// Creation to finish, in milliseconds.
    pub end_to_end_ms: i64,
}

/// The timing of a job's latest start, for measuring queue wait when it is claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartTiming {
    /// The job.
    pub job: JobId,
    /// Its latest run's queue wait (start minus ready time), in milliseconds.
    pub wait_ms: i64,
    /// Its age (now minus creation), in milliseconds.
    pub age_ms: i64,
}

/// What a suspended job waits for, as [`Insight::suspension`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    /// The event it waits for (a waiting job), or `None` for a sleep.
    pub event: Option<String>,
    /// Milliseconds until it wakes anyway (the sleep's end or the wait's timeout), negative
    /// when that time has passed and the next claim will wake it; `None` when it has none.
    pub wakes_in_ms: Option<i64>,
}

/// Read-only, bounded questions for dashboards and metrics. See the module documentation.
#[async_trait]
pub trait Insight: Send + Sync {
    /// For each queue with ready jobs, the age of its oldest ready job (Sidekiq's "latency").
    async fn oldest_ready(&self) -> Result<Vec<QueueAge>>;

    /// Jobs that finished within the last `within_ms` milliseconds, newest first, at most
    /// `limit` of them: the sample throughput charts and wait/run percentiles are drawn from.
    async fn recent_finished(&self, within_ms: i64, limit: u32) -> Result<Vec<FinishedJob>>;

    /// The queue wait of the latest start and the age of each of these jobs (unknown or never
    /// started jobs are left out). One round trip, for measuring claims.
    async fn start_timings(&self, jobs: &[JobId]) -> Result<Vec<StartTiming>>;

    /// What a sleeping or waiting job is suspended on; `None` for other states or unknown jobs.
    async fn suspension(&self, job: JobId) -> Result<Option<Suspension>>;
}
