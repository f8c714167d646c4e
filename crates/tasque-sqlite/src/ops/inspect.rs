//! The inspector, the cleaner and queues.

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::engine::{EngineInspect, JobClean, QueueCount, QueuePause, QueueRow};
use tasque_durable::{
    Error, JobFilter, JobId, JobInfo, JobResult, JobState, Page, PageRequest, PageStart, Result,
};

use super::ms;
use crate::{queries, rows, sql_err, SqliteStore};

#[async_trait]
impl EngineInspect for SqliteStore {
    async fn job_get(&self, job: JobId) -> Result<JobInfo> {
        let row = sqlx::query(crate::clock::clocked(queries::GET_JOB))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?;
        rows::job_info(&row.ok_or(Error::NotFound(job))?)
    }

    async fn job_get_result(&self, job: JobId) -> Result<JobResult> {
        let row = sqlx::query(crate::clock::clocked(queries::GET_JOB))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?;
        rows::job_result(&row.ok_or(Error::NotFound(job))?)
    }

    async fn job_count(&self, filter: &JobFilter) -> Result<u64> {
        let n: i64 = queries::count(&self.ns, filter)
            .build_query_scalar()
            .fetch_one(&self.readers)
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
        let rows = queries::scan(&self.ns, filter, after, offset, page.limit)
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        let jobs = rows
            .iter()
            .map(rows::job_info)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(jobs, page.limit))
    }

    async fn job_delete(&self, job: JobId) -> Result<bool> {
        let done = sqlx::query(crate::clock::clocked(queries::DELETE_JOB))
            .bind(&*self.ns)
            .bind(job.0)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // Not deleted: it runs, or it does not exist.
        self.job_get_result(job).await.map(|_| false)
    }

    async fn job_purge(&self, filter: &JobFilter) -> Result<u64> {
        let done = queries::purge(&self.ns, filter)
            .build()
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    async fn job_clean(&self, params: JobClean) -> Result<u64> {
        let JobClean {
            older_than,
            batch_size,
        } = params;
        let done = sqlx::query(crate::clock::clocked(queries::CLEAN))
            .bind(&*self.ns)
            .bind(ms(older_than))
            .bind(i64::from(batch_size))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    async fn queue_ensure(&self, name: &str) -> Result<()> {
        sqlx::query(crate::clock::clocked(queries::ENSURE_QUEUE))
            .bind(&*self.ns)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.remember_queues(&[name]);
        Ok(())
    }

    async fn queue_set_paused(&self, params: QueuePause) -> Result<()> {
        let QueuePause { name, paused } = params;
        let name = name.as_str();
        sqlx::query(crate::clock::clocked(queries::SET_QUEUE_PAUSED))
            .bind(&*self.ns)
            .bind(name)
            .bind(paused)
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.remember_queues(&[name]);
        Ok(())
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        let rows = sqlx::query(crate::clock::clocked(queries::LIST_QUEUES))
            .bind(&*self.ns)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| tasque_durable::engine::rows::queue(&crate::rows::Cols(row)))
            .collect()
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCount>> {
        let rows = sqlx::query(crate::clock::clocked(queries::QUEUE_COUNTS))
            .bind(&*self.ns)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                let stored: String = row.try_get(1).map_err(sql_err)?;
                let ready: bool = row.try_get(2).map_err(sql_err)?;
                let n: i64 = row.try_get(3).map_err(sql_err)?;
                let state = match stored.as_str() {
                    "pending" if ready => JobState::Available,
                    "pending" => JobState::Scheduled,
                    other => rows::state(other, 0, 0)?,
                };
                Ok(QueueCount {
                    queue: row.try_get(0).map_err(sql_err)?,
                    state,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }
}
