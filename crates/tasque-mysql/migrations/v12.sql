-- name: claim indexes of pending jobs only
-- Version 12: the claim picks walk `jobs_pending` (ready_queue, priority, run_at, id) and
-- `jobs_pending_age` (ready_queue, run_at, id), where `ready_queue` is a job's queue while it
-- is pending and NULL otherwise (generated and stored). They replace `jobs_claim` and
-- `jobs_claim_age`, which led with `state`: those changed at every state change, so a job's
-- completion rewrote both (a delete-marked entry and a new one in each, and the purge of the
-- old ones later). A job leaves the new ones once, at its claim; its completion, failure or
-- suspension leaves their NULL entries as they are. MySQL has no partial indexes: a NULL key
-- is the nearest thing. The queue counts read `jobs_head` and `jobs_pending_age` instead.
-- One ALTER TABLE: the column exists iff the new keys do and the old ones are gone.
-- step unless column jobs ready_queue
ALTER TABLE @jobs@ ADD COLUMN ready_queue VARCHAR(128)
        AS (CASE WHEN state = 'pending' THEN queue END) STORED,
    ADD KEY jobs_pending (ready_queue, priority, run_at, id),
    ADD KEY jobs_pending_age (ready_queue, run_at, id),
    DROP KEY jobs_claim,
    DROP KEY jobs_claim_age
