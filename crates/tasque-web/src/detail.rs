//! A job's detail: its record, attempts, checkpoints, a timeline and why it is not running.

use serde::Serialize;
use serde_json::Value;
use tasque_durable::{Checkpoint, JobId, JobInfo, JobState, Store};

use crate::cache::Snapshot;
use crate::error::WebError;
use crate::why::{diagnose, Reason};
use tasque_durable::registry::served_queues;

/// One failed attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    /// The attempt number.
    pub attempt: u32,
    /// The run's sequence number.
    pub run: i64,
    /// When it failed (RFC 3339).
    pub at: String,
    /// The recorded reason.
    pub error: Value,
}

/// One point of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Moment {
    /// When (RFC 3339).
    pub at: String,
    /// What happened.
    pub what: String,
}

/// A stored step result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// The step's name.
    pub name: String,
    /// Its stored result.
    pub state: Value,
}

/// One parent of a job with dependencies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParentView {
    /// The parent.
    pub id: i64,
    /// Its state; `None` once deleted.
    pub state: Option<JobState>,
    /// True once its outcome was applied to the job.
    pub resolved: bool,
}

/// Everything the job page shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobDetail {
    /// The job id.
    pub id: i64,
    /// Its queue.
    pub queue: String,
    /// Its task name.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Its current attempt.
    pub attempt: u32,
    /// Its attempt budget.
    pub max_attempts: u32,
    /// Its priority.
    pub priority: i32,
    /// Its args.
    pub args: Value,
    /// Its headers.
    pub headers: Value,
    /// Its result, once completed.
    pub result: Option<Value>,
    /// Its failure or cancellation reason.
    pub failure: Option<Value>,
    /// The worker holding (or that last held) it.
    pub worker: Option<String>,
    /// Every failed attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Its stored step results.
    pub checkpoints: Vec<Step>,
    /// Its timeline, oldest first.
    pub timeline: Vec<Moment>,
    /// Why it is not running (or who runs it).
    pub why: Vec<Reason>,
    /// Its parents (jobs it depends on), by id.
    pub parents: Vec<ParentView>,
    /// How many jobs depend on it.
    pub dependents: u64,
    /// True when retry applies (failed or cancelled).
    pub can_retry: bool,
    /// True when cancel applies (unfinished).
    pub can_cancel: bool,
    /// True when delete applies (not running).
    pub can_delete: bool,
}

fn rfc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Loads a job's detail; its queue's settings come from the cached snapshot.
pub async fn load(
    store: &dyn Store,
    snapshot: &Snapshot,
    id: JobId,
) -> Result<JobDetail, WebError> {
    let job = store.get_job(id).await?;
    let checkpoints = store.get_checkpoints(id).await?;
    let now_ms = store.now().await?.timestamp_millis();
    let suspension = match (store.insight(), job.state) {
        (Some(insight), JobState::Sleeping | JobState::Waiting) => insight.suspension(id).await?,
        _ => None,
    };
    let served = match store.registry() {
        Some(registry) => Some(served_queues(&registry.worker_list().await?)),
        None => None,
    };
    let flow = match (store.flow(), job.state) {
        (Some(flow), JobState::Available) => flow.job(id).await?.waits,
        _ => None,
    };
    let deps = match store.deps() {
        Some(deps) => Some(deps.job(id).await?),
        None => None,
    };
    let why = diagnose(
        &job,
        snapshot.queue(&job.queue),
        suspension.as_ref(),
        served.as_ref(),
        flow.as_ref(),
        deps.as_ref(),
        now_ms,
    );
    let deps = deps.unwrap_or_default();
    let timeline = timeline(&job, &checkpoints);
    Ok(JobDetail {
        id: job.id.0,
        parents: deps
            .parents
            .iter()
            .map(|p| ParentView {
                id: p.id.0,
                state: p.state,
                resolved: p.resolved,
            })
            .collect(),
        dependents: deps.dependents,
        can_retry: job.state.is_retryable(),
        can_cancel: job.state.is_cancellable(),
        can_delete: job.state != JobState::Running,
        queue: job.queue,
        kind: job.task,
        state: job.state,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        priority: job.priority,
        args: job.params,
        headers: job.headers,
        result: job.result,
        failure: job.failure,
        worker: job.worker_id,
        attempts: job
            .errors
            .into_iter()
            .map(|e| Attempt {
                attempt: e.attempt,
                run: e.run,
                at: chrono::DateTime::from_timestamp_millis(e.at_ms)
                    .map(rfc)
                    .unwrap_or_default(),
                error: e.reason,
            })
            .collect(),
        checkpoints: checkpoints
            .into_iter()
            .map(|c| Step {
                name: c.name,
                state: c.value,
            })
            .collect(),
        timeline,
        why,
    })
}

/// The job's timeline, oldest first: creation, starts, failed attempts, stored steps,
/// suspension or schedule, and the finish.
fn timeline(job: &JobInfo, checkpoints: &[Checkpoint]) -> Vec<Moment> {
    let mut timeline = vec![Moment {
        at: rfc(job.created_at),
        what: "created".to_string(),
    }];
    if let Some(at) = job.first_started_at {
        timeline.push(Moment {
            at: rfc(at),
            what: "first started".to_string(),
        });
    }
    for error in &job.errors {
        if let Some(at) = chrono::DateTime::from_timestamp_millis(error.at_ms) {
            timeline.push(Moment {
                at: rfc(at),
                what: format!("attempt {} failed", error.attempt),
            });
        }
    }
    for step in checkpoints {
        timeline.push(Moment {
            at: rfc(step.updated_at),
            what: format!("step \"{}\" stored", step.name),
        });
    }
    if let Some(at) = job.attempted_at {
        timeline.push(Moment {
            at: rfc(at),
            what: format!("attempt {} started", job.attempt),
        });
    }
    match job.state {
        JobState::Sleeping => timeline.push(Moment {
            at: rfc(job.run_at),
            what: "sleeping until".to_string(),
        }),
        JobState::Waiting => timeline.push(Moment {
            at: rfc(job.run_at),
            what: "waiting for an event".to_string(),
        }),
        JobState::Scheduled => timeline.push(Moment {
            at: rfc(job.run_at),
            what: "scheduled to run".to_string(),
        }),
        _ => {}
    }
    if let Some(at) = job.finished_at {
        timeline.push(Moment {
            at: rfc(at),
            what: job.state.as_str().to_string(),
        });
    }
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    timeline
}
