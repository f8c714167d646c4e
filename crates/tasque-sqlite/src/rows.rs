//! Decoding rows into model types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use tasque_durable::{
    AttemptError, CancellationPolicy, Claim, Error, JobId, JobInfo, JobState, Result,
    RetryStrategy, RunId,
};

use crate::sql_err;

/// Milliseconds since the epoch to a time.
pub fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Corrupt(format!("time out of range: {ms} ms")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Parses stored JSON text.
pub fn json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("stored JSON: {e}")))
}

fn opt_json(text: Option<String>) -> Result<Option<Value>> {
    text.as_deref().map(json).transpose()
}

/// Parses a stored retry strategy.
pub fn retry(text: &str) -> Result<RetryStrategy> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("stored retry strategy: {e}")))
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: i64, now: i64) -> Result<JobState> {
    match stored {
        "pending" if run_at > now => Ok(JobState::Scheduled),
        "pending" => Ok(JobState::Available),
        other => other
            .parse()
            .map_err(|_| Error::Corrupt(format!("unknown stored state {other:?}"))),
    }
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(sql_err)
}

/// A row of `job_columns!()` as a `JobInfo`.
pub fn job_info(row: &SqliteRow) -> Result<JobInfo> {
    let id = JobId(get(row, "id")?);
    let run_at: i64 = get(row, "run_at")?;
    let now: i64 = get(row, "now_ms")?;
    let errors: String = get(row, "errors")?;
    let errors: Vec<AttemptError> =
        serde_json::from_str(&errors).map_err(|e| Error::Corrupt(format!("stored errors: {e}")))?;
    Ok(JobInfo {
        id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: get(row, "queue")?,
        task: get(row, "task")?,
        params: json(&get::<String>(row, "params")?)?,
        headers: opt_json(get(row, "headers")?)?.unwrap_or(Value::Null),
        state: state(&get::<String>(row, "state")?, run_at, now)?,
        priority: get(row, "priority")?,
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(&get::<String>(row, "retry")?)?,
        timeout: millis(get(row, "timeout_ms")?),
        cancellation: CancellationPolicy {
            max_duration: millis(get(row, "max_duration_ms")?),
            max_delay: millis(get(row, "max_delay_ms")?),
        },
        idempotency_key: get(row, "idempotency_key")?,
        result: opt_json(get(row, "result")?)?,
        failure: opt_json(get(row, "failure")?)?,
        errors,
        worker_id: get(row, "worker_id")?,
        created_at: time(get(row, "created_at")?)?,
        run_at: time(run_at)?,
        first_started_at: opt_time(get(row, "first_started_at")?)?,
        attempted_at: opt_time(get(row, "attempted_at")?)?,
        finished_at: opt_time(get(row, "finished_at")?)?,
        lease_expires_at: opt_time(get(row, "lease_expires_at")?)?,
    })
}

/// A claimed job from one element of `queries::CLAIMED_BY_TOKEN`'s array, with its run time
/// (the sort key after priority).
pub fn claim_from_json(row: &Value) -> Result<(Claim, i64)> {
    let corrupt = || Error::Corrupt(format!("claimed job: {row}"));
    let field = |i: usize| row.get(i).ok_or_else(corrupt);
    let int = |i: usize| field(i)?.as_i64().ok_or_else(corrupt);
    let opt_int = |i: usize| -> Result<Option<i64>> {
        let v = field(i)?;
        if v.is_null() {
            Ok(None)
        } else {
            v.as_i64().map(Some).ok_or_else(corrupt)
        }
    };
    let text = |i: usize| field(i)?.as_str().map(str::to_owned).ok_or_else(corrupt);
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
            .map_err(|e| Error::Corrupt(format!("stored retry strategy: {e}")))?,
        priority: i32::try_from(int(9)?).map_err(|_| corrupt())?,
        timeout: millis(opt_int(10)?),
        lease_expires_at: time(int(11)?)?,
        wake_event: field(12)?.as_str().map(str::to_owned),
        // Present payloads come wrapped in a one-element array.
        event_payload: match event_payload {
            Value::Null => None,
            wrapped => Some(wrapped.get(0).cloned().ok_or_else(corrupt)?),
        },
    };
    Ok((claim, int(14)?))
}

/// A row returned by the claim statement, with its run time (the sort key after priority).
pub fn claim(row: &SqliteRow) -> Result<(Claim, i64)> {
    let id = JobId(get(row, "id")?);
    let claim = Claim {
        job_id: id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: get(row, "queue")?,
        task: get(row, "task")?,
        params: json(&get::<String>(row, "params")?)?,
        headers: opt_json(get(row, "headers")?)?.unwrap_or(Value::Null),
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(&get::<String>(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: millis(get(row, "timeout_ms")?),
        lease_expires_at: time(get(row, "lease_expires_at")?)?,
        wake_event: get(row, "wake_event")?,
        event_payload: opt_json(get(row, "event_payload")?)?,
    };
    Ok((claim, get(row, "run_at")?))
}
