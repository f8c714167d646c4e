//! `impl ScheduleEngine for PostgresStore`: schedules and the leader lease.
//!
//! A fire is one transaction: the compare-and-swap of the last tick (a concurrent fire of the
//! same schedule waits for the row lock, then matches nothing), then the job through
//! [`spawn_in_tx`](PostgresStore::spawn_in_tx), the ordinary spawn path (so the idempotency key
//! `cron:<id>:<tick>` applies and the wake-up is announced at commit), then the fire's record.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};
use tasque_durable::schedule::{Fire, FireOutcome, Schedule, ScheduleEngine, ScheduleRecord};
use tasque_durable::{Error, Result};

use super::ms;
use crate::config::quote;
use crate::queries::cron as q;
use crate::{sql_err, PostgresStore};

impl PostgresStore {
    /// A statement of `queries::cron` for this store's schema.
    fn cron_sql(&self, statement: &str) -> String {
        statement.replace("@schema@", &quote(&self.inner.schema))
    }

    /// One fire inside `tx`: the compare-and-swap, then (unless lost or skipped) the job and
    /// its record.
    async fn fire_in(&self, tx: &mut Transaction<'_, Postgres>, fire: Fire) -> Result<FireOutcome> {
        let advanced = sqlx::query(&self.cron_sql(q::ADVANCE_TICK))
            .bind(&fire.id)
            .bind(fire.expected)
            .bind(fire.tick)
            .execute(&mut **tx)
            .await
            .map_err(sql_err)?
            .rows_affected();
        if advanced != 1 {
            return Ok(FireOutcome::Lost);
        }
        if fire.skip_if_running {
            let running: bool = sqlx::query_scalar(&self.cron_sql(q::PREVIOUS_UNFINISHED))
                .bind(&fire.id)
                .fetch_one(&mut **tx)
                .await
                .map_err(sql_err)?;
            if running {
                return Ok(FireOutcome::SkippedRunning);
            }
        }
        let Some(spawn) = fire.spawn else {
            return Ok(FireOutcome::Passed);
        };
        let spawned = self.spawn_in_tx(tx, spawn).await?;
        sqlx::query(&self.cron_sql(q::RECORD_FIRE))
            .bind(&fire.id)
            .bind(spawned.job_id.0)
            .execute(&mut **tx)
            .await
            .map_err(sql_err)?;
        Ok(FireOutcome::Fired(spawned))
    }
}

#[async_trait]
impl ScheduleEngine for PostgresStore {
    async fn upsert_schedules(&self, schedules: &[Schedule]) -> Result<()> {
        let sql = self.cron_sql(q::UPSERT_SCHEDULE);
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
        let found = sqlx::query(&self.cron_sql(q::LIST_SCHEDULES))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found.iter().map(record).collect()
    }

    async fn fire(&self, fire: Fire) -> Result<FireOutcome> {
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        let outcome = self.fire_in(&mut tx, fire).await?;
        tx.commit().await.map_err(sql_err)?;
        Ok(outcome)
    }

    /// One transaction (one commit) for the whole batch: each fire's compare-and-swap, job
    /// and record still stand or fall together, and a lost swap writes nothing for its fire.
    async fn fire_many(&self, fires: Vec<Fire>) -> Result<Vec<FireOutcome>> {
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in fires {
            outcomes.push(self.fire_in(&mut tx, fire).await?);
        }
        tx.commit().await.map_err(sql_err)?;
        Ok(outcomes)
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool> {
        let changed = sqlx::query(&self.cron_sql(q::SET_SCHEDULE_PAUSED))
            .bind(id)
            .bind(paused)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(&self.cron_sql(q::DELETE_SCHEDULE))
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let changed = sqlx::query(&self.cron_sql(q::ACQUIRE_LEASE))
            .bind(name)
            .bind(holder)
            .bind(ms(ttl))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(&self.cron_sql(q::RELEASE_LEASE))
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
        Some(Box::new(self.pg_election(name, holder, ttl)))
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar(&self.cron_sql(q::LEASE_HOLDER))
            .bind(name)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)
    }
}

/// One row of the schedules' listing.
fn record(row: &sqlx::postgres::PgRow) -> Result<ScheduleRecord> {
    tasque_durable::engine::rows::schedule(&crate::rows::Cols(row))
}
