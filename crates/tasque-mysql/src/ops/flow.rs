//! Flow control storage: queues' key policies and rate limits, and the facts behind a job's
//! wait. The claim enforces the rules (`ops/gated.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tasque_durable::flow::{
    rate_key_binds, FlowEngine, JobFlowFacts, KeyPolicy, QueueFlow, RateLimit,
};
use tasque_durable::{Error, JobId, Result};

use super::gated::json_path;
use crate::{rows, sql_err, MySqlStore};

#[async_trait]
impl FlowEngine for MySqlStore {
    async fn flow_set_keys(&self, queue: &str, policy: KeyPolicy) -> Result<()> {
        sqlx::query(&self.inner.sql.set_key_policy)
            .bind(queue)
            .bind(i64::from(policy.concurrency))
            .bind(policy.on_exhausted.as_str())
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn flow_set_rate(&self, queue: &str, rate: Option<&RateLimit>) -> Result<()> {
        sqlx::query(&self.inner.sql.set_rate_limit)
            .bind(queue)
            .bind(rate.map(|r| i64::from(r.limit)))
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
        QueueFlow::from_stored(
            i64::from(rows::at::<i32>(&row, 0)?),
            &rows::text_at(&row, 1)?,
            rows::at::<Option<i32>>(&row, 2)?.map(i64::from),
            rows::at(&row, 3)?,
            &rows::text_at(&row, 4)?,
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
        let queue_name = rows::text_at(&row, 0)?;
        let ordering_key = rows::text_opt(&row, "ordering_key")?;
        let ready = rows::at::<i64>(&row, 2)? == 1;
        let now: DateTime<Utc> = rows::at(&row, 3)?;
        let queue = self.flow_queue(&queue_name).await?;
        let mut ahead = Vec::new();
        if let Some(key) = &ordering_key {
            let found = sqlx::query(&sql.key_ahead)
                .bind(&queue_name)
                .bind(key)
                .bind(job.0)
                .bind(i64::from(queue.keys.concurrency))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            for r in &found {
                ahead.push((JobId(rows::at(r, 0)?), rows::at::<i64>(r, 1)? == 1));
            }
        }
        let (mut rate_key, mut rate_used) = (None, 0);
        if let Some(rate) = &queue.rate {
            let (kind, path) = rate_key_binds(&rate.key);
            let r = sqlx::query(&sql.job_rate)
                .bind(rate.window_ms())
                .bind(rate.window_ms())
                .bind(kind)
                .bind(json_path(&path))
                .bind(job.0)
                .fetch_one(&self.inner.pool)
                .await
                .map_err(sql_err)?;
            rate_key = Some(rows::text_at(&r, 0)?);
            rate_used = u32::try_from(rows::at::<i64>(&r, 1)?).unwrap_or(0);
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
