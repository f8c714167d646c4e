//! Versioned schema migrations, one namespace (set of tables) at a time: one `.sql` file per
//! version under `migrations/`, planned by tasque-durable's shared
//! [`migrations`](tasque_durable::engine::migrations) logic, each file a list of statements made
//! safe to run again (see [`steps`](crate::steps): MySQL commits DDL implicitly, so a
//! migration cannot be one transaction; one interrupted half-way is completed by the next run).
//!
//! A migrator takes the server's named lock `GET_LOCK` for the namespace on one connection, so
//! concurrent migrators (several worker processes starting at once) serialise; the one that
//! waited re-reads the version and skips what is done. Versions are recorded in the
//! namespace's `migrations` table. A schema newer than [`SCHEMA_VERSION`] is refused with
//! [`Error::SchemaTooNew`].
//!
//! A namespace without any table is created from `migrations/fresh.sql`, the tables of the
//! first versions in their final shape at once (its `-- covers: N` header), then the versions
//! after N from their files.

use sqlx::pool::PoolConnection;
use sqlx::{Executor, MySql, MySqlPool};
use tasque_durable::engine::migrations::{latest, plan, Migration};
use tasque_durable::{Error, MigrationReport, Result};

use crate::queries::Sql;
use crate::sql_err;
use crate::steps::{self, Exists};

/// Every migration, one file per version under `migrations/` (see
/// [`tasque_durable::engine::migrations`]; the table placeholders of
/// [`queries`](crate::queries) are rendered per namespace); a new version is a new file added
/// at the end.
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
];

/// The first versions' tables in their final shape, for a namespace that has none.
const FRESH: &str = include_str!("../migrations/fresh.sql");

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 12;

/// The schema version of a namespace (0 when it has never been migrated).
pub async fn current_version(pool: &MySqlPool, sql: &Sql, stem: &str) -> Result<i64> {
    let mut conn = pool.acquire().await.map_err(sql_err)?;
    version_on(&mut conn, sql, stem).await
}

async fn version_on(conn: &mut PoolConnection<MySql>, sql: &Sql, stem: &str) -> Result<i64> {
    let exists: i64 = sqlx::query_scalar(&sql.has_table)
        .bind(format!("{stem}_migrations"))
        .fetch_one(&mut **conn)
        .await
        .map_err(sql_err)?;
    if exists == 0 {
        return Ok(0);
    }
    let version: Option<i64> = sqlx::query_scalar(&sql.version)
        .fetch_one(&mut **conn)
        .await
        .map_err(sql_err)?;
    Ok(version.unwrap_or(0))
}

/// Refuses a schema migrated by a newer build.
pub fn check_not_newer(found: i64) -> Result<()> {
    tasque_durable::engine::check_schema_version(found, SCHEMA_VERSION)
}

/// The name of a namespace's migration lock (at most 64 characters, as the server wants).
fn lock_name(stem: &str) -> String {
    let name = format!("tasque-migrate:{stem}");
    name.chars().take(64).collect()
}

/// Applies every missing migration up to `target` (at most [`SCHEMA_VERSION`]) to the
/// namespace of `stem`. `fresh` allows creating a namespace without tables from `fresh.sql`
/// instead of running its first migrations one by one.
pub async fn run(
    pool: &MySqlPool,
    sql: &Sql,
    stem: &str,
    target: i64,
    fresh: bool,
) -> Result<MigrationReport> {
    let target = target.min(SCHEMA_VERSION);
    let from = current_version(pool, sql, stem).await?;
    plan(MIGRATIONS, from)?;
    if from >= target {
        return Ok(MigrationReport { from, to: from });
    }
    let mut conn = pool.acquire().await.map_err(sql_err)?;
    let lock = lock_name(stem);
    let taken: Option<i64> = sqlx::query_scalar(&sql.lock)
        .bind(&lock)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_err)?;
    if taken != Some(1) {
        return Err(Error::Database(
            format!("timed out waiting for the migration lock {lock:?}").into(),
        ));
    }
    let applied = apply(&mut conn, sql, stem, target, fresh).await;
    // Released on every path (the lock would also go with the connection).
    let released = sqlx::query_scalar::<_, Option<i64>>(&sql.unlock)
        .bind(&lock)
        .fetch_one(&mut *conn)
        .await;
    applied?;
    released.map_err(sql_err)?;
    Ok(MigrationReport { from, to: target })
}

/// Applies what is missing up to `target`, holding the migration lock.
async fn apply(
    conn: &mut PoolConnection<MySql>,
    sql: &Sql,
    stem: &str,
    target: i64,
    fresh: bool,
) -> Result<()> {
    sqlx::query(&sql.create_migrations)
        .execute(&mut **conn)
        .await
        .map_err(sql_err)?;
    // Another process may have applied some while we waited for the lock.
    let done = version_on(conn, sql, stem).await?;
    let pending = plan(MIGRATIONS, done)?;
    // A namespace without any table (not even one left by an interrupted migration) gets the
    // tables of the first versions in their final shape at once.
    let covers = fresh_covers()?;
    let fresh = fresh && done == 0 && target >= covers && !has_tables(conn, sql, stem).await?;
    if fresh {
        run_script(conn, sql, stem, 0, FRESH).await?;
    }
    // The history records the server's time even in test mode: the virtual clock's table
    // (version 10) may not exist yet. The scripts are rendered in the store's mode, so a
    // test-mode store's stored procedures read the virtual clock.
    let history = Sql::new(stem, false);
    for migration in pending.iter().filter(|m| m.version <= target) {
        if !(fresh && migration.version <= covers) {
            run_script(conn, sql, stem, migration.version, migration.sql).await?;
        }
        sqlx::query(&history.record_migration)
            .bind(migration.version)
            .bind(migration.name())
            .execute(&mut **conn)
            .await
            .map_err(sql_err)?;
        tracing::info!(
            tables = stem,
            version = migration.version,
            name = migration.name(),
            "tasque schema migrated"
        );
    }
    Ok(())
}

/// The last version `fresh.sql` stands for.
fn fresh_covers() -> Result<i64> {
    steps::header(FRESH, "covers")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=latest(MIGRATIONS)).contains(n))
        .ok_or_else(|| Error::Corrupt("MySQL fresh.sql: no valid `-- covers: N` line".into()))
}

/// Runs the statements of one migration file, each unless what it creates exists already.
async fn run_script(
    conn: &mut PoolConnection<MySql>,
    sql: &Sql,
    stem: &str,
    version: i64,
    script: &str,
) -> Result<()> {
    for step in steps::parse(version, script)? {
        if let Some(exists) = &step.unless {
            if found(conn, sql, stem, exists).await? {
                continue;
            }
        }
        // As text (COM_QUERY): the server takes no `CREATE PROCEDURE` as a prepared statement.
        let text = sql.render(&step.statement);
        (&mut **conn)
            .execute(text.as_str())
            .await
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Whether what a guarded statement creates exists.
async fn found(
    conn: &mut PoolConnection<MySql>,
    sql: &Sql,
    stem: &str,
    exists: &Exists,
) -> Result<bool> {
    let table = |suffix: &str| format!("{stem}_{suffix}");
    let (query, table, name) = match exists {
        Exists::Table(t) => (&sql.has_table, table(t), None),
        Exists::Column(t, column) => (&sql.has_column, table(t), Some(column)),
        Exists::Index(t, index) => (&sql.has_index, table(t), Some(index)),
        Exists::Constraint(t, name) => (&sql.has_constraint, table(t), Some(name)),
    };
    let mut query = sqlx::query_scalar::<_, i64>(query).bind(table);
    if let Some(name) = name {
        query = query.bind(sql.render(name));
    }
    let count = query.fetch_one(&mut **conn).await.map_err(sql_err)?;
    Ok(count > 0)
}

/// Whether any table of the namespace (besides the migration history) exists.
async fn has_tables(conn: &mut PoolConnection<MySql>, sql: &Sql, stem: &str) -> Result<bool> {
    let mut query = sqlx::query_scalar::<_, i64>(&sql.count_tables);
    for table in ["jobs", "queues", "checkpoints", "events"] {
        query = query.bind(format!("{stem}_{table}"));
    }
    let found = query.fetch_one(&mut **conn).await.map_err(sql_err)?;
    Ok(found > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_parses_and_the_schema_version_is_the_newest() {
        assert_eq!(SCHEMA_VERSION, latest(MIGRATIONS));
        assert!(plan(MIGRATIONS, 0).is_ok());
        for migration in MIGRATIONS {
            assert!(!migration.name().is_empty(), "v{}", migration.version);
            steps::parse(migration.version, migration.sql).unwrap();
        }
        assert!(!steps::parse(0, FRESH).unwrap().is_empty());
        assert_eq!(fresh_covers().unwrap(), 2);
    }
}
