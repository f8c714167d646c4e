//! Queues and their counts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BlockedPolicy, JobId, JobState};

/// Number of jobs in each state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Pending and ready.
    pub available: u64,
    /// Pending until a future time.
    pub scheduled: u64,
    /// Claimed.
    pub running: u64,
    /// Suspended until a time (a sleep).
    pub sleeping: u64,
    /// Waiting for an event.
    pub waiting: u64,
    /// Finished with a result.
    pub completed: u64,
    /// Finished without success.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Held until their parents completed (see [`deps`](crate::deps)).
    #[serde(default)]
    pub on_hold: u64,
}

impl StateCounts {
    /// The count of one state.
    pub fn get(&self, state: JobState) -> u64 {
        *self.slot(state)
    }

    /// Adds `n` to the count of `state`.
    pub fn add(&mut self, state: JobState, n: u64) {
        *self.slot_mut(state) += n;
    }

    /// The sum over every state.
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    fn slot(&self, state: JobState) -> &u64 {
        match state {
            JobState::Available => &self.available,
            JobState::Scheduled => &self.scheduled,
            JobState::Running => &self.running,
            JobState::Sleeping => &self.sleeping,
            JobState::Waiting => &self.waiting,
            JobState::Completed => &self.completed,
            JobState::Failed => &self.failed,
            JobState::Cancelled => &self.cancelled,
            JobState::OnHold => &self.on_hold,
        }
    }

    fn slot_mut(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Available => &mut self.available,
            JobState::Scheduled => &mut self.scheduled,
            JobState::Running => &mut self.running,
            JobState::Sleeping => &mut self.sleeping,
            JobState::Waiting => &mut self.waiting,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
            JobState::OnHold => &mut self.on_hold,
        }
    }
}

/// A queue as [`Store::list_queues`](crate::Store::list_queues) reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Paused queues are not claimed from; spawning into them still works.
    pub paused: bool,
    /// Most jobs of this queue running at once across all workers (`None` = no limit).
    pub concurrency_limit: Option<u32>,
    /// Blocking mode: one job at a time, in creation order, a failure blocking the rest.
    pub blocking: bool,
    /// In blocking mode, what happens when the head job exhausts its attempts.
    pub on_exhausted: BlockedPolicy,
    /// In blocking mode, the job holding the queue when the queue cannot move: a failed job
    /// kept by [`BlockedPolicy::StayBlocked`], or the oldest unfinished job while it waits (a
    /// retry backoff, a delay, a sleep or an event). `None` when the queue can move.
    pub blocked_by: Option<JobId>,
    /// Jobs of this queue by state.
    pub counts: StateCounts,
    /// When the queue was created.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_total() {
        let mut counts = StateCounts::default();
        for (i, state) in JobState::ALL.into_iter().enumerate() {
            counts.add(state, i as u64 + 1);
            assert_eq!(counts.get(state), i as u64 + 1);
        }
        assert_eq!(counts.total(), 45);
    }
}
