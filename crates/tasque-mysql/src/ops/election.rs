//! Leader election by the server's named lock `GET_LOCK` (see
//! [`tasque_durable::schedule::Election`]).
//!
//! A seat borrows a pooled connection and tries `GET_LOCK(name, 0)`; the name is global to the
//! server, so it hashes the database, the namespace and the election. When the seat wins, the
//! connection leaves the pool (it is detached) and stays with the seat for as long as it leads:
//! the lock lives exactly as long as that session. Each [`lead`](tasque_durable::schedule::Election::lead) afterwards
//! checks the session still holds it (`IS_USED_LOCK`) and renews the lease row that names the
//! leader; a failure drops the session, which releases the lock. A leader process that dies
//! closes its socket, so the server releases the lock at once; the session's `wait_timeout`
//! (twice the lease) makes the server end the session of a leader that hangs. A seat that
//! loses gives its connection back to the pool.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Executor, MySqlConnection, MySqlPool};
use tasque_durable::schedule::{LockSession, SessionElection};
use tasque_durable::Result;

use super::us;
use crate::queries::cron as q;
use crate::{sql_err, MySqlStore};

/// A seat in an election of one namespace.
pub type MySqlElection = SessionElection<MySqlLeaderLock>;

/// The named lock of an election of one namespace (driven by [`SessionElection`]).
pub struct MySqlLeaderLock {
    pool: MySqlPool,
    /// `stem:name`, hashed into the lock's name by the server.
    key: String,
    name: String,
    holder: String,
    ttl: Duration,
    /// The lease row statements, rendered for the namespace.
    record: String,
    release: String,
}

impl MySqlStore {
    /// A seat for `holder` in the election `name` of this store's namespace.
    pub(crate) fn mysql_election(&self, name: &str, holder: &str, ttl: Duration) -> MySqlElection {
        let sql = &self.inner.sql;
        SessionElection::new(MySqlLeaderLock {
            pool: self.inner.pool.clone(),
            key: format!("{}:{name}", self.inner.stem),
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
            record: sql.render(q::RECORD_LEADER),
            release: sql.render(q::RELEASE_LEASE),
        })
    }
}

#[async_trait]
impl LockSession for MySqlLeaderLock {
    type Session = MySqlConnection;

    async fn try_lock(&mut self) -> Result<Option<MySqlConnection>> {
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        let won: Option<i64> = sqlx::query_scalar(q::TRY_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_err)?;
        if won != Some(1) {
            return Ok(None);
        }
        // The lock lives with this session: it must never go back to the pool.
        let mut session = conn.detach();
        let timeout = format!(
            "SET SESSION wait_timeout = {}",
            (self.ttl * 2).as_secs().max(2)
        );
        session.execute(timeout.as_str()).await.map_err(sql_err)?;
        Ok(Some(session))
    }

    async fn holds(&mut self, session: &mut MySqlConnection) -> Result<bool> {
        let holds: Option<i64> = sqlx::query_scalar(q::HOLDS_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(session)
            .await
            .map_err(sql_err)?;
        Ok(holds == Some(1))
    }

    /// Records this seat as the leader in the lease row (it holds the lock, so it may
    /// overwrite a row a dead leader left).
    async fn record(&mut self, session: &mut MySqlConnection) -> Result<()> {
        sqlx::query(&self.record)
            .bind(&self.name)
            .bind(&self.holder)
            .bind(us(self.ttl))
            .execute(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn release(&mut self, session: &mut MySqlConnection) -> Result<()> {
        sqlx::query(&self.release)
            .bind(&self.name)
            .bind(&self.holder)
            .execute(&mut *session)
            .await
            .map_err(sql_err)?;
        sqlx::query_scalar::<_, Option<i64>>(q::UNLOCK_LEADER)
            .bind(&self.key)
            .fetch_one(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }
}
