//! The schema, as versioned migrations of DDL statements written against the table
//! placeholders of [`queries`](crate::queries) (`@jobs@`, `@queues@`, ...).
//!
//! MySQL commits DDL implicitly, so a migration cannot be one transaction: every statement is
//! idempotent (`IF NOT EXISTS`) instead, and a migration interrupted half-way is completed by
//! the next run. Times are `DATETIME(6)` in UTC, durations `BIGINT` milliseconds, JSON
//! `LONGTEXT` (utf8mb4, binary collation) so params, headers and results come back byte for
//! byte. `batch_token` and `batch_ord` tell which rows a multi-row insert wrote (MySQL has no
//! `INSERT ... RETURNING`); a batch completion marks the rows it completes with its own token
//! in `batch_token` the same way.
//!
//! MySQL 8 has no `ADD COLUMN IF NOT EXISTS` (MariaDB has), so a statement that alters a table
//! is a [`Step::Unless`]: it runs only when what it creates is missing. Each such statement is
//! one `ALTER TABLE` (atomic in InnoDB), so "the column exists" means "the whole statement was
//! applied".

/// One statement of a migration.
#[derive(Clone, Copy)]
pub enum Step {
    /// A statement that is idempotent by itself (`CREATE TABLE IF NOT EXISTS`).
    Always(&'static str),
    /// A statement the server does not take as a prepared statement (`CREATE PROCEDURE`,
    /// `DROP PROCEDURE`), sent as plain text; idempotent by itself or as part of a
    /// drop-then-create pair.
    Text(&'static str),
    /// A statement that runs unless `exists` finds what it creates.
    Unless {
        /// What the statement creates.
        exists: Exists,
        /// The statement.
        statement: &'static str,
    },
}

/// Something a [`Step::Unless`] creates, looked up in `information_schema`. Tables are named
/// by their suffix (`jobs`, `queues`, ...) and resolved in the namespace.
#[derive(Clone, Copy)]
pub enum Exists {
    /// A column: (table, column).
    Column(&'static str, &'static str),
    /// A foreign key of a table: (table, constraint name suffix after the namespace stem).
    ForeignKey(&'static str, &'static str),
}

/// One migration: its version, name and statements.
pub struct Migration {
    /// Its version.
    pub version: i64,
    /// What it does.
    pub name: &'static str,
    /// Its statements, in order.
    pub statements: &'static [Step],
}

/// The columns of `queues` in version 1.
macro_rules! queues_v1 {
    () => {
        "name VARCHAR(128) NOT NULL PRIMARY KEY,
            paused BOOLEAN NOT NULL DEFAULT FALSE,
            concurrency_limit INT NULL,
            blocking BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DATETIME(6) NOT NULL"
    };
}

/// The columns of `jobs` in version 1.
macro_rules! jobs_v1_columns {
    () => {
        "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            queue VARCHAR(128) NOT NULL,
            task VARCHAR(128) NOT NULL,
            params LONGTEXT NOT NULL,
            headers LONGTEXT NULL,
            state VARCHAR(16) NOT NULL,
            priority INT NOT NULL DEFAULT 0,
            run_seq BIGINT NOT NULL DEFAULT 1,
            attempt INT NOT NULL DEFAULT 1,
            max_attempts INT NOT NULL,
            retry TEXT NOT NULL,
            timeout_ms BIGINT NULL,
            max_duration_ms BIGINT NULL,
            max_delay_ms BIGINT NULL,
            cancel_at DATETIME(6) NULL,
            idempotency_key VARCHAR(255) NULL,
            worker_id VARCHAR(128) NULL,
            run_at DATETIME(6) NOT NULL,
            lease_expires_at DATETIME(6) NULL,
            created_at DATETIME(6) NOT NULL,
            first_started_at DATETIME(6) NULL,
            attempted_at DATETIME(6) NULL,
            finished_at DATETIME(6) NULL,
            result LONGTEXT NULL,
            failure LONGTEXT NULL,
            errors LONGTEXT NOT NULL,
            wake_at DATETIME(6) NULL,
            wake_event VARCHAR(255) NULL,
            event_payload LONGTEXT NULL,
            batch_token BIGINT NULL,
            batch_ord INT NULL"
    };
}

/// The keys of `jobs` in version 1.
macro_rules! jobs_v1_keys {
    () => {
        "KEY jobs_claim (state, queue, priority, run_at, id),
            KEY jobs_claim_age (state, queue, run_at, id),
            KEY jobs_lease (state, lease_expires_at),
            KEY jobs_finished (finished_at),
            KEY jobs_cancel_at (cancel_at),
            UNIQUE KEY jobs_idempotency (queue, idempotency_key)"
    };
}

/// The columns and key of `checkpoints` in version 1.
macro_rules! checkpoints_v1 {
    () => {
        "job_id BIGINT NOT NULL,
            step VARCHAR(255) NOT NULL,
            state LONGTEXT NOT NULL,
            run_seq BIGINT NOT NULL,
            updated_at DATETIME(6) NOT NULL,
            PRIMARY KEY (job_id, step)"
    };
}

/// The table options of every table.
macro_rules! table_options {
    () => {
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    };
}

/// The `events` table (unchanged since version 1).
const EVENTS: &str = concat!(
    "CREATE TABLE IF NOT EXISTS @events@ (
            name VARCHAR(255) NOT NULL PRIMARY KEY,
            payload LONGTEXT NULL,
            emitted_at DATETIME(6) NOT NULL",
    table_options!()
);

/// Version 1: queues, jobs and their indexes; the tables and columns of checkpoints, sleeps,
/// events, per-queue concurrency limits and blocking mode.
const V1: Migration = Migration {
    version: 1,
    name: "jobs, queues, checkpoints, events",
    statements: &[
        Step::Always(concat!(
            "CREATE TABLE IF NOT EXISTS @queues@ (",
            queues_v1!(),
            table_options!()
        )),
        Step::Always(concat!(
            "CREATE TABLE IF NOT EXISTS @jobs@ (",
            jobs_v1_columns!(),
            ",\n            ",
            jobs_v1_keys!(),
            table_options!()
        )),
        Step::Always(concat!(
            "CREATE TABLE IF NOT EXISTS @checkpoints@ (",
            checkpoints_v1!(),
            table_options!()
        )),
        Step::Always(EVENTS),
    ],
};

/// What version 2 adds to `queues`.
macro_rules! queues_v2_column {
    () => {
        "on_exhausted VARCHAR(16) NOT NULL DEFAULT 'continue'"
    };
}

/// What version 2 adds to `jobs`: a column, then keys.
macro_rules! jobs_v2_column {
    () => {
        "holds_queue BOOLEAN NOT NULL DEFAULT FALSE"
    };
}
macro_rules! jobs_v2_keys {
    () => {
        "KEY jobs_wake (wake_at),
            KEY jobs_waiting (wake_event),
            KEY jobs_head (state, queue, id),
            KEY jobs_holding (holds_queue, queue, id)"
    };
}

/// What version 2 adds to `checkpoints`.
macro_rules! checkpoints_v2_key {
    () => {
        "CONSTRAINT `@stem@_ckpt_job` FOREIGN KEY (job_id) REFERENCES @jobs@ (id) \
            ON DELETE CASCADE"
    };
}

/// Version 2: durable workflows and blocking queues. `on_exhausted` is a blocking queue's
/// policy for a head job that fails for good (`continue` or `stay_blocked`); `holds_queue`
/// marks such a failed job that keeps holding its queue. Sleepers and waiters are found by
/// their wake time, waiters by their event (both keys without `state`, which every claim and
/// completion changes: `wake_at` is set only while a job sleeps or waits), the head of a
/// blocking queue by the oldest job of each unfinished state. Checkpoints go with their job.
const V2: Migration = Migration {
    version: 2,
    name: "workflows and blocking queues",
    statements: &[
        Step::Unless {
            exists: Exists::Column("queues", "on_exhausted"),
            statement: concat!("ALTER TABLE @queues@ ADD COLUMN ", queues_v2_column!()),
        },
        Step::Unless {
            exists: Exists::Column("jobs", "holds_queue"),
            // One statement: the column exists iff the keys do.
            statement: concat!(
                "ALTER TABLE @jobs@ ADD COLUMN ",
                jobs_v2_column!(),
                ", ADD KEY jobs_wake (wake_at), ADD KEY jobs_waiting (wake_event), \
                 ADD KEY jobs_head (state, queue, id), ADD KEY jobs_holding (holds_queue, queue, id)"
            ),
        },
        Step::Unless {
            exists: Exists::ForeignKey("checkpoints", "_ckpt_job"),
            statement: concat!("ALTER TABLE @checkpoints@ ADD ", checkpoints_v2_key!()),
        },
    ],
};

/// The stored procedures of version 3, dropped then created again (routines have no
/// `CREATE ... IF NOT EXISTS` in MySQL 8, and a migration interrupted between the two is
/// completed by the next run): `<stem>_spawn`, the enqueue call for producers in any language,
/// and the checks it runs, `<stem>_spawn_check` and `<stem>_retry_check` (the rules of an option
/// document, as in tasque-durable `validate::parse_options`). Procedures, not functions: a
/// stored function needs extra privileges on servers with binary logging.
const ROUTINES_V3: [Step; 6] = [
    Step::Text("DROP PROCEDURE IF EXISTS `@stem@_spawn`"),
    Step::Text("DROP PROCEDURE IF EXISTS `@stem@_spawn_check`"),
    Step::Text("DROP PROCEDURE IF EXISTS `@stem@_retry_check`"),
    Step::Text(include_str!("sql/retry_check.sql")),
    Step::Text(include_str!("sql/spawn_check.sql")),
    Step::Text(include_str!("sql/spawn.sql")),
];

/// Version 3: the `spawn` stored procedure and its checks.
const V3: Migration = Migration {
    version: 3,
    name: "spawn stored procedure",
    statements: &ROUTINES_V3,
};

/// Version 4: periodic jobs (schedules) and the leader lease.
const V4: Migration = Migration {
    version: 4,
    name: "schedules and leader lease",
    statements: &[
        Step::Always(crate::queries::cron::CREATE_SCHEDULES),
        Step::Always(crate::queries::cron::CREATE_LEASES),
    ],
};

/// Version 5: a placeholder for another branch's migration.
const V5: Migration = Migration {
    version: 5,
    name: "placeholder",
    statements: &[],
};

/// What version 6 adds to `jobs`.
const JOBS_V6: &str = "ALTER TABLE @jobs@ ADD COLUMN ordering_key VARCHAR(255) NULL, \
    ADD KEY jobs_key (queue, ordering_key, id)";
/// What version 6 adds to `queues`.
const QUEUES_V6: &str = "ALTER TABLE @queues@ ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT FALSE, \
    ADD COLUMN key_concurrency INT NOT NULL DEFAULT 1, \
    ADD COLUMN key_on_exhausted VARCHAR(16) NOT NULL DEFAULT 'continue', \
    ADD COLUMN rate_limit INT NULL, ADD COLUMN rate_window_ms BIGINT NULL, \
    ADD COLUMN rate_key VARCHAR(600) NOT NULL DEFAULT 'queue'";
/// The rate windows table of version 6.
const RATE_WINDOWS_V6: &str = concat!(
    "CREATE TABLE IF NOT EXISTS `@stem@_rate_windows` (queue VARCHAR(128) NOT NULL, \
     `key` VARCHAR(600) NOT NULL, window_start_ms BIGINT NOT NULL, starts INT NOT NULL, \
     PRIMARY KEY (queue, `key`)",
    table_options!()
);

/// The stored procedures of version 6 (taking `ordering_key`), replacing those of version 3.
const ROUTINES_V6: [Step; 4] = [
    Step::Text("DROP PROCEDURE IF EXISTS `@stem@_spawn`"),
    Step::Text("DROP PROCEDURE IF EXISTS `@stem@_spawn_check`"),
    Step::Text(include_str!("sql/spawn_check_v6.sql")),
    Step::Text(include_str!("sql/spawn_v6.sql")),
];

/// Version 6: flow control (see tasque-durable's `flow`). A job's `ordering_key` puts it in a
/// key of its queue; `keyed` (set at spawn) makes a queue's claims gated, where a keyed job
/// starts only while fewer than `key_concurrency` older jobs of its key are unfinished
/// (`jobs_key`); `key_on_exhausted` = 'stay_blocked' keeps an exhausted keyed job holding its
/// key. `rate_limit` starts per `rate_window_ms` (epoch-aligned) are counted per `rate_key`
/// in `rate_windows`, one row per (queue, key). The spawn procedure takes `ordering_key`.
const V6: Migration = Migration {
    version: 6,
    name: "flow control: ordering keys and rate limits",
    statements: &[
        Step::Unless {
            exists: Exists::Column("jobs", "ordering_key"),
            statement: JOBS_V6,
        },
        Step::Unless {
            exists: Exists::Column("queues", "keyed"),
            statement: QUEUES_V6,
        },
        Step::Always(RATE_WINDOWS_V6),
        ROUTINES_V6[0],
        ROUTINES_V6[1],
        ROUTINES_V6[2],
        ROUTINES_V6[3],
    ],
};

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[V1, V2, V3, V4, V5, V6];

/// Drops the namespace's stored procedures.
pub const DROP_ROUTINES: [&str; 3] = [
    "DROP PROCEDURE IF EXISTS `@stem@_spawn`",
    "DROP PROCEDURE IF EXISTS `@stem@_spawn_check`",
    "DROP PROCEDURE IF EXISTS `@stem@_retry_check`",
];

/// The whole current schema in one `CREATE TABLE` per table, for a namespace that has none
/// (then every migration is recorded as applied). Creating tables with their final shape is
/// several times faster than creating and then altering them (each DDL statement syncs to
/// disk), which matters when many namespaces are made (tests, tenants). `tests/migrations.rs`
/// checks that it yields exactly the tables the migrations do.
pub const FRESH: &[Step] = &[
    Step::Always(concat!(
        "CREATE TABLE IF NOT EXISTS @queues@ (",
        queues_v1!(),
        ",\n            ",
        queues_v2_column!(),
        table_options!()
    )),
    Step::Always(concat!(
        "CREATE TABLE IF NOT EXISTS @jobs@ (",
        jobs_v1_columns!(),
        ",\n            ",
        jobs_v2_column!(),
        ",\n            ",
        jobs_v1_keys!(),
        ",\n            ",
        jobs_v2_keys!(),
        table_options!()
    )),
    Step::Always(concat!(
        "CREATE TABLE IF NOT EXISTS @checkpoints@ (",
        checkpoints_v1!(),
        ",\n            ",
        checkpoints_v2_key!(),
        table_options!()
    )),
    Step::Always(EVENTS),
    ROUTINES_V3[0],
    ROUTINES_V3[1],
    ROUTINES_V3[2],
    ROUTINES_V3[3],
    ROUTINES_V3[4],
    ROUTINES_V3[5],
    Step::Always(crate::queries::cron::CREATE_SCHEDULES),
    Step::Always(crate::queries::cron::CREATE_LEASES),
    Step::Text(JOBS_V6),
    Step::Text(QUEUES_V6),
    Step::Always(RATE_WINDOWS_V6),
    ROUTINES_V6[0],
    ROUTINES_V6[1],
    ROUTINES_V6[2],
    ROUTINES_V6[3],
];
