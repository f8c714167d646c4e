//! Finished-job announcements: a NOTIFY on the namespace's wake-up channel, so that
//! `Client::wait` in any process wakes when a job ends (workers ignore these messages). Only
//! jobs a waiter watches (rows of `waiters`, schema version 14) are announced.

use tasque_durable::client::finished_messages;
use tasque_durable::{JobId, Result};

use crate::{sql_err, PostgresStore};

/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

/// Sends one notification per payload (outside any transaction: delivered at once).
const NOTIFY: &str = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload";

impl PostgresStore {
    /// Announces the jobs of `jobs` that some waiter watches as finished on the namespace's
    /// channel, and withdraws their waiters' interest. With no waiter (the common case) this is
    /// one read of an empty range of `waiters`: nothing is written, nothing is notified.
    pub(crate) async fn notify_finished(&self, jobs: &[JobId]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = jobs.iter().map(|job| job.0).collect();
        let mut watched: Vec<i64> = sqlx::query_scalar(&self.inner.sql.take_waiters)
            .bind(&ids)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        if watched.is_empty() {
            return Ok(());
        }
        watched.sort_unstable();
        watched.dedup();
        let watched: Vec<JobId> = watched.into_iter().map(JobId).collect();
        let messages = finished_messages(&watched, MAX_PAYLOAD);
        sqlx::query(NOTIFY)
            .bind(&self.inner.schema)
            .bind(messages)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Records a waiter's interest in `job`; the token tells it apart from other waiters.
    pub(crate) async fn watch_finished_job(&self, job: JobId) -> Result<Option<u64>> {
        let token: i64 = sqlx::query_scalar(&self.inner.sql.add_waiter)
            .bind(job.0)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(Some(token as u64))
    }

    /// Withdraws the interest `token` registered in `job`.
    pub(crate) async fn unwatch_finished_job(&self, job: JobId, token: u64) -> Result<()> {
        sqlx::query(&self.inner.sql.remove_waiter)
            .bind(job.0)
            .bind(token as i64)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }
}
