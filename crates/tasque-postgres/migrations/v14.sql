-- name: waiters of finished jobs
-- Version 14: who waits for which job to finish. `Client::wait` adds a row for its job before
-- it first reads the job, and removes it when it returns; a worker that finishes jobs
-- announces (NOTIFY) only the jobs that have rows here, and removes those rows. A burn-down
-- nobody waits on therefore sends no announcement: before, every batch of completions sent
-- one, which made PostgreSQL take its notification lock and flush a commit of its own.
--
-- Unlogged: the rows are hints that no crash needs back (a waiter whose row is lost polls,
-- at least once a second), and writing them writes no WAL. `token` tells two waiters of one
-- job apart; the insert takes it from the table's own sequence.
CREATE UNLOGGED TABLE @schema@.waiters (
    job_id bigint NOT NULL,
    token bigint GENERATED ALWAYS AS IDENTITY,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, token)
);
