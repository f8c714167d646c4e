//! `impl WorkerRegistry for PostgresStore`: the worker registry (see
//! [`tasque_durable::registry`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tasque_durable::registry::{
    decode_queues, encode_queues, WorkerBeat, WorkerRecord, WorkerRegistry,
};
use tasque_durable::Result;

use super::ms;
use crate::config::quote;
use crate::queries::registry as q;
use crate::{sql_err, PostgresStore};

impl PostgresStore {
    /// A statement of `queries::registry` for this store's schema.
    fn registry_sql(&self, statement: &str) -> String {
        statement.replace("@schema@", &quote(&self.inner.schema))
    }
}

#[async_trait]
impl WorkerRegistry for PostgresStore {
    async fn worker_beat(&self, beat: &WorkerBeat) -> Result<()> {
        sqlx::query(&self.registry_sql(q::BEAT_WORKER))
            .bind(&beat.id)
            .bind(&beat.host)
            .bind(i64::from(beat.pid))
            .bind(encode_queues(&beat.queues))
            .bind(ms(beat.ttl))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn worker_list(&self) -> Result<Vec<WorkerRecord>> {
        let found = sqlx::query(&self.registry_sql(q::LIST_WORKERS))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found
            .iter()
            .map(|row| {
                let pid: i64 = row.try_get(2).map_err(sql_err)?;
                let queues: String = row.try_get(3).map_err(sql_err)?;
                Ok(WorkerRecord {
                    id: row.try_get(0).map_err(sql_err)?,
                    host: row.try_get(1).map_err(sql_err)?,
                    pid: u32::try_from(pid).unwrap_or(0),
                    queues: decode_queues(&queues)?,
                    started_at: row.try_get::<DateTime<Utc>, _>(4).map_err(sql_err)?,
                    heartbeat_at: row.try_get::<DateTime<Utc>, _>(5).map_err(sql_err)?,
                    alive: row.try_get(6).map_err(sql_err)?,
                })
            })
            .collect()
    }

    async fn worker_forget(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(&self.registry_sql(q::FORGET_WORKER))
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn worker_prune(&self, older_than: Duration) -> Result<u64> {
        let deleted = sqlx::query(&self.registry_sql(q::PRUNE_WORKERS))
            .bind(ms(older_than))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted)
    }
}
