//! The MySQL/MariaDB engine of Tasque's durable queue: [`MySqlStore`] implements
//! [`tasque_durable::Store`] on one MySQL 8.0.1+ or MariaDB 10.6+ database that any number of
//! worker processes on any number of machines share.
//!
//! # Opening
//!
//! ```no_run
//! # async fn demo() -> tasque_durable::Result<()> {
//! use tasque_durable::{Spawn, Store};
//! use tasque_mysql::{MySqlConfig, MySqlStore};
//!
//! let store = MySqlStore::connect(
//!     MySqlConfig::new("mysql://app@127.0.0.1:3306/app").with_namespace("billing"),
//! )
//! .await?;
//! store.migrate().await?;
//! store.spawn(Spawn::new("invoices", "render", serde_json::json!({"id": 7}))).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **Supported servers only**: connecting checks `VERSION()` and refuses MySQL before 8.0.1
//!   and MariaDB before 10.6 (the first with `FOR UPDATE SKIP LOCKED`) with
//!   [`MySqlError::ServerTooOld`], naming the release needed.
//! - **One clock**: leases, schedules and retries use the server's `UTC_TIMESTAMP(6)`
//!   (microseconds, UTC whatever the server's time zone). Clock skew between worker machines
//!   cannot double-run a job. In test mode
//!   ([`MySqlConfig::with_virtual_clock`]), every statement reads a virtual clock instead
//!   ([`clock`]), which `tasque::testing::TestClock` drives.
//! - **Claims** are one short transaction: `SELECT ... ORDER BY ... LIMIT n FOR UPDATE SKIP
//!   LOCKED` picks ready jobs in poll order walking the claim index (one statement per queue)
//!   and reads everything the claims carry, with the lease end they take; one `UPDATE` takes
//!   them; `COMMIT`. Concurrent claimers skip each other's rows instead of waiting, and never
//!   share a job. Connections use `READ COMMITTED`, so only the rows returned stay locked.
//! - **Gated queues**: a queue with a concurrency limit or in blocking mode is claimed in a
//!   transaction holding its queue row (`FOR UPDATE`), so counting what runs and taking more is
//!   atomic across every claimer: a limit holds across all workers, and a blocking queue runs
//!   its oldest unfinished job alone, a failure holding the jobs behind it.
//! - **Guarded writes**: `complete_many` is one `UPDATE` guarded by job, run and state (rows it
//!   changes are marked with the write's token, so a partial success tells exactly which runs
//!   applied); fail, extend, reschedule, release, checkpoints, sleeps and event waits lock the
//!   runs' rows (`FOR UPDATE`, by id ascending), judge each run (still running under this run
//!   id? cancelled?) and update only those that still own their job, in one transaction. A stale
//!   owner's write changes nothing and is reported. Deadlocks and lock-wait timeouts are retried.
//! - **Events**: a wait and an emit of one event serialise on the event's row (a wait creates it
//!   as "not emitted yet"), so an event emitted before the wait satisfies it and one emitted
//!   after wakes it; the claim of a woken job carries the event's payload. Due sleepers and
//!   timed-out waiters are made claimable by claims (at most every 50 ms per store).
//! - **Batches**: `spawn_many` is multi-row `INSERT`s (1,000 rows each) in one transaction;
//!   `extend_leases` and `release` are one lock and one `UPDATE` each.
//! - **Namespaces are table sets**: namespace `ns` lives in tables `tasque_ns_jobs`,
//!   `tasque_ns_queues`, ... (the prefix is configurable; long names are hashed to fit 64
//!   characters). Tables rather than a namespace column because isolation is then structural
//!   (no statement can forget a filter), every index stays free of a leading column, and tests
//!   run side by side and clean up with one `DROP TABLE`.
//! - **Exact JSON**: params, headers, results and failure reasons are `LONGTEXT` (utf8mb4,
//!   binary collation), written and read verbatim: no server-side JSON normalisation, so big
//!   integers, floats, unicode and key order come back exactly as stored.
//! - **Versioned migrations**, one `.sql` file per version under `migrations/` as on the other
//!   engines, serialised across processes by `GET_LOCK`; every statement of a file is
//!   idempotent or guarded by an `-- step unless ...` check (MySQL cannot roll DDL back, so a
//!   half-applied version is completed by the next run); a new namespace gets its first
//!   tables in their final shape at once (`fresh.sql`); a schema newer than this build is
//!   refused with
//!   [`Error::SchemaTooNew`].
//! - **Transactional enqueue**: [`MySqlStore::spawn_in_tx`] and [`MySqlStore::spawn_many_in_tx`]
//!   write in the caller's transaction.
//! - **Connection loss**: a killed connection fails the operation in flight; the pool opens a
//!   new one for the next, and the worker's retries and leases do the rest.
//!
//! **Wake-ups are in-process only**: MySQL has no LISTEN/NOTIFY. Workers that share a store (or
//! a clone of it) with the code that spawns are woken at once
//! ([`Store::subscribe_wakeups`](tasque_durable::Store::subscribe_wakeups)); workers in other
//! processes poll, so their poll interval bounds the latency of a new job there.
//!
//! All SQL lives in `queries` (statements) and `migrations/` (the schema).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bound;
pub mod clock;
mod config;
mod migrate;
mod ops;
mod queries;
mod rows;
mod steps;
mod tx;
mod version;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Executor, MySqlPool};
use tasque_durable::{Error, Limits, MigrationReport, Result};

pub use config::{MySqlConfig, DEFAULT_NAMESPACE, DEFAULT_TABLE_PREFIX};
pub use migrate::SCHEMA_VERSION;
pub use version::{MySqlError, ServerVersion, MIN_MARIADB, MIN_MYSQL};

use crate::queries::Sql;

/// A [`Store`](tasque_durable::Store) on MySQL or MariaDB. Cheap to clone: clones share the
/// pool.
#[derive(Clone, Debug)]
pub struct MySqlStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: MySqlPool,
    ns: String,
    stem: String,
    sql: Sql,
    limits: Limits,
    server: ServerVersion,
    /// Queues known to exist (created by this store or seen), so spawns skip creating them.
    known_queues: Mutex<HashSet<String>>,
    /// In-process announcements of ready jobs (see [`MySqlStore::announce`]).
    wakeups: tokio::sync::broadcast::Sender<String>,
    /// Bound to one open transaction on a one-connection pool (see
    /// [`MySqlStore::begin_bound`]).
    bound: bool,
}

impl MySqlStore {
    /// Opens a store on the database at `url`, namespace `default`.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(MySqlConfig::new(url)).await
    }

    /// Opens a store as configured. Refuses servers older than MySQL 8.0.1 or MariaDB 10.6
    /// ([`MySqlError::ServerTooOld`], wrapped in [`Error::Database`]) and a schema migrated by
    /// a newer build ([`Error::SchemaTooNew`]); does not migrate (call
    /// [`migrate`](tasque_durable::Store::migrate)).
    pub async fn connect(config: MySqlConfig) -> Result<Self> {
        let stem = config.table_stem()?;
        let pool = config.open_pool().await?;
        let raw: String = sqlx::query_scalar(queries::SERVER_VERSION)
            .fetch_one(&pool)
            .await
            .map_err(sql_err)?;
        let server = ServerVersion::parse(&raw).map_err(Error::database)?;
        if let Err(too_old) = server.check_supported() {
            pool.close().await;
            return Err(Error::database(too_old));
        }
        let sql = Sql::new(&stem, config.virtual_clock);
        migrate::check_not_newer(migrate::current_version(&pool, &sql, &stem).await?)?;
        Ok(MySqlStore {
            inner: Arc::new(Inner {
                pool,
                ns: config.namespace,
                stem,
                sql,
                limits: config.limits,
                server,
                known_queues: Mutex::default(),
                wakeups: tokio::sync::broadcast::channel(WAKEUP_BACKLOG).0,
                bound: false,
            }),
        })
    }

    /// The connection pool, for callers that need raw access (their own transactions for
    /// [`spawn_in_tx`](Self::spawn_in_tx), tests, tooling).
    pub fn pool(&self) -> &MySqlPool {
        &self.inner.pool
    }

    /// The stem of the namespace's table names, e.g. `tasque_default`: its jobs live in
    /// `tasque_default_jobs`, its queues in `tasque_default_queues`.
    pub fn table_stem(&self) -> &str {
        &self.inner.stem
    }

    /// The server this store is connected to.
    pub fn server_version(&self) -> &ServerVersion {
        &self.inner.server
    }

    /// The schema version of this store's namespace: 0 when it was never migrated,
    /// [`SCHEMA_VERSION`] when it is current. Only reads; changes nothing (operators' read-only
    /// commands use it to refuse an unmigrated database without creating anything).
    pub async fn schema_version(&self) -> Result<i64> {
        migrate::current_version(&self.inner.pool, &self.inner.sql, &self.inner.stem).await
    }

    /// Drops this namespace's tables and everything in them. For tests and tooling: the jobs
    /// are gone for good.
    pub async fn drop_tables(&self) -> Result<()> {
        sqlx::query(&self.inner.sql.drop_tables)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        for statement in queries::DROP_ROUTINES {
            // As text: the server takes no `DROP PROCEDURE` as a prepared statement.
            let text = self.inner.sql.render(statement);
            self.inner
                .pool
                .execute(text.as_str())
                .await
                .map_err(sql_err)?;
        }
        self.forget_queues();
        Ok(())
    }

    /// Migrates the namespace step by step up to schema `version` (at most
    /// [`SCHEMA_VERSION`]), running each migration's statements even on an empty namespace.
    /// For tests of upgrades and for tooling; applications call
    /// [`migrate`](tasque_durable::Store::migrate), which creates a new namespace in its final
    /// shape at once.
    pub async fn migrate_to(&self, version: i64) -> Result<MigrationReport> {
        migrate::run(
            &self.inner.pool,
            &self.inner.sql,
            &self.inner.stem,
            version,
            false,
        )
        .await
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Announcements a lagging wake-up receiver may miss before it is told to treat them as
/// "any queue".
const WAKEUP_BACKLOG: usize = 1024;

impl MySqlStore {
    /// Announces ready jobs in `queues` to the workers of this process that share this store
    /// (clones included). MySQL has no LISTEN/NOTIFY, so other processes learn of them by
    /// polling.
    pub(crate) fn announce<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        if self.inner.wakeups.receiver_count() == 0 {
            return;
        }
        let mut sent = HashSet::new();
        for queue in queues {
            if sent.insert(queue) {
                // Fails only when no worker listens.
                let _ = self.inner.wakeups.send(queue.to_string());
            }
        }
    }
}

/// The server's error number of a database error, if it is one.
pub(crate) fn error_number(err: &sqlx::Error) -> Option<u16> {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// Wraps a sqlx error; out-of-range times and durations (a run time past year 9999, a delay
/// that overflows) become [`Error::InvalidOption`].
pub(crate) fn sql_err(err: sqlx::Error) -> Error {
    // 1048 column cannot be null (an overflowing time is NULL), 1292 incorrect datetime value,
    // 1441 datetime function overflow, 1690 value out of range.
    if let Some(1048 | 1292 | 1441 | 1690) = error_number(&err) {
        let message = match &err {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        };
        return Error::invalid_option("options", message);
    }
    Error::database(err)
}

/// Wake-ups are in-process only (see [`MySqlStore::announce`]): MySQL has no LISTEN/NOTIFY,
/// so workers in other processes poll.
#[async_trait::async_trait]
impl tasque_durable::engine::EngineBase for MySqlStore {
    fn schedule_engine(&self) -> Option<&dyn tasque_durable::schedule::ScheduleEngine> {
        // A store bound to a transaction has no schedules nor elections: an election's
        // session would take its one connection out of the transaction.
        (!self.inner.bound).then_some(self as &dyn tasque_durable::schedule::ScheduleEngine)
    }

    fn insight_engine(&self) -> Option<&dyn tasque_durable::Insight> {
        Some(self)
    }

    fn registry_engine(&self) -> Option<&dyn tasque_durable::registry::WorkerRegistry> {
        Some(self)
    }

    fn flow_engine(&self) -> Option<&dyn tasque_durable::flow::FlowEngine> {
        Some(self)
    }

    fn deps_engine(&self) -> Option<&dyn tasque_durable::deps::DepsEngine> {
        Some(self)
    }

    fn ns(&self) -> &str {
        &self.inner.ns
    }

    fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    async fn clock_now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar(&self.inner.sql.now)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)
    }

    async fn schema_migrate(&self) -> Result<tasque_durable::MigrationReport> {
        migrate::run(
            &self.inner.pool,
            &self.inner.sql,
            &self.inner.stem,
            migrate::SCHEMA_VERSION,
            true,
        )
        .await
    }

    fn wakeups_subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.inner.wakeups.subscribe())
    }
}
