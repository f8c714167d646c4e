//! [`Insight`] on SQLite: bounded, read-only questions for dashboards and metrics.
//!
//! Each statement reads an index range: the oldest ready job per queue is the first entry of
//! the pending-jobs age index for that queue, the recently finished jobs a range of the
//! finished-time index, start timings and suspensions primary-key lookups. The statements are
//! this module's `sql` constants (the dashboard's questions, kept beside their one caller).

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::insight::{FinishedJob, Insight, QueueAge, StartTiming, Suspension};
use tasque_durable::{Error, JobId, JobState, Result};

use crate::{sql_err, SqliteStore};

mod sql {
    /// Per queue, the run time of its oldest pending job when it is due, as an age. Binds 1 ns.
    pub const OLDEST_READY: &str = "SELECT queue, now - oldest FROM (\
        SELECT q.name AS queue, CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now, \
          (SELECT min(j.run_at) FROM tasque_jobs j INDEXED BY tasque_jobs_age \
            WHERE j.ns = q.ns AND j.queue = q.name AND j.state = 'pending') AS oldest \
        FROM tasque_queues q WHERE q.ns = ?1) WHERE oldest IS NOT NULL AND oldest <= now";

    /// Jobs finished in the last ?2 ms, newest first, at most ?3. Binds 1 ns.
    pub const RECENT_FINISHED: &str = "SELECT queue, task, state, \
        CAST(unixepoch('subsec') * 1000 AS INTEGER) - finished_at, \
        attempted_at - run_at, finished_at - attempted_at, finished_at - created_at \
        FROM tasque_jobs WHERE ns = ?1 AND finished_at IS NOT NULL \
          AND finished_at >= CAST(unixepoch('subsec') * 1000 AS INTEGER) - ?2 \
        ORDER BY finished_at DESC LIMIT ?3";

    /// Queue wait of the latest start and age of the jobs in the JSON array ?2. Binds 1 ns.
    pub const START_TIMINGS: &str = "SELECT id, attempted_at - run_at, \
        CAST(unixepoch('subsec') * 1000 AS INTEGER) - created_at \
        FROM tasque_jobs WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2)) \
          AND attempted_at IS NOT NULL";

    /// A job's state, awaited event and wake time (as ms from now). Binds 1 ns, 2 id.
    pub const SUSPENSION: &str = "SELECT state, wake_event, \
        wake_at - CAST(unixepoch('subsec') * 1000 AS INTEGER) \
        FROM tasque_jobs WHERE ns = ?1 AND id = ?2";
}

#[async_trait]
impl Insight for SqliteStore {
    async fn oldest_ready(&self) -> Result<Vec<QueueAge>> {
        let rows = sqlx::query(crate::clock::clocked(sql::OLDEST_READY))
            .bind(&*self.ns)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                Ok(QueueAge {
                    queue: row.try_get(0).map_err(sql_err)?,
                    oldest_ready_ms: row.try_get::<i64, _>(1).map_err(sql_err)?.max(0),
                })
            })
            .collect()
    }

    async fn recent_finished(&self, within_ms: i64, limit: u32) -> Result<Vec<FinishedJob>> {
        let rows = sqlx::query(crate::clock::clocked(sql::RECENT_FINISHED))
            .bind(&*self.ns)
            .bind(within_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get(2).map_err(sql_err)?;
                Ok(FinishedJob {
                    queue: row.try_get(0).map_err(sql_err)?,
                    task: row.try_get(1).map_err(sql_err)?,
                    state: state
                        .parse::<JobState>()
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    finished_ago_ms: row.try_get(3).map_err(sql_err)?,
                    wait_ms: row.try_get(4).map_err(sql_err)?,
                    run_ms: row.try_get(5).map_err(sql_err)?,
                    end_to_end_ms: row.try_get(6).map_err(sql_err)?,
                })
            })
            .collect()
    }

    async fn start_timings(&self, jobs: &[JobId]) -> Result<Vec<StartTiming>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
        let rows = sqlx::query(crate::clock::clocked(sql::START_TIMINGS))
            .bind(&*self.ns)
            .bind(serde_json::Value::from(ids).to_string())
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                Ok(StartTiming {
                    job: JobId(row.try_get(0).map_err(sql_err)?),
                    wait_ms: row.try_get(1).map_err(sql_err)?,
                    age_ms: row.try_get(2).map_err(sql_err)?,
                })
            })
            .collect()
    }

    async fn suspension(&self, job: JobId) -> Result<Option<Suspension>> {
        let row = sqlx::query(crate::clock::clocked(sql::SUSPENSION))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get(0).map_err(sql_err)?;
        if state != "sleeping" && state != "waiting" {
            return Ok(None);
        }
        Ok(Some(Suspension {
            event: row.try_get(1).map_err(sql_err)?,
            wakes_in_ms: row.try_get(2).map_err(sql_err)?,
        }))
    }
}
