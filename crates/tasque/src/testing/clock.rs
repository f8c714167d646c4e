//! [`TestClock`]: one virtual clock for every engine of a test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tasque_durable::Store;

use super::TestingError;

/// The store whose clock a [`TestClock`] drives.
#[derive(Clone)]
enum Target {
    #[cfg(feature = "sqlite")]
    Sqlite(tasque_sqlite::SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(tasque_postgres::PostgresStore),
    #[cfg(feature = "mysql")]
    MySql(tasque_mysql::MySqlStore),
}

/// The virtual "now" of a store opened in test mode
/// ([`SqliteConfig::with_virtual_clock`](tasque_sqlite::SqliteConfig::with_virtual_clock),
/// `PostgresConfig::with_virtual_clock`, `MySqlConfig::with_virtual_clock`).
///
/// The engine reads every time from it instead of the database clock: run times of delayed
/// and retried jobs, sleeps, event-wait timeouts, leases (so lease expiry and the rescuer),
/// the leader lease and periodic ticks (the scheduler asks the engine for "now"). It starts at
/// the real time when created and stands still until [`advance`](TestClock::advance)d or
/// [`set`](TestClock::set): one statement on the database (every connection and worker process
/// sees it at once) and a wake-up of the store's sleeping workers.
///
/// Clones share the clock.
#[derive(Clone)]
pub struct TestClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    target: Target,
}

/// A store bound to one open transaction: everything done through it is undone by
/// [`roll_back`](Bound::roll_back).
pub(super) struct Bound {
    target: Target,
}

impl Bound {
    /// The bound store.
    pub(super) fn store(&self) -> Arc<dyn Store> {
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Target::Postgres(store) => Arc::new(store.clone()),
            #[cfg(feature = "mysql")]
            Target::MySql(store) => Arc::new(store.clone()),
        }
    }

    /// Rolls the transaction back.
    pub(super) async fn roll_back(self) -> Result<(), TestingError> {
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => store.roll_back_bound().await?,
            #[cfg(feature = "postgres")]
            Target::Postgres(store) => store.roll_back_bound().await?,
            #[cfg(feature = "mysql")]
            Target::MySql(store) => store.roll_back_bound().await?,
        }
        Ok(())
    }
}

impl std::fmt::Debug for TestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl TestClock {
    /// The clock of a SQLite store opened with `with_virtual_clock()`, set to the real time.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(store: &tasque_sqlite::SqliteStore) -> Result<TestClock, TestingError> {
        if !tasque_sqlite::clock::virtual_clock_in_use() {
            return Err(TestingError::NotInTestMode);
        }
        Self::start(Target::Sqlite(store.clone())).await
    }

    /// The clock of a PostgreSQL store opened with `with_virtual_clock()`, set to the real
    /// time.
    #[cfg(feature = "postgres")]
    pub async fn postgres(
        store: &tasque_postgres::PostgresStore,
    ) -> Result<TestClock, TestingError> {
        Self::start(Target::Postgres(store.clone())).await
    }

    /// The clock of a MySQL or MariaDB store opened with `with_virtual_clock()` and migrated,
    /// set to the real time.
    #[cfg(feature = "mysql")]
    pub async fn mysql(store: &tasque_mysql::MySqlStore) -> Result<TestClock, TestingError> {
        if !store.virtual_clock_in_use() {
            return Err(TestingError::NotInTestMode);
        }
        Self::start(Target::MySql(store.clone())).await
    }

    async fn start(target: Target) -> Result<TestClock, TestingError> {
        let start = Utc::now()
            .duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or_else(|_| Utc::now());
        let clock = TestClock {
            now: Arc::new(Mutex::new(start)),
            target,
        };
        clock.set(start).await?;
        if clock.store_now().await? != start {
            // A PostgreSQL store not opened in test mode reads pg_catalog's clock.
            return Err(TestingError::NotInTestMode);
        }
        Ok(clock)
    }

    /// The virtual time now.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward by `by`.
    pub async fn advance(&self, by: Duration) -> Result<DateTime<Utc>, TestingError> {
        let by = TimeDelta::from_std(by).map_err(|_| TestingError::ClockOutOfRange)?;
        let at = self
            .now()
            .checked_add_signed(by)
            .ok_or(TestingError::ClockOutOfRange)?;
        self.set(at).await?;
        Ok(at)
    }

    /// Sets the clock to `at` (milliseconds are kept; going back in time is allowed).
    pub async fn set(&self, at: DateTime<Utc>) -> Result<(), TestingError> {
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => store.set_virtual_now(Some(at)).await?,
            #[cfg(feature = "postgres")]
            Target::Postgres(store) => store.set_virtual_now(Some(at)).await?,
            #[cfg(feature = "mysql")]
            Target::MySql(store) => store.set_virtual_now(Some(at)).await?,
        }
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
        Ok(())
    }

    /// A copy of the clock's store bound to one open transaction (see [`Bound`]).
    pub(super) async fn begin_bound(&self) -> Result<Bound, TestingError> {
        let target = match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => Target::Sqlite(store.begin_bound().await?),
            #[cfg(feature = "postgres")]
            Target::Postgres(store) => Target::Postgres(store.begin_bound().await?),
            #[cfg(feature = "mysql")]
            Target::MySql(store) => Target::MySql(store.begin_bound().await?),
        };
        Ok(Bound { target })
    }

    /// The store's own reading of its clock.
    async fn store_now(&self) -> Result<DateTime<Utc>, TestingError> {
        Ok(match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => store.now().await?,
            #[cfg(feature = "postgres")]
            Target::Postgres(store) => store.now().await?,
            #[cfg(feature = "mysql")]
            Target::MySql(store) => store.now().await?,
        })
    }
}
