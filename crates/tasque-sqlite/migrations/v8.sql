-- name: unique jobs
-- Version 8: unique jobs. `unique_key` is the job's unique key (NULL: not unique),
-- `unique_bucket` its period bucket (scheduled run time in ms divided by the period; 0 without
-- one), `unique_states` the states holding the slot as a bitmask (pending 1, running 2,
-- sleeping 4, waiting 8, completed 16, failed 32, cancelled 64). The partial unique index holds
-- only jobs whose current state is in their mask, so a spawn's conflict is one index lookup.

ALTER TABLE tasque_jobs ADD COLUMN unique_key TEXT;

ALTER TABLE tasque_jobs ADD COLUMN unique_bucket INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tasque_jobs ADD COLUMN unique_states INTEGER NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX tasque_jobs_unique ON tasque_jobs (ns, unique_key, unique_bucket)
    WHERE unique_key IS NOT NULL AND (unique_states & (CASE state WHEN 'pending' THEN 1
        WHEN 'running' THEN 2 WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8
        WHEN 'completed' THEN 16 WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64
        ELSE 0 END)) <> 0;
