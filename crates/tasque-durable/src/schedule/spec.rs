//! [`Schedule`]: a periodic job as declared in code or in a TOML file.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do with ticks that passed while no leader could fire them (downtime, a leader
/// change).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedTicks {
    /// One job for all the missed ticks: the latest of them fires, the others are passed over.
    #[default]
    Coalesce,
    /// Fire the missed ticks one by one, in order, but at most this many (the latest ones).
    CatchUp(u32),
    /// Fire nothing for missed ticks: a tick fires only if it is at most
    /// [`SKIP_GRACE`](crate::schedule::SKIP_GRACE) late.
    Skip,
}

/// What to do when a tick comes while the job of the previous fire has not finished.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Fire anyway: jobs of several ticks may run at once.
    #[default]
    Allow,
    /// Pass the tick over (no job) while the previous fire's job is unfinished.
    SkipIfRunning,
}

/// A periodic job: a stable id, a cadence (a fixed interval or a cron expression in an IANA
/// time zone), the job to spawn at each tick and the missed-tick and overlap policies.
///
/// Building is infallible; [`Schedule::compile`](crate::schedule::Schedule::compile) (called by
/// the worker's builder and the CLI's configuration loader) checks everything.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use tasque_durable::schedule::{MissedTicks, Overlap, Schedule};
///
/// let nightly = Schedule::cron("nightly-report", "0 30 2 * * *")
///     .zone("Europe/Paris")
///     .task("report", json!({ "kind": "daily" }))
///     .queue("reports")
///     .missed(MissedTicks::CatchUp(3))
///     .overlap(Overlap::SkipIfRunning);
/// let heartbeat = Schedule::every("ping", Duration::from_secs(30)).task("ping", json!(null));
/// assert!(nightly.compile().is_ok() && heartbeat.compile().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The stable id (a valid name): the schedule's identity across restarts and processes.
    pub id: String,
    /// A cron expression (5 fields, or 6 with seconds first); exclusive with `every_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed interval in whole seconds, ticks aligned on the Unix epoch; exclusive with `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u64>,
    /// The IANA time zone cron expressions are read in (default `UTC`).
    #[serde(default = "utc")]
    pub zone: String,
    /// The queue jobs go to (default `default`).
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The job's task name (its kind).
    #[serde(default)]
    pub task: String,
    /// The job's params.
    #[serde(default)]
    pub args: Value,
    /// The job's max attempts (default: the spawn default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The job's priority (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The job's per-run timeout in whole seconds (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The missed-tick policy (default `coalesce`).
    #[serde(default)]
    pub missed: MissedTicks,
    /// The overlap policy (default `allow`).
    #[serde(default)]
    pub overlap: Overlap,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn default_queue() -> String {
    "default".to_owned()
}

impl Schedule {
    fn base(id: impl Into<String>) -> Self {
        Schedule {
            id: id.into(),
            cron: None,
            every_seconds: None,
            zone: utc(),
            queue: default_queue(),
            task: String::new(),
            args: Value::Null,
            max_attempts: None,
            priority: None,
            timeout_seconds: None,
            missed: MissedTicks::default(),
            overlap: Overlap::default(),
        }
    }

    /// A schedule ticking every `interval` (whole seconds, at least one), on multiples of the
    /// interval since the Unix epoch, so every process agrees on the ticks.
    pub fn every(id: impl Into<String>, interval: Duration) -> Self {
        let mut schedule = Self::base(id);
        // A fractional interval is kept as 0 so that compile() refuses it.
        schedule.every_seconds = Some(if interval.subsec_nanos() == 0 {
            interval.as_secs()
        } else {
            0
        });
        schedule
    }

    /// A schedule ticking on a cron expression: `min hour dom month dow`, or with a leading
    /// seconds field (`sec min hour dom month dow`); names (`MON`, `JAN`) and `@daily`-style
    /// nicknames are accepted.
    pub fn cron(id: impl Into<String>, expression: impl Into<String>) -> Self {
        let mut schedule = Self::base(id);
        schedule.cron = Some(expression.into());
        schedule
    }

    /// The IANA time zone of the cron expression (e.g. `Europe/Paris`; default `UTC`).
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// The job spawned at each tick: its task name and params.
    pub fn task(mut self, task: impl Into<String>, args: Value) -> Self {
        self.task = task.into();
        self.args = args;
        self
    }

    /// The queue the jobs go to (default `default`).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// The jobs' max attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The jobs' priority (lower runs first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The jobs' per-run timeout (whole seconds, at least one).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_seconds = Some(if timeout.subsec_nanos() == 0 {
            timeout.as_secs()
        } else {
            0
        });
        self
    }

    /// The missed-tick policy (default [`MissedTicks::Coalesce`]).
    pub fn missed(mut self, policy: MissedTicks) -> Self {
        self.missed = policy;
        self
    }

    /// The overlap policy (default [`Overlap::Allow`]).
    pub fn overlap(mut self, policy: Overlap) -> Self {
        self.overlap = policy;
        self
    }

    /// The cadence as shown to operators: the cron expression, or `every Ns`.
    pub fn expression(&self) -> String {
        match (&self.cron, self.every_seconds) {
            (Some(cron), _) => cron.clone(),
            (None, Some(secs)) => format!("every {secs}s"),
            (None, None) => String::new(),
        }
    }
}
