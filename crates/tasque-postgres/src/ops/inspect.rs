//! The inspector, the cleaner and queues.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tasque_durable::validate::{validate_filter, validate_limit, validate_name};
use tasque_durable::{
    Error, JobFilter, JobId, JobInfo, JobResult, JobState, Page, PageRequest, PageStart, QueueInfo,
    Result, StateCounts,
};

use super::ms;
use crate::{rows, sql_err, PostgresStore};

impl PostgresStore {
    /// One job's full record.
    pub(crate) async fn job(&self, job: JobId) -> Result<JobInfo> {
        let row = sqlx::query(&self.inner.sql.get_job)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows::job_info(&row.ok_or(Error::NotFound(job))?)
    }

    /// One job's state, result and failure (readable even when other columns are corrupt).
    pub(crate) async fn job_result(&self, job: JobId) -> Result<JobResult> {
        let row = sqlx::query(&self.inner.sql.get_job)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows::job_result(&row.ok_or(Error::NotFound(job))?)
    }

    /// Counts matching jobs.
    pub(crate) async fn count_jobs(&self, filter: JobFilter) -> Result<u64> {
        validate_filter(&filter)?;
        let n: i64 = self
            .inner
            .sql
            .count(&filter)
            .build_query_scalar()
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page of matching jobs.
    pub(crate) async fn scan_jobs(&self, filter: JobFilter, page: PageRequest) -> Result<Page> {
        validate_filter(&filter)?;
        validate_limit("limit", page.limit)?;
        let (after, offset) = match page.start {
            PageStart::First => (None, 0),
            PageStart::After(id) => (Some(id.0), 0),
            PageStart::Offset(n) => (None, n),
        };
        let rows = self
            .inner
            .sql
            .scan(&filter, after, offset, page.limit)
            .build()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let jobs = rows
            .iter()
            .map(rows::job_info)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(jobs, page.limit))
    }

    /// Deletes a job unless it is running.
    pub(crate) async fn delete_job(&self, job: JobId) -> Result<()> {
        let done = sqlx::query(&self.inner.sql.delete_job)
            .bind(job.0)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let state = self.job(job).await?.state;
        Err(Error::InvalidState {
            job,
            state,
            operation: "delete a running job (safe delete)",
        })
    }

    /// Deletes matching jobs that are not running.
    pub(crate) async fn purge_jobs(&self, filter: JobFilter) -> Result<u64> {
        validate_filter(&filter)?;
        let done = self
            .inner
            .sql
            .purge(&filter)
            .build()
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    /// Deletes one batch of jobs finished more than `older_than` ago.
    pub(crate) async fn clean_jobs(&self, older_than: Duration, batch_size: u32) -> Result<u64> {
        validate_limit("batch_size", batch_size)?;
        let done = sqlx::query(&self.inner.sql.clean)
            .bind(ms(older_than))
            .bind(i64::from(batch_size))
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    /// Creates a queue if missing and reports it.
    pub(crate) async fn ensure_queue(&self, name: &str) -> Result<QueueInfo> {
        validate_name("queue", name)?;
        sqlx::query(&self.inner.sql.ensure_queue)
            .bind(name)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let queues = self.queues().await?;
        queues
            .into_iter()
            .find(|q| q.name == name)
            .ok_or_else(|| Error::Corrupt(format!("queue {name:?} vanished")))
    }

    /// Sets a queue's paused flag, creating it if needed.
    pub(crate) async fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        validate_name("queue", name)?;
        sqlx::query(&self.inner.sql.set_queue_paused)
            .bind(name)
            .bind(paused)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Every queue with counts by state.
    pub(crate) async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let mut counts: BTreeMap<String, StateCounts> = BTreeMap::new();
        let rows = sqlx::query(&self.inner.sql.queue_counts)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        for row in rows {
            let queue: String = row.try_get(0).map_err(sql_err)?;
            let stored: String = row.try_get(1).map_err(sql_err)?;
            let ready: bool = row.try_get(2).map_err(sql_err)?;
            let n: i64 = row.try_get(3).map_err(sql_err)?;
            let state = match stored.as_str() {
                "pending" if ready => JobState::Available,
                "pending" => JobState::Scheduled,
                other => rows::state(
                    other,
                    DateTime::<Utc>::UNIX_EPOCH,
                    DateTime::<Utc>::UNIX_EPOCH,
                )?,
            };
            counts
                .entry(queue)
                .or_default()
                .add(state, u64::try_from(n).unwrap_or(0));
        }
        let rows = sqlx::query(&self.inner.sql.list_queues)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut queues = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get(0).map_err(sql_err)?;
            let limit: Option<i32> = row.try_get(2).map_err(sql_err)?;
            let blocking: bool = row.try_get(3).map_err(sql_err)?;
            let policy: String = row.try_get(5).map_err(sql_err)?;
            queues.push(QueueInfo {
                counts: counts.get(&name).copied().unwrap_or_default(),
                paused: row.try_get(1).map_err(sql_err)?,
                concurrency_limit: limit.and_then(|n| u32::try_from(n).ok()),
                blocking,
                on_exhausted: policy.parse().map_err(|e| Error::Corrupt(format!("{e}")))?,
                blocked_by: if blocking {
                    self.blocked_by(&name).await?
                } else {
                    None
                },
                created_at: rows::time_at(row, 4)?,
                name,
            });
        }
        Ok(queues)
    }
}
