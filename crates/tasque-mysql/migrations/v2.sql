-- name: workflows and blocking queues
-- Version 2: durable workflows and blocking queues. `on_exhausted` is a blocking queue's policy
-- for a head job that fails for good (`continue` or `stay_blocked`); `holds_queue` marks such a
-- failed job that keeps holding its queue. Sleepers and waiters are found by their wake time,
-- waiters by their event (both keys without `state`, which every claim and completion changes:
-- `wake_at` is set only while a job sleeps or waits), the head of a blocking queue by the oldest
-- job of each unfinished state. Checkpoints go with their job.
--
-- MySQL 8 has no ADD COLUMN IF NOT EXISTS, so each ALTER runs unless what it creates exists.
-- Each is one ALTER TABLE (atomic in InnoDB): the column exists iff its keys do.
-- step unless column queues on_exhausted
ALTER TABLE @queues@ ADD COLUMN on_exhausted VARCHAR(16) NOT NULL DEFAULT 'continue'
-- step unless column jobs holds_queue
ALTER TABLE @jobs@ ADD COLUMN holds_queue BOOLEAN NOT NULL DEFAULT FALSE,
    ADD KEY jobs_wake (wake_at),
    ADD KEY jobs_waiting (wake_event),
    ADD KEY jobs_head (state, queue, id),
    ADD KEY jobs_holding (holds_queue, queue, id)
-- step unless constraint checkpoints @stem@_ckpt_job
ALTER TABLE @checkpoints@ ADD CONSTRAINT `@stem@_ckpt_job` FOREIGN KEY (job_id)
    REFERENCES @jobs@ (id) ON DELETE CASCADE
