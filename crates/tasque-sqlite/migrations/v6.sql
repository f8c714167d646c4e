-- name: schedules and leases
-- Version 6: periodic jobs (the schedules, each with its last handled tick: the compare-and-swap
-- of every fire) and the leases of the elected leader.

CREATE TABLE tasque_schedules (
    ns TEXT NOT NULL,
    id TEXT NOT NULL,
    definition TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    last_tick INTEGER,
    last_fired_at INTEGER,
    last_job INTEGER,
    paused INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ns, id)
) WITHOUT ROWID;

CREATE TABLE tasque_leases (
    ns TEXT NOT NULL,
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (ns, name)
) WITHOUT ROWID;
