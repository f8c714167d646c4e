//! "Why is this job not running?": the reasons a waiting job is not being worked, named.
//!
//! # Contract
//!
//! For a job that is not running, [`diagnose`] names every reason that holds now, most
//! decisive first: finished; scheduled for later (or waiting out a retry backoff); sleeping;
//! waiting for an event; on hold, waiting on its parents; queue paused; queue at its concurrency limit; behind the head of a
//! blocking queue; its ordering key at its limit or blocked by a failed job; its queue's rate
//! limit used up (with the next start); that no worker serves its queue. On engines with a
//! worker registry ([`tasque_durable::registry`]) the last is exact: no live worker lists the
//! queue. Without one, it is a guess for a job that has been ready for over a minute in a
//! queue where nothing runs. A running job gets the lease its worker holds. A ready job with
//! none of these is simply next in line.

use std::collections::BTreeSet;

use serde::Serialize;
use tasque_durable::deps::JobDeps;
use tasque_durable::flow::FlowWait;
use tasque_durable::insight::Suspension;
use tasque_durable::{JobInfo, JobState, QueueInfo};

/// How long a job must have been ready, in a queue where nothing runs, before the dashboard
/// says that no worker seems to serve its queue.
pub const NO_WORKER_AFTER_MS: i64 = 60_000;

/// One reason a job is not running (or, for a running job, who runs it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The job finished; it will not run again unless retried.
    Finished {
        /// Its state.
        state: JobState,
    },
    /// It is running: a worker holds its lease.
    LeaseHeld {
        /// The worker.
        worker: String,
        /// Milliseconds until the lease ends unless extended.
        expires_in_ms: i64,
    },
    /// Its run time is in the future (a delayed job).
    ScheduledLater {
        /// Milliseconds until it becomes ready.
        in_ms: i64,
    },
    /// It waits out the backoff after a failed attempt.
    RetryBackoff {
        /// The attempt it will start.
        attempt: u32,
        /// Milliseconds until it becomes ready.
        in_ms: i64,
    },
    /// It sleeps (a durable sleep).
    Sleeping {
        /// Milliseconds until it wakes.
        wakes_in_ms: Option<i64>,
    },
    /// It waits for an event.
    WaitingForEvent {
        /// The event.
        event: String,
        /// Milliseconds until the wait times out, if it has a timeout.
        timeout_in_ms: Option<i64>,
    },
    /// It is held until its parents complete (see `tasque_durable::deps`).
    WaitingOnParents {
        /// Parents not resolved yet.
        waiting: usize,
        /// All its parents.
        total: usize,
        /// The first few awaited parents.
        parents: Vec<i64>,
    },
    /// Its queue is paused.
    QueuePaused,
    /// Its queue runs as many jobs as its limit allows.
    QueueAtLimit {
        /// The limit.
        limit: u32,
        /// Jobs of the queue running now.
        running: u64,
    },
    /// Its queue is blocking and another job is its head.
    BehindBlockingHead {
        /// The job holding the queue.
        head: i64,
    },
    /// Its ordering key already runs as many jobs as the queue's key concurrency allows.
    KeyAtLimit {
        /// The ordering key.
        key: String,
        /// The queue's key concurrency.
        limit: u32,
    },
    /// Its ordering key is held by a failed job kept by the queue's key policy.
    KeyBlocked {
        /// The ordering key.
        key: String,
        /// The failed job.
        by: i64,
    },
    /// Its rate key used up the current window of the queue's rate limit.
    RateLimited {
        /// The rate key (empty: the whole queue).
        key: String,
        /// Milliseconds until the next window opens.
        next_start_in_ms: i64,
    },
    /// No live worker lists its queue (the worker registry says so).
    NoLiveWorker {
        /// The queue.
        queue: String,
    },
    /// It has been ready for a while and nothing runs in its queue: no worker seems to serve it
    /// (a guess, on engines without a worker registry).
    NoWorker {
        /// How long it has been ready.
        ready_for_ms: i64,
    },
    /// Nothing holds it back: the next claim from its queue takes it.
    NextInLine,
}

impl Reason {
    /// The reason as a sentence for the page.
    pub fn sentence(&self) -> String {
        match self {
            Reason::Finished { state } => format!("It has finished ({state}); retry it to run it again."),
            Reason::LeaseHeld { worker, expires_in_ms } => format!(
                "It is running: worker {worker} holds its lease (ends in {}).",
                human_ms(*expires_in_ms)
            ),
            Reason::ScheduledLater { in_ms } => {
                format!("It is scheduled for later: ready in {}.", human_ms(*in_ms))
            }
            Reason::RetryBackoff { attempt, in_ms } => format!(
                "It waits out its retry backoff: attempt {attempt} becomes ready in {}.",
                human_ms(*in_ms)
            ),
            Reason::Sleeping { wakes_in_ms } => match wakes_in_ms {
                Some(ms) => format!("It is sleeping: it wakes in {}.", human_ms(*ms)),
                None => "It is sleeping.".to_string(),
            },
            Reason::WaitingForEvent { event, timeout_in_ms } => match timeout_in_ms {
                Some(ms) => format!(
                    "It waits for event \"{event}\" (times out in {}).",
                    human_ms(*ms)
                ),
                None => format!("It waits for event \"{event}\"."),
            },
            Reason::WaitingOnParents { waiting, total, parents } => {
                let ids: Vec<String> = parents.iter().map(i64::to_string).collect();
                let more = if *waiting > parents.len() { ", ..." } else { "" };
                format!(
                    "It is on hold, waiting on {waiting} of {total} parents ({}{more}): it becomes ready when they complete.",
                    ids.join(", ")
                )
            }
            Reason::QueuePaused => "Its queue is paused: resume it on the queues page.".to_string(),
            Reason::QueueAtLimit { limit, running } => format!(
                "Its queue is at its limit: {running} running of {limit} allowed across all workers."
            ),
            Reason::BehindBlockingHead { head } => format!(
                "Its queue is blocking and job {head} is at its head: nothing behind it runs until it succeeds or is given up."
            ),
            Reason::NoLiveWorker { queue } => format!(
                "No live worker serves its queue {queue:?}: start a worker with this queue (see the workers page)."
            ),
            Reason::KeyAtLimit { key, limit } => format!(
                "Its ordering key {key} is at its limit: {limit} of its jobs at a time, in enqueue order."
            ),
            Reason::KeyBlocked { key, by } => format!(
                "Its ordering key {key} is blocked by job {by}, which failed for good: retry, cancel or delete it."
            ),
            Reason::RateLimited { key, next_start_in_ms } => {
                let whose = if key.is_empty() { String::new() } else { format!(" of key {key}") };
                format!(
                    "Its queue's rate limit{whose} is used up: the next start is in {}.",
                    human_ms(*next_start_in_ms)
                )
            }
            Reason::NoWorker { ready_for_ms } => format!(
                "It has been ready for {} and nothing runs in its queue: no worker seems to serve this queue.",
                human_ms(*ready_for_ms)
            ),
            Reason::NextInLine => "Nothing holds it back: the next claim from its queue takes it.".to_string(),
        }
    }
}

/// Every reason that holds for `job` now. `now_ms` is the engine clock (ms since the epoch);
/// `queue` the job's queue (from the cached snapshot); `suspension` what a suspended job waits
/// for; `served` the queues live workers serve, when the engine keeps a worker registry;
/// `flow` the flow control rule holding it, if any (its key or a rate limit); `deps` its
/// parents, for a job on hold.
pub fn diagnose(
    job: &JobInfo,
    queue: Option<&QueueInfo>,
    suspension: Option<&Suspension>,
    served: Option<&BTreeSet<String>>,
    flow: Option<&FlowWait>,
    deps: Option<&JobDeps>,
    now_ms: i64,
) -> Vec<Reason> {
    let until = |at: chrono::DateTime<chrono::Utc>| at.timestamp_millis() - now_ms;
    let mut reasons = Vec::new();
    match job.state {
        state if state.is_finished() => return vec![Reason::Finished { state }],
        JobState::Running => {
            return vec![Reason::LeaseHeld {
                worker: job.worker_id.clone().unwrap_or_else(|| "?".to_string()),
                expires_in_ms: job.lease_expires_at.map(until).unwrap_or(0),
            }]
        }
        JobState::Scheduled if job.errors.iter().any(|e| e.attempt + 1 == job.attempt) => reasons
            .push(Reason::RetryBackoff {
                attempt: job.attempt,
                in_ms: until(job.run_at),
            }),
        JobState::Scheduled => reasons.push(Reason::ScheduledLater {
            in_ms: until(job.run_at),
        }),
        JobState::Sleeping => reasons.push(Reason::Sleeping {
            wakes_in_ms: suspension.and_then(|s| s.wakes_in_ms),
        }),
        JobState::OnHold => {
            let awaited = deps.map(JobDeps::unresolved).unwrap_or_default();
            return vec![Reason::WaitingOnParents {
                waiting: awaited.len(),
                total: deps.map_or(0, |d| d.parents.len()),
                parents: awaited.iter().take(5).map(|id| id.0).collect(),
            }];
        }
        JobState::Waiting => reasons.push(Reason::WaitingForEvent {
            event: suspension
                .and_then(|s| s.event.clone())
                .unwrap_or_else(|| "?".to_string()),
            timeout_in_ms: suspension.and_then(|s| s.wakes_in_ms),
        }),
        _ => {}
    }
    if let Some(queue) = queue {
        if queue.paused {
            reasons.push(Reason::QueuePaused);
        }
        if let Some(limit) = queue.concurrency_limit {
            if queue.counts.running >= u64::from(limit) {
                reasons.push(Reason::QueueAtLimit {
                    limit,
                    running: queue.counts.running,
                });
            }
        }
        if let Some(head) = queue.blocked_by.filter(|head| *head != job.id) {
            reasons.push(Reason::BehindBlockingHead { head: head.0 });
        }
        if let Some(wait) = flow {
            reasons.push(match wait {
                FlowWait::KeyAtLimit { key, limit } => Reason::KeyAtLimit {
                    key: key.clone(),
                    limit: *limit,
                },
                FlowWait::KeyBlocked { key, by } => Reason::KeyBlocked {
                    key: key.clone(),
                    by: by.0,
                },
                FlowWait::RateLimited { key, next_start } => Reason::RateLimited {
                    key: key.clone(),
                    next_start_in_ms: until(*next_start),
                },
            });
        }
        let ready_for = now_ms - job.run_at.timestamp_millis();
        if served.is_none()
            && reasons.is_empty()
            && job.state == JobState::Available
            && queue.counts.running == 0
            && ready_for > NO_WORKER_AFTER_MS
        {
            reasons.push(Reason::NoWorker {
                ready_for_ms: ready_for,
            });
        }
    }
    if served.is_some_and(|served| !served.contains(&job.queue)) {
        reasons.push(Reason::NoLiveWorker {
            queue: job.queue.clone(),
        });
    }
    if reasons.is_empty() {
        reasons.push(Reason::NextInLine);
    }
    reasons
}

/// A duration for people: `850 ms`, `12 s`, `4 min`, `3 h`, `2 d`; past times as `0 s`.
pub fn human_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=119_999 => format!("{} s", ms / 1_000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        7_200_000..=172_799_999 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}
