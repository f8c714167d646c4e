//! Operator and maintenance operations: rescue, cancel, retry.

use sqlx::Row;
use tasque_durable::validate::{encode_payload, validate_limit, validate_options};
use tasque_durable::{
    CancelOutcome, Error, FailOutcome, JobId, JobState, RescueReport, Result, RunId, SpawnOptions,
    SpawnResult,
};

use super::{ms, run_at_binds};
use crate::{rows, sql_err, PostgresStore};

/// How many read-then-write rounds `cancel` tries before reporting contention.
const CANCEL_ROUNDS: usize = 64;

impl PostgresStore {
    /// Cancels jobs past their policy, then fails the attempts of expired leases.
    pub(crate) async fn rescue(&self, limit: u32) -> Result<RescueReport> {
        validate_limit("limit", limit)?;
        let cancelled = sqlx::query(&self.inner.sql.cancel_by_policy)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        let expired = sqlx::query(&self.inner.sql.expired_runs)
            .bind(i64::from(limit))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut report = RescueReport {
            cancelled,
            ..RescueReport::default()
        };
        for row in expired {
            match self.fail_expired(rows::run_id(&row)?).await {
                Ok(FailOutcome::Retrying { .. }) => report.retried += 1,
                Ok(FailOutcome::Failed) => report.failed += 1,
                // Its worker finished, or another rescuer got there first: nothing to do.
                Err(Error::StaleRun(_) | Error::RunCancelled(_)) => {}
                // Its row cannot be decoded (its retry strategy is corrupt): no retry can help.
                Err(error @ Error::Corrupt(_)) => {
                    let run = rows::run_id(&row)?;
                    tracing::error!(%run, %error, "an expired job cannot be decoded; failing it for good");
                    match self
                        .fail_for_good(run, &error.undecodable_job_reason())
                        .await
                    {
                        Ok(()) => report.failed += 1,
                        Err(Error::StaleRun(_) | Error::RunCancelled(_)) => {}
                        Err(other) => return Err(other),
                    }
                }
                Err(other) => return Err(other),
            }
        }
        if report != RescueReport::default() {
            tracing::info!(ns = %self.inner.ns, ?report, "tasque rescued jobs");
        }
        Ok(report)
    }

    /// Cancels a job unless it has finished.
    pub(crate) async fn cancel_job(&self, job: JobId) -> Result<CancelOutcome> {
        // The state may change between the read and the guarded write, which then fails only
        // because the job finished meanwhile: the next read says so. Only a job finished and
        // revived again and again can keep losing; it gets a typed error, never a wrong answer.
        for _ in 0..CANCEL_ROUNDS {
            let info = self.job_result(job).await?;
            if info.state == JobState::Failed && self.cancel_holding(job).await? {
                return Ok(CancelOutcome::Cancelled { was: info.state });
            }
            if info.state.is_finished() {
                return Ok(CancelOutcome::AlreadyFinished { state: info.state });
            }
            let done = sqlx::query(&self.inner.sql.cancel_job)
                .bind(job.0)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            if done.rows_affected() == 1 {
                return Ok(CancelOutcome::Cancelled { was: info.state });
            }
        }
        Err(Error::Contended {
            job,
            operation: "cancel",
        })
    }

    /// Revives a failed or cancelled job.
    pub(crate) async fn retry_job(
        &self,
        job: JobId,
        options: Option<SpawnOptions>,
    ) -> Result<SpawnResult> {
        let options = options.unwrap_or_default();
        validate_options(&options)?;
        let info = self.job(job).await?;
        if !info.state.is_retryable() {
            return Err(Error::InvalidState {
                job,
                state: info.state,
                operation: "retry",
            });
        }
        let merged = options.or(&info.current_options());
        let headers = match merged.headers.as_ref().filter(|h| !h.is_null()) {
            Some(h) => Some(encode_payload("headers", h, &self.inner.limits)?),
            None => None,
        };
        let retry = serde_json::to_string(&merged.retry.unwrap_or_default())
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let policy = merged.cancellation.unwrap_or_default();
        let (run_at, delay_ms) = run_at_binds(merged.run_at);
        let row = sqlx::query(&self.inner.sql.retry_job)
            .bind(job.0)
            .bind(
                i32::try_from(merged.max_attempts.unwrap_or(info.max_attempts)).unwrap_or(i32::MAX),
            )
            .bind(retry)
            .bind(merged.priority.unwrap_or(0))
            .bind(merged.timeout.map(ms))
            .bind(policy.max_duration.map(ms))
            .bind(policy.max_delay.map(ms))
            .bind(headers)
            .bind(run_at)
            .bind(delay_ms)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            let state = self.job(job).await?.state;
            return Err(Error::InvalidState {
                job,
                state,
                operation: "retry",
            });
        };
        Ok(SpawnResult {
            job_id: job,
            run_id: RunId::new(job, row.try_get(0).map_err(sql_err)?),
            attempt: 1,
            created: false,
        })
    }
}
