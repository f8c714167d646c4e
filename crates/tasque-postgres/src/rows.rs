//! Decoding rows into model types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use tasque_durable::{
    AttemptError, CancellationPolicy, Claim, Error, JobId, JobInfo, JobState, Result,
    RetryStrategy, RunId,
};

use crate::sql_err;

fn millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Decodes a stored retry strategy.
pub fn retry(value: Value) -> Result<RetryStrategy> {
    serde_json::from_value(value).map_err(|e| Error::Corrupt(format!("stored retry strategy: {e}")))
}

fn u32_of(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<JobState> {
    match stored {
        "pending" if run_at > now => Ok(JobState::Scheduled),
        "pending" => Ok(JobState::Available),
        other => other
            .parse()
            .map_err(|_| Error::Corrupt(format!("unknown stored state {other:?}"))),
    }
}

/// One column of a row.
pub fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(sql_err)
}

/// A run id from the `id` and `run_seq` columns (or the first two).
pub fn run_id(row: &PgRow) -> Result<RunId> {
    let job: i64 = row.try_get(0).map_err(sql_err)?;
    Ok(RunId::new(JobId(job), row.try_get(1).map_err(sql_err)?))
}

/// A row of the job columns as a `JobInfo`.
pub fn job_info(row: &PgRow) -> Result<JobInfo> {
    let id = JobId(get(row, "id")?);
    let run_at: DateTime<Utc> = get(row, "run_at")?;
    let now: DateTime<Utc> = get(row, "now")?;
    let errors: Vec<AttemptError> = serde_json::from_value(get(row, "errors")?)
        .map_err(|e| Error::Corrupt(format!("stored errors: {e}")))?;
    Ok(JobInfo {
        id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: get(row, "queue")?,
        task: get(row, "task")?,
        params: get(row, "params")?,
        headers: get::<Option<Value>>(row, "headers")?.unwrap_or(Value::Null),
        state: state(&get::<String>(row, "state")?, run_at, now)?,
        priority: get(row, "priority")?,
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(get(row, "retry")?)?,
        timeout: millis(get(row, "timeout_ms")?),
        cancellation: CancellationPolicy {
            max_duration: millis(get(row, "max_duration_ms")?),
            max_delay: millis(get(row, "max_delay_ms")?),
        },
        idempotency_key: get(row, "idempotency_key")?,
        result: get(row, "result")?,
        failure: get(row, "failure")?,
        errors,
        worker_id: get(row, "worker_id")?,
        created_at: get(row, "created_at")?,
        run_at,
        first_started_at: get(row, "first_started_at")?,
        attempted_at: get(row, "attempted_at")?,
        finished_at: get(row, "finished_at")?,
        lease_expires_at: get(row, "lease_expires_at")?,
    })
}

/// A row returned by a claim, with its run time (for sorting).
pub fn claim(row: &PgRow) -> Result<(Claim, DateTime<Utc>)> {
    let id = JobId(get(row, "id")?);
    let claim = Claim {
        job_id: id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: get(row, "queue")?,
        task: get(row, "task")?,
        params: get(row, "params")?,
        headers: get::<Option<Value>>(row, "headers")?.unwrap_or(Value::Null),
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(get(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: millis(get(row, "timeout_ms")?),
        lease_expires_at: get(row, "lease_expires_at")?,
        wake_event: get(row, "wake_event")?,
        event_payload: get(row, "event_payload")?,
    };
    Ok((claim, get(row, "run_at")?))
}
