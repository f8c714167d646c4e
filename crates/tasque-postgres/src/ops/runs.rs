//! Writes by a running run: complete, fail, reschedule, release. All guarded by the run id.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::engine::{
    EngineRuns, JobComplete, JobFail, JobFailExpired, JobFailForGood, JobRelease, JobSchedule,
};
use tasque_durable::retry::{after_failure, NextStep};
use tasque_durable::{FailOutcome, Result, RunAt, RunId, RunWrite};

use super::{ms, rejection_error, run_arrays, run_at_binds};
use crate::{rows, sql_err, PostgresStore};

/// Where a failed run goes: forced time, or the retry policy.
enum RetryTime {
    Policy,
    Forced(RunAt),
}

fn returned_runs(rows: &[sqlx::postgres::PgRow]) -> Result<HashSet<RunId>> {
    rows.iter().map(rows::run_id).collect()
}

impl PostgresStore {
    /// Per-run outcomes in input order, diagnosing the runs not applied.
    async fn outcomes(&self, runs: Vec<RunId>, applied: &HashSet<RunId>) -> Result<Vec<RunWrite>> {
        let rejected: Vec<RunId> = runs
            .iter()
            .filter(|r| !applied.contains(*r))
            .copied()
            .collect();
        let mut why = if rejected.is_empty() {
            Vec::new()
        } else {
            self.diagnose_many(&rejected).await?
        }
        .into_iter();
        Ok(runs
            .iter()
            .map(|r| {
                if applied.contains(r) {
                    RunWrite::Applied
                } else {
                    why.next().unwrap_or(RunWrite::Stale)
                }
            })
            .collect())
    }

    /// Applies the failure policy to a running run, guarded. `reason` is encoded JSON.
    async fn record_failure(
        &self,
        run: RunId,
        reason: &str,
        time: RetryTime,
    ) -> Result<FailOutcome> {
        let row = sqlx::query(&self.inner.sql.failure_inputs)
            .bind(run.job.0)
            .bind(run.seq)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Err(rejection_error(run, self.diagnose(run).await?));
        };
        let attempt = u32::try_from(row.try_get::<i32, _>(0).map_err(sql_err)?).unwrap_or(1);
        let max_attempts = u32::try_from(row.try_get::<i32, _>(1).map_err(sql_err)?).unwrap_or(1);
        let strategy = rows::retry(row.try_get(2).map_err(sql_err)?)?;
        let next = match time {
            RetryTime::Policy => match after_failure(&strategy, attempt, max_attempts) {
                NextStep::Retry { attempt, delay } => Some((attempt, (None, ms(delay)))),
                NextStep::GiveUp => None,
            },
            RetryTime::Forced(_) if attempt >= max_attempts => None,
            RetryTime::Forced(at) => Some((attempt + 1, run_at_binds(Some(at)))),
        };
        let (state, next_attempt, (run_at, delay_ms)) = match next {
            Some((n, binds)) => ("pending", n, binds),
            None => ("failed", attempt, (None, 0)),
        };
        let row = sqlx::query(&self.inner.sql.fail_run)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(state)
            .bind(i32::try_from(next_attempt).unwrap_or(i32::MAX))
            .bind(run_at)
            .bind(delay_ms)
            .bind(reason)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Err(rejection_error(run, self.diagnose(run).await?));
        };
        if state == "failed" {
            return Ok(FailOutcome::Failed);
        }
        let at = rows::time_at(&row, 0)?;
        Ok(FailOutcome::Retrying {
            attempt: next_attempt,
            at,
        })
    }
}

#[async_trait]
impl EngineRuns for PostgresStore {
    async fn job_complete_many(&self, items: Vec<JobComplete>) -> Result<Vec<RunWrite>> {
        let (mut ids, mut seqs, mut results) = (Vec::new(), Vec::new(), Vec::new());
        let mut delete = Vec::new();
        // In job id order, as `run_arrays` gives: see there why.
        let mut ordered: Vec<&JobComplete> = items.iter().collect();
        ordered.sort_unstable_by_key(|item| (item.run.job.0, item.run.seq));
        for item in ordered {
            if item.delete_on_success {
                delete.push(item.run);
            } else {
                ids.push(item.run.job.0);
                seqs.push(item.run.seq);
                results.push(item.result.as_str());
            }
        }
        let mut applied = HashSet::new();
        if !ids.is_empty() {
            let rows = sqlx::query(&self.inner.sql.complete_many)
                .bind(ids)
                .bind(seqs)
                .bind(results)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            applied.extend(returned_runs(&rows)?);
        }
        if !delete.is_empty() {
            let (ids, seqs) = run_arrays(&delete);
            let rows = sqlx::query(&self.inner.sql.delete_runs)
                .bind(ids)
                .bind(seqs)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            applied.extend(returned_runs(&rows)?);
        }
        self.outcomes(items.iter().map(|i| i.run).collect(), &applied)
            .await
    }

    async fn job_fail(&self, params: JobFail) -> Result<FailOutcome> {
        let time = params.retry_at.map_or(RetryTime::Policy, RetryTime::Forced);
        self.record_failure(params.run, &params.reason, time).await
    }

    async fn job_fail_expired(&self, params: JobFailExpired) -> Result<FailOutcome> {
        // Guarded by the run, like every failure; the rescuer found its lease expired.
        self.record_failure(params.run, &params.reason, RetryTime::Policy)
            .await
    }

    async fn job_fail_for_good(&self, params: JobFailForGood) -> Result<()> {
        let JobFailForGood { run, reason } = params;
        let done = sqlx::query(&self.inner.sql.fail_for_good)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(reason)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 0 {
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        Ok(())
    }

    async fn job_schedule(&self, params: JobSchedule) -> Result<()> {
        let JobSchedule { run, at } = params;
        let (run_at, delay_ms) = run_at_binds(Some(at));
        let done = sqlx::query(&self.inner.sql.schedule_run)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(run_at)
            .bind(delay_ms)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 0 {
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        Ok(())
    }

    async fn job_release(&self, params: JobRelease) -> Result<u64> {
        let runs = params.runs;
        let (ids, seqs) = run_arrays(&runs);
        let released: i64 = sqlx::query_scalar(&self.inner.sql.release_runs)
            .bind(ids)
            .bind(seqs)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(u64::try_from(released).unwrap_or(0))
    }
}
