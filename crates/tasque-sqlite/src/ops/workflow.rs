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
use crate::{queries, rows, sql_err, SqliteStore};

/// How often claims look for due sleepers and timed-out waiters, at most.
const WAKE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

impl SqliteStore {
    /// Every checkpoint of a job.
    pub(crate) async fn checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        let found = sqlx::query(queries::GET_CHECKPOINTS)
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        found
            .iter()
            .map(|row| {
                Ok(Checkpoint {
                    name: row.try_get(0).map_err(sql_err)?,
                    value: rows::json(&row.try_get::<String, _>(1).map_err(sql_err)?)?,
                    run_seq: row.try_get(2).map_err(sql_err)?,
                    updated_at: rows::time(row.try_get(3).map_err(sql_err)?)?,
                })
            })
            .collect()
    }

    /// Stores the checkpoint and extends the run's lease, in one request to the writer.
    pub(crate) async fn write_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>> {
        validate_step_name(&params.name)?;
        positive("extend_lease", params.extend_lease)?;
        let value = encode_payload("checkpoint", &params.value, &self.limits)?;
        let run = params.run;
        let lease = sqlx::query(queries::WRITE_CHECKPOINT)
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(&params.name)
            .bind(value)
            .bind(ms(params.extend_lease))
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_err)?;
        match lease {
            Some(lease) => rows::time(lease.try_get(0).map_err(sql_err)?),
            None => Err(rejection_error(run, self.diagnose(run).await?)),
        }
    }

    /// Suspends a run's job until a time.
    pub(crate) async fn sleep_run(&self, params: SleepParams) -> Result<()> {
        validate_run_at("until", params.until)?;
        let run = params.run;
        let (at, delay) = run_at_binds(Some(params.until));
        let done = sqlx::query(queries::SLEEP_RUN)
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(at)
            .bind(delay)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 0 {
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        Ok(())
    }

    /// Returns a stored event at once, or makes the run's job wait for it.
    pub(crate) async fn wait_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        validate_name("event", &params.name)?;
        if let Some(timeout) = params.timeout {
            positive("timeout", timeout)?;
        }
        let run = params.run;
        // One write transaction: an emit cannot slip between the look-up and the wait.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_err)?;
        let owns = sqlx::query(queries::RUN_OWNS)
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err)?;
        if owns.is_none() {
            tx.rollback().await.map_err(sql_err)?;
            return Err(rejection_error(run, self.diagnose(run).await?));
        }
        let stored: Option<Option<String>> = sqlx::query_scalar(queries::GET_EVENT)
            .bind(&*self.ns)
            .bind(&params.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err)?;
        if let Some(payload) = stored {
            tx.commit().await.map_err(sql_err)?;
            return Ok(AwaitOutcome::Received(match payload {
                Some(text) => rows::json(&text)?,
                None => Value::Null,
            }));
        }
        sqlx::query(queries::WAIT_RUN)
            .bind(&*self.ns)
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

    /// Stores an event and wakes its waiters.
    pub(crate) async fn emit(&self, name: &str, payload: Value) -> Result<u64> {
        validate_name("event", name)?;
        let payload = encode_payload("payload", &payload, &self.limits)?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_err)?;
        sqlx::query(queries::STORE_EVENT)
            .bind(&*self.ns)
            .bind(name)
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let woken = sqlx::query(queries::WAKE_WAITERS)
            .bind(&*self.ns)
            .bind(name)
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?
            .rows_affected();
        tx.commit().await.map_err(sql_err)?;
        if woken > 0 {
            self.announce("");
        }
        Ok(woken)
    }

    /// Makes due sleepers and timed-out waiters claimable (a cheap read first, so claims take
    /// no write lock when nothing is due).
    ///
    /// Claims call this; it checks at most every [`WAKE_CHECK_INTERVAL`] per store, so a due
    /// sleeper or waiter becomes claimable that much late at worst, and busy claimers do not
    /// pay the read on every claim.
    pub(crate) async fn wake_due(&self) -> Result<()> {
        {
            let mut last = self.last_wake.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < WAKE_CHECK_INTERVAL) {
                return Ok(());
            }
            *last = Some(now);
        }
        let due: bool = sqlx::query_scalar(queries::ANY_DUE)
            .bind(&*self.ns)
            .fetch_one(&self.readers)
            .await
            .map_err(sql_err)?;
        if due {
            sqlx::query(queries::WAKE_DUE)
                .bind(&*self.ns)
                .execute(&self.pool)
                .await
                .map_err(sql_err)?;
        }
        Ok(())
    }
}
