//! A store bound to one open transaction that is rolled back afterwards (the test worker of
//! `tasque::testing`).

use std::sync::Arc;

use sqlx::{Database, Postgres, TransactionManager};
use tasque_durable::Result;

use crate::{sql_err, Inner, PostgresStore, Wakeups};

impl PostgresStore {
    /// A copy of this store on one new connection (configured like this store's, test mode
    /// included) inside one transaction opened here, until
    /// [`roll_back_bound`](Self::roll_back_bound) undoes all of it. Every operation of the copy
    /// runs in that transaction; the engine's own transactions become savepoints in it. For
    /// tests: `tasque::testing::TestEnv::perform` runs a job on such a store, so the job's
    /// row, what its handler enqueues and its completion are all gone afterwards. Other
    /// connections never see its writes; notifications sent in it are never delivered (its
    /// workers poll).
    ///
    /// The copy has no periodic schedules nor leader elections (an election's session would
    /// take the connection out of the transaction): its workers rescue, and never fire
    /// schedules.
    pub async fn begin_bound(&self) -> Result<PostgresStore> {
        let pool = self
            .inner
            .pool
            .options()
            .clone()
            .max_connections(1)
            .min_connections(0)
            .connect_with((*self.inner.pool.connect_options()).clone())
            .await
            .map_err(sql_err)?;
        let mut conn = pool.acquire().await.map_err(sql_err)?;
        // The connection keeps the open transaction (and sqlx's count of it) when it goes
        // back to the pool, so later `begin()`s on it are savepoints.
        <Postgres as Database>::TransactionManager::begin(&mut conn, None)
            .await
            .map_err(sql_err)?;
        drop(conn);
        let inner = &self.inner;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                wakeups: Wakeups::new(pool.clone(), inner.schema.clone()),
                pool,
                ns: inner.ns.clone(),
                schema: inner.schema.clone(),
                sql: crate::queries::Sql::new(&crate::config::quote(&inner.schema), &inner.schema),
                keyed: Default::default(),
                limits: inner.limits,
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
        <Postgres as Database>::TransactionManager::rollback(&mut conn)
            .await
            .map_err(sql_err)?;
        drop(conn);
        self.inner.pool.close().await;
        Ok(())
    }
}
