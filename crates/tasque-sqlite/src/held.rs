//! The write connection, kept by the engine while its statements follow each other.
//!
//! sqlx returns a pooled connection to its pool by testing it first: a `ping`, one more trip
//! to the connection's thread after every statement, during which the connection (the
//! database's only writer) serves nobody. For one-statement writes that halves the rate: one
//! upsert at a time ran 8,500-9,900 statements/s through a one-connection pool against
//! 16,000-22,000/s on the connection itself (the same statement, file and settings).
//!
//! A [`HeldPool`] with holding on keeps the connection between the engine's statements
//! instead: a statement leases it (from the pool when nobody holds it), and gives it back to
//! the holder when it succeeds. The holder returns it to the pool once it has been idle for
//! [`LINGER`], or after [`HOLD`] of continuous use, so the pool's other users (the raw
//! [`SqliteStore::pool`](crate::SqliteStore::pool), migrations, transactions) wait at most
//! that long for it, as they waited for the engine's statements before. A statement that fails,
//! or whose future is dropped, lets the pool take the connection back (and test it) as
//! before. There is still one connection: everything that was serialised still is.
//!
//! Without holding (the read pool of a database file), it is the pool itself.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteQueryResult, SqliteRow, SqliteStatement, SqliteTypeInfo};
use sqlx::{
    Describe, Either, Execute, Executor, Sqlite, SqliteConnection, SqlitePool, Transaction,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// How long an idle held connection stays held.
pub(crate) const LINGER: Duration = Duration::from_millis(1);
/// The longest the engine holds the connection without giving the pool a turn.
pub(crate) const HOLD: Duration = Duration::from_millis(20);

/// A pool of one write connection that the engine holds between its statements (see the
/// module), or a plain pool.
#[derive(Clone)]
pub(crate) struct HeldPool {
    pool: SqlitePool,
    /// `None`: a plain pool.
    holder: Option<Arc<Holder>>,
}

/// The held connection and its times.
struct Holder {
    held: Arc<Mutex<Held>>,
    /// Statements waiting for the lease (they keep the connection held past its idle time).
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Held {
    conn: Option<PoolConnection<Sqlite>>,
    /// When it was taken from the pool.
    since: Option<Instant>,
    /// When a statement last gave it back.
    last: Option<Instant>,
    /// A task is waiting to return it to the pool when it goes idle.
    releasing: bool,
}

impl Drop for Held {
    /// A pooled connection goes back to its pool through a task of the async runtime; when
    /// the last store drops outside any runtime (after it ended), the connection is closed
    /// here instead (its pool is going away with the store).
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                drop(conn.leak());
            }
        }
    }
}

impl fmt::Debug for HeldPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldPool")
            .field("pool", &self.pool)
            .field("holding", &self.holder.is_some())
            .finish()
    }
}

/// The write connection leased to one statement (or one request): give it back with
/// [`Lease::finish`]. Dropped instead, it goes back to the pool, which tests it.
pub(crate) struct Lease {
    /// The holder and its lock (none for a plain pool).
    holder: Option<(Arc<Holder>, OwnedMutexGuard<Held>)>,
    conn: PoolConnection<Sqlite>,
}

impl Lease {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Gives the connection back to the holder when `ok` (the statement succeeded, so the
    /// connection is sound) and it has not been held for [`HOLD`] yet; otherwise to the pool.
    pub(crate) fn finish(self, ok: bool) {
        let Lease { holder, conn } = self;
        let Some((holder, mut held)) = holder else {
            return;
        };
        let now = Instant::now();
        let fresh = held.since.is_some_and(|since| now - since < HOLD);
        if !ok || !fresh {
            held.since = None;
            drop(conn);
            return;
        }
        held.conn = Some(conn);
        held.last = Some(now);
        if !held.releasing {
            held.releasing = true;
            tokio::spawn(release_when_idle(holder));
        }
    }
}

/// Returns the held connection to the pool once it is idle for [`LINGER`] or has been held
/// for [`HOLD`].
async fn release_when_idle(holder: Arc<Holder>) {
    loop {
        tokio::time::sleep(LINGER).await;
        let mut held = holder.held.lock().await;
        if held.conn.is_none() {
            held.releasing = false;
            return;
        }
        let now = Instant::now();
        let idle = held.last.is_none_or(|last| now - last >= LINGER)
            && holder.waiting.load(Ordering::Acquire) == 0;
        let long = held.since.is_none_or(|since| now - since >= HOLD);
        if idle || long {
            held.conn = None;
            held.since = None;
            held.releasing = false;
            return;
        }
    }
}

impl HeldPool {
    /// `pool`, its connection held between statements when `hold`.
    pub(crate) fn new(pool: SqlitePool, hold: bool) -> Self {
        let holder = hold.then(|| {
            Arc::new(Holder {
                held: Arc::new(Mutex::new(Held::default())),
                waiting: AtomicUsize::new(0),
            })
        });
        HeldPool { pool, holder }
    }

    /// The pool itself (its users wait while the engine holds the connection).
    pub(crate) fn raw(&self) -> &SqlitePool {
        &self.pool
    }

    /// Leases the connection: the held one (taken from the pool when nobody holds it), or,
    /// for a plain pool, one from the pool.
    pub(crate) async fn lease(&self) -> sqlx::Result<Lease> {
        let Some(holder) = &self.holder else {
            let conn = self.pool.acquire().await?;
            return Ok(Lease { holder: None, conn });
        };
        holder.waiting.fetch_add(1, Ordering::AcqRel);
        let mut held = holder.held.clone().lock_owned().await;
        holder.waiting.fetch_sub(1, Ordering::AcqRel);
        let conn = match held.conn.take() {
            Some(conn) => conn,
            None => {
                let conn = self.pool.acquire().await?;
                held.since = Some(Instant::now());
                conn
            }
        };
        Ok(Lease {
            holder: Some((holder.clone(), held)),
            conn,
        })
    }

    /// The connection for the caller's own use: the held one when there is one (the holder
    /// lets it go), or one from the pool. Dropped, it goes back to the pool.
    pub(crate) async fn acquire(&self) -> sqlx::Result<PoolConnection<Sqlite>> {
        if let Some(holder) = &self.holder {
            let mut held = holder.held.lock().await;
            if let Some(conn) = held.conn.take() {
                held.since = None;
                return Ok(conn);
            }
        }
        self.pool.acquire().await
    }

    /// Begins a transaction (`BEGIN`, a savepoint when the connection has one open).
    pub(crate) async fn begin(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        Transaction::begin(self.acquire().await?, None).await
    }

    /// Begins a transaction with `statement`.
    pub(crate) async fn begin_with(
        &self,
        statement: &'static str,
    ) -> sqlx::Result<Transaction<'static, Sqlite>> {
        Transaction::begin(self.acquire().await?, Some(statement.into())).await
    }

    /// Returns the held connection and closes the pool.
    pub(crate) async fn close(&self) {
        if let Some(holder) = &self.holder {
            let mut held = holder.held.lock().await;
            held.conn = None;
            held.since = None;
        }
        self.pool.close().await;
    }
}

impl<'c> Executor<'c> for &'c HeldPool {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, sqlx::Result<Either<SqliteQueryResult, SqliteRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        if self.holder.is_none() {
            return self.pool.fetch_many(query);
        }
        futures_util::stream::once(async move {
            let mut lease = self.lease().await?;
            let results: Vec<_> = lease.conn().fetch_many(query).collect().await;
            lease.finish(results.iter().all(Result::is_ok));
            Ok::<_, sqlx::Error>(futures_util::stream::iter(results))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, sqlx::Result<Option<SqliteRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        if self.holder.is_none() {
            return self.pool.fetch_optional(query);
        }
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let row = lease.conn().fetch_optional(query).await;
            lease.finish(row.is_ok());
            row
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<SqliteStatement<'q>>>
    where
        'c: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Sqlite>>>
    where
        'c: 'e,
    {
        self.pool.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{SqliteConfig, SqliteStore};

    const GENEROUS: Duration = Duration::from_secs(30);

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let store = SqliteStore::connect(SqliteConfig::file(dir.path().join("held.db")))
            .await
            .unwrap();
        sqlx::query(crate::clock::clocked(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)",
        ))
        .execute(&store.pool)
        .await
        .unwrap();
        store
    }

    #[tokio::test]
    async fn the_pool_gets_the_connection_back_when_the_engine_idles() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        for k in 0..10 {
            sqlx::query(crate::clock::clocked("INSERT INTO t (k, v) VALUES (?1, 0)"))
                .bind(k)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        // The raw pool's only connection is held for a moment, then handed back.
        let mut conn = tokio::time::timeout(GENEROUS, store.pool().acquire())
            .await
            .expect("the held connection goes back to the pool")
            .unwrap();
        let n: i64 = sqlx::query_scalar(crate::clock::clocked("SELECT count(*) FROM t"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_gets_a_turn_while_the_engine_writes_without_pause() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0_i64;
                    while !stop.load(Ordering::Relaxed) {
                        sqlx::query(crate::clock::clocked(
                            "INSERT INTO t (k, v) VALUES (?1, ?2) \
                             ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                        ))
                        .bind(w)
                        .bind(n)
                        .execute(&store.pool)
                        .await
                        .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for _ in 0..5 {
            let mut tx = tokio::time::timeout(GENEROUS, store.pool().begin())
                .await
                .expect("a transaction on the raw pool gets its turn")
                .unwrap();
            sqlx::query(crate::clock::clocked(
                "INSERT INTO t (k, v) VALUES (100, 1) ON CONFLICT (k) DO NOTHING",
            ))
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            assert!(writer.await.unwrap() > 0);
        }
    }

    #[tokio::test]
    async fn a_failed_statement_leaves_the_connection_usable() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let bad = sqlx::query(crate::clock::clocked("INSERT INTO missing (k) VALUES (1)"))
            .execute(&store.pool)
            .await;
        assert!(bad.is_err());
        sqlx::query(crate::clock::clocked("INSERT INTO t (k, v) VALUES (1, 1)"))
            .execute(&store.pool)
            .await
            .unwrap();
        let rows: Vec<i64> = sqlx::query_scalar(crate::clock::clocked("SELECT k FROM t"))
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(rows, vec![1]);
    }

    #[test]
    fn a_store_dropped_after_its_runtime_ended_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = runtime.block_on(async {
            let store = store(&dir).await;
            sqlx::query(crate::clock::clocked("INSERT INTO t (k, v) VALUES (1, 1)"))
                .execute(&store.pool)
                .await
                .unwrap();
            store
        });
        drop(runtime);
        drop(store);
    }
}
