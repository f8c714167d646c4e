-- name: unique jobs
-- Version 5: unique jobs. `unique_key` is a job's unique key (NULL: not unique),
-- `unique_bucket` its period bucket (its first run time in ms since the epoch divided by the
-- period, 0 without one), `unique_states` the states in which it holds its slot as a bitmask
-- (pending 1, running 2, sleeping 4, waiting 8, completed 16, failed 32, cancelled 64), and
-- `unique_slot` the key while the job's state is in its mask (NULL otherwise), generated and
-- stored so that one unique key on (unique_slot, unique_bucket) holds only the jobs that keep
-- their slot (MySQL has no partial indexes): a conflict is one index lookup in the insert.
-- One ALTER TABLE: the columns exist iff the key does.
-- step unless column jobs unique_slot
ALTER TABLE @jobs@ ADD COLUMN unique_key VARCHAR(255) NULL,
    ADD COLUMN unique_bucket BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN unique_states SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN unique_slot VARCHAR(255) AS (CASE WHEN unique_key IS NOT NULL AND
        (unique_states & (CASE state WHEN 'pending' THEN 1 WHEN 'running' THEN 2
        WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8 WHEN 'completed' THEN 16
        WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64 ELSE 0 END)) <> 0
        THEN unique_key END) STORED,
    ADD UNIQUE KEY jobs_unique (unique_slot, unique_bucket)
