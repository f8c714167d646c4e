//! Operator and maintenance writes: policy cancels, expired runs, cancel, retry.

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::engine::{
    CancelWrite, EngineInspect, EngineMaintain, JobCancel, JobExpired, JobRetry,
};
use tasque_durable::{Error, JobId, JobState, Result, RunId};

use super::{ms, run_at_binds, spawn::encode_retry};
use crate::{queries, sql_err, SqliteStore};

#[async_trait]
impl EngineMaintain for SqliteStore {
    async fn job_cancel_by_policy(&self) -> Result<u64> {
        let done = sqlx::query(crate::clock::clocked(queries::CANCEL_BY_POLICY))
            .bind(&*self.ns)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    async fn job_expired_runs(&self, params: JobExpired) -> Result<Vec<RunId>> {
        let expired = sqlx::query(crate::clock::clocked(queries::EXPIRED_RUNS))
            .bind(&*self.ns)
            .bind(i64::from(params.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        expired
            .iter()
            .map(|row| {
                Ok(RunId::new(
                    JobId(row.try_get(0).map_err(sql_err)?),
                    row.try_get(1).map_err(sql_err)?,
                ))
            })
            .collect()
    }

    /// Reads the state, then writes guarded by "still unfinished": the write misses only when
    /// the job finished in between.
    async fn job_cancel(&self, params: JobCancel) -> Result<CancelWrite> {
        let job = params.job;
        let state = self.job_get_result(job).await?.state;
        if state == JobState::Failed && self.cancel_holding(job).await? {
            return Ok(CancelWrite::Cancelled { was: state });
        }
        if state.is_finished() {
            return Ok(CancelWrite::Finished { state });
        }
        let done = sqlx::query(crate::clock::clocked(queries::CANCEL_JOB))
            .bind(&*self.ns)
            .bind(job.0)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(if done.rows_affected() == 1 {
            CancelWrite::Cancelled { was: state }
        } else {
            CancelWrite::Raced
        })
    }

    async fn job_retry(&self, params: JobRetry) -> Result<Option<RunId>> {
        let JobRetry {
            job,
            options,
            headers,
            max_attempts,
        } = params;
        let policy = options.cancellation.unwrap_or_default();
        let (run_at, delay_ms) = run_at_binds(options.run_at);
        let row = sqlx::query(crate::clock::clocked(queries::RETRY_JOB))
            .bind(&*self.ns)
            .bind(job.0)
            .bind(i64::from(max_attempts))
            .bind(encode_retry(&options.retry.unwrap_or_default()))
            .bind(options.priority.unwrap_or(0))
            .bind(options.timeout.map(ms))
            .bind(policy.max_duration.map(ms))
            .bind(policy.max_delay.map(ms))
            .bind(headers)
            .bind(run_at)
            .bind(delay_ms)
            .fetch_optional(&self.pool)
            .await;
        let row = match row {
            Err(e) if is_unique_violation(&e) => return Err(self.slot_taken(job).await),
            other => other.map_err(sql_err)?,
        };
        match row {
            Some(row) => Ok(Some(RunId::new(job, row.try_get(0).map_err(sql_err)?))),
            None => Ok(None),
        }
    }
}

/// Whether a write ran into a unique index.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl SqliteStore {
    /// The error of a retry refused by the unique index: the job holding the slot, or
    /// [`Error::Contended`] when it left the slot meanwhile.
    async fn slot_taken(&self, job: JobId) -> Error {
        let holder = sqlx::query_scalar::<_, i64>(crate::clock::clocked(queries::UNIQUE_HOLDER))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await;
        match holder {
            Ok(holder) => Error::retry_slot_taken(job, holder.map(JobId)),
            Err(e) => sql_err(e),
        }
    }

    /// Cancels a failed job that holds its blocking queue (stay-blocked policy); false when it
    /// does not hold one.
    async fn cancel_holding(&self, job: JobId) -> Result<bool> {
        let done = sqlx::query(crate::clock::clocked(queries::CANCEL_HOLDING))
            .bind(&*self.ns)
            .bind(job.0)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected() == 1)
    }
}
