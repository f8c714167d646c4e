//! Opening the store a database URL names, migrating it on first use.

use std::sync::Arc;

use tasque_durable::Store;
use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_sqlite::{SqliteConfig, SqliteStore};

use crate::fail::CliError;

/// Opens the store for `url` in `namespace` and makes sure its schema is current.
pub async fn open(url: &str, namespace: &str) -> Result<Arc<dyn Store>, CliError> {
    let store: Arc<dyn Store> = if is_sqlite(url) {
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
        Arc::new(
            SqliteStore::connect(config)
                .await
                .map_err(CliError::from_store)?,
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The namespace is the PostgreSQL schema `tasque_<namespace>`.
        let config = PostgresConfig::new(url).with_namespace(namespace);
        Arc::new(
            PostgresStore::connect(config)
                .await
                .map_err(CliError::from_store)?,
        )
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        // The namespace is the table set `tasque_<namespace>_*` in the URL's database.
        let config = MySqlConfig::new(url).with_namespace(namespace);
        Arc::new(
            MySqlStore::connect(config)
                .await
                .map_err(CliError::from_store)?,
        )
    } else {
        return Err(CliError::Usage(format!(
            "unsupported database URL {url:?}: use sqlite://PATH, sqlite::memory:, postgres://... or mysql://..."
        )));
    };
    store.migrate().await.map_err(CliError::from_store)?;
    Ok(store)
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:") || url == ":memory:" || !url.contains("://")
}
