-- name: job dependencies
-- Version 10: job dependencies (see tasque-durable's `deps` module for the model). A child is
-- stored 'on_hold' while `deps_pending` (its unresolved parents) is above 0;
-- `on_parent_failure` is its policy ('cancel' or 'run'; NULL for a job spawned without
-- parents). `job_deps` holds one edge per (parent, child), `resolved` once the parent's outcome
-- was applied. `has_dependents` flags a parent, so the triggers cost nothing to other jobs.
--
-- The triggers resolve a parent's edges in the transaction of the very statement that
-- finishes it (complete, fail for good, cancel, or delete: a running job deleted is one
-- deleted on success, counted as completed; an unfinished one deleted counts as cancelled).
-- Each child is updated under its row lock: of two parents finishing at once on two workers,
-- the second waits for the first's commit and then sees its count, so the child is released
-- exactly once. A spawn marks its parents (`has_dependents`) under their row locks before
-- reading their states, so a parent finishing meanwhile either is seen finished or finds the
-- new edge. A child cancelled here fires the same trigger for its own dependents.

ALTER TABLE @schema@.jobs ADD COLUMN deps_pending integer NOT NULL DEFAULT 0,
    ADD COLUMN on_parent_failure text,
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

CREATE TABLE @schema@.job_deps (
    parent_id bigint NOT NULL,
    child_id bigint NOT NULL,
    resolved boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_deps_child ON @schema@.job_deps (child_id, parent_id);

-- Applies a parent's outcome ('completed', 'failed', 'cancelled' or 'deleted') at `at` to its
-- unresolved children.
CREATE FUNCTION @schema@.resolve_parent(parent bigint, outcome text, at timestamptz)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE @schema@.jobs AS c SET deps_pending = c.deps_pending - 1,
        state = CASE WHEN c.deps_pending = 1 THEN 'pending' ELSE c.state END,
        run_at = CASE WHEN c.deps_pending = 1 THEN greatest(c.run_at, at) ELSE c.run_at END,
        cancel_at = CASE WHEN c.deps_pending = 1 AND c.max_delay_ms IS NOT NULL
            THEN greatest(c.run_at, at) + c.max_delay_ms * interval '1 millisecond'
            ELSE c.cancel_at END
    FROM @schema@.job_deps AS d
    WHERE d.parent_id = parent AND NOT d.resolved AND c.id = d.child_id
        AND c.state = 'on_hold' AND (outcome = 'completed' OR c.on_parent_failure = 'run');
    UPDATE @schema@.jobs AS c SET state = 'cancelled', finished_at = at, cancel_at = NULL,
        failure = jsonb_build_object('error', 'parent failed', 'parent', parent,
            'parent_state', outcome)
    FROM @schema@.job_deps AS d
    WHERE d.parent_id = parent AND NOT d.resolved AND c.id = d.child_id
        AND c.state = 'on_hold' AND outcome <> 'completed' AND c.on_parent_failure = 'cancel';
    UPDATE @schema@.job_deps SET resolved = true WHERE parent_id = parent AND NOT resolved;
END
$fn$;

CREATE FUNCTION @schema@.jobs_parent_finished() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM @schema@.resolve_parent(OLD.id,
            CASE WHEN OLD.state = 'running' THEN 'completed' ELSE 'deleted' END, now());
        RETURN OLD;
    END IF;
    PERFORM @schema@.resolve_parent(NEW.id, NEW.state, coalesce(NEW.finished_at, now()));
    RETURN NEW;
END
$fn$;

CREATE FUNCTION @schema@.jobs_child_deleted() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM @schema@.job_deps WHERE child_id = OLD.id;
    RETURN OLD;
END
$fn$;

CREATE TRIGGER jobs_parent_finished AFTER UPDATE OF state ON @schema@.jobs FOR EACH ROW
    WHEN (NEW.has_dependents AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
        AND NEW.state IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION @schema@.jobs_parent_finished();

CREATE TRIGGER jobs_parent_deleted AFTER DELETE ON @schema@.jobs FOR EACH ROW
    WHEN (OLD.has_dependents AND OLD.state NOT IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION @schema@.jobs_parent_finished();

CREATE TRIGGER jobs_child_deleted AFTER DELETE ON @schema@.jobs FOR EACH ROW
    WHEN (OLD.on_parent_failure IS NOT NULL)
    EXECUTE FUNCTION @schema@.jobs_child_deleted();
