//! Leader election by a session-level advisory lock (see
//! [`tasque_durable::schedule::Election`]).
//!
//! A seat borrows a pooled connection and tries `pg_try_advisory_lock` on a key hashed from the
//! schema and the election's name. When it wins, the connection leaves the pool (it is
//! detached) and stays with the seat for as long as it leads: the lock lives exactly as long as
//! that session. Each [`lead`](tasque_durable::schedule::Election::lead) afterwards checks the session is alive (and
//! renews the `leases` row that names the leader); a failure drops it, which releases the lock
//! on the server. A leader process that dies closes its socket, so the server releases the
//! lock at once; `idle_session_timeout` (twice the lease) makes the server end the session of
//! a leader that hangs. A seat that loses gives its connection back to the pool.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Executor, PgConnection, PgPool};
use tasque_durable::schedule::{LockSession, SessionElection};
use tasque_durable::Result;

use super::ms;
use crate::config::quote;
use crate::queries::cron as q;
use crate::{sql_err, PostgresStore};

/// A seat in an election of one schema.
pub type PgElection = SessionElection<PgLeaderLock>;

/// The advisory lock of an election of one schema (driven by [`SessionElection`]).
pub struct PgLeaderLock {
    pool: PgPool,
    /// The advisory lock's key text (hashed by the server).
    key: String,
    name: String,
    holder: String,
    ttl: Duration,
    /// The leases row statements, rendered for the schema.
    record: String,
    release: String,
}

impl PostgresStore {
    /// A seat for `holder` in the election `name` of this store's schema.
    pub(crate) fn pg_election(&self, name: &str, holder: &str, ttl: Duration) -> PgElection {
        let schema = quote(&self.inner.schema);
        SessionElection::new(PgLeaderLock {
            pool: self.inner.pool.clone(),
            key: format!("tasque-leader:{}:{name}", self.inner.schema),
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
            record: q::RECORD_LEADER.replace("@schema@", &schema),
            release: q::RELEASE_LEASE.replace("@schema@", &schema),
        })
    }
}

#[async_trait]
impl LockSession for PgLeaderLock {
    type Session = PgConnection;

    async fn try_lock(&mut self) -> Result<Option<PgConnection>> {
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        let won: bool = sqlx::query_scalar(q::TRY_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_err)?;
        if !won {
            return Ok(None);
        }
        // The lock lives with this session: it must never go back to the pool.
        let mut session = conn.detach();
        let timeout = format!("SET idle_session_timeout = {}", ms(self.ttl * 2).max(1000));
        // Best effort: servers before PostgreSQL 14 have no idle session timeout.
        let _ = session.execute(timeout.as_str()).await;
        Ok(Some(session))
    }

    // `holds` stays the default: the session alive is the lock held.

    /// Records this seat as the leader in the `leases` row (it holds the lock, so it may
    /// overwrite a row a dead leader left).
    async fn record(&mut self, session: &mut PgConnection) -> Result<()> {
        sqlx::query(&self.record)
            .bind(&self.name)
            .bind(&self.holder)
            .bind(ms(self.ttl))
            .execute(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn release(&mut self, session: &mut PgConnection) -> Result<()> {
        sqlx::query(&self.release)
            .bind(&self.name)
            .bind(&self.holder)
            .execute(&mut *session)
            .await
            .map_err(sql_err)?;
        sqlx::query(q::UNLOCK_LEADER)
            .bind(&self.key)
            .execute(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }
}
