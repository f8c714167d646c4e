//! Statements of the worker registry (`workers`, schema version 8), written against
//! `@schema@`.

/// Records or renews a worker. Binds 1 id, 2 host, 3 pid, 4 queues JSON, 5 ttl ms.
pub const BEAT_WORKER: &str = "INSERT INTO @schema@.workers \
    (id, host, pid, queues, started_at, heartbeat_at, expires_at) \
    VALUES ($1, $2, $3, $4::jsonb, now(), now(), now() + $5::bigint * interval '1 millisecond') \
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
    queues = excluded.queues, heartbeat_at = excluded.heartbeat_at, \
    expires_at = excluded.expires_at";
/// Every worker, by id, with whether it is alive.
pub const LIST_WORKERS: &str = "SELECT id, host, pid, queues::text, started_at, heartbeat_at, \
    expires_at > now() FROM @schema@.workers ORDER BY id";
/// Deletes a worker. Binds 1 id.
pub const FORGET_WORKER: &str = "DELETE FROM @schema@.workers WHERE id = $1";
/// Deletes workers dead for longer than a time. Binds 1 ms.
pub const PRUNE_WORKERS: &str = "DELETE FROM @schema@.workers \
    WHERE expires_at < now() - $1::bigint * interval '1 millisecond'";
