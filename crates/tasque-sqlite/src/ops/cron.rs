//! `impl ScheduleEngine for SqliteStore`: schedules and the leader lease.
//!
//! A fire is one `BEGIN IMMEDIATE` transaction: the compare-and-swap of the last tick, then
//! the job through the ordinary spawn path (`spawn::encode`, `spawn::insert_chunk`, so the
//! idempotency key `cron:<id>:<tick>` applies), then the fire's record.

use std::time::Duration;

use async_trait::async_trait;
use tasque_durable::schedule::{Fire, FireOutcome, Schedule, ScheduleEngine, ScheduleRecord};
use tasque_durable::{Error, Result};

use super::{ms, spawn};
use crate::{queries, sql_err, SqliteStore};

#[async_trait]
impl ScheduleEngine for SqliteStore {
    async fn upsert_schedules(&self, schedules: &[Schedule]) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        for schedule in schedules {
            let definition =
                serde_json::to_string(schedule).map_err(|e| Error::Corrupt(e.to_string()))?;
            sqlx::query(crate::clock::clocked(queries::UPSERT_SCHEDULE))
                .bind(&*self.ns)
                .bind(&schedule.id)
                .bind(definition)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        tx.commit().await.map_err(sql_err)
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let found = sqlx::query(crate::clock::clocked(queries::LIST_SCHEDULES))
            .bind(&*self.ns)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        found.iter().map(record).collect()
    }

    async fn fire(&self, fire: Fire) -> Result<FireOutcome> {
        let job = match fire.spawn {
            Some(s) => {
                let queue = s.queue.clone();
                Some((
                    queue,
                    spawn::encode(tasque_durable::engine::JobInsert::encode(s, &self.limits)?),
                ))
            }
            None => None,
        };
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        let advanced = sqlx::query(crate::clock::clocked(queries::ADVANCE_TICK))
            .bind(&*self.ns)
            .bind(&fire.id)
            .bind(fire.expected.map(|t| t.timestamp_millis()))
            .bind(fire.tick.timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?
            .rows_affected();
        if advanced != 1 {
            return Ok(FireOutcome::Lost);
        }
        if fire.skip_if_running {
            let running: bool =
                sqlx::query_scalar(crate::clock::clocked(queries::PREVIOUS_UNFINISHED))
                    .bind(&*self.ns)
                    .bind(&fire.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql_err)?;
            if running {
                tx.commit().await.map_err(sql_err)?;
                return Ok(FireOutcome::SkippedRunning);
            }
        }
        let Some((queue, job)) = job else {
            tx.commit().await.map_err(sql_err)?;
            return Ok(FireOutcome::Passed);
        };
        sqlx::query(crate::clock::clocked(queries::ENSURE_QUEUE))
            .bind(&*self.ns)
            .bind(&queue)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let spawned = spawn::insert_all(&mut tx, &self.ns, std::slice::from_ref(&job))
            .await?
            .pop()
            .ok_or_else(|| Error::Corrupt("a one-job insert returned no result".into()))?;
        sqlx::query(crate::clock::clocked(queries::RECORD_FIRE))
            .bind(&*self.ns)
            .bind(&fire.id)
            .bind(spawned.job_id.0)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        self.remember_queues(&[queue.as_str()]);
        self.announce(&queue);
        Ok(FireOutcome::Fired(spawned))
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool> {
        let changed = sqlx::query(crate::clock::clocked(queries::SET_SCHEDULE_PAUSED))
            .bind(&*self.ns)
            .bind(id)
            .bind(i64::from(paused))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(crate::clock::clocked(queries::DELETE_SCHEDULE))
            .bind(&*self.ns)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let changed = sqlx::query(crate::clock::clocked(queries::ACQUIRE_LEASE))
            .bind(&*self.ns)
            .bind(name)
            .bind(holder)
            .bind(ms(ttl))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(crate::clock::clocked(queries::RELEASE_LEASE))
            .bind(&*self.ns)
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar(crate::clock::clocked(queries::LEASE_HOLDER))
            .bind(&*self.ns)
            .bind(name)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)
    }
}

/// One row of the schedules' listing.
fn record(row: &sqlx::sqlite::SqliteRow) -> Result<ScheduleRecord> {
    tasque_durable::engine::rows::schedule(&crate::rows::Cols(row))
}
