//! Opening a SQLite database: file (WAL) or memory.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tasque_durable::validate::validate_name;
use tasque_durable::{Limits, Result};

use crate::held::HeldPool;
use crate::sql_err;

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A file, created if missing, in WAL mode.
    File(PathBuf),
    /// A private in-memory database on one connection, gone when the store is dropped.
    Memory,
}

/// How to open a [`SqliteStore`](crate::SqliteStore). Build with the `with_*` methods.
///
/// Defaults: namespace `default`, WAL journal, `synchronous = NORMAL`, `busy_timeout` 5 s,
/// 4 connections for a file (1 for memory), payloads up to 1 MiB.
///
/// `synchronous = NORMAL` in WAL mode never corrupts the database; a power loss (not a process
/// crash) may roll back the last transactions committed before it. Use
/// [`with_full_sync`](SqliteConfig::with_full_sync) when that is not acceptable, at a large cost
/// in write throughput.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// Where the database lives.
    pub location: Location,
    /// The namespace of the store.
    pub namespace: String,
    /// Payload limits.
    pub limits: Limits,
    /// Read connections (a file only; memory always uses one connection). Writes always go
    /// through one connection of their own: SQLite has one writer at a time, and queueing
    /// writers in the process is far cheaper than SQLite's busy-wait, which sleeps for
    /// milliseconds whenever two connections of the same process want the lock.
    pub max_connections: u32,
    /// How long a statement waits for another connection's write lock before failing.
    pub busy_timeout: Duration,
    /// `synchronous = FULL` instead of `NORMAL`.
    pub full_sync: bool,
}

impl SqliteConfig {
    /// A file database, created if missing.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::at(Location::File(path.into()))
    }

    /// A private in-memory database.
    pub fn memory() -> Self {
        Self::at(Location::Memory)
    }

    /// Parses `sqlite::memory:`, `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn from_url(url: &str) -> Self {
        if url == "sqlite::memory:" || url == ":memory:" {
            return Self::memory();
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        Self::file(path)
    }

    fn at(location: Location) -> Self {
        SqliteConfig {
            location,
            namespace: DEFAULT_NAMESPACE.to_string(),
            limits: Limits::default(),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            full_sync: false,
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the payload limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the number of read connections of a file database (at least 1).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the busy timeout.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Test mode: statements take "now" from the database's virtual clock (see
    /// [`crate::clock`]). Switches the whole process (SQLite statements are shared constants):
    /// never for production.
    pub fn with_virtual_clock(self) -> Self {
        crate::clock::use_virtual_clock();
        self
    }

    /// Uses `synchronous = FULL`: durable across power loss, slower.
    pub fn with_full_sync(mut self) -> Self {
        self.full_sync = true;
        self
    }

    /// Validates the configuration and opens the pools: `(writer, readers)`. The writer has one
    /// connection; an in-memory database has one connection in all, shared by both.
    pub(crate) async fn open_pools(&self) -> Result<(HeldPool, HeldPool)> {
        validate_name("namespace", &self.namespace)?;
        let sync = if self.full_sync {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let (options, max) = match &self.location {
            Location::File(path) => (
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
                self.max_connections,
            ),
            Location::Memory => (
                SqliteConnectOptions::from_str("sqlite::memory:").map_err(sql_err)?,
                1,
            ),
        };
        // Recursive triggers: a child cancelled by its parent's failure cancels its own
        // dependents through the same trigger (migration v12).
        let options = options
            .synchronous(sync)
            .busy_timeout(self.busy_timeout)
            .pragma("recursive_triggers", "ON");
        if let Location::File(_) = self.location {
            // Switch a new file to WAL on one connection first: pool connections opening at
            // once would otherwise race for the exclusive lock that the switch needs.
            use sqlx::ConnectOptions;
            let conn = options.connect().await.map_err(sql_err)?;
            sqlx::Connection::close(conn).await.map_err(sql_err)?;
        }
        // The write pool keeps no minimum: its connection, opened here, is never closed for
        // idleness or age, and a pool with a minimum spawns a task (which needs the async
        // runtime) whenever one of its connections leaves it, even for good (see `held`).
        let pool = |size: u32, min: u32| {
            SqlitePoolOptions::new()
                .max_connections(size)
                .min_connections(min)
                .idle_timeout(None)
                .max_lifetime(None)
                // No ping before each acquire: a SQLite connection is a file handle in this
                // process, which no network or server can drop behind its back, and the ping
                // cost a round trip to the connection's thread before every statement.
                .test_before_acquire(false)
                .connect_with(options.clone())
        };
        let writer = HeldPool::new(pool(1, 0).await.map_err(sql_err)?, true);
        let readers = match self.location {
            Location::Memory => writer.clone(),
            Location::File(_) => HeldPool::new(pool(max, 1).await.map_err(sql_err)?, false),
        };
        Ok((writer, readers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files_or_memory() {
        assert_eq!(
            SqliteConfig::from_url("sqlite::memory:").location,
            Location::Memory
        );
        for url in [
            "sqlite:///tmp/a.db",
            "sqlite:/tmp/a.db",
            "/tmp/a.db",
            "sqlite:///tmp/a.db?mode=rwc",
        ] {
            assert_eq!(
                SqliteConfig::from_url(url).location,
                Location::File("/tmp/a.db".into()),
                "{url}"
            );
        }
        assert_eq!(
            SqliteConfig::from_url("sqlite://jobs.db").location,
            Location::File("jobs.db".into())
        );
    }
}
