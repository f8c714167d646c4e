//! Writes by a running run: complete, fail, reschedule, release. All guarded by the run id.

use std::collections::HashSet;

use serde_json::{json, Value};
use sqlx::Row;
use tasque_durable::retry::{after_failure, NextStep};
use tasque_durable::validate::{encode_payload, validate_run_at};
use tasque_durable::{CompleteParams, Error, FailOutcome, Result, RunAt, RunId, RunWrite};

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
    /// Completes one run.
    pub(crate) async fn complete_one(&self, params: CompleteParams) -> Result<()> {
        let run = params.run;
        match self.complete_batch(vec![params]).await?.remove(0) {
            RunWrite::Applied => Ok(()),
            other => Err(rejection_error(run, other)),
        }
    }

    /// Completes many runs: one statement for the kept ones, one for the deleted ones.
    pub(crate) async fn complete_batch(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        // A run listed twice: the first occurrence is written, the later ones are rejected.
        let (items, repeats) = tasque_durable::batch::first_occurrences(items);
        for repeat in repeats.dropped() {
            encode_payload("result", &repeat.result, &self.inner.limits)?;
        }
        repeats.outcomes(&self.complete_unique(items).await?)
    }

    /// Completes runs that are each listed once.
    async fn complete_unique(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        let (mut ids, mut seqs, mut results) = (Vec::new(), Vec::new(), Vec::new());
        let mut delete = Vec::new();
        // In job id order, as `run_arrays` gives: see there why.
        let mut ordered: Vec<&CompleteParams> = items.iter().collect();
        ordered.sort_unstable_by_key(|item| (item.run.job.0, item.run.seq));
        for item in ordered {
            let result = encode_payload("result", &item.result, &self.inner.limits)?;
            if item.delete_on_success {
                delete.push(item.run);
            } else {
                ids.push(item.run.job.0);
                seqs.push(item.run.seq);
                results.push(result);
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

    /// Records a failed attempt, scheduling the next one or failing the job.
    pub(crate) async fn fail_run(
        &self,
        run: RunId,
        reason: Value,
        at: Option<RunAt>,
    ) -> Result<FailOutcome> {
        if let Some(at) = at {
            validate_run_at("retry_at", at)?;
        }
        let reason = encode_payload("reason", &reason, &self.inner.limits)?;
        let time = at.map_or(RetryTime::Policy, RetryTime::Forced);
        self.record_failure(run, &reason, time).await
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

    /// Gives a run back until `at`, attempt not counted.
    pub(crate) async fn schedule(&self, run: RunId, at: RunAt) -> Result<()> {
        validate_run_at("at", at)?;
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

    /// Releases runs, claimable at once, attempt not counted (and announced to idle workers).
    pub(crate) async fn release_runs(&self, runs: Vec<RunId>) -> Result<u64> {
        if runs.is_empty() {
            return Ok(0);
        }
        let (ids, seqs) = run_arrays(&runs);
        let released: i64 = sqlx::query_scalar(&self.inner.sql.release_runs)
            .bind(ids)
            .bind(seqs)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    /// Fails `run` for good with `reason`, guarded by the run and reading nothing of its job:
    /// for runs whose rows cannot be decoded.
    pub(crate) async fn fail_for_good(&self, run: RunId, reason: &Value) -> Result<()> {
        let reason = encode_payload("reason", reason, &self.inner.limits)?;
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

    /// Fails for good the runs a claim took but could not decode, each with its decoding error
    /// as the reason. A run that cannot be failed now (the database failed) is left to its
    /// lease and the rescuer.
    pub(crate) async fn fail_undecodable(&self, runs: Vec<(RunId, Error)>) {
        for (run, error) in runs {
            tracing::error!(ns = %self.inner.ns, %run, %error, "a claimed job cannot be decoded; failing it for good");
            if let Err(failed) = self
                .fail_for_good(run, &error.undecodable_job_reason())
                .await
            {
                tracing::error!(%run, error = %failed, "could not fail an undecodable job; its lease will expire");
            }
        }
    }

    /// The rescuer's write: a run whose lease expired fails its attempt.
    pub(crate) async fn fail_expired(&self, run: RunId) -> Result<FailOutcome> {
        let reason = json!({"error": "lease expired"}).to_string();
        self.record_failure(run, &reason, RetryTime::Policy).await
    }
}
