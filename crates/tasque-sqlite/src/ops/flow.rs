//! Flow control storage: queues' key policies and rate limits, and the facts behind a job's
//! wait. The claim enforces the rules (`ops/gated.rs`).

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use sqlx::Row;
use tasque_durable::flow::{
    rate_key_binds, FlowEngine, JobFlowFacts, KeyPolicy, QueueFlow, RateLimit,
};
use tasque_durable::{Error, JobId, Result};

use crate::{queries, sql_err, SqliteStore};

#[async_trait]
impl FlowEngine for SqliteStore {
    async fn flow_set_keys(&self, queue: &str, policy: KeyPolicy) -> Result<()> {
        sqlx::query(crate::clock::clocked(queries::SET_KEY_POLICY))
            .bind(&*self.ns)
            .bind(queue)
            .bind(i64::from(policy.concurrency))
            .bind(policy.on_exhausted.as_str())
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.announce(queue);
        Ok(())
    }

    async fn flow_set_rate(&self, queue: &str, rate: Option<&RateLimit>) -> Result<()> {
        sqlx::query(crate::clock::clocked(queries::SET_RATE_LIMIT))
            .bind(&*self.ns)
            .bind(queue)
            .bind(rate.map(|r| i64::from(r.limit)))
            .bind(rate.map(RateLimit::window_ms))
            .bind(RateLimit::stored_key(rate))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.announce(queue);
        Ok(())
    }

    async fn flow_queue(&self, queue: &str) -> Result<QueueFlow> {
        let row = sqlx::query(crate::clock::clocked(queries::QUEUE_FLOW))
            .bind(&*self.ns)
            .bind(queue)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Ok(QueueFlow::default());
        };
        let policy: String = row.try_get(1).map_err(sql_err)?;
        let key: String = row.try_get(4).map_err(sql_err)?;
        QueueFlow::from_stored(
            row.try_get(0).map_err(sql_err)?,
            &policy,
            row.try_get(2).map_err(sql_err)?,
            row.try_get(3).map_err(sql_err)?,
            &key,
        )
    }

    async fn flow_job(&self, job: JobId) -> Result<JobFlowFacts> {
        let row = sqlx::query(crate::clock::clocked(queries::JOB_FLOW))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?
            .ok_or(Error::NotFound(job))?;
        let queue_name: String = row.try_get(0).map_err(sql_err)?;
        let ordering_key: Option<String> = row.try_get(1).map_err(sql_err)?;
        let ready: bool = row.try_get(2).map_err(sql_err)?;
        let now_ms: i64 = row.try_get(3).map_err(sql_err)?;
        let now = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .ok_or_else(|| Error::Corrupt(format!("clock {now_ms}")))?;
        let queue = self.flow_queue(&queue_name).await?;
        let mut ahead = Vec::new();
        if let Some(key) = &ordering_key {
            let rows = sqlx::query(crate::clock::clocked(queries::KEY_AHEAD))
                .bind(&*self.ns)
                .bind(&queue_name)
                .bind(key)
                .bind(job.0)
                .bind(i64::from(queue.keys.concurrency))
                .fetch_all(&self.readers)
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
            let r = sqlx::query(&crate::clock::clocked_string(queries::job_rate()))
                .bind(&*self.ns)
                .bind(job.0)
                .bind(rate.window_ms())
                .bind(kind)
                .bind(queries::json_path(&path))
                .fetch_one(&self.readers)
                .await
                .map_err(sql_err)?;
            rate_key = Some(r.try_get::<String, _>(0).map_err(sql_err)?);
            rate_used = u32::try_from(r.try_get::<i64, _>(1).map_err(sql_err)?).unwrap_or(0);
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
