//! Finished-job announcements: a NOTIFY on the namespace's wake-up channel, so that
//! `Client::wait` in any process wakes when a job ends (workers ignore these messages).

use tasque_durable::client::finished_messages;
use tasque_durable::{JobId, Result};

use crate::{sql_err, PostgresStore};

/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

/// Sends one notification per payload (outside any transaction: delivered at once).
const NOTIFY: &str = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload";

impl PostgresStore {
    /// Announces `jobs` as finished on the namespace's channel, in one round trip.
    pub(crate) async fn notify_finished(&self, jobs: &[JobId]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let messages = finished_messages(jobs, MAX_PAYLOAD);
        sqlx::query(NOTIFY)
            .bind(&self.inner.schema)
            .bind(messages)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }
}
