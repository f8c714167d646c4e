//! Decoding rows into model types, without panicking on anything a row can hold: times are
//! integer milliseconds converted with checks, JSON is parsed here, and every decoding failure
//! becomes [`Error::Corrupt`] naming the column.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use tasque_durable::engine::rows::{self as shared, Col, Columns, JobColumns};
use tasque_durable::{
    Claim, Error, JobId, JobInfo, JobResult, JobState, Result, RetryStrategy, RunId,
};

use crate::sql_err;

/// Milliseconds since the epoch to a time.
pub fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Corrupt(format!("timestamp out of range: {ms} ms")))
}

/// A time column: milliseconds since the epoch, converted with checks.
fn time_of(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>> {
    Cols(row).time(Col::Name(column))
}

/// Names the column in a decoding failure.
fn in_column(column: &str, error: Error) -> Error {
    match error {
        Error::Corrupt(what) => Error::Corrupt(format!("{column}: {what}")),
        other => other,
    }
}

/// Parses stored JSON text.
pub fn json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("stored JSON: {e}")))
}

/// A JSON column.
fn json_of(row: &SqliteRow, column: &str) -> Result<Value> {
    Cols(row).json(Col::Name(column))
}

/// A nullable JSON column.
fn opt_json_of(row: &SqliteRow, column: &str) -> Result<Option<Value>> {
    Cols(row).json_opt(Col::Name(column))
}

/// Parses a stored retry strategy.
pub fn retry(text: &str) -> Result<RetryStrategy> {
    shared::retry_strategy_text(text)
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: i64, now: i64) -> Result<JobState> {
    shared::state(stored, run_at > now)
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(|error| decode_err(column, error))
}

/// A decoding failure as [`Error::Corrupt`] naming the column; other failures as they are.
fn decode_err(column: &str, error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::ColumnDecode { source, .. } => Error::Corrupt(format!("{column}: {source}")),
        other => sql_err(other),
    }
}

/// A row of `job_columns!()` as a `JobInfo`.
pub fn job_info(row: &SqliteRow) -> Result<JobInfo> {
    shared::job_info(&Cols(row))
}

/// The state, result and failure of a job from a row of `job_columns!()` (see
/// [`shared::job_result`]).
pub fn job_result(row: &SqliteRow) -> Result<JobResult> {
    shared::job_result(&Cols(row))
}

/// A row read through the shared decoders ([`Columns`]): times are integer milliseconds, JSON
/// is text.
pub struct Cols<'r>(pub &'r SqliteRow);

impl Cols<'_> {
    fn get<'r, T>(&'r self, c: Col<'_>) -> Result<T>
    where
        T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        match c {
            Col::Name(name) => get(self.0, name),
            Col::At(index) => self
                .0
                .try_get(index)
                .map_err(|e| decode_err(&c.to_string(), e)),
        }
    }
}

impl Columns for Cols<'_> {
    fn text_opt(&self, c: Col<'_>) -> Result<Option<String>> {
        self.get(c)
    }
    fn int32_opt(&self, c: Col<'_>) -> Result<Option<i32>> {
        self.get(c)
    }
    fn int64_opt(&self, c: Col<'_>) -> Result<Option<i64>> {
        self.get(c)
    }
    fn flag(&self, c: Col<'_>) -> Result<bool> {
        self.get(c)
    }
    fn time_opt(&self, c: Col<'_>) -> Result<Option<DateTime<Utc>>> {
        self.get::<Option<i64>>(c)?
            .map(time)
            .transpose()
            .map_err(|e| in_column(&c.to_string(), e))
    }
    fn json_opt(&self, c: Col<'_>) -> Result<Option<Value>> {
        self.get::<Option<String>>(c)?
            .as_deref()
            .map(json)
            .transpose()
            .map_err(|e| in_column(&c.to_string(), e))
    }
}

impl JobColumns for Cols<'_> {
    /// Compared as stored (milliseconds), so an out-of-range run time still orders.
    fn scheduled(&self) -> Result<bool> {
        Ok(get::<i64>(self.0, "run_at")? > get::<i64>(self.0, "now_ms")?)
    }
}

/// A claimed job from one element of `queries::CLAIMED_BY_TOKEN`'s array, with its run time
/// (the sort key after priority).
pub fn claim_from_json(row: &Value) -> Result<(Claim, i64)> {
    const COLUMNS: [&str; 15] = [
        "id",
        "run_seq",
        "queue",
        "task",
        "params",
        "headers",
        "attempt",
        "max_attempts",
        "retry",
        "priority",
        "timeout_ms",
        "lease_expires_at",
        "wake_event",
        "event_payload",
        "run_at",
    ];
    let corrupt = |i: usize| {
        let value = row
            .get(i)
            .map_or_else(|| "nothing".to_owned(), Value::to_string);
        Error::Corrupt(format!("{}: unexpected value {value}", COLUMNS[i]))
    };
    let field = |i: usize| row.get(i).ok_or_else(|| corrupt(i));
    let int = |i: usize| field(i)?.as_i64().ok_or_else(|| corrupt(i));
    let opt_int = |i: usize| -> Result<Option<i64>> {
        let v = field(i)?;
        if v.is_null() {
            Ok(None)
        } else {
            v.as_i64().map(Some).ok_or_else(|| corrupt(i))
        }
    };
    let text = |i: usize| {
        field(i)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| corrupt(i))
    };
    let id = JobId(int(0)?);
    let event_payload = field(13)?;
    let claim = Claim {
        job_id: id,
        run_id: RunId::new(id, int(1)?),
        queue: text(2)?,
        task: text(3)?,
        params: field(4)?.clone(),
        headers: field(5)?.clone(),
        attempt: u32_of(int(6)?),
        max_attempts: u32_of(int(7)?),
        retry: serde_json::from_value(field(8)?.clone())
            .map_err(|e| Error::Corrupt(format!("retry: not a retry strategy: {e}")))?,
        priority: i32::try_from(int(9)?).map_err(|_| corrupt(9))?,
        timeout: shared::millis(opt_int(10)?),
        lease_expires_at: time(int(11)?).map_err(|e| in_column("lease_expires_at", e))?,
        wake_event: field(12)?.as_str().map(str::to_owned),
        // Present payloads come wrapped in a one-element array.
        event_payload: match event_payload {
            Value::Null => None,
            wrapped => Some(wrapped.get(0).cloned().ok_or_else(|| corrupt(13))?),
        },
    };
    Ok((claim, int(14)?))
}

/// The run of a claimed job's array element, if its id and run number read.
pub fn run_from_json(row: &Value) -> Option<RunId> {
    let id = row.get(0)?.as_i64()?;
    Some(RunId::new(JobId(id), row.get(1)?.as_i64()?))
}

/// A row returned by the claim statement, with its run time (the sort key after priority).
pub fn claim(row: &SqliteRow) -> Result<(Claim, i64)> {
    let id = JobId(get(row, "id")?);
    let claim = Claim {
        job_id: id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: get(row, "queue")?,
        task: get(row, "task")?,
        params: json_of(row, "params")?,
        headers: opt_json_of(row, "headers")?.unwrap_or(Value::Null),
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(&get::<String>(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: shared::millis(get(row, "timeout_ms")?),
        lease_expires_at: time_of(row, "lease_expires_at")?,
        wake_event: get(row, "wake_event")?,
        event_payload: opt_json_of(row, "event_payload")?,
    };
    Ok((claim, get(row, "run_at")?))
}

/// The ready time of a claimed job, for the poll order (an out-of-range value sorts first).
pub fn ready_at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Claimed jobs and the runs whose rows did not decode, with why (they must be failed for
/// good: see `SqliteStore::fail_for_good`).
pub type Claimed = (Vec<(Claim, i64)>, Vec<(RunId, Error)>);

/// Claimed rows, decoded one by one.
pub fn claims(rows: &[SqliteRow]) -> Result<Claimed> {
    let mut claimed: Claimed = (Vec::with_capacity(rows.len()), Vec::new());
    for row in rows {
        match claim(row) {
            Ok(claim) => claimed.0.push(claim),
            Err(error @ Error::Corrupt(_)) => {
                let run = RunId::new(JobId(get(row, "id")?), get(row, "run_seq")?);
                claimed.1.push((run, error));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(claimed)
}

/// Claimed jobs from `queries::CLAIMED_BY_TOKEN`'s array, decoded one by one. An element
/// without a readable run cannot be failed: it is left to its lease (and logged).
pub fn claims_from_json(jobs: &[Value]) -> Claimed {
    let mut claimed: Claimed = (Vec::with_capacity(jobs.len()), Vec::new());
    for job in jobs {
        match claim_from_json(job) {
            Ok(claim) => claimed.0.push(claim),
            Err(error) => match run_from_json(job) {
                Some(run) => claimed.1.push((run, error)),
                None => {
                    tracing::error!(%error, "a claimed job has no readable id; its lease will expire")
                }
            },
        }
    }
    claimed
}
