//! Decoding rows into model types, without panicking on anything a row can hold. JSON columns
//! are text, parsed here; a time sqlx cannot decode (a zero date, a day 0) and every other
//! decoding failure becomes [`Error::Corrupt`] naming the column.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::mysql::MySqlRow;
use sqlx::Row;
use tasque_durable::engine::rows::{self as shared, Col, Columns, JobColumns};
use tasque_durable::{
    Claim, Error, JobId, JobInfo, JobResult, JobState, Result, RetryStrategy, RunId,
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

/// Parses stored JSON text.
pub fn json(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: not JSON: {e}")))
}

fn json_opt(text: Option<String>, what: &str) -> Result<Option<Value>> {
    text.map(|t| json(&t, what)).transpose()
}

/// Decodes a stored retry strategy.
pub fn retry(text: &str) -> Result<RetryStrategy> {
    shared::retry_strategy_text(text)
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<JobState> {
    shared::state(stored, run_at > now)
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
    shared::job_info(&Cols(row))
}

/// The state, result and failure of a job from a row of the job columns (see
/// [`shared::job_result`]).
pub fn job_result(row: &MySqlRow) -> Result<JobResult> {
    shared::job_result(&Cols(row))
}

/// A row read through the shared decoders ([`Columns`]).
pub struct Cols<'r>(pub &'r MySqlRow);

impl Cols<'_> {
    fn get<'r, T>(&'r self, c: Col<'_>) -> Result<T>
    where
        T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
    {
        match c {
            Col::Name(name) => get(self.0, name),
            Col::At(index) => at(self.0, index),
        }
    }
}

impl Columns for Cols<'_> {
    fn text_opt(&self, c: Col<'_>) -> Result<Option<String>> {
        Ok(self.get::<Option<Text>>(c)?.map(|t| t.0))
    }
    fn int32_opt(&self, c: Col<'_>) -> Result<Option<i32>> {
        self.get(c)
    }
    fn int64_opt(&self, c: Col<'_>) -> Result<Option<i64>> {
        self.get(c)
    }
    fn flag(&self, c: Col<'_>) -> Result<bool> {
        Ok(self.get::<i64>(c)? != 0)
    }
    fn time(&self, c: Col<'_>) -> Result<DateTime<Utc>> {
        self.get(c)
    }
    fn time_opt(&self, c: Col<'_>) -> Result<Option<DateTime<Utc>>> {
        self.get(c)
    }
    fn json_opt(&self, c: Col<'_>) -> Result<Option<Value>> {
        json_opt(self.text_opt(c)?, &c.to_string())
    }
}

impl JobColumns for Cols<'_> {
    fn scheduled(&self) -> Result<bool> {
        Ok(get::<DateTime<Utc>>(self.0, "run_at")? > get::<DateTime<Utc>>(self.0, "now")?)
    }
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
        attempt: shared::count(get(row, "attempt")?),
        max_attempts: shared::count(get(row, "max_attempts")?),
        retry: retry(&text(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: shared::millis(get(row, "timeout_ms")?),
        lease_expires_at: get(row, "lease_expires_at")?,
        wake_event: text_opt(row, "wake_event")?,
        event_payload: json_opt(text_opt(row, "event_payload")?, "event payload")?,
    };
    Ok((claim, get(row, "run_at")?))
}
