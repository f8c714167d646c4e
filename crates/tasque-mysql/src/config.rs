//! How to open a [`MySqlStore`](crate::MySqlStore): URL, namespace, table naming, pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySqlPool};
use tasque_durable::validate::validate_name;
use tasque_durable::{Error, Limits, Result};

use crate::{queries, sql_err};

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The prefix of every namespace's tables: namespace `default` lives in `tasque_default_jobs`,
/// `tasque_default_queues`, ...
pub const DEFAULT_TABLE_PREFIX: &str = "tasque_";
/// MySQL's longest identifier, in characters.
const MAX_IDENTIFIER: usize = 64;
/// The longest table suffix (`checkpoints`) and its separator.
const LONGEST_SUFFIX: usize = "_checkpoints".len();

/// How to open a [`MySqlStore`](crate::MySqlStore). Build with the `with_*` methods.
///
/// Defaults: namespace `default` (tables `tasque_default_*`), 10 connections, a 30 s acquire
/// timeout, payloads up to 1 MiB.
#[derive(Clone, Debug)]
pub struct MySqlConfig {
    /// The server and database, as a `mysql://` URL (`mariadb://` is accepted too).
    pub url: String,
    /// The namespace of the store (its own set of tables).
    pub namespace: String,
    /// Prepended to the namespace to name its tables: `[a-z0-9_]`, 1 to 32 characters.
    pub table_prefix: String,
    /// Payload limits.
    pub limits: Limits,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// Test mode: the store reads "now" from the namespace's virtual clock (see
    /// [`with_virtual_clock`](Self::with_virtual_clock)).
    pub virtual_clock: bool,
}

impl MySqlConfig {
    /// A configuration for the server at `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        MySqlConfig {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            table_prefix: DEFAULT_TABLE_PREFIX.to_string(),
            limits: Limits::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            virtual_clock: false,
        }
    }

    /// Opens the store in **test mode**: every statement it runs (and the stored procedures it
    /// creates when it migrates a namespace) reads "now" from the namespace's one-row clock
    /// table (schema version 10) while a virtual time is set there, and from the server clock
    /// otherwise. `tasque::testing::TestClock` sets it. Never use it in production: every
    /// clock read then costs a primary-key lookup. Open a test namespace in test mode from its
    /// creation, so its stored procedures read the virtual clock too (see
    /// [`MySqlStore::set_virtual_now`](crate::MySqlStore::set_virtual_now)).
    pub fn with_virtual_clock(mut self) -> Self {
        self.virtual_clock = true;
        self
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the table prefix (tests use a random one so their cases never meet).
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// Sets the payload limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the pool size (at least 1).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets how long an operation waits for a free connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The stem of the namespace's table names (`<prefix><namespace>`, hashed when too long),
    /// validating both parts. Table `jobs` is `<stem>_jobs`.
    pub fn table_stem(&self) -> Result<String> {
        validate_name("namespace", &self.namespace)?;
        validate_prefix(&self.table_prefix)?;
        Ok(table_stem(&self.table_prefix, &self.namespace))
    }

    /// Opens the pool (connections are made on demand). Every connection runs in UTC with
    /// `READ COMMITTED` isolation, so locking reads lock only the rows they return.
    pub(crate) async fn open_pool(&self) -> Result<MySqlPool> {
        let url = match self.url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => self.url.clone(),
        };
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(sql_err)?
            .timezone(Some("+00:00".to_string()))
            .charset("utf8mb4");
        MySqlPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(queries::SESSION_SETUP).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(sql_err)
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_option(
            "table_prefix",
            format!("{prefix:?} must be 1 to 32 characters of a-z, 0-9 and _"),
        ))
    }
}

/// `prefix + namespace`, or, when a table name built from it would be longer than MySQL
/// allows, its first characters and a stable hash of the whole (so long namespaces stay
/// distinct).
pub(crate) fn table_stem(prefix: &str, namespace: &str) -> String {
    let full = format!("{prefix}{namespace}");
    let room = MAX_IDENTIFIER - LONGEST_SUFFIX;
    if full.len() <= room {
        return full;
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{hash:016x}", &full[..room - 17])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_prefix_and_namespace_and_long_ones_are_hashed() {
        assert_eq!(table_stem("tasque_", "default"), "tasque_default");
        let long_a = table_stem("tasque_", &"a".repeat(120));
        let long_b = table_stem("tasque_", &format!("{}b", "a".repeat(119)));
        assert_eq!(long_a.len() + LONGEST_SUFFIX, MAX_IDENTIFIER);
        assert_ne!(long_a, long_b);
        assert!(validate_prefix("Bad").is_err());
        assert!(validate_prefix("t1_").is_ok());
        assert!(MySqlConfig::new("mysql://x")
            .with_namespace("a b")
            .table_stem()
            .is_err());
    }
}
