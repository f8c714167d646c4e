-- name: state indexes without running jobs
-- Version 13: the inspector's state indexes no longer hold running jobs.
--
-- Every state change of a job writes an entry in each index that covers the new row. The
-- indexes by (state, id) (version 5) and by (state, queue, id) (version 8) covered every row,
-- so a claim (pending to running) wrote an entry in both, used only by the dashboard's list of
-- running jobs. Running jobs are few (at most the workers' slots) and `jobs_lease` (version 1)
-- already holds exactly them, so that list reads `jobs_lease` and sorts the few by id. The two
-- replacements skip running jobs: a claim writes two index entries fewer. A filter on any
-- other state (always a literal in the inspector's SQL) implies `state <> 'running'`, so the
-- planner still reads these indexes for it.
CREATE INDEX jobs_by_state ON @schema@.jobs (state, id) WHERE state <> 'running';
CREATE INDEX jobs_by_state_queue ON @schema@.jobs (state, queue, id) WHERE state <> 'running';
DROP INDEX @schema@.jobs_state_id;
DROP INDEX @schema@.jobs_state_queue_id;
