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
//! An engine with a server lock returns it from [`ScheduleEngine::server_election`], usually as
//! a [`SessionElection`] over its [`LockSession`]: the engine says how to take, check, renew and
//! release the lock on one dedicated session; the seat logic (take when not leading, check and
//! renew while leading, drop the session on any error, release on resignation) is written once.
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

/// The engine side of an election held by a server lock that lives as long as one database
/// session (PostgreSQL's advisory locks, MySQL's `GET_LOCK`). [`SessionElection`] drives it.
#[async_trait]
pub trait LockSession: Send {
    /// The dedicated session (a connection taken out of the pool) that holds the lock.
    type Session: Send;

    /// Tries to take the lock without waiting: the session holding it when won (out of the
    /// pool for good, with the server's idle limits set), `None` when another process holds it
    /// (the connection borrowed for the try goes back to the pool).
    async fn try_lock(&mut self) -> Result<Option<Self::Session>>;

    /// Whether `session` still holds the lock. Engines whose lock is the session's life answer
    /// `true` (the default); an error means the session is lost.
    async fn holds(&mut self, session: &mut Self::Session) -> Result<bool> {
        let _ = session;
        Ok(true)
    }

    /// Records the leader in the `leader` lease row (renewing its time to live), on `session`.
    async fn record(&mut self, session: &mut Self::Session) -> Result<()>;

    /// Gives the lease row and the lock up, on `session` (dropped afterwards).
    async fn release(&mut self, session: &mut Self::Session) -> Result<()>;
}

/// A seat whose leadership is a server lock held by a dedicated session: while it leads, the
/// seat keeps the session; an error (or a lock found lost) drops it, which releases the lock
/// on the server for good.
pub struct SessionElection<L: LockSession> {
    lock: L,
    session: Option<L::Session>,
}

impl<L: LockSession> SessionElection<L> {
    /// A seat that does not lead yet.
    pub fn new(lock: L) -> Self {
        SessionElection {
            lock,
            session: None,
        }
    }
}

#[async_trait]
impl<L: LockSession> Election for SessionElection<L> {
    async fn lead(&mut self) -> Result<bool> {
        // Taken out: any error below drops the session, and with it the lock.
        let mut session = match self.session.take() {
            Some(mut session) => {
                if !self.lock.holds(&mut session).await? {
                    return Ok(false);
                }
                session
            }
            None => match self.lock.try_lock().await? {
                Some(session) => session,
                None => return Ok(false),
            },
        };
        self.lock.record(&mut session).await?;
        self.session = Some(session);
        Ok(true)
    }

    async fn resign(&mut self) -> Result<()> {
        match self.session.take() {
            Some(mut session) => self.lock.release(&mut session).await,
            None => Ok(()),
        }
    }
}
