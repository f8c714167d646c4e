//! The operations, grouped by concept. Each takes the store and returns model types; the SQL
//! they run lives in `queries`.
//!
//! Writes by a run follow one pattern, in one transaction: lock the runs' rows
//! ([`MySqlStore::lock_runs`]), judge each run ([`judge`]), update the ones that still own
//! their job, commit. Transactions that hit a deadlock or a lock-wait timeout are retried
//! ([`retry_conflicts`]).

pub mod claim;
pub mod cron;
pub mod deps;
pub mod election;
pub mod flow;
pub mod gated;
pub mod insight;
pub mod inspect;
pub mod maintain;
pub mod registry;
pub mod runs;
pub mod spawn;
pub mod workflow;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, Transaction};
use tasque_durable::{Error, Result, RunAt, RunId, RunWrite};

use crate::{error_number, queries, rows, sql_err, MySqlStore};

/// Milliseconds of a duration, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Microseconds of a duration, saturating (the unit of every bound interval).
pub fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Microseconds of an optional duration in milliseconds.
pub fn us_of_ms(ms: Option<i64>) -> Option<i64> {
    ms.map(|ms| ms.saturating_mul(1000))
}

/// The `(absolute time or NULL, delay µs)` binds of a run time.
pub fn run_at_binds(run_at: Option<RunAt>) -> (Option<DateTime<Utc>>, i64) {
    match run_at {
        None | Some(RunAt::Now) => (None, 0),
        Some(RunAt::At(at)) => (Some(at), 0),
        // A positive delay under a microsecond still delays.
        Some(RunAt::After(delay)) => (None, us(delay).max(1)),
    }
}

/// A job row locked by [`MySqlStore::lock_runs`].
#[derive(Debug)]
pub struct Locked {
    /// The stored state.
    pub state: String,
    /// The current run.
    pub seq: i64,
    /// The current attempt.
    pub attempt: u32,
    /// Its max attempts.
    pub max_attempts: u32,
    /// Its retry strategy (stored JSON).
    pub retry: String,
    /// The lease end a write now would set.
    pub lease_end: DateTime<Utc>,
    /// Whether the current lease has run out (or there is none).
    pub expired: bool,
}

/// Judges a write by `run` against its locked job (`None`: the job is gone). A run applied
/// earlier in the same batch (`applied`) is stale the second time.
pub fn judge(run: RunId, locked: Option<&Locked>, applied: &mut HashSet<i64>) -> RunWrite {
    match locked {
        Some(l) if l.seq == run.seq && l.state == "running" && applied.insert(run.job.0) => {
            RunWrite::Applied
        }
        Some(l) if l.seq == run.seq && l.state == "cancelled" => RunWrite::Cancelled,
        _ => RunWrite::Stale,
    }
}

/// Judges every run of a batch, in input order; also returns the ids to write.
pub fn judge_all(runs: &[RunId], locked: &HashMap<i64, Locked>) -> (Vec<RunWrite>, Vec<i64>) {
    let mut applied = HashSet::new();
    let verdicts: Vec<RunWrite> = runs
        .iter()
        .map(|r| judge(*r, locked.get(&r.job.0), &mut applied))
        .collect();
    let ids = runs
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == RunWrite::Applied)
        .map(|(r, _)| r.job.0)
        .collect();
    (verdicts, ids)
}

/// Turns a rejection into the single-run error.
pub fn rejection_error(run: RunId, write: RunWrite) -> Error {
    match write {
        RunWrite::Cancelled => Error::RunCancelled(run),
        _ => Error::StaleRun(run),
    }
}

/// True for errors worth running the transaction again: deadlock (1213), lock wait
/// timeout (1205).
fn is_conflict(err: &Error) -> bool {
    match err {
        Error::Database(source) => source
            .downcast_ref::<sqlx::Error>()
            .and_then(error_number)
            .is_some_and(|n| n == 1213 || n == 1205),
        _ => false,
    }
}

/// Runs `attempt` again (up to 5 times, briefly backing off) while it fails on a conflict.
pub async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Err(err) if is_conflict(&err) && tries < 5 => {
                tries += 1;
                let jitter = rand::random::<u64>() % 10;
                tokio::time::sleep(Duration::from_millis(u64::from(tries) * 5 + jitter)).await;
            }
            other => return other,
        }
    }
}

/// Binds the ids of a list written for `ids.len()` ids: every id, then the last one again up
/// to the list's [`shape`](queries::shape) (a repeated id changes nothing in an `IN` list).
pub fn bind_ids<'q>(
    mut query: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    ids: &[i64],
) -> sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments> {
    let Some(last) = ids.last() else {
        return query;
    };
    for id in ids
        .iter()
        .chain(std::iter::repeat(last))
        .take(queries::shape(ids.len()))
    {
        query = query.bind(*id);
    }
    query
}

/// Rolls `tx` back at once, then returns `error`. A refused write must not keep its row locks
/// until the connection next goes back to the pool: meanwhile a claim would skip the locked job.
pub(crate) async fn refuse<T>(tx: Transaction<'static, MySql>, error: Error) -> Result<T> {
    tx.rollback().await.map_err(sql_err)?;
    Err(error)
}

impl MySqlStore {
    /// Begins a transaction on the store's pool.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, MySql>> {
        self.inner.pool.begin().await.map_err(sql_err)
    }

    /// Locks the jobs of `runs` and reads what judging writes by them needs; `lease` is the
    /// lease a write would set (zero when irrelevant).
    pub(crate) async fn lock_runs(
        &self,
        conn: &mut MySqlConnection,
        runs: &[RunId],
        lease: Duration,
    ) -> Result<HashMap<i64, Locked>> {
        let mut ids: Vec<i64> = runs.iter().map(|r| r.job.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let sql = self.inner.sql.lock_runs(ids.len());
        let query = sqlx::query(&sql).bind(us(lease));
        let found = bind_ids(query, &ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_err)?;
        let mut locked = HashMap::with_capacity(found.len());
        for row in &found {
            let attempt: i32 = rows::at(row, 3)?;
            let max_attempts: i32 = rows::at(row, 4)?;
            locked.insert(
                rows::at::<i64>(row, 0)?,
                Locked {
                    state: rows::text_at(row, 1)?,
                    seq: rows::at(row, 2)?,
                    attempt: u32::try_from(attempt).unwrap_or(1),
                    max_attempts: u32::try_from(max_attempts).unwrap_or(1),
                    retry: rows::text_at(row, 5)?,
                    lease_end: rows::at(row, 6)?,
                    expired: rows::at::<i64>(row, 7)? != 0,
                },
            );
        }
        Ok(locked)
    }
}
