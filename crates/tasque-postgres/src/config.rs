//! How to open a [`PostgresStore`](crate::PostgresStore): URL, namespace, schema naming, pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tasque_durable::validate::validate_name;
use tasque_durable::{Error, Limits, Result};

use crate::sql_err;

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The prefix of every namespace's schema name: namespace `default` lives in `tasque_default`.
pub const DEFAULT_SCHEMA_PREFIX: &str = "tasque_";
/// PostgreSQL's longest identifier, in bytes.
const MAX_IDENTIFIER: usize = 63;

/// How to open a [`PostgresStore`](crate::PostgresStore). Build with the `with_*` methods.
///
/// Defaults: namespace `default` (schema `tasque_default`), 10 connections, a 30 s acquire
/// timeout, payloads up to 1 MiB, application name `tasque`.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// The server, as a `postgres://` URL.
    pub url: String,
    /// The namespace of the store (one PostgreSQL schema per namespace).
    pub namespace: String,
    /// Prepended to the namespace to name its schema: `[a-z_][a-z0-9_]*`, at most 32 bytes.
    pub schema_prefix: String,
    /// Payload limits.
    pub limits: Limits,
    /// Connections in the pool (the LISTEN connection comes on top).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// The `application_name` the store's connections report (visible in `pg_stat_activity`).
    pub application_name: String,
    /// Test mode: the store's connections read "now" from the namespace's virtual clock
    /// (see [`crate::clock`]).
    pub virtual_clock: bool,
}

impl PostgresConfig {
    /// A configuration for the server at `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            schema_prefix: DEFAULT_SCHEMA_PREFIX.to_string(),
            limits: Limits::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            application_name: "tasque".to_string(),
            virtual_clock: false,
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the schema prefix (tests use a random one so their cases never meet).
    pub fn with_schema_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.schema_prefix = prefix.into();
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

    /// Sets the `application_name` of the store's connections.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Test mode: the store's statements take "now" from the namespace's virtual clock instead
    /// of the database clock (see [`crate::clock`]). Never for production.
    pub fn with_virtual_clock(mut self) -> Self {
        self.virtual_clock = true;
        self
    }

    /// The schema name of the configured namespace (unquoted), validating both parts.
    pub fn schema_name(&self) -> Result<String> {
        validate_name("namespace", &self.namespace)?;
        validate_prefix(&self.schema_prefix)?;
        Ok(schema_name(&self.schema_prefix, &self.namespace))
    }

    /// Validates the configuration and opens the pool (connections are made on demand).
    pub(crate) async fn open_pool(&self) -> Result<PgPool> {
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(sql_err)?
            .application_name(&self.application_name);
        if self.virtual_clock {
            // The schema's now() and clock_timestamp() shadow pg_catalog's (migration v9).
            let path = format!("{},pg_catalog", self.schema_name()?);
            options = options.options([("search_path", path)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(sql_err)?;
        Ok(pool)
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_option(
            "schema_prefix",
            format!("{prefix:?} must be 1 to 32 characters of a-z, 0-9 and _, not starting with a digit"),
        ))
    }
}

/// `prefix + namespace`, or, when that is longer than PostgreSQL allows, its first bytes and a
/// stable hash of the whole (so long namespaces stay distinct).
pub(crate) fn schema_name(prefix: &str, namespace: &str) -> String {
    let full = format!("{prefix}{namespace}");
    if full.len() <= MAX_IDENTIFIER {
        return full;
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{hash:016x}", &full[..MAX_IDENTIFIER - 17])
}

/// A schema name as a quoted identifier (names never contain quotes: validated above).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_prefix_and_namespace_and_long_ones_are_hashed() {
        assert_eq!(schema_name("tasque_", "default"), "tasque_default");
        let long_a = schema_name("tasque_", &"a".repeat(120));
        let long_b = schema_name("tasque_", &format!("{}b", "a".repeat(119)));
        assert_eq!(long_a.len(), MAX_IDENTIFIER);
        assert_ne!(long_a, long_b);
        assert!(validate_prefix("Bad").is_err());
        assert!(validate_prefix("t1_").is_ok());
        let config = PostgresConfig::new("postgres://x").with_namespace("a b");
        assert!(config.schema_name().is_err());
    }
}
