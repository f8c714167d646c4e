//! The inspector, the cleaner and queues.

use std::collections::HashSet;
use std::sync::MutexGuard;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tasque_durable::engine::{EngineInspect, JobClean, QueueCount, QueuePause, QueueRow};
use tasque_durable::{
    Error, JobFilter, JobId, JobInfo, JobResult, JobState, Page, PageRequest, PageStart, Result,
};

use super::{retry_conflicts, us};
use crate::{rows, sql_err, MySqlStore};

impl MySqlStore {
    /// The queues this store knows exist.
    pub(crate) fn known_queues(&self) -> MutexGuard<'_, HashSet<String>> {
        self.inner
            .known_queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every known queue (after the tables were dropped).
    pub(crate) fn forget_queues(&self) {
        self.known_queues().clear();
    }
}

#[async_trait]
impl EngineInspect for MySqlStore {
    async fn job_get(&self, job: JobId) -> Result<JobInfo> {
        let row = sqlx::query(&self.inner.sql.get_job)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows::job_info(&row.ok_or(Error::NotFound(job))?)
    }

    async fn job_get_result(&self, job: JobId) -> Result<JobResult> {
        let row = sqlx::query(&self.inner.sql.get_job)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows::job_result(&row.ok_or(Error::NotFound(job))?)
    }

    async fn job_count(&self, filter: &JobFilter) -> Result<u64> {
        let n: i64 = self
            .inner
            .sql
            .count(filter)
            .build_query_scalar()
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn job_scan(&self, filter: &JobFilter, page: PageRequest) -> Result<Page> {
        let (after, offset) = match page.start {
            PageStart::First => (None, 0),
            PageStart::After(id) => (Some(id.0), 0),
            PageStart::Offset(n) => (None, n),
        };
        let found = self
            .inner
            .sql
            .scan(filter, after, offset, page.limit)
            .build()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let jobs = found
            .iter()
            .map(rows::job_info)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(jobs, page.limit))
    }

    async fn job_delete(&self, job: JobId) -> Result<bool> {
        let done = sqlx::query(&self.inner.sql.delete_job)
            .bind(job.0)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 1 {
            // A deleted unfinished parent counts as cancelled for its dependents.
            self.repair_deps().await?;
            return Ok(true);
        }
        // Not deleted: it runs, or it does not exist.
        self.job_get_result(job).await.map(|_| false)
    }

    async fn job_purge(&self, filter: &JobFilter) -> Result<u64> {
        let done = retry_conflicts(|| async {
            self.inner
                .sql
                .purge(filter)
                .build()
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?;
        self.repair_deps().await?;
        Ok(done.rows_affected())
    }

    async fn job_clean(&self, params: JobClean) -> Result<u64> {
        let JobClean {
            older_than,
            batch_size,
        } = params;
        let done = retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.clean)
                .bind(us(older_than))
                .bind(i64::from(batch_size))
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?;
        Ok(done.rows_affected())
    }

    async fn queue_ensure(&self, name: &str) -> Result<()> {
        sqlx::query(&self.inner.sql.ensure_queues(1))
            .bind(name)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        self.known_queues().insert(name.to_string());
        Ok(())
    }

    async fn queue_set_paused(&self, params: QueuePause) -> Result<()> {
        let QueuePause { name, paused } = params;
        let name = name.as_str();
        sqlx::query(&self.inner.sql.set_queue_paused)
            .bind(name)
            .bind(paused)
            .bind(paused)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        self.known_queues().insert(name.to_string());
        if !paused {
            self.announce([name]);
        }
        Ok(())
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        let found = sqlx::query(&self.inner.sql.list_queues)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found
            .iter()
            .map(|row| tasque_durable::engine::rows::queue(&crate::rows::Cols(row)))
            .collect()
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCount>> {
        let found = sqlx::query(&self.inner.sql.queue_counts)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        found
            .iter()
            .map(|row| {
                let stored = rows::text_at(row, 1)?;
                let ready: Option<i64> = rows::at(row, 2)?;
                let n: i64 = rows::at(row, 3)?;
                let state = match stored.as_str() {
                    "pending" if ready == Some(1) => JobState::Available,
                    "pending" => JobState::Scheduled,
                    other => rows::state(
                        other,
                        DateTime::<Utc>::UNIX_EPOCH,
                        DateTime::<Utc>::UNIX_EPOCH,
                    )?,
                };
                Ok(QueueCount {
                    queue: rows::text_at(row, 0)?,
                    state,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }
}
