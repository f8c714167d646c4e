//! Statements of the worker registry (`@stem@_workers`, schema version 7).

/// Records or renews a worker. Binds id, host, pid, queues JSON, ttl µs.
pub const BEAT_WORKER: &str = concat!(
    "INSERT INTO `@stem@_workers` (id, host, pid, queues, started_at, heartbeat_at, expires_at) ",
    "VALUES (?, ?, ?, ?, ",
    now!(),
    ", ",
    now!(),
    ", ",
    now!(),
    " + INTERVAL ? MICROSECOND) ON DUPLICATE KEY UPDATE host = VALUES(host), pid = VALUES(pid), ",
    "queues = VALUES(queues), heartbeat_at = VALUES(heartbeat_at), expires_at = VALUES(expires_at)"
);
/// Every worker, by id, with whether it is alive.
pub const LIST_WORKERS: &str = concat!(
    "SELECT id, host, pid, queues, started_at, heartbeat_at, expires_at > ",
    now!(),
    " FROM `@stem@_workers` ORDER BY id"
);
/// Deletes a worker. Binds id.
pub const FORGET_WORKER: &str = "DELETE FROM `@stem@_workers` WHERE id = ?";
/// Deletes workers dead for longer than a time. Binds µs.
pub const PRUNE_WORKERS: &str = concat!(
    "DELETE FROM `@stem@_workers` WHERE expires_at < ",
    now!(),
    " - INTERVAL ? MICROSECOND"
);
