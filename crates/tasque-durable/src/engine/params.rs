//! One params struct per engine operation. Everything in them is already validated and, for
//! JSON payloads, encoded (`String`s of JSON text within the payload limit): an engine binds
//! them as they are.

use std::time::Duration;

use chrono::{DateTime, Utc};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{BlockedPolicy, Claim, JobId, JobState, RunId, Spawn};
use crate::options::{RunAt, SpawnOptions};
use crate::validate::{encode_payload, validate_spawn, Limits};

/// One job to insert ([`EngineSpawn::job_insert`](super::EngineSpawn::job_insert)).
#[derive(Clone, Debug, PartialEq)]
pub struct JobInsert {
    /// The queue (a valid name).
    pub queue: String,
    /// The task name (a valid name).
    pub task: String,
    /// The params, encoded.
    pub params: String,
    /// The headers, encoded; `None` when absent or JSON null.
    pub headers: Option<String>,
    /// The validated options (defaults not yet applied).
    pub options: SpawnOptions,
}

impl JobInsert {
    /// Validates a spawn and encodes its payloads: nothing is written when this fails. Engines
    /// use it for the spawns they take outside [`Store`](crate::Store) (inside a caller's
    /// transaction).
    pub fn encode(spawn: Spawn, limits: &Limits) -> Result<JobInsert> {
        validate_spawn(&spawn)?;
        let params = encode_payload("params", &spawn.params, limits)?;
        let headers = encode_headers(spawn.options.headers.as_ref(), limits)?;
        Ok(JobInsert {
            queue: spawn.queue,
            task: spawn.task,
            params,
            headers,
            options: spawn.options,
        })
    }
}

/// Encodes headers; JSON null counts as none.
pub(crate) fn encode_headers(headers: Option<&Value>, limits: &Limits) -> Result<Option<String>> {
    match headers.filter(|h| !h.is_null()) {
        Some(h) => Ok(Some(encode_payload("headers", h, limits)?)),
        None => Ok(None),
    }
}

/// Jobs a claim took ([`EngineClaim::job_claim`](super::EngineClaim::job_claim)), in any order.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The claims, each with the time its job became ready (the poll order's tie-breaker).
    pub claims: Vec<(Claim, DateTime<Utc>)>,
    /// Runs the claim took whose rows did not decode, with why: the caller fails them for good.
    pub undecodable: Vec<(RunId, Error)>,
}

impl Claimed {
    /// How many runs were taken, decodable or not.
    pub fn len(&self) -> usize {
        self.claims.len() + self.undecodable.len()
    }

    /// True when nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds what another part of the claim took.
    pub fn append(&mut self, other: Claimed) {
        self.claims.extend(other.claims);
        self.undecodable.extend(other.undecodable);
    }
}

/// Extends one lease ([`EngineClaim::job_extend_lease`](super::EngineClaim::job_extend_lease)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeaseExtend {
    /// The run.
    pub run: RunId,
    /// The new lease, from now (positive).
    pub by: Duration,
}

/// Extends many leases ([`EngineClaim::job_extend_leases`](super::EngineClaim::job_extend_leases)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeasesExtend {
    /// The runs (not empty).
    pub runs: Vec<RunId>,
    /// The new lease, from now (positive).
    pub by: Duration,
}

/// One completion ([`EngineRuns::job_complete_many`](super::EngineRuns::job_complete_many)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobComplete {
    /// The run (each run appears once in a batch).
    pub run: RunId,
    /// The result, encoded.
    pub result: String,
    /// Delete the job instead of keeping it completed.
    pub delete_on_success: bool,
}

/// Records a failed attempt ([`EngineRuns::job_fail`](super::EngineRuns::job_fail)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFail {
    /// The run.
    pub run: RunId,
    /// The failure reason, encoded.
    pub reason: String,
    /// The forced time of the next attempt (validated), or `None` for the retry strategy's.
    pub retry_at: Option<RunAt>,
}

/// Fails a run for good, reading nothing of its job
/// ([`EngineRuns::job_fail_for_good`](super::EngineRuns::job_fail_for_good)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailForGood {
    /// The run.
    pub run: RunId,
    /// The failure reason, encoded.
    pub reason: String,
}

/// Fails the attempt of a run whose lease expired, if it still has
/// ([`EngineRuns::job_fail_expired`](super::EngineRuns::job_fail_expired)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailExpired {
    /// The run.
    pub run: RunId,
    /// The failure reason, encoded.
    pub reason: String,
}

/// Gives a run back until a time ([`EngineRuns::job_schedule`](super::EngineRuns::job_schedule)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct JobSchedule {
    /// The run.
    pub run: RunId,
    /// When it may run again (validated).
    pub at: RunAt,
}

/// Releases runs ([`EngineRuns::job_release`](super::EngineRuns::job_release)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRelease {
    /// The runs (not empty).
    pub runs: Vec<RunId>,
}

/// One guarded cancel ([`EngineMaintain::job_cancel`](super::EngineMaintain::job_cancel)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct JobCancel {
    /// The job.
    pub job: JobId,
}

/// What one guarded cancel did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CancelWrite {
    /// Cancelled; the job was in this state.
    Cancelled {
        /// The state before.
        was: JobState,
    },
    /// Nothing to do: the job is finished (and holds no blocking queue).
    Finished {
        /// Its state.
        state: JobState,
    },
    /// The job changed state between the engine's read and its guarded write: try again.
    Raced,
}

/// Revives a failed or cancelled job ([`EngineMaintain::job_retry`](super::EngineMaintain::job_retry)).
#[derive(Clone, Debug, PartialEq)]
pub struct JobRetry {
    /// The job.
    pub job: JobId,
    /// Its options: the caller's set fields over the job's own (validated).
    pub options: SpawnOptions,
    /// The merged headers, encoded.
    pub headers: Option<String>,
    /// The max attempts to store.
    pub max_attempts: u32,
}

/// Lists expired runs ([`EngineMaintain::job_expired_runs`](super::EngineMaintain::job_expired_runs)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct JobExpired {
    /// The most runs to return (at least 1).
    pub limit: u32,
}

/// Deletes old finished jobs ([`EngineInspect::job_clean`](super::EngineInspect::job_clean)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct JobClean {
    /// Finished longer ago than this.
    pub older_than: Duration,
    /// The most to delete (at least 1).
    pub batch_size: u32,
}

/// A queue's stored settings ([`EngineInspect::queue_list`](super::EngineInspect::queue_list)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRow {
    /// Its name.
    pub name: String,
    /// Paused.
    pub paused: bool,
    /// Its concurrency limit.
    pub concurrency_limit: Option<u32>,
    /// Blocking mode.
    pub blocking: bool,
    /// What an exhausted head does in blocking mode.
    pub on_exhausted: BlockedPolicy,
    /// When it was created (engine clock).
    pub created_at: DateTime<Utc>,
}

/// How many jobs of a queue are in a state ([`EngineInspect::queue_counts`](super::EngineInspect::queue_counts));
/// a queue and state may come in several rows, which add up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueCount {
    /// The queue.
    pub queue: String,
    /// The state.
    pub state: JobState,
    /// How many.
    pub count: u64,
}

/// Sets a queue's paused flag ([`EngineInspect::queue_set_paused`](super::EngineInspect::queue_set_paused)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePause {
    /// The queue (a valid name; created if missing).
    pub name: String,
    /// Paused or not.
    pub paused: bool,
}

/// Sets a queue's concurrency limit ([`EngineGated::queue_set_limit`](super::EngineGated::queue_set_limit)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    /// The queue (a valid name; created if missing).
    pub name: String,
    /// The limit (at least 1), or `None` for none.
    pub limit: Option<u32>,
}

/// Sets a queue's blocking mode ([`EngineGated::queue_set_blocking`](super::EngineGated::queue_set_blocking)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueBlocking {
    /// The queue (a valid name; created if missing).
    pub name: String,
    /// Blocking mode on or off.
    pub blocking: bool,
    /// What an exhausted head does.
    pub on_exhausted: BlockedPolicy,
}

/// Stores a checkpoint ([`EngineWorkflow::checkpoint_set`](super::EngineWorkflow::checkpoint_set)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSet {
    /// The run.
    pub run: RunId,
    /// The step name (valid).
    pub name: String,
    /// The value, encoded.
    pub value: String,
    /// The new lease, from now (positive).
    pub extend_lease: Duration,
}

/// Emits an event ([`EngineWorkflow::event_emit`](super::EngineWorkflow::event_emit)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEmit {
    /// The event name (valid).
    pub name: String,
    /// The payload, encoded.
    pub payload: String,
}
