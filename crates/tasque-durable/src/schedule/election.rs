//! [`Election`]: how the processes of a namespace agree on one leader, through the database.
//!
//! Each engine picks the strongest primitive it has:
//!
//! - PostgreSQL: a session-level advisory lock held by a connection dedicated to the leader; the
//!   server releases it the moment that connection ends, so a leader killed with SIGKILL is
//!   replaced at the next try of another process;
//! - MySQL and MariaDB: `GET_LOCK` on a dedicated connection, with the same properties;
//! - SQLite (one machine, one file): the lease row of [`ScheduleEngine::acquire_lease`], renewed
//!   by the leader and taken over once it expires ([`LeaseElection`], the default).
//!
//! An engine with a server lock returns it from [`ScheduleEngine::server_election`].
//!
//! In every case the leader also records itself in the `leader` lease row, so
//! [`ScheduleEngine::lease_holder`] names it on every engine.

use std::time::Duration;

use async_trait::async_trait;

use super::engine::ScheduleEngine;
use crate::error::Result;

/// One process's seat in the election of a leader, from [`seat`]. The
/// caller calls [`lead`](Election::lead) periodically (a fifth of the time to live) and runs
/// the leader-only services while it answers `true`.
#[async_trait]
pub trait Election: Send {
    /// Takes leadership, or confirms it is still held. `false` while another process leads;
    /// an error (the database or the seat's session was lost) means this process does not
    /// lead any more.
    async fn lead(&mut self) -> Result<bool>;

    /// Gives leadership up at once, so another process takes over at its next try.
    async fn resign(&mut self) -> Result<()>;
}

/// A seat for `holder` in the election `name` of `engine`: its server lock when it has one,
/// otherwise a lease row living `ttl` per renewal.
pub fn seat<'a>(
    engine: &'a dyn ScheduleEngine,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Box<dyn Election + 'a> {
    match engine.server_election(name, holder, ttl) {
        Some(election) => election,
        None => Box::new(LeaseElection::new(engine, name, holder, ttl)),
    }
}

/// The election by lease row: the leader renews the row before it expires; another process
/// takes it once it has expired (the engine clock decides).
pub struct LeaseElection<'a> {
    engine: &'a dyn ScheduleEngine,
    name: String,
    holder: String,
    ttl: Duration,
}

impl<'a> LeaseElection<'a> {
    /// A seat for `holder` in the election `name`, whose lease lasts `ttl` per renewal.
    pub fn new(engine: &'a dyn ScheduleEngine, name: &str, holder: &str, ttl: Duration) -> Self {
        LeaseElection {
            engine,
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
        }
    }
}

#[async_trait]
impl Election for LeaseElection<'_> {
    async fn lead(&mut self) -> Result<bool> {
        self.engine
            .acquire_lease(&self.name, &self.holder, self.ttl)
            .await
    }

    async fn resign(&mut self) -> Result<()> {
        self.engine.release_lease(&self.name, &self.holder).await
    }
}
