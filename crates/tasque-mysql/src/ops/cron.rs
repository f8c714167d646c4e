//! `impl ScheduleEngine for MySqlStore`: schedules and the leader lease.
//!
//! A fire is one transaction: the compare-and-swap of the last tick (a concurrent fire of the
//! same schedule waits for the row lock, then matches nothing), then the job through
//! [`spawn_in_tx`](MySqlStore::spawn_in_tx), the ordinary spawn path (so the idempotency key
//! `cron:<id>:<tick>` applies), then the fire's record.

use std::time::Duration;

use async_trait::async_trait;
use tasque_durable::schedule::{Fire, FireOutcome, Schedule, ScheduleEngine, ScheduleRecord};
use tasque_durable::{Error, Result};

use super::us;
use crate::queries::cron as q;
use crate::rows::Text;
use crate::{sql_err, MySqlStore};

#[async_trait]
impl ScheduleEngine for MySqlStore {
    async fn upsert_schedules(&self, schedules: &[Schedule]) -> Result<()> {
        let sql = self.inner.sql.render(q::UPSERT_SCHEDULE);
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        for schedule in schedules {
            let definition =
                serde_json::to_string(schedule).map_err(|e| Error::Corrupt(e.to_string()))?;
            sqlx::query(&sql)
                .bind(&schedule.id)
                .bind(definition)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        tx.commit().await.map_err(sql_err)
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let found = sqlx::query(&self.inner.sql.render(q::LIST_SCHEDULES))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found.iter().map(record).collect()
    }

    async fn fire(&self, fire: Fire) -> Result<FireOutcome> {
        let sql = &self.inner.sql;
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        let advanced = sqlx::query(&sql.render(q::ADVANCE_TICK))
            .bind(fire.tick)
            .bind(&fire.id)
            .bind(fire.expected)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?
            .rows_affected();
        if advanced != 1 {
            return Ok(FireOutcome::Lost);
        }
        if fire.skip_if_running {
            let running: i64 = sqlx::query_scalar(&sql.render(q::PREVIOUS_UNFINISHED))
                .bind(&fire.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(sql_err)?;
            if running != 0 {
                tx.commit().await.map_err(sql_err)?;
                return Ok(FireOutcome::SkippedRunning);
            }
        }
        let Some(spawn) = fire.spawn else {
            tx.commit().await.map_err(sql_err)?;
            return Ok(FireOutcome::Passed);
        };
        let queue = spawn.queue.clone();
        let spawned = self.spawn_in_tx(&mut tx, spawn).await?;
        sqlx::query(&sql.render(q::RECORD_FIRE))
            .bind(spawned.job_id.0)
            .bind(&fire.id)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        self.announce([queue.as_str()]);
        Ok(FireOutcome::Fired(spawned))
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(&self.inner.sql.render(q::SCHEDULE_EXISTS))
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        sqlx::query(&self.inner.sql.render(q::SET_SCHEDULE_PAUSED))
            .bind(paused)
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(found.is_some())
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(&self.inner.sql.render(q::DELETE_SCHEDULE))
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let sql = &self.inner.sql;
        let inserted = sqlx::query(&sql.render(q::INSERT_LEASE))
            .bind(name)
            .bind(holder)
            .bind(us(ttl))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        if inserted == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(&sql.render(q::TAKE_LEASE))
            .bind(holder)
            .bind(us(ttl))
            .bind(name)
            .bind(holder)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(taken == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(&self.inner.sql.render(q::RELEASE_LEASE))
            .bind(name)
            .bind(holder)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    fn server_election(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Option<Box<dyn tasque_durable::schedule::Election>> {
        Some(Box::new(self.mysql_election(name, holder, ttl)))
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        let holder: Option<Text> = sqlx::query_scalar(&self.inner.sql.render(q::LEASE_HOLDER))
            .bind(name)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(holder.map(|h| h.0))
    }
}

/// One row of the schedules' listing.
fn record(row: &sqlx::mysql::MySqlRow) -> Result<ScheduleRecord> {
    tasque_durable::engine::rows::schedule(&crate::rows::Cols(row))
}
