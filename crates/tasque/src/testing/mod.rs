//! Test helpers for code that enqueues and runs jobs (feature `testing`).
//!
//! # The model
//!
//! A [`TestEnv`] is a test's client over a real engine in **test mode**: the engine takes
//! "now" from a [`TestClock`] instead of the database clock, so advancing that one clock
//! drives retry backoff, delays, schedules, workflow sleeps, event-wait timeouts, lease expiry
//! and periodic ticks together, and a job that retries after an hour, sleeps a day and waits a
//! week for an event is tested in milliseconds. [`TestEnv::manual`] and
//! [`TestEnv::inline`] use an in-memory SQLite database; [`TestEnv::new`] takes any store
//! opened in test mode with its clock: a PostgreSQL schema (`TestClock::postgres`), a
//! MySQL/MariaDB namespace (`TestClock::mysql`: every statement reads the namespace's clock
//! table instead of `UTC_TIMESTAMP(6)`), a SQLite file shared with worker processes
//! ([`TestEnv::from_sqlite`]).
//!
//! * **Modes.** In [`Mode::Manual`], enqueued jobs are stored and the test runs them with
//!   [`drain`](TestEnv::drain) / [`drain_with`](TestEnv::drain_with) (include scheduled
//!   jobs, run the jobs drained jobs enqueue (recursive), stop at the first error). In
//!   [`Mode::Inline`], an enqueue through [`TestEnv::enqueue`] or [`TestEnv::client`] runs
//!   the enqueued job, and only it (its retries too, advancing the clock), before it
//!   returns. Both run jobs through a real worker with the handlers registered on
//!   [`TestEnv::handlers`], so the contract is the production one: the in-process queue's
//!   timeouts and panic isolation, the job's retry options.
//! * **Assertions.** [`assert_enqueued!`](crate::assert_enqueued) and
//!   [`refute_enqueued!`](crate::refute_enqueued) match an [`Expect`] (kind, queue, a JSON
//!   subset of the args, priority, scheduled time within a tolerance, optionally waiting);
//!   [`TestEnv::all_enqueued`] returns typed jobs; [`TestEnv::scoped`] gives a [`Scope`] that
//!   sees only the jobs enqueued by one future. A failure lists the jobs that were there.
//! * **Test worker.** [`TestEnv::perform`] runs one typed handler (the type
//!   `Handlers::register` takes) on given args against the engine inside a transaction that
//!   is rolled back afterwards, and returns the outcome and the job as it ended: nothing of
//!   the run (the job, what it enqueued, its completion) stays in the database.
//! * **Workflows.** [`TestEnv::emit_event`], [`TestEnv::checkpoints`] and
//!   [`TestEnv::perform_from`] (a workflow run resuming after given steps).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use serde::{Deserialize, Serialize};
//! use tasque::testing::{Expect, TestEnv};
//! use tasque::{assert_enqueued, Job};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { user: u64 }
//! impl Job for Welcome {
//!     const KIND: &'static str = "welcome";
//!     type Output = String;
//! }
//!
//! let env = TestEnv::manual().await?;
//! env.client().enqueue(Welcome { user: 7 }).await?;
//! assert_enqueued!(env, Expect::job::<Welcome>().args(serde_json::json!({"user": 7})));
//!
//! env.handlers().register(|w: Welcome, _ctx| async move {
//!     Ok::<_, std::io::Error>(format!("hello {}", w.user))
//! });
//! let report = env.drain("default").await?;
//! assert_eq!(report.completed, 1);
//! # Ok(()) }
//! ```

mod clock;
mod drain;
mod expect;
mod gate;
mod perform;
mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tasque_durable::client::{Client, ClientError, Enqueued, Job, JobOptions};
use tasque_durable::{Checkpoint, JobId, JobInfo, Store};
use tasque_worker::{Handlers, JobContext};

pub use clock::TestClock;
pub use drain::{DrainOptions, DrainReport};
pub use expect::{json_subset, Expect};
pub use perform::{Performance, Performed};
pub use view::{Enqueues, View};

/// What the test helpers report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// The engine failed.
    #[error(transparent)]
    Store(#[from] tasque_durable::Error),
    /// The client refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The worker could not be built or started.
    #[error(transparent)]
    Worker(#[from] tasque_worker::Error),
    /// The store was not opened in test mode (`with_virtual_clock()`), so its clock cannot be
    /// driven.
    #[error("the store is not in test mode: open it with `with_virtual_clock()`")]
    NotInTestMode,
    /// The clock would leave the representable range.
    #[error("the test clock would leave the representable range")]
    ClockOutOfRange,
    /// Jobs were still ready or running when the drain's time limit passed.
    #[error("draining queue {queue:?}: jobs still ready or running after {limit:?}")]
    DrainTimedOut {
        /// The queue drained.
        queue: String,
        /// The real-time limit.
        limit: Duration,
    },
    /// A job's attempt failed during a drain with `stop_on_error`.
    #[error("job {job} ({task}) failed: {reason}")]
    JobFailed {
        /// The job.
        job: JobId,
        /// Its kind.
        task: String,
        /// Why its attempt failed.
        reason: String,
    },
    /// A job's args or output did not decode into its type.
    #[error("job {job} does not decode as {kind}: {source}")]
    Decode {
        /// The job.
        job: JobId,
        /// The kind expected.
        kind: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A job's args did not encode.
    #[error("args of kind {kind} do not encode: {source}")]
    Encode {
        /// The kind.
        kind: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// The job to seed steps into could not be claimed.
    #[error("the job to run could not be claimed")]
    NotClaimable,
}

/// A failed enqueue assertion: its message lists what was expected and the jobs that were
/// there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AssertionError {
    message: String,
}

impl AssertionError {
    fn new(message: String) -> Self {
        AssertionError { message }
    }

    fn from_error(error: TestingError) -> Self {
        AssertionError::new(format!("could not read the enqueued jobs: {error}"))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// How enqueued jobs run in a [`TestEnv`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Jobs are stored; the test runs them with [`TestEnv::drain`].
    Manual,
    /// An enqueue through [`TestEnv::enqueue`] or [`TestEnv::client`] runs the enqueued job
    /// (only it), retries included, before it returns.
    Inline,
}

/// A test's client, clock and handlers. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct TestEnv {
    view: View,
    /// The client over the store itself (whose enqueues only store jobs).
    raw: Client,
    handlers: Handlers,
    mode: Mode,
}

impl Enqueues for TestEnv {
    fn view(&self) -> &View {
        &self.view
    }
}

impl TestEnv {
    /// Manual mode on a fresh in-memory SQLite database in test mode.
    pub async fn manual() -> Result<TestEnv, TestingError> {
        Self::memory(Mode::Manual).await
    }

    /// Inline mode on a fresh in-memory SQLite database in test mode.
    pub async fn inline() -> Result<TestEnv, TestingError> {
        Self::memory(Mode::Inline).await
    }

    async fn memory(mode: Mode) -> Result<TestEnv, TestingError> {
        let config = tasque_sqlite::SqliteConfig::memory().with_virtual_clock();
        Self::from_sqlite(tasque_sqlite::SqliteStore::connect(config).await?, mode).await
    }

    /// A test env over a SQLite store opened with `with_virtual_clock()` (a file shared with
    /// worker processes, or a memory database the code under test also holds), migrated.
    pub async fn from_sqlite(
        store: tasque_sqlite::SqliteStore,
        mode: Mode,
    ) -> Result<TestEnv, TestingError> {
        store.migrate().await?;
        let clock = TestClock::sqlite(&store).await?;
        Ok(Self::new(Client::new(Arc::new(store)), clock, mode))
    }

    /// A test env over a MySQL/MariaDB store opened with `with_virtual_clock()`, migrated
    /// (its namespace best created by it, so its stored procedures read the virtual clock too).
    #[cfg(feature = "mysql")]
    pub async fn from_mysql(
        store: tasque_mysql::MySqlStore,
        mode: Mode,
    ) -> Result<TestEnv, TestingError> {
        store.migrate().await?;
        let clock = TestClock::mysql(&store).await?;
        Ok(Self::new(Client::new(Arc::new(store)), clock, mode))
    }

    /// A test env over any store opened in test mode, with its clock (the test worker,
    /// [`perform`](TestEnv::perform), binds the clock's store to its transaction: give the
    /// clock of the client's store). In inline mode, the
    /// env's [`client`](TestEnv::client) is one over the same store whose enqueues run the
    /// jobs they enqueue; `client` itself is not changed (its enqueues only store jobs).
    pub fn new(client: Client, clock: TestClock, mode: Mode) -> TestEnv {
        let raw = client.clone();
        let handlers = Handlers::new();
        let client = match mode {
            Mode::Manual => client,
            Mode::Inline => {
                let gate: Arc<dyn Store> = Arc::new(gate::Gate::inline(
                    raw.store().clone(),
                    gate::Inline {
                        clock: clock.clone(),
                        handlers: handlers.clone(),
                    },
                ));
                Client::new(gate)
            }
        };
        TestEnv {
            view: View {
                client,
                clock,
                after: 0,
                upto: None,
            },
            raw,
            handlers,
            mode,
        }
    }

    /// The client. In manual mode, its enqueues store jobs for a drain; in inline mode, each
    /// enqueue (one job or many) runs the jobs it enqueued, and only them, before it returns,
    /// as [`TestEnv::enqueue`] does.
    pub fn client(&self) -> &Client {
        &self.view.client
    }

    /// The store beneath (enqueues through it only store jobs, in either mode).
    pub fn store(&self) -> &Arc<dyn Store> {
        self.raw.store()
    }

    /// The virtual clock.
    pub fn clock(&self) -> &TestClock {
        &self.view.clock
    }

    /// The handlers drains and inline enqueues run jobs with (register on them).
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Enqueues `job`; in inline mode, runs it (only it, its retries and scheduled runs
    /// included, advancing the clock; not other ready jobs, nor jobs it enqueues) before
    /// returning. The same as enqueueing through [`client`](TestEnv::client).
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<Enqueued<J>, TestingError> {
        self.enqueue_with(job, JobOptions::new()).await
    }

    /// [`enqueue`](TestEnv::enqueue) with options.
    pub async fn enqueue_with<J: Job>(
        &self,
        job: J,
        options: JobOptions,
    ) -> Result<Enqueued<J>, TestingError> {
        Ok(self.client().enqueue_with(job, options).await?)
    }

    /// Runs the ready jobs of `queue` that exist now; jobs they enqueue are not run (see
    /// [`DrainOptions::recursive`]).
    pub async fn drain(&self, queue: &str) -> Result<DrainReport, TestingError> {
        self.drain_with(queue, DrainOptions::new()).await
    }

    /// Runs the jobs of `queue` as `options` say.
    pub async fn drain_with(
        &self,
        queue: &str,
        options: DrainOptions,
    ) -> Result<DrainReport, TestingError> {
        drain::drain(
            self.store(),
            self.clock(),
            &self.handlers,
            &[queue.to_string()],
            &options,
            None,
        )
        .await
    }

    /// The args of every enqueued job of kind `J`, by id.
    pub async fn all_enqueued<J: Job>(&self) -> Result<Vec<J>, TestingError> {
        self.view.all_enqueued().await
    }

    /// Runs `work` and returns its output with a [`Scope`] that sees only the jobs enqueued
    /// while it ran.
    pub async fn scoped<T>(
        &self,
        work: impl Future<Output = T>,
    ) -> Result<(T, Scope), TestingError> {
        let after = self.view.last_id().await?;
        let output = work.await;
        let upto = self.view.last_id().await?;
        let view = View {
            after,
            upto: Some(upto),
            ..self.view.clone()
        };
        Ok((output, Scope { view }))
    }

    /// Runs `handler` once on `args` against the engine, inside one transaction that is
    /// rolled back afterwards, and returns what the run led to with the job as it ended (its
    /// state, attempts, errors, result, read inside the transaction).
    ///
    /// The engine is bound to that transaction for the duration of the perform: a copy of the
    /// clock's store whose every operation runs on one connection holding it (the engine's own
    /// transactions become savepoints in it). The job is enqueued as the client would (its
    /// kind's options: queue, priority, retries), run alone by a real worker with the
    /// production contract (other jobs of its queue are not handed out), and read; then
    /// everything is rolled back: the job's row, its checkpoints and errors, what the handler
    /// enqueued or emitted through its context, its completion. The database is as it was.
    ///
    /// On SQLite, the copy uses the database's one write connection, so the test's other
    /// stores on it wait (or, for the in-memory database, share the transaction) until the
    /// perform returns. On PostgreSQL and MySQL it is a connection of its own, invisible to
    /// the others until the roll-back; notifications sent in it are never delivered (its
    /// worker polls). To see what a handler enqueues, assert on it inside the handler or use
    /// [`drain`](TestEnv::drain), which keeps what jobs do.
    pub async fn perform<J, F, Fut, E>(
        &self,
        args: J,
        handler: F,
    ) -> Result<Performance<J::Output>, TestingError>
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        perform::perform(self.clock(), args, handler, Vec::new()).await
    }

    /// Like [`perform`](TestEnv::perform), for a workflow resuming from a given step: the
    /// steps named in `completed` are stored first as the job's checkpoints, so
    /// `ctx.step(name, ..)` returns their value without running, and the handler goes on from
    /// the first step not listed.
    pub async fn perform_from<J, F, Fut, E>(
        &self,
        args: J,
        completed: impl IntoIterator<Item = (String, Value)>,
        handler: F,
    ) -> Result<Performance<J::Output>, TestingError>
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        perform::perform(self.clock(), args, handler, completed.into_iter().collect()).await
    }

    /// Emits an event (stored, waking every job waiting for it); returns how many woke.
    pub async fn emit_event(&self, name: &str, payload: Value) -> Result<u64, TestingError> {
        Ok(self.store().emit_event(name, payload).await?)
    }

    /// A job's checkpoints (its workflow steps' stored results, sleeps and waits), by name.
    pub async fn checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>, TestingError> {
        Ok(self.store().get_checkpoints(job).await?)
    }

    /// A job's full record.
    pub async fn job(&self, job: JobId) -> Result<JobInfo, TestingError> {
        Ok(self.store().get_job(job).await?)
    }
}

/// The jobs enqueued while one future ran ([`TestEnv::scoped`]); assertions on it see only
/// those.
#[derive(Clone, Debug)]
pub struct Scope {
    view: View,
}

impl Enqueues for Scope {
    fn view(&self) -> &View {
        &self.view
    }
}

impl Scope {
    /// The args of every job of kind `J` enqueued in the scope (and still enqueued), by id.
    pub async fn all_enqueued<J: Job>(&self) -> Result<Vec<J>, TestingError> {
        self.view.all_enqueued().await
    }
}

/// Asserts that a job matching an [`Expect`] is enqueued where `target` (a
/// [`TestEnv`] or a [`Scope`]) looks, waiting up to the expectation's `within`; evaluates to
/// the job's record. Panics with the jobs that were there otherwise. Use in async code.
#[macro_export]
macro_rules! assert_enqueued {
    ($target:expr, $expect:expr $(,)?) => {
        match $crate::testing::Enqueues::view(&$target)
            .assert_enqueued(&$expect)
            .await
        {
            Ok(job) => job,
            Err(failure) => panic!("assert_enqueued! failed: {}", failure),
        }
    };
}

/// Asserts that no job matching an [`Expect`] is enqueued where `target` (a [`TestEnv`] or
/// a [`Scope`]) looks, watching for the expectation's `within`. Panics with the matching jobs
/// otherwise. Use in async code.
#[macro_export]
macro_rules! refute_enqueued {
    ($target:expr, $expect:expr $(,)?) => {
        if let Err(failure) = $crate::testing::Enqueues::view(&$target)
            .refute_enqueued(&$expect)
            .await
        {
            panic!("refute_enqueued! failed: {}", failure);
        }
    };
}
