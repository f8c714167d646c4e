-- name: partial claim and lease indexes
-- Version 2: the claim, age and lease indexes become partial (pending jobs only, running
-- jobs only). A job leaves them as soon as it is claimed or finished, so each claim and
-- each completion touches far fewer index entries.

DROP INDEX tasque_jobs_claim;

DROP INDEX tasque_jobs_age;

DROP INDEX tasque_jobs_lease;

CREATE INDEX tasque_jobs_claim ON tasque_jobs (ns, queue, priority, run_at, id)
    WHERE state = 'pending';

CREATE INDEX tasque_jobs_age ON tasque_jobs (ns, queue, run_at, id)
    WHERE state = 'pending';

CREATE INDEX tasque_jobs_lease ON tasque_jobs (ns, lease_expires_at)
    WHERE state = 'running';
