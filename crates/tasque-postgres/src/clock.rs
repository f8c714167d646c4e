//! The virtual clock of test mode.
//!
//! The engine's SQL reads the time as PostgreSQL's unqualified `now()` (and `clock_timestamp()`
//! in its spawn functions). A store opened with
//! [`PostgresConfig::with_virtual_clock`](crate::PostgresConfig::with_virtual_clock) puts its
//! schema before `pg_catalog` on its connections' `search_path`, so both names resolve to the
//! schema's own functions (migration v9): the virtual time of the namespace's one-row `clock`
//! table while it is set, the database clock otherwise. Production statements are the same
//! strings and, with `pg_catalog` searched first, never call those functions: no cost.
//!
//! Every connection and every worker process in test mode sees the same virtual time, and
//! advancing it ([`PostgresStore::set_virtual_now`]) is one statement that also announces
//! "any queue" on the namespace's wake-up channel, so sleeping workers re-poll at once.
//!
//! Spellings of the clock that `search_path` cannot redirect (`CURRENT_TIMESTAMP`,
//! `LOCALTIMESTAMP`, `pg_catalog.now()`, `statement_timestamp()`, `transaction_timestamp()`)
//! must not appear in the engine's SQL; a guard test checks it.

use chrono::{DateTime, Utc};
use tasque_durable::Result;

use crate::{config, sql_err, PostgresStore};

/// Clock spellings that a schema's functions cannot shadow, so that the engine must never use.
pub const UNREDIRECTABLE_CLOCKS: &[&str] = &[
    "current_timestamp",
    "localtimestamp",
    "pg_catalog.now",
    "pg_catalog.statement_timestamp",
    "transaction_timestamp",
    "current_time",
    "current_date",
];

impl PostgresStore {
    /// Sets the namespace's virtual time (test mode; `None` goes back to the database clock),
    /// makes the sleepers and timed-out waiters due by then claimable, and wakes the
    /// namespace's workers so they re-poll at once.
    pub async fn set_virtual_now(&self, at: Option<DateTime<Utc>>) -> Result<()> {
        let schema = config::quote(self.schema());
        let channel = self.schema();
        let sql = match at {
            Some(_) => format!(
                "WITH c AS (INSERT INTO {schema}.clock (id, at) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at RETURNING 1) \
                 SELECT pg_notify('{channel}', '') FROM c"
            ),
            None => format!(
                "WITH c AS (DELETE FROM {schema}.clock WHERE $1::timestamptz IS NULL RETURNING 1) \
                 SELECT pg_notify('{channel}', '')"
            ),
        };
        sqlx::query(&sql)
            .bind(at)
            .execute(self.pool())
            .await
            .map_err(sql_err)?;
        tasque_durable::engine::EngineWorkflow::job_wake_due(self).await?;
        Ok(())
    }
}
