//! Checkpoints, sleeps and events: the guarded writes of durable workflows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use tasque_durable::engine::due_in_ms;
use tasque_durable::engine::{CheckpointSet, EngineWorkflow, EventEmit};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, Checkpoint, Error, JobId, Result, SleepParams, WakeReport,
};

use super::{ms, rejection_error, run_at_binds};
use crate::{queries, rows, sql_err, SqliteStore};

#[async_trait]
impl EngineWorkflow for SqliteStore {
    /// A cheap read first, so the leader takes no write lock when nothing is due.
    async fn job_wake_due(&self) -> Result<WakeReport> {
        let due: bool = sqlx::query_scalar(crate::clock::clocked(queries::ANY_DUE))
            .bind(&*self.ns)
            .fetch_one(&self.readers)
            .await
            .map_err(sql_err)?;
        let mut woken = 0;
        if due {
            let queues: Vec<String> = sqlx::query_scalar(crate::clock::clocked(queries::WAKE_DUE))
                .bind(&*self.ns)
                .fetch_all(&self.pool)
                .await
                .map_err(sql_err)?;
            woken = queues.len() as u64;
            let distinct: std::collections::BTreeSet<&str> =
                queues.iter().map(String::as_str).collect();
            for queue in distinct {
                self.announce(queue);
            }
        }
        let next: Option<i64> = sqlx::query_scalar(crate::clock::clocked(queries::NEXT_WAKE))
            .bind(&*self.ns)
            .fetch_one(&self.readers)
            .await
            .map_err(sql_err)?;
        Ok(WakeReport {
            woken,
            next_in: next.map(due_in_ms),
        })
    }

    async fn checkpoint_list(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        let found = sqlx::query(crate::clock::clocked(queries::GET_CHECKPOINTS))
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

    async fn checkpoint_set(&self, params: CheckpointSet) -> Result<DateTime<Utc>> {
        let run = params.run;
        let mut lease = self.pool.lease().await.map_err(sql_err)?;
        let ns = self.ns.clone();
        // The request runs in a task of its own, so that a caller who stops waiting cannot cut
        // it between its BEGIN and its COMMIT: it always ends, committed or rolled back, before
        // the connection goes back to the pool.
        // (A store bound to a transaction writes it as a savepoint instead.)
        let (script, undo) = (
            self.write_script(queries::WRITE_CHECKPOINT),
            self.write_script(queries::ROLLBACK),
        );
        let write = tokio::spawn(async move {
            let written = sqlx::query(crate::clock::clocked(script))
                .bind(&*ns)
                .bind(run.job.0)
                .bind(run.seq)
                .bind(params.name)
                .bind(params.value)
                .bind(ms(params.extend_lease))
                .fetch_all(lease.conn())
                .await;
            if written.is_err() {
                let _ = sqlx::query(crate::clock::clocked(undo))
                    .execute(lease.conn())
                    .await;
            }
            lease.finish(written.is_ok());
            written
        });
        let lease = write
            .await
            .map_err(Error::database)?
            .map_err(sql_err)?
            .into_iter()
            .next();
        match lease {
            Some(lease) => rows::time(lease.try_get(0).map_err(sql_err)?),
            None => Err(rejection_error(run, self.diagnose(run).await?)),
        }
    }

    async fn job_sleep(&self, params: SleepParams) -> Result<()> {
        let run = params.run;
        let (at, delay) = run_at_binds(Some(params.until));
        let done = sqlx::query(crate::clock::clocked(queries::SLEEP_RUN))
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

    async fn event_await(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        let run = params.run;
        // One write transaction: an emit cannot slip between the look-up and the wait.
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        let owns = sqlx::query(crate::clock::clocked(queries::RUN_OWNS))
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
        let stored: Option<Option<String>> =
            sqlx::query_scalar(crate::clock::clocked(queries::GET_EVENT))
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
        sqlx::query(crate::clock::clocked(queries::WAIT_RUN))
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

    async fn event_emit(&self, params: EventEmit) -> Result<u64> {
        let EventEmit { name, payload } = params;
        let name = name.as_str();
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        sqlx::query(crate::clock::clocked(queries::STORE_EVENT))
            .bind(&*self.ns)
            .bind(name)
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let woken = sqlx::query(crate::clock::clocked(queries::WAKE_WAITERS))
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
}
