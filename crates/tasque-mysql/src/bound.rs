//! A store bound to one open transaction that is rolled back afterwards (the test worker of
//! `tasque::testing`).

use std::sync::Arc;

use sqlx::{Database, MySql, TransactionManager};
use tasque_durable::Result;

use crate::queries::Sql;
use crate::{sql_err, Inner, MySqlStore, WAKEUP_BACKLOG};

impl MySqlStore {
    /// A copy of this store on one new connection (configured like this store's, test mode
    /// included) inside one transaction opened here, until
    /// [`roll_back_bound`](Self::roll_back_bound) undoes all of it. Every operation of the copy
    /// runs in that transaction; the engine's own transactions become savepoints in it. For
    /// tests: `tasque::testing::TestEnv::perform` runs a job on such a store, so the job's
    /// row, what its handler enqueues and its completion are all gone afterwards.
    ///
    /// MySQL would commit the transaction at a DDL statement; the engine's operations run none
    /// (queues are rows). Rows it locks stay locked until the roll-back, and other connections
    /// never see its writes.
    ///
    /// The copy has no periodic schedules nor leader elections (an election's session would
    /// take the connection out of the transaction): its workers rescue, and never fire
    /// schedules.
    pub async fn begin_bound(&self) -> Result<MySqlStore> {
        let inner = &self.inner;
        let pool = inner
            .pool
            .options()
            .clone()
            .max_connections(1)
            .min_connections(0)
            .connect_with((*inner.pool.connect_options()).clone())
            .await
            .map_err(sql_err)?;
        let mut conn = pool.acquire().await.map_err(sql_err)?;
        // The connection keeps the open transaction (and sqlx's count of it) when it goes
        // back to the pool, so later `begin()`s on it are savepoints.
        <MySql as Database>::TransactionManager::begin(&mut conn, None)
            .await
            .map_err(sql_err)?;
        drop(conn);
        Ok(MySqlStore {
            inner: Arc::new(Inner {
                pool,
                ns: inner.ns.clone(),
                stem: inner.stem.clone(),
                sql: Sql::new(&inner.stem, inner.sql.clocked()),
                limits: inner.limits,
                server: inner.server.clone(),
                // Queues created in the transaction vanish with it: a cache of its own.
                known_queues: Default::default(),
                wakeups: tokio::sync::broadcast::channel(WAKEUP_BACKLOG).0,
                bound: true,
            }),
        })
    }

    /// Rolls back the transaction of a store made by [`begin_bound`](Self::begin_bound) and
    /// closes its connection: everything done through it is undone. Does nothing on other
    /// stores.
    pub async fn roll_back_bound(&self) -> Result<()> {
        if !self.inner.bound {
            return Ok(());
        }
        let mut conn = self.inner.pool.acquire().await.map_err(sql_err)?;
        <MySql as Database>::TransactionManager::rollback(&mut conn)
            .await
            .map_err(sql_err)?;
        drop(conn);
        self.inner.pool.close().await;
        Ok(())
    }
}
