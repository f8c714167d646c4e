//! Operator and maintenance operations: rescue, cancel, retry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tasque_durable::engine::{CancelWrite, EngineMaintain, JobCancel, JobExpired, JobRetry};
use tasque_durable::{Error, JobId, JobState, Result, RunId};

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
}

#[async_trait]
impl EngineMaintain for MySqlStore {
    async fn job_cancel_by_policy(&self) -> Result<u64> {
        let done = retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.cancel_by_policy)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?;
        // Resolves the dependents of the jobs just cancelled (and anything a crash left).
        self.repair_deps().await?;
        Ok(done.rows_affected())
    }

    async fn job_expired_runs(&self, params: JobExpired) -> Result<Vec<RunId>> {
        let expired = sqlx::query(&self.inner.sql.expired_runs)
            .bind(i64::from(params.limit))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        expired
            .iter()
            .map(|row| Ok(RunId::new(JobId(rows::at(row, 0)?), rows::at(row, 1)?)))
            .collect()
    }

    /// Locks the job's row, so the read and the write never race: never `Raced`.
    async fn job_cancel(&self, params: JobCancel) -> Result<CancelWrite> {
        let job = params.job;
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let Some(locked) = self.lock_job(&mut tx, job).await? else {
                return refuse(tx, Error::NotFound(job)).await;
            };
            if locked.holds_queue && self.cancel_holding(&mut tx, job).await? {
                tx.commit().await.map_err(sql_err)?;
                return Ok(CancelWrite::Cancelled { was: locked.state });
            }
            if locked.state.is_finished() {
                tx.commit().await.map_err(sql_err)?;
                return Ok(CancelWrite::Finished {
                    state: locked.state,
                });
            }
            sqlx::query(&self.inner.sql.cancel_job)
                .bind(job.0)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            self.resolve_ended(&mut tx, job.0, "cancelled").await?;
            tx.commit().await.map_err(sql_err)?;
            Ok(CancelWrite::Cancelled { was: locked.state })
        })
        .await
    }

    /// Locks the job's row; `None` when it is gone or no longer failed or cancelled.
    async fn job_retry(&self, params: JobRetry) -> Result<Option<RunId>> {
        let JobRetry {
            job,
            options,
            headers,
            max_attempts,
        } = params;
        let retry = encode_retry(&options.retry.clone().unwrap_or_default());
        let policy = options.cancellation.unwrap_or_default();
        let (run_at, delay) = run_at_binds(options.run_at);
        let max_delay_ms = policy.max_delay.map(ms);
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let locked = match self.lock_job(&mut tx, job).await? {
                Some(locked) if locked.state.is_retryable() => locked,
                _ => {
                    tx.rollback().await.map_err(sql_err)?;
                    return Ok(None);
                }
            };
            let done = sqlx::query(&self.inner.sql.retry_job)
                .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
                .bind(&retry)
                .bind(options.priority.unwrap_or(0))
                .bind(options.timeout.map(ms))
                .bind(policy.max_duration.map(ms))
                .bind(max_delay_ms)
                .bind(&headers)
                .bind(run_at)
                .bind(delay)
                .bind(us_of_ms(max_delay_ms))
                .bind(job.0)
                .execute(&mut *tx)
                .await;
            match done {
                Err(e) if is_unique_violation(&e) => {
                    // A newer job holds the unique slot this one would take back.
                    let holder: Option<i64> = sqlx::query_scalar(&self.inner.sql.unique_holder)
                        .bind(job.0)
                        .bind(job.0)
                        .bind(job.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(sql_err)?;
                    tx.rollback().await.map_err(sql_err)?;
                    return Err(Error::retry_slot_taken(job, holder.map(JobId)));
                }
                other => other.map_err(sql_err)?,
            };
            tx.commit().await.map_err(sql_err)?;
            self.announce([""]);
            Ok(Some(RunId::new(job, locked.seq + 1)))
        })
        .await
    }
}

/// Whether a write ran into a unique key (1062).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
