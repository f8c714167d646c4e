//! The PostgreSQL engine of Tasque's durable queue: [`PostgresStore`] implements
//! [`tasque_durable::Store`] on one PostgreSQL database that any number of worker processes on
//! any number of machines share.
//!
//! # Opening
//!
//! ```no_run
//! # async fn demo() -> tasque_durable::Result<()> {
//! use tasque_durable::{Spawn, Store};
//! use tasque_postgres::{PostgresConfig, PostgresStore};
//!
//! let store = PostgresStore::connect(
//!     PostgresConfig::new("postgres://postgres@127.0.0.1/app").with_namespace("billing"),
//! )
//! .await?;
//! store.migrate().await?;
//! store.spawn(Spawn::new("invoices", "render", serde_json::json!({"id": 7}))).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **One clock**: leases, schedules and retries use the database's `now()` (the spawn
//!   function uses `clock_timestamp()`, so a job spawned in a long transaction is not dated
//!   back to its start). Clock skew between worker machines cannot double-run a job.
//! - **Claims** are one statement: a CTE selects ready jobs in poll order with
//!   `FOR UPDATE SKIP LOCKED` and the `UPDATE ... RETURNING` around it takes them, so
//!   concurrent claimers never wait for each other and never share a job. Queues without
//!   unfinished keyed jobs are claimed by a statement without the per-key window, which
//!   walks the claim index to its limit however many finished jobs the table keeps; the
//!   windowed statement takes over while the queues hold keyed jobs (see `keyed.rs`).
//! - **Guarded writes**: complete, fail, extend, reschedule and release apply only while the
//!   run still owns the job (`id`, `run_seq` and `state = 'running'` in the WHERE clause); a
//!   stale owner's write changes nothing and is reported.
//! - **Batches**: `spawn_many`, `complete_many`, `extend_leases` and `release` are one
//!   statement each, the runs travelling as parallel arrays (`unnest`).
//! - **Namespaces are schemas**: namespace `ns` lives in schema `tasque_ns` (the prefix is
//!   configurable). A schema rather than a namespace column because it makes isolation
//!   structural (no statement can forget a filter), keeps every index free of a leading
//!   column, gives each namespace its own SQL functions (`tasque_ns.spawn(...)`) and its own
//!   migrations, and lets tests run side by side and clean up with one `DROP SCHEMA`.
//! - **Versioned migrations**, one transaction each, serialised across processes by a
//!   transaction-level advisory lock; a schema newer than this build is refused with
//!   [`Error::SchemaTooNew`](tasque_durable::Error::SchemaTooNew).
//! - **Wake-ups**: spawning announces ready jobs' queues on the namespace's channel
//!   (`pg_notify`, delivered at commit); [`Store::subscribe_wakeups`](tasque_durable::Store::subscribe_wakeups)
//!   hands them to workers, which claim at once instead of waiting for their next poll. The
//!   listening connection is re-established when lost; polling remains the fallback.
//! - **Transactional enqueue**: [`PostgresStore::spawn_in_tx`] and
//!   [`PostgresStore::spawn_many_in_tx`] write in the caller's transaction.
//! - **Enqueue from any language**: the migrations install `tasque_<ns>.spawn(queue, task,
//!   params, options)`, the very function the Rust API calls (see the README).
//!
//! All SQL lives in `queries` and `sql/*.sql`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bound;
pub mod clock;
mod config;
mod keyed;
mod listen;
mod migrate;
mod ops;
mod queries;
mod rows;
mod tx;

use std::sync::Arc;

use sqlx::PgPool;
use tasque_durable::{Error, Limits, MigrationReport, Result};

pub use config::{PostgresConfig, DEFAULT_NAMESPACE, DEFAULT_SCHEMA_PREFIX};
pub use migrate::SCHEMA_VERSION;

use crate::listen::Wakeups;
use crate::queries::Sql;

/// A [`Store`](tasque_durable::Store) on PostgreSQL. Cheap to clone: clones share the pool and
/// the wake-up listener.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    ns: String,
    /// The schema name, unquoted (also the notification channel).
    schema: String,
    sql: Sql,
    /// The queue sets claimed with the windowed statement (see [`keyed`]).
    keyed: keyed::KeyedQueueSets,
    limits: Limits,
    wakeups: Wakeups,
    /// Bound to one open transaction on a one-connection pool (see
    /// [`PostgresStore::begin_bound`]).
    bound: bool,
}

impl PostgresStore {
    /// Opens a store on the server at `url`, namespace `default`.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(PostgresConfig::new(url)).await
    }

    /// Opens a store as configured. Refuses a schema migrated by a newer build with
    /// [`Error::SchemaTooNew`]; does not migrate (call
    /// [`migrate`](tasque_durable::Store::migrate)).
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        let schema = config.schema_name()?;
        let pool = config.open_pool().await?;
        let store = Self::assemble(pool, &config.namespace, schema, config.limits);
        migrate::check_not_newer(
            migrate::current_version(&store.inner.pool, &store.inner.schema).await?,
        )?;
        Ok(store)
    }

    fn assemble(pool: PgPool, ns: &str, schema: String, limits: Limits) -> Self {
        let sql = Sql::new(&config::quote(&schema), &schema);
        let wakeups = Wakeups::new(pool.clone(), schema.clone());
        PostgresStore {
            inner: Arc::new(Inner {
                pool,
                ns: ns.to_string(),
                schema,
                sql,
                keyed: Default::default(),
                limits,
                wakeups,
                bound: false,
            }),
        }
    }

    /// The connection pool, for callers that need raw access (their own transactions for
    /// [`spawn_in_tx`](Self::spawn_in_tx), tests, tooling).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Migrates the namespace up to schema `version` (at most [`SCHEMA_VERSION`]). For tests of
    /// upgrades and for tooling; applications call
    /// [`migrate`](tasque_durable::Store::migrate).
    pub async fn migrate_to(&self, version: i64) -> Result<MigrationReport> {
        migrate::run_to(&self.inner.pool, &self.inner.schema, version).await
    }

    /// The namespace's schema name (unquoted), e.g. `tasque_default`: where its tables and its
    /// `spawn` SQL function live. It is also the name of its notification channel.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The statements that claim jobs or write runs by key (claims of one and of several
    /// queues, completion, deletion on success, release, lease extension), by name, rendered
    /// for this namespace. For plan tests: each must find the rows it changes by primary key,
    /// whatever the column statistics and the table's size.
    #[doc(hidden)]
    pub fn run_write_statements(&self) -> Vec<(&'static str, String)> {
        let sql = &self.inner.sql;
        let order = tasque_durable::PollOrder::PriorityThenAge;
        vec![
            ("claim_one_queue", sql.claim.get(1, order).to_owned()),
            ("claim_many_queues", sql.claim.get(2, order).to_owned()),
            (
                "claim_one_queue_unkeyed",
                sql.claim.unkeyed(1, order).to_owned(),
            ),
            (
                "claim_many_queues_unkeyed",
                sql.claim.unkeyed(2, order).to_owned(),
            ),
            ("complete_many", sql.complete_many.clone()),
            ("delete_runs", sql.delete_runs.clone()),
            ("release_runs", sql.release_runs.clone()),
            ("extend_leases", sql.extend_leases.clone()),
            ("extend_lease", sql.extend_lease.clone()),
        ]
    }

    /// The unkeyed claim statements (of one queue and of several, in both poll orders), by
    /// name, rendered for this namespace. For plan tests: each walks its claim index in order,
    /// whatever the size of the table's history.
    #[doc(hidden)]
    pub fn unkeyed_claim_statements(&self) -> Vec<(&'static str, String)> {
        let claim = &self.inner.sql.claim;
        let (priority, age) = (
            tasque_durable::PollOrder::PriorityThenAge,
            tasque_durable::PollOrder::Age,
        );
        vec![
            (
                "unkeyed_one_by_priority",
                claim.unkeyed(1, priority).to_owned(),
            ),
            ("unkeyed_one_by_age", claim.unkeyed(1, age).to_owned()),
            (
                "unkeyed_many_by_priority",
                claim.unkeyed(2, priority).to_owned(),
            ),
            ("unkeyed_many_by_age", claim.unkeyed(2, age).to_owned()),
        ]
    }

    /// How many times the wake-up listener has connected and started listening (0 until the
    /// first [`subscribe_wakeups`](tasque_durable::Store::subscribe_wakeups) has connected; it
    /// grows by one at each reconnection).
    pub fn listener_generation(&self) -> u64 {
        self.inner.wakeups.generation()
    }

    /// Waits until the wake-up listener's generation reaches `at_least` (wrap it in a timeout).
    pub async fn wait_listener_generation(&self, at_least: u64) {
        self.inner.wakeups.wait_generation(at_least).await;
    }

    /// The schema version of this store's namespace: 0 when it was never migrated,
    /// [`SCHEMA_VERSION`] when it is current. Only reads; changes nothing (operators' read-only
    /// commands use it to refuse an unmigrated database without creating anything).
    pub async fn schema_version(&self) -> Result<i64> {
        migrate::current_version(&self.inner.pool, &self.inner.schema).await
    }

    /// Makes `queue` quiet (`notify` false) or notifying again (true, the default), creating
    /// it if needed. Spawns of ready jobs into a quiet queue, from Rust or from SQL, do not
    /// `NOTIFY`; workers find its jobs by polling (the worker's `poll_interval`, 200 ms by
    /// default), and at once while they are busy.
    /// A notification makes PostgreSQL commit the notifying transactions one at a time, so
    /// many producing connections go faster into a quiet queue (see the README's
    /// "Producers" chapter). The same from SQL: `UPDATE "tasque_NS".queues SET notify = false
    /// WHERE name = 'QUEUE'` once the queue exists.
    pub async fn set_queue_notify(&self, queue: &str, notify: bool) -> Result<()> {
        tasque_durable::validate::validate_name("queue", queue)?;
        sqlx::query(&self.inner.sql.set_queue_notify)
            .bind(queue)
            .bind(notify)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Drops this namespace's schema and everything in it. For tests and tooling: the jobs are
    /// gone for good.
    pub async fn drop_schema(&self) -> Result<()> {
        migrate::drop_schema(&self.inner.pool, &self.inner.schema).await
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Wraps a sqlx error; PostgreSQL's "invalid parameter value" errors raised by the schema's
/// validation (SQLSTATE 22023) and bad timestamps (22007, 22008) become
/// [`Error::InvalidOption`].
pub(crate) fn sql_err(err: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &err {
        if matches!(db.code().as_deref(), Some("22023" | "22007" | "22008")) {
            return Error::invalid_option("options", db.message().to_string());
        }
    }
    Error::database(err)
}

#[async_trait::async_trait]
impl tasque_durable::engine::EngineBase for PostgresStore {
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
        let now: rows::Stamp = sqlx::query_scalar(&self.inner.sql.now)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(now.0)
    }

    async fn schema_migrate(&self) -> Result<tasque_durable::MigrationReport> {
        migrate::run(&self.inner.pool, &self.inner.schema).await
    }

    fn wakeups_subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.wakeups.subscribe()
    }

    async fn finished_announce(&self, jobs: &[tasque_durable::JobId]) -> Result<()> {
        self.notify_finished(jobs).await
    }

    async fn finished_watch(&self, job: tasque_durable::JobId) -> Result<Option<u64>> {
        self.watch_finished_job(job).await
    }

    async fn finished_unwatch(&self, job: tasque_durable::JobId, token: u64) -> Result<()> {
        self.unwatch_finished_job(job, token).await
    }
}
