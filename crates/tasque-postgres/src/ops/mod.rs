//! The operations, grouped by concept. Each takes the store and returns model types; the SQL
//! they run lives in `queries`.

pub mod claim;
pub mod cron;
pub mod deps;
pub mod election;
pub mod finished;
pub mod flow;
pub mod gated;
pub mod insight;
pub mod inspect;
pub mod maintain;
pub mod registry;
pub mod runs;
pub mod spawn;
pub mod workflow;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tasque_durable::{Error, Result, RunAt, RunId, RunWrite};

use crate::{sql_err, PostgresStore};

/// Milliseconds of a duration, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The `(absolute time or NULL, delay ms)` binds of a run time.
pub fn run_at_binds(run_at: Option<RunAt>) -> (Option<DateTime<Utc>>, i64) {
    match run_at {
        None | Some(RunAt::Now) => (None, 0),
        Some(RunAt::At(at)) => (Some(at), 0),
        Some(RunAt::After(delay)) => (None, ms(delay)),
    }
}

/// The ids and run numbers of `runs`, as the parallel bind arrays the batch statements unnest,
/// in job id order: with the nested-loop plan PostgreSQL picks for such batches, statements
/// writing many runs (a batch of completions, a heartbeat's lease extensions) then take their
/// row locks in one order and do not deadlock each other.
pub fn run_arrays(runs: &[RunId]) -> (Vec<i64>, Vec<i64>) {
    let mut pairs: Vec<(i64, i64)> = runs.iter().map(|r| (r.job.0, r.seq)).collect();
    pairs.sort_unstable();
    pairs.into_iter().unzip()
}

/// Why a guarded write by `run` matched nothing, given the job's state and run (if it exists).
pub fn rejection(run: RunId, found: Option<&(String, i64)>) -> RunWrite {
    match found {
        Some((state, seq)) if state == "cancelled" && *seq == run.seq => RunWrite::Cancelled,
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

impl PostgresStore {
    /// Looks up why a guarded write by `run` was not applied.
    pub(crate) async fn diagnose(&self, run: RunId) -> Result<RunWrite> {
        Ok(self.diagnose_many(&[run]).await?.remove(0))
    }

    /// Looks up, in one query, why guarded writes by `runs` were not applied.
    pub(crate) async fn diagnose_many(&self, runs: &[RunId]) -> Result<Vec<RunWrite>> {
        let ids: Vec<i64> = runs.iter().map(|r| r.job.0).collect();
        let rows = sqlx::query(&self.inner.sql.run_statuses)
            .bind(ids)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut found = HashMap::with_capacity(rows.len());
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
            .map(|r| rejection(*r, found.get(&r.job.0)))
            .collect())
    }
}
