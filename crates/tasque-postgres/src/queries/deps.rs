//! Statements of job dependencies (schema version 10), written against `@schema@`. Resolution
//! itself is done by the v10 triggers.

/// Marks the parents of new children as having dependents, under their row locks (taken in id
/// order), and reads their states; ids that do not exist are missing from the result. Binds
/// 1 `bigint[]` of ids.
pub const MARK_PARENTS: &str = "UPDATE @schema@.jobs AS j SET has_dependents = true \
    FROM (SELECT id FROM @schema@.jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE) AS l \
    WHERE j.id = l.id RETURNING j.id, j.state";

/// Records a child's edges. Binds 1 child id, 2 `bigint[]` parents, 3 `bool[]` resolved.
pub const INSERT_EDGES: &str = "INSERT INTO @schema@.job_deps (parent_id, child_id, resolved) \
    SELECT p, $1, r FROM unnest($2::bigint[], $3::bool[]) AS x(p, r) ON CONFLICT DO NOTHING";

/// Sets a new child's dependency columns and its state: 'on_hold', 'cancelled' or 'pending'.
/// Binds 1 id, 2 policy, 3 unresolved count, 4 state, 5 failure JSON text (when cancelled).
pub const ATTACH_CHILD: &str = "UPDATE @schema@.jobs SET on_parent_failure = $2, \
    deps_pending = $3, state = $4, \
    finished_at = CASE WHEN $4 = 'cancelled' THEN now() ELSE NULL END, \
    failure = CASE WHEN $4 = 'cancelled' THEN $5::text::jsonb ELSE NULL END, \
    cancel_at = CASE WHEN $4 = 'pending' THEN cancel_at ELSE NULL END WHERE id = $1";

/// A job's parents with their stored state (NULL once deleted), run time and the clock.
/// Binds 1 child id.
pub const PARENTS_OF: &str = "SELECT d.parent_id, p.state, p.run_at, d.resolved, now() \
    FROM @schema@.job_deps AS d LEFT JOIN @schema@.jobs AS p ON p.id = d.parent_id \
    WHERE d.child_id = $1 ORDER BY d.parent_id";

/// A job's policy and its number of dependents. Binds 1 id.
pub const DEPS_SUMMARY: &str = "SELECT on_parent_failure, \
    (SELECT count(*) FROM @schema@.job_deps WHERE parent_id = $1) \
    FROM @schema@.jobs WHERE id = $1";
