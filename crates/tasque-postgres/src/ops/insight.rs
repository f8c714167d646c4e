//! [`Insight`] on PostgreSQL: bounded, read-only questions for dashboards and metrics.
//!
//! Each statement reads an index range: the oldest ready job per queue is the first entry of
//! the pending-jobs age index (`jobs_claim_age`) for that queue, the recently finished jobs a
//! range of `jobs_finished`, start timings and suspensions primary-key lookups. The statements
//! are this module's `sql` constants, written against `@schema@` like the engine's others.

use async_trait::async_trait;
use sqlx::Row;
use tasque_durable::insight::{FinishedJob, Insight, QueueAge, StartTiming, Suspension};
use tasque_durable::{Error, JobId, JobState, Result};

use crate::{config, sql_err, PostgresStore};

mod sql {
    /// Per queue, the age of its oldest pending job when that job is due.
    pub const OLDEST_READY: &str = "SELECT queue, \
        (extract(epoch FROM (now() - oldest)) * 1000)::bigint FROM (\
          SELECT q.name AS queue, (SELECT min(j.run_at) FROM @schema@.jobs j \
            WHERE j.queue = q.name AND j.state = 'pending') AS oldest \
          FROM @schema@.queues q) o WHERE oldest IS NOT NULL AND oldest <= now()";

    /// Jobs finished in the last $1 ms, newest first, at most $2.
    pub const RECENT_FINISHED: &str = "SELECT queue, task, state, \
        (extract(epoch FROM (now() - finished_at)) * 1000)::bigint, \
        (extract(epoch FROM (attempted_at - run_at)) * 1000)::bigint, \
        (extract(epoch FROM (finished_at - attempted_at)) * 1000)::bigint, \
        (extract(epoch FROM (finished_at - created_at)) * 1000)::bigint \
        FROM @schema@.jobs WHERE finished_at IS NOT NULL \
          AND finished_at >= now() - $1::bigint * interval '1 millisecond' \
        ORDER BY finished_at DESC LIMIT $2";

    /// Queue wait of the latest start and age of the jobs $1.
    pub const START_TIMINGS: &str = "SELECT id, \
        (extract(epoch FROM (attempted_at - run_at)) * 1000)::bigint, \
        (extract(epoch FROM (now() - created_at)) * 1000)::bigint \
        FROM @schema@.jobs WHERE id = ANY($1::bigint[]) AND attempted_at IS NOT NULL";

    /// A job's state, awaited event and wake time as ms from now. Binds 1 id.
    pub const SUSPENSION: &str = "SELECT state, wake_event, \
        (extract(epoch FROM (wake_at - now())) * 1000)::bigint \
        FROM @schema@.jobs WHERE id = $1";
}

impl PostgresStore {
    /// A statement of this module for this store's schema.
    fn insight_sql(&self, statement: &str) -> String {
        statement.replace("@schema@", &config::quote(&self.inner.schema))
    }
}

#[async_trait]
impl Insight for PostgresStore {
    async fn oldest_ready(&self) -> Result<Vec<QueueAge>> {
        let rows = sqlx::query(&self.insight_sql(sql::OLDEST_READY))
            .fetch_all(&self.inner.pool)
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
        let rows = sqlx::query(&self.insight_sql(sql::RECENT_FINISHED))
            .bind(within_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.inner.pool)
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
        let rows = sqlx::query(&self.insight_sql(sql::START_TIMINGS))
            .bind(ids)
            .fetch_all(&self.inner.pool)
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
        let row = sqlx::query(&self.insight_sql(sql::SUSPENSION))
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
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
