//! The engine's clock, and the virtual clock of test mode.
//!
//! Every statement reads the time through the one expression [`DATABASE_CLOCK`] (written by
//! the `now!()` macro of the queries module); nothing else in the engine's SQL spells a clock.
//! Statements are constants, so production runs them unchanged. In **test mode**
//! ([`use_virtual_clock`], switched on by `tasque::testing::TestClock`), every statement is
//! rendered once through [`clocked`], which replaces that expression by a read of the
//! database's one-row `tasque_clock` table (migration v11), falling back to the database clock
//! while no virtual time is set. So every connection and every store on the database sees the
//! same virtual "now", and advancing it is one UPDATE ([`set_virtual_now`]).
//!
//! The switch is process-wide (SQLite statements are constants shared by every store): turn
//! it on only in test processes. Stores whose database holds no virtual time keep the real
//! clock, so tests that do not use it in the same process are unaffected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use tasque_durable::Result;

use crate::sql_err;

/// The database clock in milliseconds since the Unix epoch, as every statement spells it.
pub const DATABASE_CLOCK: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// What [`DATABASE_CLOCK`] becomes in test mode: the virtual time, or the database clock
/// while none is set.
const VIRTUAL_CLOCK: &str = "COALESCE((SELECT at_ms FROM tasque_clock WHERE id = 1), \
     CAST(unixepoch('subsec') * 1000 AS INTEGER))";

static VIRTUAL: AtomicBool = AtomicBool::new(false);

/// Switches this process's SQLite stores to test mode: their statements read the virtual
/// clock of their database (see the [module docs](self)). Cannot be switched off.
pub fn use_virtual_clock() {
    VIRTUAL.store(true, Ordering::SeqCst);
}

/// Whether [`use_virtual_clock`] was called in this process.
pub fn virtual_clock_in_use() -> bool {
    VIRTUAL.load(Ordering::Relaxed)
}

type Rendered = Mutex<HashMap<(usize, usize), &'static str>>;

/// A statement as this process runs it: itself in production; in test mode, rendered with the
/// virtual clock (once per statement: the rendering is kept for the process's life).
pub(crate) fn clocked(sql: &'static str) -> &'static str {
    if !virtual_clock_in_use() {
        return sql;
    }
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    let mut rendered = RENDERED
        .get_or_init(Rendered::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    rendered
        .entry((sql.as_ptr() as usize, sql.len()))
        .or_insert_with(|| Box::leak(render(sql).into_boxed_str()))
}

/// A statement built at run time, as this process runs it (see [`clocked`]).
pub(crate) fn clocked_string(sql: String) -> String {
    if virtual_clock_in_use() {
        render(&sql)
    } else {
        sql
    }
}

fn render(sql: &str) -> String {
    sql.replace(DATABASE_CLOCK, VIRTUAL_CLOCK)
}

/// Sets the virtual time of the database (test mode; `None` goes back to the database clock).
pub async fn set_virtual_now(pool: &SqlitePool, at: Option<DateTime<Utc>>) -> Result<()> {
    match at {
        Some(at) => sqlx::query(
            "INSERT INTO tasque_clock (id, at_ms) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
        )
        .bind(at.timestamp_millis())
        .execute(pool)
        .await
        .map_err(sql_err)?,
        None => sqlx::query("DELETE FROM tasque_clock")
            .execute(pool)
            .await
            .map_err(sql_err)?,
    };
    Ok(())
}

impl crate::SqliteStore {
    /// Sets the database's virtual time (test mode; `None` goes back to the database clock),
    /// makes the store's sleepers and timed-out waiters that are due by then claimable, and
    /// wakes this process's workers on the store so they re-poll at once.
    pub async fn set_virtual_now(&self, at: Option<DateTime<Utc>>) -> Result<()> {
        set_virtual_now(self.pool(), at).await?;
        tasque_durable::engine::EngineWorkflow::job_wake_due(self).await?;
        self.announce("");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_replaces_every_clock_read_and_nothing_else() {
        let sql = "UPDATE t SET a = CAST(unixepoch('subsec') * 1000 AS INTEGER) + ?2 \
                   WHERE b < CAST(unixepoch('subsec') * 1000 AS INTEGER)";
        let out = render(sql);
        assert_eq!(out.matches("tasque_clock").count(), 2);
        assert!(out.starts_with("UPDATE t SET a = COALESCE((SELECT at_ms"));
        assert_eq!(render("SELECT 1"), "SELECT 1");
    }
}
