-- name: running-jobs index keyed on the claim, not the lease
-- Version 14: the index of running jobs (v2's `tasque_jobs_lease`) keys on the worker and the
-- claim token instead of the lease's expiry. A lease extension (each checkpoint, each
-- heartbeat) then writes no index entry (before: one deleted and one inserted); a job still
-- enters the index once at its claim and leaves it once when its run ends. A claim reads the
-- jobs it took back through the index by (worker, token) directly. The rescue of expired
-- leases reads the namespace's running jobs through it and keeps those past their lease: the
-- running jobs are at most the workers' slots.

DROP INDEX tasque_jobs_lease;

CREATE INDEX tasque_jobs_lease ON tasque_jobs (ns, worker_id, claim_token)
    WHERE state = 'running';
