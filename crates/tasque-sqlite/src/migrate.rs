//! Versioned schema migrations.
//!
//! Each migration runs once, in order, inside one `BEGIN IMMEDIATE` transaction that also
//! records it in `tasque_migrations`, so concurrent migrators (several worker processes starting
//! at once) serialise and never apply a step twice. A database whose version is newer than
//! [`SCHEMA_VERSION`] is refused with [`Error::SchemaTooNew`].

use sqlx::{Row, SqlitePool};
use tasque_durable::{MigrationReport, Result};

use crate::queries;
use crate::sql_err;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 7;

/// One migration: its version, name and statements.
struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

/// Version 1: queues, jobs and their indexes; the tables and columns of checkpoints, sleeps,
/// events, per-queue concurrency limits and blocking mode exist already, unused for now.
const V1: Migration = Migration {
    version: 1,
    name: "jobs, queues, checkpoints, events",
    statements: &[
        "CREATE TABLE tasque_queues (
            ns TEXT NOT NULL,
            name TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            concurrency_limit INTEGER,
            blocking INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (ns, name)
        ) WITHOUT ROWID",
        "CREATE TABLE tasque_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ns TEXT NOT NULL,
            queue TEXT NOT NULL,
            task TEXT NOT NULL,
            params TEXT NOT NULL,
            headers TEXT,
            state TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            run_seq INTEGER NOT NULL DEFAULT 1,
            attempt INTEGER NOT NULL DEFAULT 1,
            max_attempts INTEGER NOT NULL,
            retry TEXT NOT NULL,
            timeout_ms INTEGER,
            max_duration_ms INTEGER,
            max_delay_ms INTEGER,
            cancel_at INTEGER,
            idempotency_key TEXT,
            worker_id TEXT,
            run_at INTEGER NOT NULL,
            lease_expires_at INTEGER,
            created_at INTEGER NOT NULL,
            first_started_at INTEGER,
            attempted_at INTEGER,
            finished_at INTEGER,
            result TEXT,
            failure TEXT,
            errors TEXT NOT NULL DEFAULT '[]',
            wake_at INTEGER,
            wake_event TEXT,
            event_payload TEXT
        )",
        "CREATE INDEX tasque_jobs_claim ON tasque_jobs (ns, queue, state, priority, run_at, id)",
        "CREATE INDEX tasque_jobs_age ON tasque_jobs (ns, queue, state, run_at, id)",
        "CREATE INDEX tasque_jobs_lease ON tasque_jobs (ns, state, lease_expires_at)",
        "CREATE INDEX tasque_jobs_finished ON tasque_jobs (ns, finished_at)
            WHERE finished_at IS NOT NULL",
        "CREATE INDEX tasque_jobs_cancel_at ON tasque_jobs (ns, cancel_at)
            WHERE cancel_at IS NOT NULL",
        "CREATE UNIQUE INDEX tasque_jobs_idempotency ON tasque_jobs (ns, queue, idempotency_key)
            WHERE idempotency_key IS NOT NULL",
        "CREATE TABLE tasque_checkpoints (
            ns TEXT NOT NULL,
            job_id INTEGER NOT NULL,
            step TEXT NOT NULL,
            state TEXT NOT NULL,
            run_seq INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (ns, job_id, step)
        ) WITHOUT ROWID",
        "CREATE TABLE tasque_events (
            ns TEXT NOT NULL,
            name TEXT NOT NULL,
            payload TEXT,
            emitted_at INTEGER NOT NULL,
            PRIMARY KEY (ns, name)
        ) WITHOUT ROWID",
    ],
};

/// Version 2: the claim, age and lease indexes become partial (pending jobs only, running
/// jobs only). A job leaves them as soon as it is claimed or finished, so each claim and
/// each completion touches far fewer index entries.
const V2: Migration = Migration {
    version: 2,
    name: "partial claim and lease indexes",
    statements: &[
        "DROP INDEX tasque_jobs_claim",
        "DROP INDEX tasque_jobs_age",
        "DROP INDEX tasque_jobs_lease",
        "CREATE INDEX tasque_jobs_claim ON tasque_jobs (ns, queue, priority, run_at, id)
            WHERE state = 'pending'",
        "CREATE INDEX tasque_jobs_age ON tasque_jobs (ns, queue, run_at, id)
            WHERE state = 'pending'",
        "CREATE INDEX tasque_jobs_lease ON tasque_jobs (ns, lease_expires_at)
            WHERE state = 'running'",
    ],
};

/// Version 3: blocking-queue policy and holding flag, wake-time and event indexes, the index of
/// each queue's unfinished jobs, and checkpoints deleted with their job.
const V3: Migration = Migration {
    version: 3,
    name: "workflows and blocking queues",
    statements: queries::V3,
};

/// Version 4: the claim token, which lets a claim read back the jobs it took as one row.
const V4: Migration = Migration {
    version: 4,
    name: "claim token",
    statements: &["ALTER TABLE tasque_jobs ADD COLUMN claim_token INTEGER"],
};

/// Version 5: the index of each queue's unfinished jobs keys on `finished_at IS NULL` instead of
/// the state. Every unfinished state (pending, running, sleeping, waiting) has no finish time and
/// every finished one has one, so it holds the same jobs; but a claim (pending to running)
/// no longer moves the job out of the index and back in, which cost more than any other index
/// a claim touches.
const V5: Migration = Migration {
    version: 5,
    name: "unfinished index on finish time",
    statements: &[
        "DROP INDEX tasque_jobs_unfinished",
        "CREATE INDEX tasque_jobs_unfinished ON tasque_jobs (ns, queue, id)
            WHERE finished_at IS NULL",
    ],
};

/// Version 6: periodic jobs (schedules) and the leader lease.
const V6: Migration = Migration {
    version: 6,
    name: "schedules and leases",
    statements: queries::V6,
};

/// Version 7: an index of jobs by queue and state in id order, so that the inspector's filtered
/// pages (the dashboard's job list: failed jobs of one queue, say) read only matching jobs
/// instead of walking every job before them.
const V7: Migration = Migration {
    version: 7,
    name: "jobs by queue and state",
    statements: &["CREATE INDEX tasque_jobs_queue_state ON tasque_jobs (ns, queue, state, id)"],
};

const MIGRATIONS: &[Migration] = &[V1, V2, V3, V4, V5, V6, V7];

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
    check_not_newer(from)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
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
        for statement in migration.statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        sqlx::query(queries::RECORD_MIGRATION)
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
        tx.commit().await.map_err(sql_err)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "tasque schema migrated"
        );
    }
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION,
    })
}
