//! Leader election by the server's named lock `GET_LOCK` (see
//! [`tasque_durable::schedule::Election`]).
//!
//! A seat borrows a pooled connection and tries `GET_LOCK(name, 0)`; the name is global to the
//! server, so it hashes the database, the namespace and the election. When the seat wins, the
//! connection leaves the pool (it is detached) and stays with the seat for as long as it leads:
//! the lock lives exactly as long as that session. Each [`lead`](Election::lead) afterwards
//! checks the session still holds it (`IS_USED_LOCK`) and renews the lease row that names the
//! leader; a failure drops the session, which releases the lock. A leader process that dies
//! closes its socket, so the server releases the lock at once; the session's `wait_timeout`
//! (twice the lease) makes the server end the session of a leader that hangs. A seat that
//! loses gives its connection back to the pool.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Executor, MySqlConnection, MySqlPool};
use tasque_durable::schedule::Election;
use tasque_durable::Result;

use super::us;
use crate::queries::cron as q;
use crate::{sql_err, MySqlStore};

/// A seat in an election of one namespace.
pub struct MySqlElection {
    pool: MySqlPool,
    /// `stem:name`, hashed into the lock's name by the server.
    key: String,
    name: String,
    holder: String,
    ttl: Duration,
    /// The lease row statements, rendered for the namespace.
    record: String,
    release: String,
    /// The dedicated session, while this seat leads.
    session: Option<MySqlConnection>,
}

impl MySqlStore {
    /// A seat for `holder` in the election `name` of this store's namespace.
    pub(crate) fn mysql_election(&self, name: &str, holder: &str, ttl: Duration) -> MySqlElection {
        let sql = &self.inner.sql;
        MySqlElection {
            pool: self.inner.pool.clone(),
            key: format!("{}:{name}", self.inner.stem),
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
            record: sql.render(q::RECORD_LEADER),
            release: sql.render(q::RELEASE_LEASE),
            session: None,
        }
    }
}

impl MySqlElection {
    /// Records this seat as the leader in the lease row (it holds the lock, so it may
    /// overwrite a row a dead leader left).
    async fn record(&self, session: &mut MySqlConnection) -> Result<()> {
        sqlx::query(&self.record)
            .bind(&self.name)
            .bind(&self.holder)
            .bind(us(self.ttl))
            .execute(session)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Tries to take the lock on a pooled connection; keeps the connection when it wins.
    async fn take(&mut self) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        let won: Option<i64> = sqlx::query_scalar(q::TRY_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_err)?;
        if won != Some(1) {
            return Ok(false);
        }
        // The lock lives with this session: it must never go back to the pool.
        let mut session = conn.detach();
        let timeout = format!(
            "SET SESSION wait_timeout = {}",
            (self.ttl * 2).as_secs().max(2)
        );
        session.execute(timeout.as_str()).await.map_err(sql_err)?;
        self.record(&mut session).await?;
        self.session = Some(session);
        Ok(true)
    }
}

#[async_trait]
impl Election for MySqlElection {
    async fn lead(&mut self) -> Result<bool> {
        let Some(mut session) = self.session.take() else {
            return self.take().await;
        };
        // An error drops the session, which releases the lock for good.
        let holds: Option<i64> = sqlx::query_scalar(q::HOLDS_LEADER_LOCK)
            .bind(&self.key)
            .fetch_one(&mut session)
            .await
            .map_err(sql_err)?;
        if holds != Some(1) {
            return Ok(false);
        }
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
            sqlx::query_scalar::<_, Option<i64>>(q::UNLOCK_LEADER)
                .bind(&self.key)
                .fetch_one(&mut session)
                .await
                .map_err(sql_err)?;
        }
        Ok(())
    }
}
