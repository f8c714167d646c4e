//! The SQLite engine of Tasque's durable queue: [`SqliteStore`] implements
//! [`tasque_durable::Store`] on one database file (or in memory), nothing to install.
//!
//! # Opening
//!
//! ```no_run
//! # async fn demo() -> tasque_durable::Result<()> {
//! use tasque_durable::{Spawn, Store};
//! use tasque_sqlite::{SqliteConfig, SqliteStore};
//!
//! // A file in WAL mode, namespace "default".
//! let store = SqliteStore::open("jobs.db").await?;
//! store.migrate().await?;
//! store.spawn(Spawn::new("emails", "send_welcome", serde_json::json!({"to": "a@b.c"}))).await?;
//!
//! // Another namespace on the same file, and a private in-memory database for tests.
//! let billing = SqliteStore::connect(SqliteConfig::file("jobs.db").with_namespace("billing")).await?;
//! let scratch = SqliteStore::memory().await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **One clock**: every time (leases, schedules, retries) is the database's
//!   `unixepoch('subsec')`, in INTEGER milliseconds.
//! - **Atomic claims**: a claim is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n)` statement,
//!   so any number of tasks and worker *processes* sharing the file never claim the same job;
//!   SQLite serialises writers, `busy_timeout` makes them wait their turn. The UPDATE stamps the
//!   jobs with a claim token and one `SELECT json_group_array(...)` reads them back as a single
//!   row (sqlx hands rows over from SQLite's thread one at a time, so this saves a hand-off
//!   per claimed job).
//! - **Guarded writes**: complete, fail, extend, reschedule and release apply only while the
//!   run still owns the job (`id`, `run_seq`, `state = 'running'` in the WHERE clause).
//! - **Batches**: `spawn_many` is one transaction, `complete_many`, `extend_leases` and
//!   `release` are one statement each (the runs travel as one JSON array).
//! - **Namespaces**: every row carries `ns` and every statement filters on it.
//! - **Gated queues**: claims from queues with a concurrency limit or in blocking mode count
//!   what runs and claim inside one `BEGIN IMMEDIATE` transaction; SQLite's single writer
//!   serialises them across processes.
//! - **Local wake-ups**: spawns and emits through a store wake the idle workers of the same
//!   process at once ([`subscribe_wakeups`](tasque_durable::Store::subscribe_wakeups)); workers
//!   in other processes find the work at their next poll.
//! - **One writer**: every statement that may write goes through one connection, so writers of
//!   one process queue in the process instead of meeting in SQLite's busy handler (which sleeps
//!   for milliseconds); reads (inspection, counts, checkpoints) use a pool of their own. The
//!   engine keeps that connection between its statements while they follow each other, and
//!   hands it back to its pool when idle for a millisecond or after 20 ms: sqlx tests a
//!   connection each time it returns to its pool, one more trip to SQLite's thread per
//!   statement, which halved the rate of one-statement writes (see `held.rs`).
//! - **Durability**: WAL with `synchronous = NORMAL` (see [`SqliteConfig`]).
//!
//! The store implements the narrow [`tasque_durable::engine::Engine`] interface, one trait per
//! file of `ops/`; it is a [`Store`](tasque_durable::Store) through tasque-durable's one
//! generic implementation, which validates every input and holds the policy. All SQL lives
//! in the `queries` module; schema versions in `migrate`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bound;
pub mod clock;
mod config;
mod held;
mod migrate;
mod ops;
mod queries;
mod rows;
mod tx;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;
use tasque_durable::engine::EngineBase;
use tasque_durable::validate::validate_name;
use tasque_durable::{Error, Limits, Result};

pub use config::{Location, SqliteConfig, DEFAULT_NAMESPACE};
pub use migrate::SCHEMA_VERSION;

/// A [`Store`](tasque_durable::Store) on SQLite. Cheap to clone: clones share the pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The one write connection (every statement that may write goes through it), held
    /// between the engine's statements (see [`held`]).
    pool: held::HeldPool,
    /// Read-only statements (inspection, counts, checkpoints, the claim's due check): their
    /// own pool, or the write connection for an in-memory database or a bound store.
    readers: held::HeldPool,
    ns: Arc<str>,
    limits: Limits,
    /// Queues known to exist, so spawning into them skips the queue upsert (queues are never
    /// deleted, so the cache cannot go stale).
    known_queues: Arc<Mutex<HashSet<String>>>,
    /// Local wake-ups: spawns, emits and queue-setting changes made through this store (or
    /// its clones) wake this process's idle workers at once; other processes poll.
    wakeups: tokio::sync::broadcast::Sender<String>,
    /// The next claim token (see `queries::claim_with_token`); seeded from the clock, so tokens
    /// of a restarted worker never meet those its previous life left on running jobs.
    claim_tokens: Arc<std::sync::atomic::AtomicI64>,
    /// Bound to one open transaction on the write connection (see [`SqliteStore::begin_bound`]):
    /// the engine's write transactions are savepoints in it.
    bound: bool,
}

impl SqliteStore {
    /// Opens (creating if missing) a database file in the default namespace.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect(SqliteConfig::file(path.as_ref())).await
    }

    /// Opens a private in-memory database (one connection; gone when the last clone drops).
    pub async fn memory() -> Result<Self> {
        Self::connect(SqliteConfig::memory()).await
    }

    /// Opens a database as configured. Refuses a database migrated by a newer build with
    /// [`Error::SchemaTooNew`]; does not migrate (call [`migrate`](tasque_durable::Store::migrate)).
    pub async fn connect(config: SqliteConfig) -> Result<Self> {
        let (pool, readers) = config.open_pools().await?;
        migrate::check_not_newer(migrate::current_version(pool.raw()).await?)?;
        Ok(SqliteStore {
            pool,
            readers,
            ns: config.namespace.as_str().into(),
            limits: config.limits,
            known_queues: Arc::default(),
            wakeups: tokio::sync::broadcast::channel(WAKEUP_BUFFER).0,
            claim_tokens: Arc::new(std::sync::atomic::AtomicI64::new(token_seed())),
            bound: false,
        })
    }

    /// A store on the same database (and pool) in another namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<Self> {
        validate_name("namespace", namespace)?;
        Ok(SqliteStore {
            pool: self.pool.clone(),
            readers: self.readers.clone(),
            ns: namespace.into(),
            limits: self.limits,
            known_queues: Arc::default(),
            wakeups: tokio::sync::broadcast::channel(WAKEUP_BUFFER).0,
            claim_tokens: self.claim_tokens.clone(),
            bound: self.bound,
        })
    }

    /// Announces a ready job in `queue` ("" for any) to this process's subscribed workers.
    pub(crate) fn announce(&self, queue: &str) {
        if self.wakeups.receiver_count() > 0 {
            let _ = self.wakeups.send(queue.to_string());
        }
    }

    /// The write connection's pool, for callers that need raw access (tests, tooling).
    pub fn pool(&self) -> &SqlitePool {
        self.pool.raw()
    }

    /// Closes the pools, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
        self.readers.close().await;
    }
}

/// The first claim token of a store: nanoseconds since the epoch.
fn token_seed() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX / 2))
}

/// How many wake-up hints a lagging subscriber may miss before it is told it lagged.
const WAKEUP_BUFFER: usize = 256;

#[async_trait::async_trait]
impl EngineBase for SqliteStore {
    fn schedule_engine(&self) -> Option<&dyn tasque_durable::schedule::ScheduleEngine> {
        Some(self)
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
        &self.ns
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn clock_now(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let ms: i64 = sqlx::query_scalar(crate::clock::clocked(queries::SELECT_NOW))
            .fetch_one(&self.readers)
            .await
            .map_err(sql_err)?;
        rows::time(ms)
    }

    async fn schema_migrate(&self) -> Result<tasque_durable::MigrationReport> {
        migrate::run(self.pool.raw()).await
    }

    fn wakeups_subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.wakeups.subscribe())
    }
}

/// Wraps a sqlx error.
pub(crate) fn sql_err(err: sqlx::Error) -> Error {
    Error::database(err)
}
