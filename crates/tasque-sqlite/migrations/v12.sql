-- name: job dependencies
-- Version 12: job dependencies (see tasque-durable's `deps` module for the model). A child is
-- stored 'on_hold' while `deps_pending` (its unresolved parents) is above 0; `on_parent_failure`
-- is its policy ('cancel' or 'run'; NULL for a job spawned without parents). `tasque_job_deps`
-- holds one edge per (child, parent), `resolved` once the parent's outcome was applied.
-- `has_dependents` flags a parent, so the triggers below cost nothing to other jobs.
--
-- The triggers resolve a parent's edges in the very statement that finishes it (complete,
-- fail for good, cancel, or delete: a running job deleted is one deleted on success, counted
-- as completed; an unfinished one deleted counts as cancelled). SQLite has one writer at a
-- time, so two parents finishing "at once" are two statements one after the other: the child
-- is released exactly once. A child cancelled here fires the same trigger for its own
-- dependents (the engine's connections set `recursive_triggers`). Times: the finishing
-- statement's `finished_at`, or the virtual clock of test mode (v11) falling back to the
-- database clock.

ALTER TABLE tasque_jobs ADD COLUMN deps_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasque_jobs ADD COLUMN on_parent_failure TEXT;
ALTER TABLE tasque_jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;

CREATE TABLE tasque_job_deps (
        child_id INTEGER NOT NULL,
        parent_id INTEGER NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (parent_id, child_id)
    ) WITHOUT ROWID;

CREATE INDEX tasque_job_deps_child ON tasque_job_deps (child_id, parent_id);

CREATE TRIGGER tasque_jobs_parent_finished AFTER UPDATE OF state ON tasque_jobs
    WHEN NEW.has_dependents = 1
        AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
        AND NEW.state IN ('completed', 'failed', 'cancelled')
BEGIN
    UPDATE tasque_jobs SET deps_pending = deps_pending - 1,
            state = CASE WHEN deps_pending = 1 THEN 'pending' ELSE state END,
            run_at = CASE WHEN deps_pending = 1 THEN max(run_at, COALESCE(NEW.finished_at, run_at)) ELSE run_at END,
            cancel_at = CASE WHEN deps_pending = 1 AND max_delay_ms IS NOT NULL
                THEN max(run_at, COALESCE(NEW.finished_at, run_at)) + max_delay_ms ELSE cancel_at END
        WHERE id IN (SELECT child_id FROM tasque_job_deps WHERE parent_id = NEW.id AND resolved = 0)
            AND state = 'on_hold'
            AND (NEW.state = 'completed' OR on_parent_failure = 'run');
    UPDATE tasque_jobs SET state = 'cancelled', finished_at = COALESCE(NEW.finished_at, run_at), cancel_at = NULL,
            failure = json_object('error', 'parent failed', 'parent', NEW.id,
                'parent_state', NEW.state)
        WHERE id IN (SELECT child_id FROM tasque_job_deps WHERE parent_id = NEW.id AND resolved = 0)
            AND state = 'on_hold' AND NEW.state <> 'completed'
            AND on_parent_failure = 'cancel';
    UPDATE tasque_job_deps SET resolved = 1 WHERE parent_id = NEW.id AND resolved = 0;
END;

CREATE TRIGGER tasque_jobs_parent_deleted AFTER DELETE ON tasque_jobs
    WHEN OLD.has_dependents = 1 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    UPDATE tasque_jobs SET deps_pending = deps_pending - 1,
            state = CASE WHEN deps_pending = 1 THEN 'pending' ELSE state END,
            run_at = CASE WHEN deps_pending = 1 THEN max(run_at,
                COALESCE((SELECT at_ms FROM tasque_clock WHERE id = 1),
                    CAST(unixepoch('subsec') * 1000 AS INTEGER))) ELSE run_at END,
            cancel_at = CASE WHEN deps_pending = 1 AND max_delay_ms IS NOT NULL
                THEN max(run_at, COALESCE((SELECT at_ms FROM tasque_clock WHERE id = 1),
                    CAST(unixepoch('subsec') * 1000 AS INTEGER))) + max_delay_ms
                ELSE cancel_at END
        WHERE id IN (SELECT child_id FROM tasque_job_deps WHERE parent_id = OLD.id AND resolved = 0)
            AND state = 'on_hold'
            AND (OLD.state = 'running' OR on_parent_failure = 'run');
    UPDATE tasque_jobs SET state = 'cancelled', cancel_at = NULL,
            finished_at = COALESCE((SELECT at_ms FROM tasque_clock WHERE id = 1),
                CAST(unixepoch('subsec') * 1000 AS INTEGER)),
            failure = json_object('error', 'parent failed', 'parent', OLD.id,
                'parent_state', 'deleted')
        WHERE id IN (SELECT child_id FROM tasque_job_deps WHERE parent_id = OLD.id AND resolved = 0)
            AND state = 'on_hold' AND OLD.state <> 'running'
            AND on_parent_failure = 'cancel';
    UPDATE tasque_job_deps SET resolved = 1 WHERE parent_id = OLD.id AND resolved = 0;
END;

CREATE TRIGGER tasque_jobs_child_deleted AFTER DELETE ON tasque_jobs
    WHEN OLD.on_parent_failure IS NOT NULL
BEGIN
    DELETE FROM tasque_job_deps WHERE child_id = OLD.id;
END;
