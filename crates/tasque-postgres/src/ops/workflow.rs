//! Checkpoints, sleeps and events: the guarded writes of durable workflows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use tasque_durable::validate::{
    encode_payload, positive, validate_name, validate_run_at, validate_step_name,
};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, Checkpoint, JobId, Result, SetCheckpoint, SleepParams,
};

use super::{ms, rejection_error, run_at_binds};
use crate::{rows, sql_err, PostgresStore};

impl PostgresStore {
    /// Every checkpoint of a job.
    pub(crate) async fn checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>> {
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

    /// Extends the run's lease and stores the checkpoint in one guarded statement.
    pub(crate) async fn write_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>> {
        validate_step_name(&params.name)?;
        positive("extend_lease", params.extend_lease)?;
        let value = encode_payload("checkpoint", &params.value, &self.inner.limits)?;
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

    /// Suspends a run's job until a time.
    pub(crate) async fn sleep_run(&self, params: SleepParams) -> Result<()> {
        validate_run_at("until", params.until)?;
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

    fn event_key(&self, name: &str) -> String {
        format!("tasque-event:{}:{name}", self.inner.schema)
    }

    /// Returns a stored event at once, or makes the run's job wait for it. Holds the event's
    /// advisory lock, so an emit cannot slip between the look-up and the wait.
    pub(crate) async fn wait_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        validate_name("event", &params.name)?;
        if let Some(timeout) = params.timeout {
            positive("timeout", timeout)?;
        }
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

    /// Stores an event and wakes its waiters, under the event's advisory lock.
    pub(crate) async fn emit(&self, name: &str, payload: Value) -> Result<u64> {
        validate_name("event", name)?;
        let payload = encode_payload("payload", &payload, &self.inner.limits)?;
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

    /// Makes due sleepers and timed-out waiters claimable.
    pub(crate) async fn wake_due(&self) -> Result<()> {
        sqlx::query(&self.inner.sql.wake_due)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }
}
