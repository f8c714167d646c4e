//! Checkpoints, sleeps and events: the guarded writes of durable workflows.
//!
//! Each write by a run follows the engine's pattern (lock the job's row, judge the run, write,
//! commit). A wait and an emit of the same event serialise on the event's row, which a wait
//! creates as "not emitted yet" when missing: an emit can never slip between a wait's look-up
//! and its suspension, so an event emitted before the wait still satisfies it and one emitted
//! after wakes it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tasque_durable::engine::{due_in_ms, CheckpointSet, EngineWorkflow, EventEmit};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, Checkpoint, JobId, Result, RunId, RunWrite, SleepParams, WakeReport,
};

use super::{bind_ids, judge_all, refuse, rejection_error, retry_conflicts, run_at_binds, us};
use crate::{rows, sql_err, MySqlStore};

impl MySqlStore {
    /// Locks a run's job and checks that the run still owns it.
    async fn own(&self, tx: &mut sqlx::MySqlConnection, run: RunId) -> Result<()> {
        let locked = self.lock_runs(tx, &[run], Duration::ZERO).await?;
        match judge_all(&[run], &locked).0[0] {
            RunWrite::Applied => Ok(()),
            other => Err(rejection_error(run, other)),
        }
    }
}

#[async_trait]
impl EngineWorkflow for MySqlStore {
    async fn job_wake_due(&self) -> Result<WakeReport> {
        let woken = retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.wake_due)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?
        .rows_affected();
        if woken > 0 {
            // Which queues is not known without another read: "any queue".
            self.announce([""]);
        }
        let next: Option<i64> = sqlx::query_scalar(&self.inner.sql.next_wake)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .flatten();
        Ok(WakeReport {
            woken,
            next_in: next.map(|us| due_in_ms(us / 1000)),
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
                    name: rows::text_at(row, 0)?,
                    value: rows::json(&rows::text_at(row, 1)?, "checkpoint")?,
                    run_seq: rows::at(row, 2)?,
                    updated_at: rows::at(row, 3)?,
                })
            })
            .collect()
    }

    async fn checkpoint_set(&self, params: CheckpointSet) -> Result<DateTime<Utc>> {
        let value = &params.value;
        let run = params.run;
        retry_conflicts(|| async {
            let sql = &self.inner.sql;
            let mut tx = self.begin().await?;
            let locked = self.lock_runs(&mut tx, &[run], params.extend_lease).await?;
            let (verdicts, ids) = judge_all(&[run], &locked);
            let Some(end) = locked.get(&run.job.0).map(|l| l.lease_end) else {
                return refuse(tx, rejection_error(run, verdicts[0])).await;
            };
            if ids.is_empty() {
                return refuse(tx, rejection_error(run, verdicts[0])).await;
            }
            let extend = sql.extend(1);
            bind_ids(sqlx::query(&extend).bind(end), &ids)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            sqlx::query(&sql.set_checkpoint)
                .bind(run.job.0)
                .bind(&params.name)
                .bind(value)
                .bind(run.seq)
                .bind(value)
                .bind(run.seq)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)?;
            Ok(end)
        })
        .await
    }

    async fn job_sleep(&self, params: SleepParams) -> Result<()> {
        let run = params.run;
        let (at, delay) = run_at_binds(Some(params.until));
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            self.own(&mut tx, run).await?;
            sqlx::query(&self.inner.sql.sleep_run)
                .bind(at)
                .bind(delay)
                .bind(run.job.0)
                .bind(run.seq)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)
        })
        .await
    }

    async fn event_await(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        let run = params.run;
        let timeout = params.timeout.map(us);
        retry_conflicts(|| async {
            let sql = &self.inner.sql;
            let mut tx = self.begin().await?;
            self.own(&mut tx, run).await?;
            sqlx::query(&sql.lock_event)
                .bind(&params.name)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            let stored: Option<rows::Text> = sqlx::query_scalar(&sql.get_event)
                .bind(&params.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql_err)?
                .flatten();
            if let Some(payload) = stored {
                tx.commit().await.map_err(sql_err)?;
                return Ok(AwaitOutcome::Received(rows::json(&payload.0, "event")?));
            }
            sqlx::query(&sql.wait_run)
                .bind(&params.name)
                .bind(timeout)
                .bind(run.job.0)
                .bind(run.seq)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)?;
            Ok(AwaitOutcome::Suspended)
        })
        .await
    }

    async fn event_emit(&self, params: EventEmit) -> Result<u64> {
        let EventEmit { name, payload } = params;
        let name = name.as_str();
        retry_conflicts(|| async {
            let sql = &self.inner.sql;
            let mut tx = self.begin().await?;
            sqlx::query(&sql.store_event)
                .bind(name)
                .bind(&payload)
                .bind(&payload)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            let woken = sqlx::query(&sql.wake_waiters)
                .bind(&payload)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?
                .rows_affected();
            tx.commit().await.map_err(sql_err)?;
            if woken > 0 {
                self.announce([""]);
            }
            Ok(woken)
        })
        .await
    }
}
