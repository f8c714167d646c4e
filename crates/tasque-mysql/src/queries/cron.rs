//! Statements of periodic jobs (schedules) and of the leader lease, written against the
//! namespace's tables `@stem@_schedules` and `@stem@_leases`.

/// Registers a schedule or replaces its definition, keeping its firing state. Binds id,
/// definition JSON.
pub const UPSERT_SCHEDULE: &str = concat!(
    "INSERT INTO `@stem@_schedules` (id, definition, registered_at) VALUES (?, ?, ",
    now!(),
    ") ON DUPLICATE KEY UPDATE definition = VALUES(definition)"
);
/// Every schedule, by id.
pub const LIST_SCHEDULES: &str = "SELECT id, definition, registered_at, last_tick, \
    last_fired_at, last_job, paused FROM `@stem@_schedules` ORDER BY id";
/// The compare-and-swap of a fire: advances the last tick only from the expected one, on an
/// unpaused schedule (a concurrent fire waits for the row lock, then matches nothing). Binds
/// new tick, id, expected tick (or NULL).
pub const ADVANCE_TICK: &str = "UPDATE `@stem@_schedules` SET last_tick = ? \
    WHERE id = ? AND NOT paused AND last_tick <=> ?";
/// Whether the previous fire's job is unfinished. Binds id.
pub const PREVIOUS_UNFINISHED: &str = "SELECT EXISTS (SELECT 1 FROM `@stem@_schedules` s \
    JOIN `@stem@_jobs` j ON j.id = s.last_job WHERE s.id = ? \
    AND j.state IN ('pending', 'running', 'sleeping', 'waiting'))";
/// Records the job of a fire. Binds job id, id.
pub const RECORD_FIRE: &str = concat!(
    "UPDATE `@stem@_schedules` SET last_job = ?, last_fired_at = ",
    now!(),
    " WHERE id = ?"
);
/// Whether a schedule exists. Binds id.
pub const SCHEDULE_EXISTS: &str = "SELECT 1 FROM `@stem@_schedules` WHERE id = ?";
/// Pauses or resumes a schedule. Binds paused, id.
pub const SET_SCHEDULE_PAUSED: &str = "UPDATE `@stem@_schedules` SET paused = ? WHERE id = ?";
/// Takes a free lease. Binds name, holder, ttl µs.
pub const INSERT_LEASE: &str = concat!(
    "INSERT IGNORE INTO `@stem@_leases` (name, holder, expires_at) VALUES (?, ?, ",
    now!(),
    " + INTERVAL ? MICROSECOND)"
);
/// Renews a held lease or takes over an expired one. Binds holder, ttl µs, name, holder.
pub const TAKE_LEASE: &str = concat!(
    "UPDATE `@stem@_leases` SET holder = ?, expires_at = ",
    now!(),
    " + INTERVAL ? MICROSECOND WHERE name = ? AND (holder = ? OR expires_at <= ",
    now!(),
    ")"
);
/// The holder of an unexpired lease. Binds name.
pub const LEASE_HOLDER: &str = concat!(
    "SELECT holder FROM `@stem@_leases` WHERE name = ? AND expires_at > ",
    now!()
);
/// Gives a lease up. Binds name, holder.
pub const RELEASE_LEASE: &str = "DELETE FROM `@stem@_leases` WHERE name = ? AND holder = ?";
