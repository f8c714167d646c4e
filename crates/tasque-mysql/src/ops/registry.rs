//! `impl WorkerRegistry for MySqlStore`: the worker registry (see
//! [`tasque_durable::registry`]).

use std::time::Duration;

use async_trait::async_trait;
use tasque_durable::engine::rows::worker;
use tasque_durable::registry::{encode_queues, WorkerBeat, WorkerRecord, WorkerRegistry};
use tasque_durable::Result;

use super::us;
use crate::queries::registry as q;
use crate::{rows, sql_err, MySqlStore};

#[async_trait]
impl WorkerRegistry for MySqlStore {
    async fn worker_beat(&self, beat: &WorkerBeat) -> Result<()> {
        sqlx::query(&self.inner.sql.render(q::BEAT_WORKER))
            .bind(&beat.id)
            .bind(&beat.host)
            .bind(i64::from(beat.pid))
            .bind(encode_queues(&beat.queues))
            .bind(us(beat.ttl))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn worker_list(&self) -> Result<Vec<WorkerRecord>> {
        let found = sqlx::query(&self.inner.sql.render(q::LIST_WORKERS))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found.iter().map(|row| worker(&rows::Cols(row))).collect()
    }

    async fn worker_forget(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(&self.inner.sql.render(q::FORGET_WORKER))
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn worker_prune(&self, older_than: Duration) -> Result<u64> {
        let deleted = sqlx::query(&self.inner.sql.render(q::PRUNE_WORKERS))
            .bind(us(older_than))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted)
    }
}
