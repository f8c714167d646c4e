//! Statements of periodic jobs (schedules) and of the leader lease.

/// Registers a schedule or replaces its definition, keeping its firing state. Binds 1 ns,
/// 2 id, 3 definition JSON.
pub const UPSERT_SCHEDULE: &str = concat!(
    "INSERT INTO tasque_schedules (ns, id, definition, registered_at) VALUES (?1, ?2, ?3, ",
    now!(),
    ") ON CONFLICT (ns, id) DO UPDATE SET definition = excluded.definition"
);
/// Every schedule of a namespace. Binds 1 ns.
pub const LIST_SCHEDULES: &str = "SELECT id, definition, registered_at, last_tick,
    last_fired_at, last_job, paused FROM tasque_schedules WHERE ns = ?1 ORDER BY id";
/// The compare-and-swap of a fire: advances the last tick only from the expected one, on an
/// unpaused schedule. Binds 1 ns, 2 id, 3 expected tick ms (or NULL), 4 new tick ms.
pub const ADVANCE_TICK: &str = "UPDATE tasque_schedules SET last_tick = ?4
    WHERE ns = ?1 AND id = ?2 AND paused = 0 AND last_tick IS ?3";
/// Whether the previous fire's job is unfinished. Binds 1 ns, 2 id.
pub const PREVIOUS_UNFINISHED: &str = "SELECT EXISTS (SELECT 1 FROM tasque_schedules s
    JOIN tasque_jobs j ON j.id = s.last_job AND j.ns = s.ns
    WHERE s.ns = ?1 AND s.id = ?2 AND j.finished_at IS NULL)";
/// Records the job of a fire. Binds 1 ns, 2 id, 3 job id.
pub const RECORD_FIRE: &str = concat!(
    "UPDATE tasque_schedules SET last_job = ?3, last_fired_at = ",
    now!(),
    " WHERE ns = ?1 AND id = ?2"
);
/// Deletes a schedule. Binds 1 ns, 2 id.
pub const DELETE_SCHEDULE: &str = "DELETE FROM tasque_schedules WHERE ns = ?1 AND id = ?2";
/// Pauses or resumes a schedule. Binds 1 ns, 2 id, 3 paused (0/1).
pub const SET_SCHEDULE_PAUSED: &str =
    "UPDATE tasque_schedules SET paused = ?3 WHERE ns = ?1 AND id = ?2";
/// Takes or renews a lease unless another holder's lease is still running. Binds 1 ns,
/// 2 name, 3 holder, 4 ttl ms.
pub const ACQUIRE_LEASE: &str = concat!(
    "INSERT INTO tasque_leases (ns, name, holder, expires_at) VALUES (?1, ?2, ?3, ",
    now!(),
    " + ?4) ON CONFLICT (ns, name) DO UPDATE SET holder = excluded.holder, ",
    "expires_at = excluded.expires_at WHERE tasque_leases.holder = excluded.holder ",
    "OR tasque_leases.expires_at <= ",
    now!()
);
/// The holder of an unexpired lease. Binds 1 ns, 2 name.
pub const LEASE_HOLDER: &str = concat!(
    "SELECT holder FROM tasque_leases WHERE ns = ?1 AND name = ?2 AND expires_at > ",
    now!()
);
/// Gives a lease up. Binds 1 ns, 2 name, 3 holder.
pub const RELEASE_LEASE: &str =
    "DELETE FROM tasque_leases WHERE ns = ?1 AND name = ?2 AND holder = ?3";
