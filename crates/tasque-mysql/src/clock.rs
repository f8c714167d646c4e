//! The engine's clock, and the virtual clock of test mode.
//!
//! Every statement of the engine reads the time as the one expression [`DATABASE_CLOCK`]
//! (written by the `now!()` macro of the queries), and every statement is rendered for its
//! store by the one renderer of the queries module (it replaces the table placeholders), the
//! stored procedures of the migrations included. A store opened in **test mode**
//! ([`MySqlConfig::with_virtual_clock`](crate::MySqlConfig::with_virtual_clock)) renders
//! [`DATABASE_CLOCK`] as a read of the namespace's one-row clock table (schema version 10)
//! falling back to the server clock while no virtual time is set ([`virtual_clock`]); a
//! production store renders it unchanged, so production statements never read that table.
//!
//! Every connection and every worker process in test mode on the namespace sees the same
//! virtual time, and advancing it is one statement ([`MySqlStore::set_virtual_now`]). The
//! clock's read is a scalar subquery on another table than the statement's: a locking read
//! (`FOR UPDATE SKIP LOCKED`) does not lock or skip its row, so concurrent claimers all see it.
//!
//! Other spellings of the clock ([`OTHER_CLOCKS`]) would escape the renderer and must not
//! appear in the engine's SQL; a guard test (`tests/clock_guard.rs`) checks it.

use chrono::{DateTime, Utc};
use tasque_durable::Result;

use crate::{sql_err, MySqlStore};

/// The server clock, as every statement spells it: UTC, microseconds, constant within a
/// statement.
pub const DATABASE_CLOCK: &str = "UTC_TIMESTAMP(6)";

/// Other ways MySQL and MariaDB read the time, which the renderer would miss (lower case).
pub const OTHER_CLOCKS: &[&str] = &[
    "now(",
    "sysdate(",
    "current_timestamp",
    "current_date",
    "current_time",
    "curdate(",
    "curtime(",
    "localtime",
    "utc_date",
    "utc_time(",
    "utc_time ",
    "unix_timestamp(",
    "utc_timestamp()",
    "utc_timestamp(3)",
    "utc_timestamp ",
];

/// What [`DATABASE_CLOCK`] becomes in a test-mode store of the tables `stem`: the namespace's
/// virtual time, or the server clock while none is set.
pub(crate) fn virtual_clock(stem: &str) -> String {
    format!("COALESCE((SELECT at FROM `{stem}_clock` WHERE id = 1), {DATABASE_CLOCK})")
}

impl MySqlStore {
    /// Whether the store was opened in test mode
    /// ([`MySqlConfig::with_virtual_clock`](crate::MySqlConfig::with_virtual_clock)).
    pub fn virtual_clock_in_use(&self) -> bool {
        self.inner.sql.clocked()
    }

    /// Sets the namespace's virtual time (test mode; `None` goes back to the server clock),
    /// makes the sleepers and timed-out waiters due by then claimable, and wakes this
    /// process's workers on the store so they re-poll at once (workers in other processes
    /// see the new time at their next poll). Stores not in test mode ignore the virtual time.
    pub async fn set_virtual_now(&self, at: Option<DateTime<Utc>>) -> Result<()> {
        match at {
            Some(at) => sqlx::query(&self.inner.sql.set_clock)
                .bind(at)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)?,
            None => sqlx::query(&self.inner.sql.clear_clock)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)?,
        };
        tasque_durable::engine::EngineWorkflow::job_wake_due(self).await?;
        self.announce([""]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::queries::Sql;

    #[test]
    fn test_mode_renders_every_clock_read_and_production_none() {
        let statement = "UPDATE @jobs@ SET a = UTC_TIMESTAMP(6) WHERE b < UTC_TIMESTAMP(6)";
        let test = Sql::new("t_ns", true).render(statement);
        assert_eq!(test.matches("FROM `t_ns_clock` WHERE id = 1").count(), 2);
        assert!(test.starts_with("UPDATE `t_ns_jobs` SET a = COALESCE((SELECT at"));
        let production = Sql::new("t_ns", false).render(statement);
        assert_eq!(
            production,
            "UPDATE `t_ns_jobs` SET a = UTC_TIMESTAMP(6) WHERE b < UTC_TIMESTAMP(6)"
        );
    }
}
