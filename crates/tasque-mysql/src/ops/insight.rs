//! [`Insight`] on MySQL and MariaDB: bounded, read-only questions for dashboards and metrics.
//!
//! Each statement reads an index range: the oldest ready job per queue is the first entry of
//! `jobs_pending_age` (ready_queue, run_at) for that queue, the recently finished jobs a range
//! of `jobs_finished`, start timings and suspensions primary-key lookups. The statements are
//! this module's `sql` constants, written against `@jobs@` and `@queues@` like the engine's
//! others. Times are differences on the server clock (`UTC_TIMESTAMP(6)`, as every statement).

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::insight::{FinishedJob, Insight, QueueAge, StartTiming, Suspension};
use tasque_durable::{Error, JobId, JobState, Result};

use crate::rows::Text;
use crate::{sql_err, MySqlStore};

mod sql {
    /// Per queue, the age of its oldest pending job when that job is due.
    pub const OLDEST_READY: &str = "SELECT queue, \
        TIMESTAMPDIFF(MICROSECOND, oldest, UTC_TIMESTAMP(6)) DIV 1000 FROM (\
          SELECT q.name AS queue, (SELECT MIN(j.run_at) FROM @jobs@ j FORCE INDEX (jobs_pending_age) \
            WHERE j.ready_queue = q.name) AS oldest \
          FROM @queues@ q) o WHERE oldest IS NOT NULL AND oldest <= UTC_TIMESTAMP(6)";

    /// Jobs finished in the last ? ms, newest first, at most ?.
    pub const RECENT_FINISHED: &str = "SELECT queue, task, state, \
        TIMESTAMPDIFF(MICROSECOND, finished_at, UTC_TIMESTAMP(6)) DIV 1000, \
        TIMESTAMPDIFF(MICROSECOND, run_at, attempted_at) DIV 1000, \
        TIMESTAMPDIFF(MICROSECOND, attempted_at, finished_at) DIV 1000, \
        TIMESTAMPDIFF(MICROSECOND, created_at, finished_at) DIV 1000 \
        FROM @jobs@ WHERE finished_at IS NOT NULL \
          AND finished_at >= UTC_TIMESTAMP(6) - INTERVAL ? * 1000 MICROSECOND \
        ORDER BY finished_at DESC LIMIT ?";

    /// Queue wait of the latest start and age of the jobs in the JSON array ?.
    pub const START_TIMINGS: &str = "SELECT id, \
        TIMESTAMPDIFF(MICROSECOND, run_at, attempted_at) DIV 1000, \
        TIMESTAMPDIFF(MICROSECOND, created_at, UTC_TIMESTAMP(6)) DIV 1000 \
        FROM @jobs@ WHERE attempted_at IS NOT NULL AND id IN (";

    /// A job's state, awaited event and wake time as ms from now. Binds 1 id.
    pub const SUSPENSION: &str = "SELECT state, wake_event, \
        TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), wake_at) DIV 1000 \
        FROM @jobs@ WHERE id = ?";
}

/// Reads a text column (binary collation: sent as bytes).
fn text(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<String> {
    Ok(row.try_get::<Text, _>(index).map_err(sql_err)?.0)
}

/// Reads a nullable integer column (`TIMESTAMPDIFF ... DIV 1000` is a signed BIGINT).
fn int(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(index).map_err(sql_err)
}

#[async_trait]
impl Insight for MySqlStore {
    async fn oldest_ready(&self) -> Result<Vec<QueueAge>> {
        let rows = sqlx::query(&self.inner.sql.render(sql::OLDEST_READY))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                Ok(QueueAge {
                    queue: text(row, 0)?,
                    oldest_ready_ms: int(row, 1)?.unwrap_or(0).max(0),
                })
            })
            .collect()
    }

    async fn recent_finished(&self, within_ms: i64, limit: u32) -> Result<Vec<FinishedJob>> {
        let rows = sqlx::query(&self.inner.sql.render(sql::RECENT_FINISHED))
            .bind(within_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                let state = text(row, 2)?;
                Ok(FinishedJob {
                    queue: text(row, 0)?,
                    task: text(row, 1)?,
                    state: state
                        .parse::<JobState>()
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    finished_ago_ms: int(row, 3)?.unwrap_or(0),
                    wait_ms: int(row, 4)?,
                    run_ms: int(row, 5)?,
                    end_to_end_ms: int(row, 6)?.unwrap_or(0),
                })
            })
            .collect()
    }

    async fn start_timings(&self, jobs: &[JobId]) -> Result<Vec<StartTiming>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; jobs.len()].join(", ");
        let statement = format!("{}{marks})", self.inner.sql.render(sql::START_TIMINGS));
        let mut query = sqlx::query(&statement);
        for job in jobs {
            query = query.bind(job.0);
        }
        let rows = query.fetch_all(&self.inner.pool).await.map_err(sql_err)?;
        rows.iter()
            .map(|row| {
                Ok(StartTiming {
                    job: JobId(row.try_get(0).map_err(sql_err)?),
                    wait_ms: int(row, 1)?.unwrap_or(0),
                    age_ms: int(row, 2)?.unwrap_or(0),
                })
            })
            .collect()
    }

    async fn suspension(&self, job: JobId) -> Result<Option<Suspension>> {
        let row = sqlx::query(&self.inner.sql.render(sql::SUSPENSION))
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(row) = row else { return Ok(None) };
        let state = text(&row, 0)?;
        if state != "sleeping" && state != "waiting" {
            return Ok(None);
        }
        Ok(Some(Suspension {
            event: row
                .try_get::<Option<Text>, _>(1)
                .map_err(sql_err)?
                .map(|t| t.0),
            wakes_in_ms: int(&row, 2)?,
        }))
    }
}
