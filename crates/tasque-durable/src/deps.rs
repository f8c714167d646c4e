//! Job dependencies: a job may wait for other jobs (fan-out and fan-in).
//!
//! # The model
//!
//! A spawn may carry [`Dependencies`]: the ids of its *parents* (existing jobs, at most
//! [`MAX_PARENTS`]) and a [`ParentFailure`] policy. The child is stored
//! [`on_hold`](crate::JobState::OnHold) until every parent has completed; the transaction that
//! finishes its last parent makes it available (or scheduled, if its own run time is still
//! ahead; its ready time is then the release time, not its creation). Any number of workers
//! finishing parents at once release it exactly once: each engine resolves a parent's edges
//! in the very write that finishes the parent, on the child's row (a count of unresolved
//! parents), under that row's lock.
//!
//! * **A parent fails for good or is cancelled.** The child's policy decides:
//!   [`ParentFailure::Cancel`] (the default) cancels the child, with the failure
//!   `{"error": "parent failed", "parent": ID, "parent_state": "failed"}`, and so,
//!   transitively, its own dependents whose policy is `cancel` too (those with policy `run`
//!   count it as resolved); [`ParentFailure::Run`] counts that parent as resolved.
//!   Deleting an unfinished parent counts as cancelling it; a job deleted on success counts
//!   as completed.
//! * **Parents already finished at enqueue** count at once, the same way: a child whose
//!   parents all completed is available at once; a child with policy `cancel` and a failed
//!   parent is enqueued cancelled.
//! * **Decisions are final.** A parent's outcome is applied to each child once, when the
//!   parent first finishes. Retrying a parent later (an operator's [`retry`](crate::Store::retry))
//!   changes none of its children: a child it released has already run or will, and a child
//!   it cancelled stays cancelled until retried itself, which runs it at once, without
//!   waiting for anything.
//! * **Cleaning.** Since the decision is taken when the parent finishes, the cleaner may
//!   delete a finished parent at any time: its children lose nothing but the parent's row
//!   (`jobs show` then lists the parent as deleted). A child's edges are deleted with it.
//! * **Refusals.** A parent id that does not exist (in the store's namespace) refuses the
//!   spawn with [`Error::UnknownParent`] naming it, before anything is written (in
//!   `spawn_many`, the whole batch); more than [`MAX_PARENTS`] parents are refused with
//!   [`Error::TooManyParents`]. A job cannot depend on itself or on a later job (its parents
//!   exist before it does), so dependencies never form a cycle. A job with dependencies
//!   cannot be [unique](crate::unique) (refused naming `depends_on`).
//!
//! Dependencies are given through the Rust API ([`SpawnOptions::with_depends_on`](crate::SpawnOptions::with_depends_on),
//! [`JobOptions::depends_on`](crate::client::JobOptions::depends_on)) and the CLI
//! (`tasque enqueue --depends-on ID`); option documents (the engines' SQL `spawn`) do not
//! carry them yet.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{JobId, JobState};

/// Most parents one job may have.
pub const MAX_PARENTS: usize = 1000;

/// What a child does when one of its parents fails for good or is cancelled.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ParentFailure {
    /// Cancel the child (and, transitively, its dependents whose policy is `cancel`).
    #[default]
    Cancel,
    /// Count the parent as resolved: the child runs once its other parents are resolved.
    Run,
}

impl ParentFailure {
    /// The name used in storage and the CLI: `cancel` or `run`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentFailure::Cancel => "cancel",
            ParentFailure::Run => "run",
        }
    }
}

impl fmt::Display for ParentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ParentFailure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cancel" => Ok(ParentFailure::Cancel),
            "run" => Ok(ParentFailure::Run),
            _ => Err(Error::invalid_option(
                "on_parent_failure",
                "must be cancel or run",
            )),
        }
    }
}

/// A spawn's parents and failure policy ([`SpawnOptions::depends_on`](crate::SpawnOptions::depends_on)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// The parents (existing jobs; listed twice counts once).
    pub parents: Vec<JobId>,
    /// What a parent's failure does to the child.
    pub on_parent_failure: ParentFailure,
}

impl Dependencies {
    /// Depends on `parents`, policy [`ParentFailure::Cancel`].
    pub fn on(parents: impl IntoIterator<Item = JobId>) -> Self {
        Dependencies {
            parents: parents.into_iter().collect(),
            on_parent_failure: ParentFailure::default(),
        }
    }

    /// Sets the failure policy.
    pub fn on_parent_failure(mut self, policy: ParentFailure) -> Self {
        self.on_parent_failure = policy;
        self
    }

    /// The parents, sorted, each once.
    pub fn distinct_parents(&self) -> Vec<JobId> {
        let mut parents = self.parents.clone();
        parents.sort_unstable();
        parents.dedup();
        parents
    }

    /// Checks the number of parents (1 to [`MAX_PARENTS`], after removing repeats).
    pub fn validate(&self) -> Result<()> {
        let count = self.distinct_parents().len();
        if count == 0 {
            return Err(Error::invalid_option(
                "depends_on",
                "must name at least one parent job",
            ));
        }
        if count > MAX_PARENTS {
            return Err(Error::TooManyParents {
                count,
                max: MAX_PARENTS,
            });
        }
        Ok(())
    }
}

/// What [`classify`] decides for a new child from its parents' states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueDecision {
    /// Parents not finished yet: the child is held while this is above 0.
    pub pending: usize,
    /// The finished parent (and its state) that cancels the child, if any.
    pub cancelled_by: Option<(JobId, JobState)>,
    /// Each parent with true when it is resolved already.
    pub resolved: Vec<(JobId, bool)>,
}

/// The decision for a child whose parents are in these states (every parent exists).
pub fn classify(parents: &[(JobId, JobState)], policy: ParentFailure) -> EnqueueDecision {
    let mut decision = EnqueueDecision {
        pending: 0,
        cancelled_by: None,
        resolved: Vec::with_capacity(parents.len()),
    };
    for (id, state) in parents {
        let resolved = state.is_finished();
        if !resolved {
            decision.pending += 1;
        } else if *state != JobState::Completed
            && policy == ParentFailure::Cancel
            && decision.cancelled_by.is_none()
        {
            decision.cancelled_by = Some((*id, *state));
        }
        decision.resolved.push((*id, resolved));
    }
    decision
}

/// Every distinct parent id named by these spawns' dependencies, sorted.
pub fn parent_ids<'a>(deps: impl Iterator<Item = &'a Dependencies>) -> Vec<i64> {
    let mut ids: Vec<i64> = deps
        .flat_map(|d| d.distinct_parents())
        .map(|id| id.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Refuses with [`Error::UnknownParent`] the smallest of `ids` (sorted) missing from the
/// parents an engine found.
pub fn check_parents(ids: &[i64], found: &HashMap<i64, JobState>) -> Result<()> {
    match ids.iter().find(|id| !found.contains_key(id)) {
        Some(missing) => Err(Error::UnknownParent(JobId(*missing))),
        None => Ok(()),
    }
}

/// How an engine attaches a new child to its parents: its edges, its count of unresolved
/// parents and its stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Each parent with true when it is resolved already.
    pub edges: Vec<(JobId, bool)>,
    /// Parents not finished yet.
    pub pending: usize,
    /// The child's stored state: `on_hold`, `cancelled` (a finished parent cancels it) or
    /// `pending` (every parent resolved).
    pub stored_state: &'static str,
    /// The failure to record when cancelled (JSON text).
    pub failure: Option<String>,
}

/// The attachment of a child with `deps`, given the states of its parents (as checked by
/// [`check_parents`]).
pub fn attachment(deps: &Dependencies, found: &HashMap<i64, JobState>) -> Result<Attachment> {
    let parents: Vec<(JobId, JobState)> = deps
        .distinct_parents()
        .into_iter()
        .map(|id| {
            let state = found.get(&id.0).copied().ok_or(Error::UnknownParent(id))?;
            Ok((id, state))
        })
        .collect::<Result<_>>()?;
    let decision = classify(&parents, deps.on_parent_failure);
    let (stored_state, failure) = match decision.cancelled_by {
        Some((parent, state)) => (
            "cancelled",
            Some(parent_failure_reason(parent, state).to_string()),
        ),
        None if decision.pending > 0 => ("on_hold", None),
        None => ("pending", None),
    };
    Ok(Attachment {
        edges: decision.resolved,
        pending: decision.pending,
        stored_state,
        failure,
    })
}

/// A stored policy (`NULL` for a job without parents: the default).
pub fn stored_policy(stored: Option<&str>) -> Result<ParentFailure> {
    match stored {
        Some(p) => p
            .parse()
            .map_err(|_| Error::Corrupt(format!("on_parent_failure {p:?}"))),
        None => Ok(ParentFailure::default()),
    }
}

/// The failure recorded on a child cancelled because `parent` ended in `state`.
pub fn parent_failure_reason(parent: JobId, state: JobState) -> serde_json::Value {
    serde_json::json!({"error": "parent failed", "parent": parent.0, "parent_state": state.as_str()})
}

/// One parent of a job, as [`Deps::job`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The parent.
    pub id: JobId,
    /// Its state now; `None` once it was deleted.
    pub state: Option<JobState>,
    /// True once its outcome was applied to the child.
    pub resolved: bool,
}

/// A job's dependencies: its parents and how many jobs depend on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobDeps {
    /// Its parents, by id (empty for a job spawned without dependencies).
    pub parents: Vec<Parent>,
    /// Its failure policy (meaningful when it has parents).
    pub on_parent_failure: ParentFailure,
    /// How many jobs depend on it.
    pub dependents: u64,
}

impl JobDeps {
    /// Parents whose outcome is still awaited.
    pub fn unresolved(&self) -> Vec<JobId> {
        self.parents
            .iter()
            .filter(|p| !p.resolved)
            .map(|p| p.id)
            .collect()
    }

    /// Why a held job waits: `waiting on N of M parents (ids ...)`, listing at most 5 ids;
    /// `None` when nothing is awaited.
    pub fn wait_reason(&self) -> Option<String> {
        let waiting = self.unresolved();
        if waiting.is_empty() {
            return None;
        }
        let shown: Vec<String> = waiting.iter().take(5).map(|id| id.to_string()).collect();
        let more = if waiting.len() > 5 { ", ..." } else { "" };
        Some(format!(
            "waiting on {} of {} parents ({}{more})",
            waiting.len(),
            self.parents.len(),
            shown.join(", ")
        ))
    }
}

/// The engine side of dependencies: what a job waits on. Enqueue and resolution are part of
/// the engines' spawn and finishing writes.
#[async_trait]
pub trait DepsEngine: Send + Sync {
    /// A job's parents (with their states) and its number of dependents; an unknown job has
    /// none.
    async fn deps_of(&self, job: JobId) -> Result<JobDeps>;
}

/// Dependencies of a store ([`Store::deps`](crate::Store::deps)).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    engine: &'a dyn DepsEngine,
}

impl fmt::Debug for Deps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Deps")
    }
}

impl<'a> Deps<'a> {
    /// Dependencies over an engine.
    pub fn new(engine: &'a dyn DepsEngine) -> Deps<'a> {
        Deps { engine }
    }

    /// A job's parents and number of dependents.
    pub async fn job(&self, job: JobId) -> Result<JobDeps> {
        self.engine.deps_of(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_parents_count_at_once_by_the_policy() {
        let parents = [
            (JobId(1), JobState::Completed),
            (JobId(2), JobState::Failed),
            (JobId(3), JobState::Running),
        ];
        let d = classify(&parents, ParentFailure::Cancel);
        assert_eq!(d.pending, 1);
        assert_eq!(d.cancelled_by, Some((JobId(2), JobState::Failed)));
        let d = classify(&parents, ParentFailure::Run);
        assert_eq!(d.cancelled_by, None);
        assert_eq!(
            d.resolved,
            vec![(JobId(1), true), (JobId(2), true), (JobId(3), false)]
        );
    }

    #[test]
    fn parents_are_counted_once_and_capped() {
        let d = Dependencies::on([JobId(2), JobId(1), JobId(2)]);
        assert_eq!(d.distinct_parents(), vec![JobId(1), JobId(2)]);
        assert!(d.validate().is_ok());
        assert!(Dependencies::on([]).validate().is_err());
        let many = Dependencies::on((1..=1001).map(JobId));
        assert!(matches!(
            many.validate(),
            Err(Error::TooManyParents { count: 1001, .. })
        ));
        assert_eq!("run".parse::<ParentFailure>().unwrap(), ParentFailure::Run);
        assert!("later".parse::<ParentFailure>().is_err());
    }

    #[test]
    fn the_wait_reason_names_some_parents() {
        let deps = JobDeps {
            parents: (1..=8)
                .map(|i| Parent {
                    id: JobId(i),
                    state: Some(JobState::Running),
                    resolved: i > 6,
                })
                .collect(),
            ..JobDeps::default()
        };
        assert_eq!(
            deps.wait_reason().as_deref(),
            Some("waiting on 6 of 8 parents (1, 2, 3, 4, 5, ...)")
        );
        assert_eq!(JobDeps::default().wait_reason(), None);
    }
}
