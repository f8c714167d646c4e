//! Writes by a running run: complete, fail, reschedule, release. All guarded by the run id.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::engine::{
    EngineRuns, JobComplete, JobFail, JobFailExpired, JobFailForGood, JobRelease, JobSchedule,
};
use tasque_durable::retry::{after_failure, NextStep};
use tasque_durable::{FailOutcome, JobId, Result, RunAt, RunId, RunWrite};

use super::{ms, rejection_error, run_at_binds, runs_json};
use crate::{queries, rows, sql_err, SqliteStore};

/// Where a failed run goes: forced time, or the retry policy.
enum RetryTime {
    Policy,
    Forced(RunAt),
}

fn returned_runs(rows: &[sqlx::sqlite::SqliteRow]) -> Result<HashSet<RunId>> {
    rows.iter()
        .map(|row| {
            let job = JobId(row.try_get(0).map_err(sql_err)?);
            Ok(RunId::new(job, row.try_get(1).map_err(sql_err)?))
        })
        .collect()
}

impl SqliteStore {
    /// Completes the kept runs (`keep` holds their JSON objects); returns those applied.
    /// One statement completes every run that still owns its job, stamping those jobs with a
    /// fresh token; when it changed as many rows as there are runs (the common case), all were
    /// applied. Otherwise a read of the jobs bearing the token says which were.
    async fn complete_kept(&self, keep: &[String], items: &[JobComplete]) -> Result<Vec<RunId>> {
        let runs = format!("[{}]", keep.join(","));
        let token = self.claim_tokens.fetch_add(1, Ordering::Relaxed);
        let done = sqlx::query(crate::clock::clocked(queries::COMPLETE_MANY))
            .bind(&*self.ns)
            .bind(&runs)
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == keep.len() as u64 {
            return Ok(items
                .iter()
                .filter(|i| !i.delete_on_success)
                .map(|i| i.run)
                .collect());
        }
        let rows = sqlx::query(crate::clock::clocked(queries::COMPLETED_BY_TOKEN))
            .bind(&*self.ns)
            .bind(&runs)
            .bind(token)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(returned_runs(&rows)?.into_iter().collect())
    }

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
        let row = sqlx::query(crate::clock::clocked(queries::FAILURE_INPUTS))
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Err(rejection_error(run, self.diagnose(run).await?));
        };
        let attempt = u32::try_from(row.try_get::<i64, _>(0).map_err(sql_err)?).unwrap_or(u32::MAX);
        let max_attempts =
            u32::try_from(row.try_get::<i64, _>(1).map_err(sql_err)?).unwrap_or(u32::MAX);
        let strategy = rows::retry(&row.try_get::<String, _>(2).map_err(sql_err)?)?;
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
        let row = sqlx::query(crate::clock::clocked(queries::FAIL_RUN))
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(state)
            .bind(i64::from(next_attempt))
            .bind(run_at)
            .bind(delay_ms)
            .bind(reason)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Err(rejection_error(run, self.diagnose(run).await?));
        };
        if state == "failed" {
            return Ok(FailOutcome::Failed);
        }
        Ok(FailOutcome::Retrying {
            attempt: next_attempt,
            at: rows::time(row.try_get(0).map_err(sql_err)?)?,
        })
    }
}

#[async_trait]
impl EngineRuns for SqliteStore {
    async fn job_complete_many(&self, items: Vec<JobComplete>) -> Result<Vec<RunWrite>> {
        let mut keep = Vec::new();
        let mut delete = Vec::new();
        for item in &items {
            if item.delete_on_success {
                delete.push(item.run);
            } else {
                // The result is already encoded: splice it in rather than encode it twice.
                keep.push(format!(
                    r#"{{"id":{},"seq":{},"result":{}}}"#,
                    item.run.job.0, item.run.seq, item.result
                ));
            }
        }
        let mut applied = HashSet::new();
        if !keep.is_empty() {
            applied.extend(self.complete_kept(&keep, &items).await?);
        }
        if !delete.is_empty() {
            let rows = sqlx::query(crate::clock::clocked(queries::DELETE_RUNS))
                .bind(&*self.ns)
                .bind(runs_json(&delete))
                .fetch_all(&self.pool)
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
        let done = sqlx::query(crate::clock::clocked(queries::FAIL_FOR_GOOD))
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(reason)
            .execute(&self.pool)
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
        let done = sqlx::query(crate::clock::clocked(queries::SCHEDULE_RUN))
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(run_at)
            .bind(delay_ms)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 0 {
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        Ok(())
    }

    async fn job_release(&self, params: JobRelease) -> Result<u64> {
        let runs = params.runs;
        let done = sqlx::query(crate::clock::clocked(queries::RELEASE_RUNS))
            .bind(&*self.ns)
            .bind(runs_json(&runs))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }
}
