//! Statements of job dependencies (`@stem@_job_deps`, schema version 8). Those taking `n` ids
//! bind them as an `IN` list padded to [`shape`](super::shape)`(n)` (see `ops::bind_ids`).

use super::{id_marks, Sql};

impl Sql {
    /// Locks `n` parents (in id order) and reads their state. Binds n ids.
    pub fn lock_parents(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT id, state FROM @jobs@ WHERE id IN ({}) ORDER BY id FOR UPDATE",
            id_marks(n)
        ))
    }

    /// Flags `n` parents as having dependents. Binds n ids.
    pub fn mark_parents(&self, n: usize) -> String {
        self.render(&format!(
            "UPDATE @jobs@ SET has_dependents = TRUE WHERE id IN ({})",
            id_marks(n)
        ))
    }

    /// Records `n` edges of one child. Binds per edge: parent id, child id, resolved.
    pub fn insert_edges(&self, n: usize) -> String {
        self.render(&format!(
            "INSERT IGNORE INTO `@stem@_job_deps` (parent_id, child_id, resolved) VALUES {}",
            vec!["(?, ?, ?)"; n.max(1)].join(", ")
        ))
    }

    /// The unresolved edges of `n` parents, locked. Binds n ids.
    pub fn open_edges(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT parent_id, child_id FROM `@stem@_job_deps` \
             WHERE parent_id IN ({}) AND resolved = FALSE ORDER BY child_id, parent_id FOR UPDATE",
            id_marks(n)
        ))
    }

    /// Marks the edges of `n` parents resolved. Binds n ids.
    pub fn resolve_edges(&self, n: usize) -> String {
        self.render(&format!(
            "UPDATE `@stem@_job_deps` SET resolved = TRUE \
             WHERE parent_id IN ({}) AND resolved = FALSE",
            id_marks(n)
        ))
    }

    /// Locks `n` children and reads their state, count and policy. Binds n ids.
    pub fn lock_children(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT id, state, deps_pending, on_parent_failure, has_dependents FROM @jobs@ \
             WHERE id IN ({}) ORDER BY id FOR UPDATE",
            id_marks(n)
        ))
    }

    /// Which of `n` jobs have dependents, locked (the latest committed flag). Binds n ids.
    pub fn with_dependents(&self, n: usize) -> String {
        self.render(&format!(
            "SELECT id FROM @jobs@ WHERE id IN ({}) AND has_dependents = TRUE FOR UPDATE",
            id_marks(n)
        ))
    }
}

/// Sets a held child's count of unresolved parents. Binds 1 count, 2 id.
pub const SET_PENDING: &str =
    "UPDATE @jobs@ SET deps_pending = ? WHERE id = ? AND state = 'on_hold'";

/// Releases a held child whose parents are all resolved: pending, ready no earlier than now
/// (its max-delay cancellation counted from then). Assignments run left to right: the
/// cancellation time reads the old run time. Binds 1 id.
pub const RELEASE_CHILD: &str = concat!(
    "UPDATE @jobs@ SET deps_pending = 0, ",
    "cancel_at = IF(max_delay_ms IS NULL, cancel_at, GREATEST(run_at, ",
    now!(),
    ") + INTERVAL max_delay_ms * 1000 MICROSECOND), ",
    "run_at = GREATEST(run_at, ",
    now!(),
    "), state = 'pending' WHERE id = ? AND state = 'on_hold'"
);

/// Cancels a held child for its parent's failure. Binds 1 failure JSON, 2 id.
pub const CANCEL_CHILD: &str = concat!(
    "UPDATE @jobs@ SET state = 'cancelled', finished_at = ",
    now!(),
    ", cancel_at = NULL, failure = ? WHERE id = ? AND state = 'on_hold'"
);

/// Sets a new child's dependency columns and its state ('on_hold', 'cancelled' or
/// 'pending'). Binds 1 policy, 2 count, 3 state, 4 state, 5 state, 6 failure, 7 state, 8 id.
pub const ATTACH_CHILD: &str = concat!(
    "UPDATE @jobs@ SET on_parent_failure = ?, deps_pending = ?, ",
    "finished_at = IF(? = 'cancelled', ",
    now!(),
    ", NULL), cancel_at = IF(? = 'pending', cancel_at, NULL), ",
    "failure = IF(? = 'cancelled', ?, NULL), state = ? WHERE id = ?"
);

/// Finished parents whose edges are not all resolved (a crash between a parent's finish and
/// its resolution, or a deleted parent): the repair pass's work, at most 100. Returns the
/// parent id and its stored state (NULL once deleted).
pub const UNRESOLVED_PARENTS: &str = "SELECT DISTINCT d.parent_id, p.state \
    FROM `@stem@_job_deps` AS d LEFT JOIN @jobs@ AS p ON p.id = d.parent_id \
    WHERE d.resolved = FALSE AND (p.id IS NULL OR p.state IN ('completed', 'failed', 'cancelled')) \
    LIMIT 100";

/// A job's parents with their stored state (NULL once deleted), run time and the clock.
/// Binds 1 child id.
pub const PARENTS_OF: &str = concat!(
    "SELECT d.parent_id, p.state, p.run_at, d.resolved, ",
    now!(),
    " FROM `@stem@_job_deps` AS d LEFT JOIN @jobs@ AS p ON p.id = d.parent_id ",
    "WHERE d.child_id = ? ORDER BY d.parent_id"
);

/// A job's policy and its number of dependents. Binds 1 id, 2 id.
pub const DEPS_SUMMARY: &str = "SELECT on_parent_failure, \
    (SELECT COUNT(*) FROM `@stem@_job_deps` WHERE parent_id = ?) \
    FROM @jobs@ WHERE id = ?";
