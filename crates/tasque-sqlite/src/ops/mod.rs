//! The operations, grouped by concept. Each takes the store and returns model types; the SQL
//! they run lives in `queries`.

pub mod claim;
pub mod cron;
pub mod deps;
pub mod flow;
pub mod gated;
pub mod insight;
pub mod inspect;
pub mod maintain;
pub mod registry;
pub mod runs;
pub mod spawn;
pub mod workflow;

use std::time::Duration;

use sqlx::Row;
use tasque_durable::{Error, Result, RunAt, RunId, RunWrite};

use crate::{queries, sql_err, SqliteStore};

/// Milliseconds of a duration, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The `(absolute ms or NULL, delay ms)` binds of a run time.
pub fn run_at_binds(run_at: Option<RunAt>) -> (Option<i64>, i64) {
    match run_at {
        None | Some(RunAt::Now) => (None, 0),
        Some(RunAt::At(at)) => (Some(at.timestamp_millis()), 0),
        Some(RunAt::After(delay)) => (None, ms(delay)),
    }
}

/// Runs as the JSON array `[[id, seq], ...]` the batch statements read.
pub fn runs_json(runs: &[RunId]) -> String {
    let pairs: Vec<[i64; 2]> = runs.iter().map(|r| [r.job.0, r.seq]).collect();
    serde_json::Value::from(
        pairs
            .iter()
            .map(|p| serde_json::json!(p))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

/// Why a guarded write by `run` matched nothing, given the job's state and run (if it exists).
pub fn rejection(run: RunId, found: Option<(String, i64)>) -> RunWrite {
    match found {
        Some((state, seq)) if state == "cancelled" && seq == run.seq => RunWrite::Cancelled,
        _ => RunWrite::Stale,
    }
}

/// Turns a rejection into the single-run error.
pub fn rejection_error(run: RunId, write: RunWrite) -> Error {
    match write {
        RunWrite::Cancelled => Error::RunCancelled(run),
        _ => Error::StaleRun(run),
    }
}

impl SqliteStore {
    /// Looks up why a guarded write by `run` was not applied.
    pub(crate) async fn diagnose(&self, run: RunId) -> Result<RunWrite> {
        let row = sqlx::query(crate::clock::clocked(queries::RUN_STATUS))
            .bind(&*self.ns)
            .bind(run.job.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_err)?;
        let found = match row {
            Some(row) => Some((
                row.try_get(0).map_err(sql_err)?,
                row.try_get(1).map_err(sql_err)?,
            )),
            None => None,
        };
        Ok(rejection(run, found))
    }

    /// Looks up, in one query, why guarded writes by `runs` were not applied.
    pub(crate) async fn diagnose_many(&self, runs: &[RunId]) -> Result<Vec<RunWrite>> {
        let ids: Vec<i64> = runs.iter().map(|r| r.job.0).collect();
        let rows = sqlx::query(crate::clock::clocked(queries::RUN_STATUSES))
            .bind(&*self.ns)
            .bind(serde_json::Value::from(ids).to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        let mut found = std::collections::HashMap::new();
        for row in rows {
            let id: i64 = row.try_get(0).map_err(sql_err)?;
            found.insert(
                id,
                (
                    row.try_get(1).map_err(sql_err)?,
                    row.try_get(2).map_err(sql_err)?,
                ),
            );
        }
        Ok(runs
            .iter()
            .map(|r| rejection(*r, found.get(&r.job.0).cloned()))
            .collect())
    }
}
