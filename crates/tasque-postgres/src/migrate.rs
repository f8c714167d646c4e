//! Versioned schema migrations, one namespace (schema) at a time: one `.sql` file per version
//! under `migrations/`, planned by tasque-durable's shared
//! [`migrations`](tasque_durable::engine::migrations) logic.
//!
//! Each migration runs in one transaction that first takes a transaction-level advisory lock
//! keyed by the schema name, so concurrent migrators (several worker processes starting at once)
//! serialise; the one that waited re-reads the version and skips what is done. The version is
//! recorded in `<schema>.migrations`. A schema newer than [`SCHEMA_VERSION`] is refused with
//! [`Error::SchemaTooNew`].

use sqlx::{Executor, PgPool};
use tasque_durable::engine::migrations::{plan, Migration};
use tasque_durable::{MigrationReport, Result};

use crate::config::quote;
use crate::queries::migrate as q;
use crate::sql_err;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 14;

/// Every migration, one file per version under `migrations/` (see
/// [`tasque_durable::engine::migrations`]; `@schema@` and `@channel@` are rendered per
/// namespace); a new version is a new file added at the end.
const MIGRATIONS: &[Migration] = &[
    Migration::new(1, include_str!("../migrations/v1.sql")),
    Migration::new(2, include_str!("../migrations/v2.sql")),
    Migration::new(3, include_str!("../migrations/v3.sql")),
    Migration::new(4, include_str!("../migrations/v4.sql")),
    Migration::new(5, include_str!("../migrations/v5.sql")),
    Migration::new(6, include_str!("../migrations/v6.sql")),
    Migration::new(7, include_str!("../migrations/v7.sql")),
    Migration::new(8, include_str!("../migrations/v8.sql")),
    Migration::new(9, include_str!("../migrations/v9.sql")),
    Migration::new(10, include_str!("../migrations/v10.sql")),
    Migration::new(11, include_str!("../migrations/v11.sql")),
    Migration::new(12, include_str!("../migrations/v12.sql")),
    Migration::new(13, include_str!("../migrations/v13.sql")),
    Migration::new(14, include_str!("../migrations/v14.sql")),
];

fn render(script: &str, schema: &str) -> String {
    script
        .replace("@schema@", &quote(schema))
        .replace("@channel@", schema)
}

/// The schema version of a namespace (0 when it has never been migrated).
pub async fn current_version(pool: &PgPool, schema: &str) -> Result<i64> {
    let table = format!("{}.migrations", quote(schema));
    let exists: bool = sqlx::query_scalar(q::HAS_MIGRATIONS)
        .bind(&table)
        .fetch_one(pool)
        .await
        .map_err(sql_err)?;
    if !exists {
        return Ok(0);
    }
    let version: Option<i64> = sqlx::query_scalar(&render(q::VERSION, schema))
        .fetch_one(pool)
        .await
        .map_err(sql_err)?;
    Ok(version.unwrap_or(0))
}

/// Refuses a schema migrated by a newer build.
pub fn check_not_newer(found: i64) -> Result<()> {
    tasque_durable::engine::check_schema_version(found, SCHEMA_VERSION)
}

/// Applies every missing migration to `schema`.
pub async fn run(pool: &PgPool, schema: &str) -> Result<MigrationReport> {
    run_to(pool, schema, SCHEMA_VERSION).await
}

/// Applies the missing migrations up to `target` (at most [`SCHEMA_VERSION`]) to `schema`.
pub async fn run_to(pool: &PgPool, schema: &str, target: i64) -> Result<MigrationReport> {
    let target = target.min(SCHEMA_VERSION);
    let from = current_version(pool, schema).await?;
    let pending = plan(MIGRATIONS, from)?
        .iter()
        .filter(|m| m.version <= target);
    for migration in pending {
        let mut tx = pool.begin().await.map_err(sql_err)?;
        sqlx::query(q::LOCK)
            .bind(format!("tasque-migrate:{schema}"))
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        let prepare = render(q::PREPARE, schema);
        tx.execute(prepare.as_str()).await.map_err(sql_err)?;
        // Another process may have applied it while we waited for the lock.
        let done: Option<i64> = sqlx::query_scalar(&render(q::VERSION, schema))
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_err)?;
        let done = done.unwrap_or(0);
        check_not_newer(done)?;
        if done >= migration.version {
            continue;
        }
        let script = render(migration.sql, schema);
        tx.execute(script.as_str()).await.map_err(sql_err)?;
        sqlx::query(&render(q::RECORD, schema))
            .bind(migration.version)
            .bind(migration.name())
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        tracing::info!(
            schema,
            version = migration.version,
            name = migration.name(),
            "tasque schema migrated"
        );
    }
    Ok(MigrationReport {
        from,
        to: target.max(from),
    })
}

/// Drops a namespace's schema and everything in it.
pub async fn drop_schema(pool: &PgPool, schema: &str) -> Result<()> {
    let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema));
    pool.execute(drop.as_str()).await.map_err(sql_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tasque_durable::engine::migrations::latest;

    use super::*;

    #[test]
    fn the_schema_version_is_the_newest_migration_file() {
        assert_eq!(SCHEMA_VERSION, latest(MIGRATIONS));
        assert!(plan(MIGRATIONS, 0).is_ok());
        assert!(MIGRATIONS.iter().all(|m| !m.name().is_empty()));
    }
}
