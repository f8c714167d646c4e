//! Flow control storage: queues' key policies and rate limits, and the facts behind a job's
//! wait. The claim enforces the rules (`ops/gated.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tasque_durable::flow::{
    rate_key_binds, FlowEngine, JobFlowFacts, KeyPolicy, QueueFlow, RateLimit,
};
use tasque_durable::{Error, JobId, Result};

use crate::{sql_err, PostgresStore};

#[async_trait]
impl FlowEngine for PostgresStore {
    async fn flow_set_keys(&self, queue: &str, policy: KeyPolicy) -> Result<()> {
        sqlx::query(&self.inner.sql.set_key_policy)
            .bind(queue)
            .bind(i32::try_from(policy.concurrency).unwrap_or(i32::MAX))
            .bind(policy.on_exhausted.as_str())
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn flow_set_rate(&self, queue: &str, rate: Option<&RateLimit>) -> Result<()> {
        sqlx::query(&self.inner.sql.set_rate_limit)
            .bind(queue)
            .bind(rate.map(|r| i32::try_from(r.limit).unwrap_or(i32::MAX)))
            .bind(rate.map(RateLimit::window_ms))
            .bind(RateLimit::stored_key(rate))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn flow_queue(&self, queue: &str) -> Result<QueueFlow> {
        let row = sqlx::query(&self.inner.sql.queue_flow)
            .bind(queue)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Ok(QueueFlow::default());
        };
        let concurrency: i32 = row.try_get(0).map_err(sql_err)?;
        let policy: String = row.try_get(1).map_err(sql_err)?;
        let limit: Option<i32> = row.try_get(2).map_err(sql_err)?;
        let window: Option<i64> = row.try_get(3).map_err(sql_err)?;
        let key: String = row.try_get(4).map_err(sql_err)?;
        QueueFlow::from_stored(
            i64::from(concurrency),
            &policy,
            limit.map(i64::from),
            window,
            &key,
        )
    }

    async fn flow_job(&self, job: JobId) -> Result<JobFlowFacts> {
        let sql = &self.inner.sql;
        let row = sqlx::query(&sql.job_flow)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?
            .ok_or(Error::NotFound(job))?;
        let queue_name: String = row.try_get(0).map_err(sql_err)?;
        let ordering_key: Option<String> = row.try_get(1).map_err(sql_err)?;
        let ready: bool = row.try_get(2).map_err(sql_err)?;
        let now: DateTime<Utc> = row.try_get(3).map_err(sql_err)?;
        let queue = self.flow_queue(&queue_name).await?;
        let mut ahead = Vec::new();
        if let Some(key) = &ordering_key {
            let rows = sqlx::query(&sql.key_ahead)
                .bind(&queue_name)
                .bind(key)
                .bind(job.0)
                .bind(i64::from(queue.keys.concurrency))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            for r in rows {
                let id: i64 = r.try_get(0).map_err(sql_err)?;
                let holds: bool = r.try_get(1).map_err(sql_err)?;
                ahead.push((JobId(id), holds));
            }
        }
        let (mut rate_key, mut rate_used) = (None, 0);
        if let Some(rate) = &queue.rate {
            let (kind, path) = rate_key_binds(&rate.key);
            let r = sqlx::query(&sql.job_rate)
                .bind(job.0)
                .bind(rate.window_ms())
                .bind(kind)
                .bind(path)
                .fetch_one(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            rate_key = Some(r.try_get::<String, _>(0).map_err(sql_err)?);
            rate_used = u32::try_from(r.try_get::<i32, _>(1).map_err(sql_err)?).unwrap_or(0);
        }
        Ok(JobFlowFacts {
            queue,
            ordering_key,
            ready,
            ahead,
            rate_key,
            rate_used,
            now,
        })
    }
}
