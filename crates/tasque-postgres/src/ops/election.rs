//! Leader election by a session-level advisory lock (see
//! [`tasque_durable::schedule::Election`]).
//!
//! A seat borrows a pooled connection and tries `pg_try_advisory_lock` on a key hashed from the
//! schema and the election's name. When it wins, the connection leaves the pool (it is
//! detached) and stays with the seat for as long as it leads: the lock lives exactly as long as
//! that session. Each [`lead`](Election::lead) afterwards checks the session is alive (and
//! renews the `leases` row that names the leader); a failure drops it, which releases the lock
//! on the server. A leader process that dies closes its socket, so the server releases the
//! lock at once; `idle_session_timeout` (twice the lease) makes the server end the session of
//! a leader that hangs. A seat that loses gives its connection back to the pool.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Executor, PgConnection, PgPool};
use tasque_durable::schedule::Election;
use tasque_durable::Result;

use super::ms;
use crate::config::quote;
use crate::queries::cron as q;
use crate::{sql_err, PostgresStore};

/// A seat in an election of one schema.
pub struct PgElection {
    pool: PgPool,
    /// The advisory lock's key text (hashed by the server).
    key: String,
    name: String,
    holder: String,
    ttl: Duration,
    /// The leases row statements, rendered for the schema.
    record: String,
    release: String,
    /// The dedicated session, while this seat leads.
    session: Option<PgConnection>,
}

impl PostgresStore {
    /// A seat for `holder` in the election `name` of this store's schema.
    pub(crate) fn pg_election(&self, name: &str, holder: &str, ttl: Duration) -> PgElection {
        let schema = quote(&self.inner.schema);
        PgElection {
            pool: self.inner.pool.clone(),
            key: format!("tasque-leader:{}:{name}", self.inner.schema),
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
            record: q::RECORD_LEADER.replace("@schema@", &schema),
            release: q::RELEASE_LEASE.replace("@schema@", &schema),
            session: None,
        }
    }
}

impl PgElection {
    /// Records this seat as the leader in the `leases` row (it holds the lock, so it may
    /// overwrite a row a dead leader left).
    async fn record(&self, session: &mut PgConnection) -> Result<()> {
        sqlx::query(&self.record)
            .bind(&self.name)
            .bind(&self.holder)
            .bind(ms(self.ttl))
            .execute(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Tries to take the lock on a pooled connection; keeps the connection when it wins.
    async fn take(&mut self) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        let won: bool = sqlx::query_scalar(q::TRY_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_err)?;
        if !won {
            return Ok(false);
        }
        // The lock lives with this session: it must never go back to the pool.
        let mut session = conn.detach();
        let timeout = format!("SET idle_session_timeout = {}", ms(self.ttl * 2).max(1000));
        // Best effort: servers before PostgreSQL 14 have no idle session timeout.
        let _ = session.execute(timeout.as_str()).await;
        self.record(&mut session).await?;
        self.session = Some(session);
        Ok(true)
    }
}

#[async_trait]
impl Election for PgElection {
    async fn lead(&mut self) -> Result<bool> {
        let Some(mut session) = self.session.take() else {
            return self.take().await;
        };
        // The session alive is the lock held; dropping a broken one releases it for good.
        self.record(&mut session).await?;
        self.session = Some(session);
        Ok(true)
    }

    async fn resign(&mut self) -> Result<()> {
        if let Some(mut session) = self.session.take() {
            sqlx::query(&self.release)
                .bind(&self.name)
                .bind(&self.holder)
                .execute(&mut session)
                .await
                .map_err(sql_err)?;
            sqlx::query(q::UNLOCK_LEADER)
                .bind(&self.key)
                .execute(&mut session)
                .await
                .map_err(sql_err)?;
        }
        Ok(())
    }
}
