//! Job dependency statements (migration v12): marking parents at enqueue, attaching a child,
//! and reading a job's parents. Resolution itself is done by the v12 triggers.

/// Marks the parents of new children as having dependents and reads their states; ids that do
/// not exist in the namespace are missing from the result. Binds: 1 ns, 2 a JSON array of ids.
pub const MARK_PARENTS: &str = "UPDATE tasque_jobs SET has_dependents = 1 \
    WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2)) RETURNING id, state";

/// Records a child's edges. Binds: 1 child id, 2 a JSON array of `[parent id, resolved]`.
pub const INSERT_EDGES: &str = "INSERT INTO tasque_job_deps (child_id, parent_id, resolved) \
    SELECT ?1, value ->> 0, value ->> 1 FROM json_each(?2) WHERE true \
    ON CONFLICT DO NOTHING";

/// Sets a new child's dependency columns and its state: 'on_hold' (parents pending),
/// 'cancelled' (a finished parent cancels it) or 'pending' (every parent resolved). Binds:
/// 1 ns, 2 id, 3 policy, 4 unresolved count, 5 state, 6 failure JSON (when cancelled).
pub const ATTACH_CHILD: &str = concat!(
    "UPDATE tasque_jobs SET on_parent_failure = ?3, deps_pending = ?4, state = ?5, ",
    "finished_at = CASE WHEN ?5 = 'cancelled' THEN ",
    now!(),
    " ELSE NULL END, failure = CASE WHEN ?5 = 'cancelled' THEN json(?6) ELSE NULL END, ",
    "cancel_at = CASE WHEN ?5 = 'pending' THEN cancel_at ELSE NULL END ",
    "WHERE ns = ?1 AND id = ?2"
);

/// A job's parents with their stored state (NULL once deleted), run time and the clock.
/// Binds: 1 ns, 2 child id.
pub const PARENTS_OF: &str = concat!(
    "SELECT d.parent_id, p.state, p.run_at, d.resolved, ",
    now!(),
    " AS now_ms ",
    "FROM tasque_job_deps AS d LEFT JOIN tasque_jobs AS p ON p.id = d.parent_id AND p.ns = ?1 ",
    "WHERE d.child_id = ?2 AND EXISTS (SELECT 1 FROM tasque_jobs AS c WHERE c.id = ?2 AND c.ns = ?1) ",
    "ORDER BY d.parent_id"
);

/// A job's policy and its number of dependents. Binds: 1 ns, 2 id.
pub const DEPS_SUMMARY: &str = "SELECT on_parent_failure, \
    (SELECT COUNT(*) FROM tasque_job_deps WHERE parent_id = ?2) \
    FROM tasque_jobs WHERE ns = ?1 AND id = ?2";
