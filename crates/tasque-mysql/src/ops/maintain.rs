//! Operator and maintenance operations: rescue, cancel, retry.

use chrono::{DateTime, Utc};
use tasque_durable::validate::{encode_payload, validate_limit, validate_options};
use tasque_durable::{
    CancelOutcome, Error, FailOutcome, JobId, JobState, RescueReport, Result, RunId, SpawnOptions,
    SpawnResult,
};

use super::spawn::encode_retry;
use super::{ms, refuse, retry_conflicts, run_at_binds, us_of_ms};
use crate::{rows, sql_err, MySqlStore};

/// A job locked for cancel or retry: its model state, current run, and whether it is a failed
/// job holding its blocking queue.
struct LockedJob {
    state: JobState,
    seq: i64,
    holds_queue: bool,
}

impl MySqlStore {
    /// Cancels jobs past their policy, then fails the attempts of expired leases.
    pub(crate) async fn rescue(&self, limit: u32) -> Result<RescueReport> {
        validate_limit("limit", limit)?;
        let cancelled = retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.cancel_by_policy)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?
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
        for row in &expired {
            let run = RunId::new(JobId(rows::at(row, 0)?), rows::at(row, 1)?);
            match self.fail_expired(run).await {
                Ok(FailOutcome::Retrying { .. }) => report.retried += 1,
                Ok(FailOutcome::Failed) => report.failed += 1,
                // Its worker finished or heartbeat, or another rescuer got there first.
                Err(Error::StaleRun(_) | Error::RunCancelled(_)) => {}
                // Its row cannot be decoded (its retry strategy is corrupt): no retry can help.
                Err(error @ Error::Corrupt(_)) => {
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

    /// Locks one job, reading its state (None when it does not exist).
    async fn lock_job(
        &self,
        tx: &mut sqlx::MySqlConnection,
        job: JobId,
    ) -> Result<Option<LockedJob>> {
        let row = sqlx::query(&self.inner.sql.lock_job)
            .bind(job.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored = rows::text_at(&row, 0)?;
        let run_at: DateTime<Utc> = rows::at(&row, 2)?;
        let now: DateTime<Utc> = rows::at(&row, 3)?;
        Ok(Some(LockedJob {
            state: rows::state(&stored, run_at, now)?,
            seq: rows::at(&row, 1)?,
            holds_queue: rows::at(&row, 4)?,
        }))
    }

    /// Cancels a job unless it has finished.
    pub(crate) async fn cancel_job(&self, job: JobId) -> Result<CancelOutcome> {
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let Some(locked) = self.lock_job(&mut tx, job).await? else {
                return refuse(tx, Error::NotFound(job)).await;
            };
            if locked.holds_queue && self.cancel_holding(&mut tx, job).await? {
                tx.commit().await.map_err(sql_err)?;
                return Ok(CancelOutcome::Cancelled { was: locked.state });
            }
            if locked.state.is_finished() {
                tx.commit().await.map_err(sql_err)?;
                return Ok(CancelOutcome::AlreadyFinished {
                    state: locked.state,
                });
            }
            sqlx::query(&self.inner.sql.cancel_job)
                .bind(job.0)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)?;
            Ok(CancelOutcome::Cancelled { was: locked.state })
        })
        .await
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
        let merged = options.or(&info.current_options());
        let headers = match merged.headers.as_ref().filter(|h| !h.is_null()) {
            Some(h) => Some(encode_payload("headers", h, &self.inner.limits)?),
            None => None,
        };
        let retry = encode_retry(&merged.retry.clone().unwrap_or_default());
        let policy = merged.cancellation.unwrap_or_default();
        let (run_at, delay) = run_at_binds(merged.run_at);
        let max_delay_ms = policy.max_delay.map(ms);
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let Some(locked) = self.lock_job(&mut tx, job).await? else {
                return refuse(tx, Error::NotFound(job)).await;
            };
            if !locked.state.is_retryable() {
                let refusal = Error::InvalidState {
                    job,
                    state: locked.state,
                    operation: "retry",
                };
                return refuse(tx, refusal).await;
            }
            sqlx::query(&self.inner.sql.retry_job)
                .bind(
                    i32::try_from(merged.max_attempts.unwrap_or(info.max_attempts))
                        .unwrap_or(i32::MAX),
                )
                .bind(&retry)
                .bind(merged.priority.unwrap_or(0))
                .bind(merged.timeout.map(ms))
                .bind(policy.max_duration.map(ms))
                .bind(max_delay_ms)
                .bind(&headers)
                .bind(run_at)
                .bind(delay)
                .bind(us_of_ms(max_delay_ms))
                .bind(job.0)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)?;
            self.announce([""]);
            Ok(SpawnResult {
                job_id: job,
                run_id: RunId::new(job, locked.seq + 1),
                attempt: 1,
                created: false,
            })
        })
        .await
    }
}
