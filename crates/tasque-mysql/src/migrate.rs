//! Versioned schema migrations, one namespace (set of tables) at a time.
//!
//! A migrator takes the server's named lock `GET_LOCK` for the namespace on one connection, so
//! concurrent migrators (several worker processes starting at once) serialise; the one that
//! waited re-reads the version and skips what is done. Versions are recorded in the
//! namespace's `migrations` table. A schema newer than [`SCHEMA_VERSION`] is refused with
//! [`Error::SchemaTooNew`].

use sqlx::pool::PoolConnection;
use sqlx::{Executor, MySql, MySqlPool};
use tasque_durable::{Error, MigrationReport, Result};

use crate::queries::Sql;
use crate::schema::{Exists, Step, FRESH, MIGRATIONS};
use crate::sql_err;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 6;

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
/// namespace of `stem`. `fresh` allows creating a namespace without tables in its final shape
/// at once ([`FRESH`]) instead of running each migration.
pub async fn run(
    pool: &MySqlPool,
    sql: &Sql,
    stem: &str,
    target: i64,
    fresh: bool,
) -> Result<MigrationReport> {
    let target = target.min(SCHEMA_VERSION);
    let from = current_version(pool, sql, stem).await?;
    check_not_newer(from)?;
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
    check_not_newer(done)?;
    // A namespace without any table (not even one left by an interrupted migration) is
    // created in its final shape at once.
    let fresh =
        fresh && done == 0 && target == SCHEMA_VERSION && !has_tables(conn, sql, stem).await?;
    if fresh {
        for step in FRESH {
            apply_step(conn, sql, stem, step).await?;
        }
    }
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version > done && m.version <= target);
    for migration in pending {
        if !fresh {
            for step in migration.statements {
                apply_step(conn, sql, stem, step).await?;
            }
        }
        sqlx::query(&sql.record_migration)
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut **conn)
            .await
            .map_err(sql_err)?;
        tracing::info!(
            tables = stem,
            version = migration.version,
            name = migration.name,
            "tasque schema migrated"
        );
    }
    Ok(())
}

/// Runs one step of a migration, unless what it creates exists already.
async fn apply_step(
    conn: &mut PoolConnection<MySql>,
    sql: &Sql,
    stem: &str,
    step: &Step,
) -> Result<()> {
    let statement = match step {
        Step::Always(statement) => statement,
        Step::Text(statement) => {
            // A plain `&str` goes out as text (COM_QUERY), not as a prepared statement.
            let text = sql.render(statement);
            (&mut **conn)
                .execute(text.as_str())
                .await
                .map_err(sql_err)?;
            return Ok(());
        }
        Step::Unless { exists, statement } => {
            let (query, table, name) = match exists {
                Exists::Column(table, column) => (&sql.has_column, table, column.to_string()),
                Exists::ForeignKey(table, suffix) => {
                    (&sql.has_constraint, table, format!("{stem}{suffix}"))
                }
            };
            let found: i64 = sqlx::query_scalar(query)
                .bind(format!("{stem}_{table}"))
                .bind(name)
                .fetch_one(&mut **conn)
                .await
                .map_err(sql_err)?;
            if found > 0 {
                return Ok(());
            }
            statement
        }
    };
    sqlx::query(&sql.render(statement))
        .execute(&mut **conn)
        .await
        .map_err(sql_err)?;
    Ok(())
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
