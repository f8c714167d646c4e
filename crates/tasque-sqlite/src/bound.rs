//! A store bound to one open transaction that is rolled back afterwards (the test worker of
//! `tasque::testing`).

use sqlx::{Database, Sqlite, Transaction, TransactionManager};
use tasque_durable::Result;

use crate::{sql_err, SqliteStore};

impl SqliteStore {
    /// A copy of this store whose every operation, reads included, runs on the database's one
    /// write connection inside one transaction opened here, until
    /// [`roll_back_bound`](Self::roll_back_bound) undoes all of it. The engine's own write
    /// transactions become savepoints in it. For tests: `tasque::testing::TestEnv::perform`
    /// runs a job on such a store, so the job's row, what its handler enqueues and its
    /// completion are all gone afterwards.
    ///
    /// While it is open, every other user of this store's write connection (this store and
    /// its clones) writes inside the same transaction, and other connections to the file wait
    /// for its lock: use it only while nothing else works on the database.
    pub async fn begin_bound(&self) -> Result<SqliteStore> {
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        // The connection keeps the open transaction (and sqlx's count of it) when it goes
        // back to the pool, so later `begin()`s on it are savepoints.
        <Sqlite as Database>::TransactionManager::begin(&mut conn, None)
            .await
            .map_err(sql_err)?;
        drop(conn);
        Ok(SqliteStore {
            readers: self.pool.clone(),
            // Queues created in the transaction vanish with it: a cache of its own.
            known_queues: Default::default(),
            bound: true,
            ..self.clone()
        })
    }

    /// Rolls back the transaction of a store made by [`begin_bound`](Self::begin_bound):
    /// everything done through it since is undone. Does nothing on other stores.
    pub async fn roll_back_bound(&self) -> Result<()> {
        if !self.bound {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await.map_err(sql_err)?;
        <Sqlite as Database>::TransactionManager::rollback(&mut conn)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE` (the write lock at once, so concurrent
    /// writers queue instead of failing to upgrade), or a savepoint in a bound store.
    pub(crate) async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        if self.bound {
            self.pool.begin().await
        } else {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        }
    }
}
