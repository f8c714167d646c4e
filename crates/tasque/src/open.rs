//! [`open`]: a [`Client`](crate::Client) from a database URL.

use std::sync::Arc;

use tasque_durable::client::Client;
use tasque_durable::Store;

/// What [`open`] can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL names no engine Tasque knows.
    #[error("unsupported database URL scheme in {url:?}: use a path, sqlite:PATH, sqlite::memory:, postgres://... or mysql://...")]
    UnsupportedUrl {
        /// The URL, with any password masked.
        url: String,
    },
    /// The URL names an engine this build leaves out.
    #[error("the {engine} engine is not compiled in: enable the `{feature}` feature of tasque")]
    EngineNotEnabled {
        /// The engine.
        engine: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// The engine refused or failed (unreachable server, schema newer than this build...).
    #[error(transparent)]
    Store(#[from] tasque_durable::Error),
}

/// Opens the database `url` names, in `namespace`, creates or upgrades its schema, and returns
/// a [`Client`] over it.
///
/// * a path, `sqlite:PATH`, `sqlite://PATH` or `sqlite::memory:`: SQLite (feature `sqlite`,
///   on by default);
/// * `postgres://...` or `postgresql://...`: PostgreSQL (feature `postgres`), the namespace
///   being the schema `tasque_<namespace>`;
/// * `mysql://...` or `mariadb://...`: MySQL / MariaDB (feature `mysql`).
///
/// Migrating is idempotent and safe while other processes use the database. For
/// [`Client::enqueue_in_tx`], build the client from the concrete engine instead
/// (`Client::from_store(PostgresStore::connect(...).await?)`).
pub async fn open(url: &str, namespace: &str) -> Result<Client, OpenError> {
    let store = open_store(url, namespace).await?;
    store.migrate().await?;
    Ok(Client::new(store))
}

async fn open_store(url: &str, namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres(url, namespace).await;
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        return mysql(url, namespace).await;
    }
    if url.starts_with("sqlite:") || !url.contains("://") {
        return sqlite(url, namespace).await;
    }
    Err(OpenError::UnsupportedUrl { url: mask(url) })
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str, namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    let config = tasque_sqlite::SqliteConfig::from_url(url).with_namespace(namespace);
    Ok(Arc::new(tasque_sqlite::SqliteStore::connect(config).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(_: &str, _: &str) -> Result<Arc<dyn Store>, OpenError> {
    Err(OpenError::EngineNotEnabled {
        engine: "SQLite",
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    let config = tasque_postgres::PostgresConfig::new(url).with_namespace(namespace);
    Ok(Arc::new(
        tasque_postgres::PostgresStore::connect(config).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &str, _: &str) -> Result<Arc<dyn Store>, OpenError> {
    Err(OpenError::EngineNotEnabled {
        engine: "PostgreSQL",
        feature: "postgres",
    })
}

#[cfg(feature = "mysql")]
async fn mysql(url: &str, namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    let config = tasque_mysql::MySqlConfig::new(url).with_namespace(namespace);
    Ok(Arc::new(tasque_mysql::MySqlStore::connect(config).await?))
}

#[cfg(not(feature = "mysql"))]
async fn mysql(_: &str, _: &str) -> Result<Arc<dyn Store>, OpenError> {
    Err(OpenError::EngineNotEnabled {
        engine: "MySQL",
        feature: "mysql",
    })
}

/// The URL with the password of its user-info part replaced by `***`.
fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_passwords_only() {
        assert_eq!(mask("redis://u:secret@h:1/db"), "redis://u:***@h:1/db");
        assert_eq!(mask("redis://u@h/db"), "redis://u@h/db");
        assert_eq!(mask("cat.db"), "cat.db");
    }
}
