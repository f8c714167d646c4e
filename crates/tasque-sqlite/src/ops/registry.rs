//! `impl WorkerRegistry for SqliteStore`: the worker registry (see
//! [`tasque_durable::registry`]).

use std::time::Duration;

use async_trait::async_trait;
use tasque_durable::engine::rows::worker;
use tasque_durable::registry::{encode_queues, WorkerBeat, WorkerRecord, WorkerRegistry};
use tasque_durable::Result;

use super::ms;
use crate::clock::clocked;
use crate::{queries, rows, sql_err, SqliteStore};

#[async_trait]
impl WorkerRegistry for SqliteStore {
    async fn worker_beat(&self, beat: &WorkerBeat) -> Result<()> {
        sqlx::query(clocked(queries::BEAT_WORKER))
            .bind(&*self.ns)
            .bind(&beat.id)
            .bind(&beat.host)
            .bind(i64::from(beat.pid))
            .bind(encode_queues(&beat.queues))
            .bind(ms(beat.ttl))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn worker_list(&self) -> Result<Vec<WorkerRecord>> {
        let found = sqlx::query(clocked(queries::LIST_WORKERS))
            .bind(&*self.ns)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        found.iter().map(|row| worker(&rows::Cols(row))).collect()
    }

    async fn worker_forget(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query(crate::clock::clocked(queries::FORGET_WORKER))
            .bind(&*self.ns)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn worker_prune(&self, older_than: Duration) -> Result<u64> {
        let deleted = sqlx::query(clocked(queries::PRUNE_WORKERS))
            .bind(&*self.ns)
            .bind(ms(older_than))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?
            .rows_affected();
        Ok(deleted)
    }
}
