//! Opening the store a database URL names, and the schema rule.
//!
//! **Migrations on servers are explicit.** The embedded SQLite default creates or upgrades
//! its schema on first use. On PostgreSQL and MySQL only `tasque migrate` (or a command that
//! writes, given `--auto-migrate`) changes the schema: every other command reads the
//! namespace's schema version first, changes nothing, and stops with a clear error when the
//! schema is missing or older than this build.

use std::sync::Arc;

use tasque_durable::Store;
use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};

use crate::fail::CliError;
use crate::secrets::redact;

/// What a command may do to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Create or upgrade it (`tasque migrate`, or `--auto-migrate` on a command that writes).
    Migrate,
    /// Require it to be current; never change it.
    Require,
}

/// Opens the store for `url` in `namespace` and applies the schema rule.
pub async fn open(url: &str, namespace: &str, schema: Schema) -> Result<Arc<dyn Store>, CliError> {
    if is_sqlite(url) {
        // The embedded default creates its schema on first use.
        let store = open_sqlite(url, namespace).await?;
        store.migrate().await.map_err(CliError::from_store)?;
        return Ok(store);
    }
    let (store, found, supported): (Arc<dyn Store>, i64, i64) = if url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        // The namespace is the PostgreSQL schema `tasque_<namespace>`.
        let config = PostgresConfig::new(url).with_namespace(namespace);
        let store = PostgresStore::connect(config)
            .await
            .map_err(CliError::from_store)?;
        let found = store.schema_version().await.map_err(CliError::from_store)?;
        (Arc::new(store), found, tasque_postgres::SCHEMA_VERSION)
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        // The namespace is the table set `tasque_<namespace>_*` in the URL's database.
        let config = MySqlConfig::new(url).with_namespace(namespace);
        let store = MySqlStore::connect(config)
            .await
            .map_err(CliError::from_store)?;
        let found = store.schema_version().await.map_err(CliError::from_store)?;
        (Arc::new(store), found, tasque_mysql::SCHEMA_VERSION)
    } else {
        return Err(CliError::Usage(format!(
                "unsupported database URL {:?}: use sqlite://PATH, sqlite::memory:, postgres://... or mysql://...",
                redact(url)
            )));
    };
    match schema {
        Schema::Migrate => {
            store.migrate().await.map_err(CliError::from_store)?;
        }
        Schema::Require if found < supported => {
            return Err(outdated(url, namespace, found, supported));
        }
        Schema::Require => {}
    }
    Ok(store)
}

/// The error of a command that found the schema missing or older than this build.
fn outdated(url: &str, namespace: &str, found: i64, supported: i64) -> CliError {
    let state = if found == 0 {
        "has no Tasque schema yet".to_owned()
    } else {
        format!("is at schema version {found}, older than the {supported} this tasque needs")
    };
    CliError::Schema(format!(
        "namespace {namespace:?} of the database at {} {state}: run `tasque migrate` first \
         (or pass --auto-migrate to a command that writes); nothing was changed",
        redact(url)
    ))
}

async fn open_sqlite(url: &str, namespace: &str) -> Result<Arc<dyn Store>, CliError> {
    let config = SqliteConfig::from_url(url).with_namespace(namespace);
    if let tasque_sqlite::Location::File(path) = &config.location {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(CliError::Database(format!(
                    "cannot open {url}: directory {} does not exist",
                    dir.display()
                )));
            }
        }
    }
    let store = SqliteStore::connect(config)
        .await
        .map_err(CliError::from_store)?;
    Ok(Arc::new(store))
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:") || url == ":memory:" || !url.contains("://")
}
