//! Statements of the worker registry (`tasque_workers`, schema version 10).

/// Records or renews a worker. Binds 1 ns, 2 id, 3 host, 4 pid, 5 queues JSON, 6 ttl ms.
pub const BEAT_WORKER: &str = concat!(
    "INSERT INTO tasque_workers (ns, id, host, pid, queues, started_at, heartbeat_at, expires_at) ",
    "VALUES (?1, ?2, ?3, ?4, ?5, ",
    now!(),
    ", ",
    now!(),
    ", ",
    now!(),
    " + ?6) ON CONFLICT (ns, id) DO UPDATE SET host = excluded.host, pid = excluded.pid, ",
    "queues = excluded.queues, heartbeat_at = excluded.heartbeat_at, ",
    "expires_at = excluded.expires_at"
);
/// Every worker of a namespace, by id, with whether it is alive. Binds 1 ns.
pub const LIST_WORKERS: &str = concat!(
    "SELECT id, host, pid, queues, started_at, heartbeat_at, expires_at > ",
    now!(),
    " FROM tasque_workers WHERE ns = ?1 ORDER BY id"
);
/// Deletes a worker. Binds 1 ns, 2 id.
pub const FORGET_WORKER: &str = "DELETE FROM tasque_workers WHERE ns = ?1 AND id = ?2";
/// Deletes workers dead for longer than a time. Binds 1 ns, 2 ms.
pub const PRUNE_WORKERS: &str = concat!(
    "DELETE FROM tasque_workers WHERE ns = ?1 AND expires_at < ",
    now!(),
    " - ?2"
);
