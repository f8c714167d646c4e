-- name: schedules and leader lease
-- Tasque schema, version 4: periodic jobs (schedules) and the leader lease, for one namespace.
-- `definition` is the schedule as registered (JSON text); `last_tick` is the last tick handled
-- (fired or passed over), the compare-and-swap of every fire; `last_job` the job of the last
-- fire (the overlap policy looks at it). A lease row names its holder until `expires_at`.

CREATE TABLE @schema@.schedules (
    id text PRIMARY KEY,
    definition text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_tick timestamptz,
    last_fired_at timestamptz,
    last_job bigint,
    paused boolean NOT NULL DEFAULT false
);

CREATE TABLE @schema@.leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
