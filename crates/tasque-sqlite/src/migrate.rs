//! Versioned schema migrations: one `.sql` file per version under `migrations/`, planned by
//! tasque-durable's shared [`migrations`](tasque_durable::engine::migrations) logic.
//!
//! Each migration runs once, in order, inside one `BEGIN IMMEDIATE` transaction that also
//! records it in `tasque_migrations`, so concurrent migrators (several worker processes starting
//! at once) serialise and never apply a step twice. A database whose version is newer than
//! [`SCHEMA_VERSION`] is refused with [`Error::SchemaTooNew`].

use sqlx::{Row, SqlitePool};
use tasque_durable::engine::migrations::{plan, Migration};
use tasque_durable::{MigrationReport, Result};

use crate::queries;
use crate::sql_err;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 14;

/// Every migration, one file per version under `migrations/` (see
/// [`tasque_durable::engine::migrations`]); a new version is a new file added at the end.
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

/// The schema version of a database (0 when it has never been migrated).
pub async fn current_version(pool: &SqlitePool) -> Result<i64> {
    let exists: i64 = sqlx::query_scalar(queries::HAS_MIGRATIONS_TABLE)
        .fetch_one(pool)
        .await
        .map_err(sql_err)?;
    if exists == 0 {
        return Ok(0);
    }
    let version: Option<i64> = sqlx::query(queries::SCHEMA_VERSION)
        .fetch_one(pool)
        .await
        .map_err(sql_err)?
        .try_get(0)
        .map_err(sql_err)?;
    Ok(version.unwrap_or(0))
}

/// Refuses a database migrated by a newer build.
pub fn check_not_newer(found: i64) -> Result<()> {
    tasque_durable::engine::check_schema_version(found, SCHEMA_VERSION)
}

/// Applies every missing migration.
pub async fn run(pool: &SqlitePool) -> Result<MigrationReport> {
    let from = current_version(pool).await?;
    for migration in plan(MIGRATIONS, from)? {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(sql_err)?;
        sqlx::query(queries::CREATE_MIGRATIONS_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        // Another process may have applied it while we waited for the write lock.
        let done: Option<i64> = sqlx::query_scalar(queries::SCHEMA_VERSION)
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_err)?;
        let done = done.unwrap_or(0);
        check_not_newer(done)?;
        if done >= migration.version {
            continue;
        }
        // A file holds several statements: the SQLite driver runs them one after another.
        sqlx::Executor::execute(&mut *tx, migration.sql)
            .await
            .map_err(sql_err)?;
        sqlx::query(queries::RECORD_MIGRATION)
            .bind(migration.version)
            .bind(migration.name())
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        tracing::info!(
            version = migration.version,
            name = migration.name(),
            "tasque schema migrated"
        );
    }
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION,
    })
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
