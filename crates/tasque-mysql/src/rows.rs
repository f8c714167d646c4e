//! Decoding rows into model types, without panicking on anything a row can hold. JSON columns
//! are text, parsed here; a time sqlx cannot decode (a zero date, a day 0) and every other
//! decoding failure becomes [`Error::Corrupt`] naming the column.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::mysql::MySqlRow;
use sqlx::Row;
use tasque_durable::{
    AttemptError, CancellationPolicy, Claim, Error, JobId, JobInfo, JobResult, JobState, Result,
    RetryStrategy, RunId,
};

use crate::sql_err;

/// Text read as bytes: columns with a binary collation (`utf8mb4_bin`, which keeps names
/// case-sensitive and JSON verbatim) carry the BINARY flag, which sqlx will not decode as a
/// `String`.
#[derive(Debug)]
pub struct Text(pub String);

impl sqlx::Type<sqlx::MySql> for Text {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <Vec<u8> as sqlx::Type<sqlx::MySql>>::type_info()
    }

    fn compatible(ty: &sqlx::mysql::MySqlTypeInfo) -> bool {
        <Vec<u8> as sqlx::Type<sqlx::MySql>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::MySql> for Text {
    fn decode(value: sqlx::mysql::MySqlValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let bytes = <&[u8] as sqlx::Decode<'r, sqlx::MySql>>::decode(value)?;
        Ok(Text(String::from_utf8(bytes.to_vec())?))
    }
}

/// A text column by name.
pub fn text(row: &MySqlRow, column: &str) -> Result<String> {
    Ok(get::<Text>(row, column)?.0)
}

/// A nullable text column by name.
pub fn text_opt(row: &MySqlRow, column: &str) -> Result<Option<String>> {
    Ok(get::<Option<Text>>(row, column)?.map(|t| t.0))
}

/// A text column by position.
pub fn text_at(row: &MySqlRow, index: usize) -> Result<String> {
    Ok(at::<Text>(row, index)?.0)
}

fn millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn u32_of(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Parses stored JSON text.
pub fn json(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: not JSON: {e}")))
}

fn json_opt(text: Option<String>, what: &str) -> Result<Option<Value>> {
    text.map(|t| json(&t, what)).transpose()
}

/// Decodes a stored retry strategy.
pub fn retry(text: &str) -> Result<RetryStrategy> {
    serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("retry: not a retry strategy: {e}")))
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<JobState> {
    match stored {
        "pending" if run_at > now => Ok(JobState::Scheduled),
        "pending" => Ok(JobState::Available),
        other => other
            .parse()
            .map_err(|_| Error::Corrupt(format!("state: unknown stored state {other:?}"))),
    }
}

/// A decoding failure as [`Error::Corrupt`] naming the column; other failures as they are.
fn column_err(column: &str, error: sqlx::Error) -> Error {
    match error {
        // sqlx reads a zero date (`0000-00-00`, stored under a permissive `sql_mode`) as NULL.
        sqlx::Error::ColumnDecode { source, .. }
            if source.is::<sqlx::error::UnexpectedNullError>() =>
        {
            Error::Corrupt(format!(
                "{column}: NULL or a zero date, which no value can hold"
            ))
        }
        sqlx::Error::ColumnDecode { source, .. } => Error::Corrupt(format!("{column}: {source}")),
        other => sql_err(other),
    }
}

/// Names the job in a decoding failure.
fn of_job(id: JobId, error: Error) -> Error {
    match error {
        Error::Corrupt(what) => Error::Corrupt(format!("job {id}: {what}")),
        other => other,
    }
}

/// One column of a row.
pub fn get<'r, T>(row: &'r MySqlRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
{
    row.try_get(column).map_err(|e| column_err(column, e))
}

/// One column of a row, by position.
pub fn at<'r, T>(row: &'r MySqlRow, index: usize) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
{
    row.try_get(index)
        .map_err(|e| column_err(&format!("column {index}"), e))
}

/// A row of the job columns as a `JobInfo`.
pub fn job_info(row: &MySqlRow) -> Result<JobInfo> {
    let id = JobId(get(row, "id")?);
    job_info_of(id, row).map_err(|e| of_job(id, e))
}

fn job_info_of(id: JobId, row: &MySqlRow) -> Result<JobInfo> {
    let run_at: DateTime<Utc> = get(row, "run_at")?;
    let now: DateTime<Utc> = get(row, "now")?;
    let errors: Vec<AttemptError> = serde_json::from_str(&text(row, "errors")?)
        .map_err(|e| Error::Corrupt(format!("errors: {e}")))?;
    Ok(JobInfo {
        id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: text(row, "queue")?,
        task: text(row, "task")?,
        params: json(&text(row, "params")?, "params")?,
        headers: json_opt(text_opt(row, "headers")?, "headers")?.unwrap_or(Value::Null),
        state: state(&text(row, "state")?, run_at, now)?,
        priority: get(row, "priority")?,
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(&text(row, "retry")?)?,
        timeout: millis(get(row, "timeout_ms")?),
        cancellation: CancellationPolicy {
            max_duration: millis(get(row, "max_duration_ms")?),
            max_delay: millis(get(row, "max_delay_ms")?),
        },
        idempotency_key: text_opt(row, "idempotency_key")?,
        unique_key: text_opt(row, "unique_key")?,
        result: json_opt(text_opt(row, "result")?, "result")?,
        failure: json_opt(text_opt(row, "failure")?, "failure")?,
        errors,
        worker_id: text_opt(row, "worker_id")?,
        created_at: get(row, "created_at")?,
        run_at,
        first_started_at: get(row, "first_started_at")?,
        attempted_at: get(row, "attempted_at")?,
        finished_at: get(row, "finished_at")?,
        lease_expires_at: get(row, "lease_expires_at")?,
    })
}

/// The state, result and failure of a job from a row of the job columns: only what those
/// need is decoded, so the outcome of a job whose other columns are corrupt can still be read.
pub fn job_result(row: &MySqlRow) -> Result<JobResult> {
    let id = JobId(get(row, "id")?);
    let of = |row: &MySqlRow| -> Result<JobResult> {
        let stored = text(row, "state")?;
        let state = if stored == "pending" {
            state(&stored, get(row, "run_at")?, get(row, "now")?)?
        } else {
            state(&stored, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC)?
        };
        Ok(JobResult {
            state,
            result: json_opt(text_opt(row, "result")?, "result")?,
            failure: json_opt(text_opt(row, "failure")?, "failure")?,
        })
    };
    of(row).map_err(|e| of_job(id, e))
}

/// A claimed run whose row did not decode: it is taken with the others, then failed for good
/// (see `MySqlStore::fail_for_good`).
#[derive(Debug)]
pub struct Undecodable {
    /// The run.
    pub run: RunId,
    /// Why its row did not decode.
    pub error: Error,
    /// The lease end its pick computed.
    pub lease_end: DateTime<Utc>,
}

/// Claims with their run times, and the runs whose rows did not decode.
pub type Claimed = (Vec<(Claim, DateTime<Utc>)>, Vec<Undecodable>);

/// Picked rows, decoded one by one.
pub fn claims(rows: &[MySqlRow]) -> Result<Claimed> {
    let mut found = Vec::with_capacity(rows.len());
    let mut undecodable = Vec::new();
    for row in rows {
        match claim(row) {
            Ok(claim) => found.push(claim),
            Err(error @ Error::Corrupt(_)) => undecodable.push(Undecodable {
                run: RunId::new(JobId(get(row, "id")?), get(row, "run_seq")?),
                error,
                lease_end: get(row, "lease_expires_at")?,
            }),
            Err(other) => return Err(other),
        }
    }
    Ok((found, undecodable))
}

/// A row read back by a claim, with its run time (for sorting).
pub fn claim(row: &MySqlRow) -> Result<(Claim, DateTime<Utc>)> {
    let id = JobId(get(row, "id")?);
    let claim = Claim {
        job_id: id,
        run_id: RunId::new(id, get(row, "run_seq")?),
        queue: text(row, "queue")?,
        task: text(row, "task")?,
        params: json(&text(row, "params")?, "params")?,
        headers: json_opt(text_opt(row, "headers")?, "headers")?.unwrap_or(Value::Null),
        attempt: u32_of(get(row, "attempt")?),
        max_attempts: u32_of(get(row, "max_attempts")?),
        retry: retry(&text(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: millis(get(row, "timeout_ms")?),
        lease_expires_at: get(row, "lease_expires_at")?,
        wake_event: text_opt(row, "wake_event")?,
        event_payload: json_opt(text_opt(row, "event_payload")?, "event payload")?,
    };
    Ok((claim, get(row, "run_at")?))
}
