//! Decoding the rows every engine reads alike, written once: an engine says how to read one
//! column of its row type ([`Columns`], a few lines over its driver's typed getters) and these
//! functions build the model values from them, with the same checks everywhere.
//!
//! Nothing here panics on what a row holds: a column that does not decode, a stored state that
//! is unknown or a retry strategy that is not one becomes [`Error::Corrupt`] naming the column
//! (and, for a job row, the job).
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use serde_json::Value;
//! use tasque_durable::engine::rows::{worker, Col, Columns};
//! use tasque_durable::{Error, Result};
//!
//! /// A row of `SELECT id, host, pid, queues, started_at, heartbeat_at, alive`, as text.
//! struct Texts(Vec<&'static str>);
//!
//! impl Texts {
//!     fn at(&self, c: Col<'_>) -> Result<&'static str> {
//!         match c {
//!             Col::At(i) => self.0.get(i).copied().ok_or_else(|| Error::Corrupt(format!("{c}"))),
//!             Col::Name(_) => Err(Error::Corrupt(format!("{c}: by position only"))),
//!         }
//!     }
//! }
//!
//! impl Columns for Texts {
//!     fn text_opt(&self, c: Col<'_>) -> Result<Option<String>> { Ok(Some(self.at(c)?.to_owned())) }
//!     fn int32_opt(&self, c: Col<'_>) -> Result<Option<i32>> {
//!         self.at(c)?.parse().map(Some).map_err(|_| Error::Corrupt(format!("{c}")))
//!     }
//!     fn int64_opt(&self, c: Col<'_>) -> Result<Option<i64>> {
//!         self.at(c)?.parse().map(Some).map_err(|_| Error::Corrupt(format!("{c}")))
//!     }
//!     fn flag(&self, c: Col<'_>) -> Result<bool> { Ok(self.at(c)? == "1") }
//!     fn time_opt(&self, c: Col<'_>) -> Result<Option<DateTime<Utc>>> {
//!         self.at(c)?.parse().map(Some).map_err(|_| Error::Corrupt(format!("{c}")))
//!     }
//!     fn json_opt(&self, c: Col<'_>) -> Result<Option<Value>> {
//!         serde_json::from_str(self.at(c)?).map(Some).map_err(|e| Error::Corrupt(format!("{c}: {e}")))
//!     }
//! }
//!
//! let row = Texts(vec![
//!     "w1", "host-a", "4242", r#"["default","mail"]"#,
//!     "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "1",
//! ]);
//! let record = worker(&row)?;
//! assert_eq!(record.pid, 4242);
//! assert_eq!(record.queues, ["default", "mail"]);
//! assert!(record.alive);
//! # Ok::<(), Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::engine::params::QueueRow;
use crate::error::{Error, Result};
use crate::model::{AttemptError, JobId, JobInfo, JobResult, JobState, RunId};
use crate::options::{CancellationPolicy, RetryStrategy};
use crate::registry::{decode_queues, WorkerRecord};
use crate::schedule::{Schedule, ScheduleRecord};

/// A column of a row: by position (statements with unnamed expressions) or by name.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Col<'a> {
    /// The column at this position, from 0.
    At(usize),
    /// The column of this name.
    Name(&'a str),
}

impl fmt::Display for Col<'_> {
    /// The name, or `column N`: how a decoding error names the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Col::At(index) => write!(f, "column {index}"),
            Col::Name(name) => f.write_str(name),
        }
    }
}

/// How an engine reads one column of its rows. Each method decodes with the driver's checks
/// and reports a value that does not decode as [`Error::Corrupt`] naming the column (other
/// driver failures as the engine's own error). An engine writes the nullable readers; the
/// others default to them, a NULL where a value belongs being [`Error::Corrupt`] too.
pub trait Columns {
    /// A nullable text column.
    fn text_opt(&self, c: Col<'_>) -> Result<Option<String>>;
    /// A nullable 32-bit integer column (a count, a priority, a limit).
    fn int32_opt(&self, c: Col<'_>) -> Result<Option<i32>>;
    /// A nullable 64-bit integer column (an id, a duration in milliseconds).
    fn int64_opt(&self, c: Col<'_>) -> Result<Option<i64>>;
    /// A boolean column or expression (engines without a boolean type store 0 or 1).
    fn flag(&self, c: Col<'_>) -> Result<bool>;
    /// A nullable time column, in the engine's own storage of times.
    fn time_opt(&self, c: Col<'_>) -> Result<Option<DateTime<Utc>>>;
    /// A nullable JSON column (parsed here where the engine stores text).
    fn json_opt(&self, c: Col<'_>) -> Result<Option<Value>>;

    /// A text column.
    fn text(&self, c: Col<'_>) -> Result<String> {
        self.text_opt(c)?.ok_or_else(|| null(c))
    }
    /// A 32-bit integer column.
    fn int32(&self, c: Col<'_>) -> Result<i32> {
        self.int32_opt(c)?.ok_or_else(|| null(c))
    }
    /// A 64-bit integer column.
    fn int64(&self, c: Col<'_>) -> Result<i64> {
        self.int64_opt(c)?.ok_or_else(|| null(c))
    }
    /// A time column.
    fn time(&self, c: Col<'_>) -> Result<DateTime<Utc>> {
        self.time_opt(c)?.ok_or_else(|| null(c))
    }
    /// A JSON column.
    fn json(&self, c: Col<'_>) -> Result<Value> {
        self.json_opt(c)?.ok_or_else(|| null(c))
    }
}

/// A NULL where a value belongs.
fn null(c: Col<'_>) -> Error {
    Error::Corrupt(format!("{c}: NULL where a value belongs"))
}

/// A row of an engine's job columns: the [`Columns`] plus the one comparison whose columns
/// each engine names its own way.
pub trait JobColumns: Columns {
    /// Whether the row's `run_at` lies after the statement's clock (its "now" column): a
    /// pending job is then scheduled, not available. An engine storing times as numbers may
    /// compare them raw.
    fn scheduled(&self) -> Result<bool>;
}

/// The model state of a stored state: `pending` is [`JobState::Scheduled`] when `scheduled`,
/// otherwise [`JobState::Available`]; an unknown stored state is [`Error::Corrupt`].
pub fn state(stored: &str, scheduled: bool) -> Result<JobState> {
    match stored {
        "pending" if scheduled => Ok(JobState::Scheduled),
        "pending" => Ok(JobState::Available),
        other => other
            .parse()
            .map_err(|_| Error::Corrupt(format!("state: unknown stored state {other:?}"))),
    }
}

/// A stored retry strategy, from its JSON.
pub fn retry_strategy(value: Value) -> Result<RetryStrategy> {
    serde_json::from_value(value)
        .map_err(|e| Error::Corrupt(format!("retry: not a retry strategy: {e}")))
}

/// A retry strategy stored as JSON text.
pub fn retry_strategy_text(text: &str) -> Result<RetryStrategy> {
    serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("retry: not a retry strategy: {e}")))
}

/// A stored duration in milliseconds (a negative one is zero).
pub fn millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// A stored count (attempts): a negative one is zero.
pub fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Names the job in a decoding failure.
pub fn of_job(id: JobId, error: Error) -> Error {
    match error {
        Error::Corrupt(what) => Error::Corrupt(format!("job {id}: {what}")),
        other => other,
    }
}

/// A row of the job columns as a [`JobInfo`]; a failure names the job.
pub fn job_info(row: &impl JobColumns) -> Result<JobInfo> {
    let id = JobId(row.int64(Col::Name("id"))?);
    job_info_of(id, row).map_err(|e| of_job(id, e))
}

fn job_info_of(id: JobId, row: &impl JobColumns) -> Result<JobInfo> {
    let name = Col::Name;
    let run_at = row.time(name("run_at"))?;
    let scheduled = row.scheduled()?;
    let errors: Vec<AttemptError> = serde_json::from_value(row.json(name("errors"))?)
        .map_err(|e| Error::Corrupt(format!("errors: {e}")))?;
    Ok(JobInfo {
        id,
        run_id: RunId::new(id, row.int64(name("run_seq"))?),
        queue: row.text(name("queue"))?,
        task: row.text(name("task"))?,
        params: row.json(name("params"))?,
        headers: row.json_opt(name("headers"))?.unwrap_or(Value::Null),
        state: state(&row.text(name("state"))?, scheduled)?,
        priority: row.int32(name("priority"))?,
        attempt: count(row.int32(name("attempt"))?),
        max_attempts: count(row.int32(name("max_attempts"))?),
        retry: retry_strategy(row.json(name("retry"))?)?,
        timeout: millis(row.int64_opt(name("timeout_ms"))?),
        cancellation: CancellationPolicy {
            max_duration: millis(row.int64_opt(name("max_duration_ms"))?),
            max_delay: millis(row.int64_opt(name("max_delay_ms"))?),
        },
        idempotency_key: row.text_opt(name("idempotency_key"))?,
        unique_key: row.text_opt(name("unique_key"))?,
        result: row.json_opt(name("result"))?,
        failure: row.json_opt(name("failure"))?,
        errors,
        worker_id: row.text_opt(name("worker_id"))?,
        created_at: row.time(name("created_at"))?,
        run_at,
        first_started_at: row.time_opt(name("first_started_at"))?,
        attempted_at: row.time_opt(name("attempted_at"))?,
        finished_at: row.time_opt(name("finished_at"))?,
        lease_expires_at: row.time_opt(name("lease_expires_at"))?,
    })
}

/// The state, result and failure of a job from a row of the job columns: only what those need
/// is decoded (the run time only for a pending job), so the outcome of a job whose other
/// columns are corrupt can still be read. A failure names the job.
pub fn job_result(row: &impl JobColumns) -> Result<JobResult> {
    let id = JobId(row.int64(Col::Name("id"))?);
    let of = || -> Result<JobResult> {
        let stored = row.text(Col::Name("state"))?;
        let scheduled = stored == "pending" && row.scheduled()?;
        Ok(JobResult {
            state: state(&stored, scheduled)?,
            result: row.json_opt(Col::Name("result"))?,
            failure: row.json_opt(Col::Name("failure"))?,
        })
    };
    of().map_err(|e| of_job(id, e))
}

/// A row of the worker registry's listing, by position: id, host, pid, queues (JSON text),
/// started at, heartbeat at, alive.
pub fn worker(row: &impl Columns) -> Result<WorkerRecord> {
    Ok(WorkerRecord {
        id: row.text(Col::At(0))?,
        host: row.text(Col::At(1))?,
        pid: u32::try_from(row.int64(Col::At(2))?).unwrap_or(0),
        queues: decode_queues(&row.text(Col::At(3))?)?,
        started_at: row.time(Col::At(4))?,
        heartbeat_at: row.time(Col::At(5))?,
        alive: row.flag(Col::At(6))?,
    })
}

/// A row of the queues' listing, by position: name, paused, concurrency limit, blocking,
/// created at, exhausted-job policy.
pub fn queue(row: &impl Columns) -> Result<QueueRow> {
    let name = row.text(Col::At(0))?;
    let policy = row.text(Col::At(5))?;
    Ok(QueueRow {
        paused: row.flag(Col::At(1))?,
        concurrency_limit: row
            .int32_opt(Col::At(2))?
            .and_then(|n| u32::try_from(n).ok()),
        blocking: row.flag(Col::At(3))?,
        on_exhausted: policy
            .parse()
            .map_err(|e| Error::Corrupt(format!("queue {name:?}: {e}")))?,
        created_at: row.time(Col::At(4))?,
        name,
    })
}

/// A row of the schedules' listing, by position: id, definition (JSON text), registered at,
/// last tick, last fired at, last job, paused.
pub fn schedule(row: &impl Columns) -> Result<ScheduleRecord> {
    let schedule: Schedule = serde_json::from_str(&row.text(Col::At(1))?)
        .map_err(|e| Error::Corrupt(format!("schedule definition: {e}")))?;
    Ok(ScheduleRecord {
        schedule,
        registered_at: row.time(Col::At(2))?,
        last_tick: row.time_opt(Col::At(3))?,
        last_fired_at: row.time_opt(Col::At(4))?,
        last_job: row.int64_opt(Col::At(5))?.map(JobId),
        paused: row.flag(Col::At(6))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_is_scheduled_or_available_and_unknown_states_are_corrupt() {
        assert_eq!(state("pending", true).unwrap(), JobState::Scheduled);
        assert_eq!(state("pending", false).unwrap(), JobState::Available);
        assert_eq!(state("completed", true).unwrap(), JobState::Completed);
        assert!(matches!(state("lost", false), Err(Error::Corrupt(_))));
    }

    #[test]
    fn counts_and_durations_never_go_negative() {
        assert_eq!(count(-3), 0);
        assert_eq!(count(7), 7);
        assert_eq!(millis(Some(-5)), Some(Duration::ZERO));
        assert_eq!(millis(None), None);
    }

    #[test]
    fn a_failure_names_the_job_and_the_column() {
        let error = of_job(
            JobId(9),
            retry_strategy(Value::from("garbage")).unwrap_err(),
        );
        let Error::Corrupt(detail) = error else {
            panic!("not corrupt")
        };
        assert!(detail.starts_with("job 9: retry"), "{detail}");
        assert_eq!(Col::At(3).to_string(), "column 3");
        assert_eq!(Col::Name("run_at").to_string(), "run_at");
    }
}
