//! Statements of periodic jobs (schedules) and of the leader lease, against `@schema@`.

/// Registers a schedule or replaces its definition, keeping its firing state. Binds 1 id,
/// 2 definition JSON.
pub const UPSERT_SCHEDULE: &str = "INSERT INTO @schema@.schedules (id, definition) \
    VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET definition = excluded.definition";
/// Every schedule, by id.
pub const LIST_SCHEDULES: &str = "SELECT id, definition, registered_at, last_tick, \
    last_fired_at, last_job, paused FROM @schema@.schedules ORDER BY id";
/// The compare-and-swap of a fire: advances the last tick only from the expected one, on an
/// unpaused schedule (a concurrent fire waits for the row lock, then sees the new tick and
/// matches nothing). Binds 1 id, 2 expected tick (or NULL), 3 new tick.
pub const ADVANCE_TICK: &str = "UPDATE @schema@.schedules SET last_tick = $3 \
    WHERE id = $1 AND NOT paused AND last_tick IS NOT DISTINCT FROM $2";
/// Whether the previous fire's job is unfinished. Binds 1 id.
pub const PREVIOUS_UNFINISHED: &str = "SELECT EXISTS (SELECT 1 FROM @schema@.schedules s \
    JOIN @schema@.jobs j ON j.id = s.last_job WHERE s.id = $1 \
    AND j.state IN ('pending', 'running', 'sleeping', 'waiting'))";
/// Records the job of a fire. Binds 1 id, 2 job id.
pub const RECORD_FIRE: &str = "UPDATE @schema@.schedules SET last_job = $2, \
    last_fired_at = now() WHERE id = $1";
/// Pauses or resumes a schedule. Binds 1 id, 2 paused.
pub const SET_SCHEDULE_PAUSED: &str = "UPDATE @schema@.schedules SET paused = $2 WHERE id = $1";
/// Takes or renews a lease unless another holder's lease is still running. Binds 1 name,
/// 2 holder, 3 ttl ms.
pub const ACQUIRE_LEASE: &str = "INSERT INTO @schema@.leases (name, holder, expires_at) \
    VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
    WHERE leases.holder = excluded.holder OR leases.expires_at <= now()";
/// The holder of an unexpired lease. Binds 1 name.
pub const LEASE_HOLDER: &str =
    "SELECT holder FROM @schema@.leases WHERE name = $1 AND expires_at > now()";
/// Records the elected leader in its lease row, whoever held it (the caller holds the
/// election's lock). Binds 1 name, 2 holder, 3 time to live in ms.
pub const RECORD_LEADER: &str = "INSERT INTO @schema@.leases (name, holder, expires_at) \
    VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at";
/// Tries to take an election's session-level advisory lock. Binds 1 key text.
pub const TRY_LEADER_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";
/// Releases an election's advisory lock. Binds 1 key text.
pub const UNLOCK_LEADER: &str = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
/// Gives a lease up. Binds 1 name, 2 holder.
pub const RELEASE_LEASE: &str = "DELETE FROM @schema@.leases WHERE name = $1 AND holder = $2";
