//! Checkpoints, sleeps and events: the guarded writes of durable workflows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use tasque_durable::engine::due_in_ms;
use tasque_durable::engine::{CheckpointSet, EngineWorkflow, EventEmit};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, Checkpoint, JobId, Result, SleepParams, WakeReport,
};

use super::{ms, rejection_error, run_at_binds};
use crate::{rows, sql_err, PostgresStore};

impl PostgresStore {
    fn event_key(&self, name: &str) -> String {
        format!("tasque-event:{}:{name}", self.inner.schema)
    }
}

#[async_trait]
impl EngineWorkflow for PostgresStore {
    async fn job_wake_due(&self) -> Result<WakeReport> {
        let (woken, _): (i64, i64) = sqlx::query_as(&self.inner.sql.wake_due)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let next: Option<i64> = sqlx::query_scalar(&self.inner.sql.next_wake)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(WakeReport {
            woken: u64::try_from(woken).unwrap_or(0),
            next_in: next.map(due_in_ms),
        })
    }

    async fn checkpoint_list(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        let found = sqlx::query(&self.inner.sql.get_checkpoints)
            .bind(job.0)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found
            .iter()
            .map(|row| {
                Ok(Checkpoint {
                    name: row.try_get(0).map_err(sql_err)?,
                    value: row.try_get(1).map_err(sql_err)?,
                    run_seq: row.try_get(2).map_err(sql_err)?,
                    updated_at: rows::time_at(row, 3)?,
                })
            })
            .collect()
    }

    async fn checkpoint_set(&self, params: CheckpointSet) -> Result<DateTime<Utc>> {
        let value = params.value;
        let run = params.run;
        let lease: Option<rows::Stamp> = sqlx::query_scalar(&self.inner.sql.set_checkpoint)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(ms(params.extend_lease))
            .bind(&params.name)
            .bind(value)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        match lease {
            Some(lease) => Ok(lease.0),
            None => Err(rejection_error(run, self.diagnose(run).await?)),
        }
    }

    async fn job_sleep(&self, params: SleepParams) -> Result<()> {
        let run = params.run;
        let (at, delay) = run_at_binds(Some(params.until));
        let done = sqlx::query(&self.inner.sql.sleep_run)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(at)
            .bind(delay)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 0 {
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        Ok(())
    }

    async fn event_await(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        let (run, sql) = (params.run, &self.inner.sql);
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        sqlx::query(&sql.lock_event)
            .bind(self.event_key(&params.name))
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let owns = sqlx::query(&sql.run_owns)
            .bind(run.job.0)
            .bind(run.seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err)?;
        if owns.is_none() {
            tx.rollback().await.map_err(sql_err)?;
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        let stored: Option<Option<Value>> = sqlx::query_scalar(&sql.get_event)
            .bind(&params.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err)?;
        if let Some(payload) = stored {
            tx.commit().await.map_err(sql_err)?;
            return Ok(AwaitOutcome::Received(payload.unwrap_or(Value::Null)));
        }
        sqlx::query(&sql.wait_run)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(&params.name)
            .bind(params.timeout.map(ms))
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        Ok(AwaitOutcome::Suspended)
    }

    async fn event_emit(&self, params: EventEmit) -> Result<u64> {
        let EventEmit { name, payload } = params;
        let name = name.as_str();
        let sql = &self.inner.sql;
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        sqlx::query(&sql.lock_event)
            .bind(self.event_key(name))
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        sqlx::query(&sql.store_event)
            .bind(name)
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let row = sqlx::query(&sql.wake_waiters)
            .bind(name)
            .bind(&payload)
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        let woken: i64 = row.try_get(0).map_err(sql_err)?;
        Ok(u64::try_from(woken).unwrap_or(0))
    }
}
