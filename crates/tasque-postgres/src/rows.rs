//! Decoding rows into model types, without panicking on anything a row can hold.
//!
//! sqlx decodes a `timestamptz` into a chrono time by adding microseconds to an epoch, which
//! panics on PostgreSQL's `infinity` / `-infinity` and on years chrono cannot hold (past
//! 262143; PostgreSQL goes to 294276). Every time here is read through [`Stamp`] instead,
//! which checks, and every decoding failure (a time out of range, a stored retry strategy
//! that is not one, an unknown state) becomes [`Error::Corrupt`] naming the column.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Row, Type};
use tasque_durable::engine::rows::{self as shared, Col, Columns, JobColumns};
use tasque_durable::{
    Claim, Error, JobId, JobInfo, JobResult, JobState, Result, RetryStrategy, RunId,
};

use crate::sql_err;

/// A `timestamptz` decoded with checks: `infinity`, `-infinity` and times chrono cannot hold
/// are decode errors, never panics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Stamp(pub DateTime<Utc>);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl Stamp {
    /// The time `micros` microseconds after 2000-01-01 UTC (PostgreSQL's binary format).
    pub fn from_pg_micros(micros: i64) -> std::result::Result<Stamp, String> {
        match micros {
            i64::MAX => Err("timestamp is infinity, which no time value can hold".to_owned()),
            i64::MIN => Err("timestamp is -infinity, which no time value can hold".to_owned()),
            _ => micros
                .checked_add(PG_EPOCH_MICROS)
                .and_then(DateTime::from_timestamp_micros)
                .map(Stamp)
                .ok_or_else(|| {
                    format!(
                        "timestamp out of range ({micros} µs from 2000-01-01): past year 262143"
                    )
                }),
        }
    }
}

impl Type<Postgres> for Stamp {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Stamp {
    fn decode(value: PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let micros = <i64 as Decode<Postgres>>::decode(value)?;
                Ok(Stamp::from_pg_micros(micros)?)
            }
            PgValueFormat::Text => {
                let text = value.as_str()?;
                if text.ends_with("infinity") {
                    return Err(format!("timestamp is {text}, which no time value can hold").into());
                }
                // Text times are parsed (a failure is an error, not a panic).
                Ok(Stamp(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
            }
        }
    }
}

/// Decodes a stored retry strategy.
pub fn retry(value: Value) -> Result<RetryStrategy> {
    shared::retry_strategy(value)
}

/// The model state of a stored state, given the run time and the clock.
pub fn state(stored: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<JobState> {
    shared::state(stored, run_at > now)
}

/// A decoding failure as [`Error::Corrupt`] naming the column; other failures as they are.
fn column_err(column: &str, error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::ColumnDecode { source, .. } => Error::Corrupt(format!("{column}: {source}")),
        other => sql_err(other),
    }
}

/// One column of a row.
pub fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(|e| column_err(column, e))
}

/// A time column of a row.
pub fn time(row: &PgRow, column: &str) -> Result<DateTime<Utc>> {
    Ok(get::<Stamp>(row, column)?.0)
}

/// A time column of a row, by position.
pub fn time_at(row: &PgRow, index: usize) -> Result<DateTime<Utc>> {
    row.try_get::<Stamp, _>(index)
        .map(|stamp| stamp.0)
        .map_err(|e| column_err(&format!("column {index}"), e))
}

/// A run id from the `id` and `run_seq` columns (or the first two).
pub fn run_id(row: &PgRow) -> Result<RunId> {
    let job: i64 = row.try_get(0).map_err(sql_err)?;
    Ok(RunId::new(JobId(job), row.try_get(1).map_err(sql_err)?))
}

/// A row of the job columns as a `JobInfo`.
pub fn job_info(row: &PgRow) -> Result<JobInfo> {
    shared::job_info(&Cols(row))
}

/// The state, result and failure of a job from a row of the job columns (see
/// [`shared::job_result`]).
pub fn job_result(row: &PgRow) -> Result<JobResult> {
    shared::job_result(&Cols(row))
}

/// A row read through the shared decoders ([`Columns`]).
pub struct Cols<'r>(pub &'r PgRow);

impl Cols<'_> {
    fn get<'r, T>(&'r self, c: Col<'_>) -> Result<T>
    where
        T: Decode<'r, Postgres> + Type<Postgres>,
    {
        match c {
            Col::Name(name) => get(self.0, name),
            Col::At(index) => self
                .0
                .try_get(index)
                .map_err(|e| column_err(&c.to_string(), e)),
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
        Ok(self.get::<Option<Stamp>>(c)?.map(|stamp| stamp.0))
    }
    fn json_opt(&self, c: Col<'_>) -> Result<Option<Value>> {
        self.get(c)
    }
}

impl JobColumns for Cols<'_> {
    fn scheduled(&self) -> Result<bool> {
        Ok(time(self.0, "run_at")? > time(self.0, "now")?)
    }
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
        attempt: shared::count(get(row, "attempt")?),
        max_attempts: shared::count(get(row, "max_attempts")?),
        retry: retry(get(row, "retry")?)?,
        priority: get(row, "priority")?,
        timeout: shared::millis(get(row, "timeout_ms")?),
        lease_expires_at: time(row, "lease_expires_at")?,
        wake_event: get(row, "wake_event")?,
        event_payload: get(row, "event_payload")?,
    };
    Ok((claim, time(row, "run_at")?))
}

/// Claims with their run times, and the runs whose rows did not decode with why (they must be
/// failed for good: see `PostgresStore::fail_for_good`).
pub type Claimed = (Vec<(Claim, DateTime<Utc>)>, Vec<(RunId, Error)>);

/// Claimed rows, decoded one by one.
pub fn claims(rows: &[PgRow]) -> Result<Claimed> {
    let mut claims = Vec::with_capacity(rows.len());
    let mut undecodable = Vec::new();
    for row in rows {
        match claim(row) {
            Ok(claim) => claims.push(claim),
            Err(error @ Error::Corrupt(_)) => undecodable.push((run_id(row)?, error)),
            Err(other) => return Err(other),
        }
    }
    Ok((claims, undecodable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_and_out_of_range_times_are_errors_not_panics() {
        assert!(Stamp::from_pg_micros(i64::MAX)
            .unwrap_err()
            .contains("infinity"));
        assert!(Stamp::from_pg_micros(i64::MIN)
            .unwrap_err()
            .contains("-infinity"));
        // Year 294000: PostgreSQL holds it, chrono does not.
        let far = 292_000 * 365 * 24 * 3600 * 1_000_000_i64;
        assert!(Stamp::from_pg_micros(far)
            .unwrap_err()
            .contains("out of range"));
        assert!(Stamp::from_pg_micros(-far).is_err());
        let epoch = Stamp::from_pg_micros(0).unwrap().0;
        assert_eq!(epoch.to_rfc3339(), "2000-01-01T00:00:00+00:00");
        let later = Stamp::from_pg_micros(1_500_000).unwrap().0;
        assert_eq!(later.timestamp_micros(), PG_EPOCH_MICROS + 1_500_000);
    }
}
