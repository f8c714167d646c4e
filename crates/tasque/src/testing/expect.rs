//! [`Expect`]: what an enqueue assertion looks for, and the messages it fails with.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use tasque_durable::client::Job;
use tasque_durable::JobInfo;

/// What an enqueue assertion ([`assert_enqueued!`](crate::assert_enqueued),
/// [`refute_enqueued!`](crate::refute_enqueued)) matches: every field set must match; unset
/// fields match anything. Only enqueued jobs are considered (available or scheduled: not
/// running, finished, sleeping or waiting).
///
/// * `args` match as a **subset**: every key of the expected JSON object must be in the job's
///   args with a matching value (recursively for objects; arrays and scalars compare whole);
/// * `scheduled_at` / `scheduled_in` match the job's run time within a tolerance (1 s unless
///   [`tolerance`](Expect::tolerance) says otherwise); `scheduled_in` counts from the test's
///   virtual clock;
/// * [`within`](Expect::within) makes `assert_enqueued!` wait up to a limit for a match
///   (a job enqueued by a background task) and `refute_enqueued!` watch that long for none.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub(super) task: Option<String>,
    pub(super) queue: Option<String>,
    pub(super) args: Option<Value>,
    pub(super) priority: Option<i32>,
    pub(super) scheduled: Option<Scheduled>,
    pub(super) tolerance: Option<Duration>,
    pub(super) within: Option<Duration>,
}

/// When a job is expected to run.
#[derive(Copy, Clone, Debug)]
pub(super) enum Scheduled {
    At(DateTime<Utc>),
    In(Duration),
}

impl Expect {
    /// Any enqueued job.
    pub fn any() -> Self {
        Self::default()
    }

    /// A job of kind `J`.
    pub fn job<J: Job>() -> Self {
        Self::task(J::KIND)
    }

    /// A job of task name `task`.
    pub fn task(task: impl Into<String>) -> Self {
        Expect {
            task: Some(task.into()),
            ..Self::default()
        }
    }

    /// In queue `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Whose args contain `args` (a JSON subset; a typed job or `serde_json::json!`).
    /// A value that does not serialize matches nothing.
    pub fn args(mut self, args: impl Serialize) -> Self {
        self.args = Some(serde_json::to_value(args).unwrap_or(Value::Null));
        self
    }

    /// With priority `priority`.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Scheduled to run at `at` (within the tolerance).
    pub fn scheduled_at(mut self, at: DateTime<Utc>) -> Self {
        self.scheduled = Some(Scheduled::At(at));
        self
    }

    /// Scheduled to run `delay` after the test clock's now (within the tolerance).
    pub fn scheduled_in(mut self, delay: Duration) -> Self {
        self.scheduled = Some(Scheduled::In(delay));
        self
    }

    /// The tolerance of `scheduled_at` / `scheduled_in` (default 1 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Waits (or, refuting, watches) up to `limit` of real time.
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = Some(limit);
        self
    }

    /// Whether `job` matches, the clock reading `now`.
    pub(super) fn matches(&self, job: &JobInfo, now: DateTime<Utc>) -> bool {
        self.task.as_ref().is_none_or(|t| *t == job.task)
            && self.queue.as_ref().is_none_or(|q| *q == job.queue)
            && self.priority.is_none_or(|p| p == job.priority)
            && self
                .args
                .as_ref()
                .is_none_or(|a| json_subset(a, &job.params))
            && self.scheduled_matches(job.run_at, now)
    }

    fn scheduled_matches(&self, run_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let Some(scheduled) = self.scheduled else {
            return true;
        };
        let Some(expected) = expected_time(scheduled, now) else {
            return false;
        };
        let tolerance = self.tolerance.unwrap_or(Duration::from_secs(1));
        let off = (run_at - expected).abs();
        off.to_std().is_ok_and(|off| off <= tolerance)
    }

    /// The expectation in words, for failure messages.
    pub(super) fn describe(&self, now: DateTime<Utc>) -> String {
        let mut parts = Vec::new();
        if let Some(task) = &self.task {
            parts.push(format!("kind {task:?}"));
        }
        if let Some(queue) = &self.queue {
            parts.push(format!("queue {queue:?}"));
        }
        if let Some(args) = &self.args {
            parts.push(format!("args containing {args}"));
        }
        if let Some(priority) = self.priority {
            parts.push(format!("priority {priority}"));
        }
        if let Some(scheduled) = self.scheduled {
            let tolerance = self.tolerance.unwrap_or(Duration::from_secs(1));
            match expected_time(scheduled, now) {
                Some(at) => parts.push(format!(
                    "scheduled at {} (±{tolerance:?})",
                    at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
                )),
                None => parts.push("a scheduled time out of range".to_string()),
            }
        }
        if parts.is_empty() {
            "any job".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn expected_time(scheduled: Scheduled, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match scheduled {
        Scheduled::At(at) => Some(at),
        Scheduled::In(delay) => now.checked_add_signed(TimeDelta::from_std(delay).ok()?),
    }
}

/// Whether `expected` is a subset of `actual`: objects key by key (recursively), anything else
/// equal.
pub fn json_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|h| json_subset(value, h))),
        _ => expected == actual,
    }
}

/// The jobs that were there, one line each, as a failure message lists them.
pub(super) fn list_jobs(jobs: &[JobInfo]) -> String {
    if jobs.is_empty() {
        return "  (none)".to_string();
    }
    let mut out = String::new();
    for job in jobs {
        let _ = write!(
            out,
            "\n  job {}: kind {:?}, queue {:?}, args {}, priority {}, scheduled at {}",
            job.id,
            job.task,
            job.queue,
            job.params,
            job.priority,
            job.run_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        );
    }
    out.remove(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn args_match_as_a_json_subset() {
        let job = json!({"to": "a@b.c", "order": {"id": 7, "lines": [1, 2]}, "x": null});
        assert!(json_subset(&json!({}), &job));
        assert!(json_subset(&json!({"order": {"id": 7}}), &job));
        assert!(json_subset(&json!({"x": null}), &job));
        assert!(!json_subset(&json!({"order": {"id": 8}}), &job));
        assert!(!json_subset(&json!({"order": {"lines": [1]}}), &job));
        assert!(!json_subset(&json!({"missing": 1}), &job));
    }
}
