//! Job states and the transitions between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a job. See the crate documentation for the transition table.
///
/// `Available` and `Scheduled` are both *pending*: a pending job whose run time has come is
/// available, one whose run time is in the future is scheduled (this includes jobs waiting out a
/// retry delay). `Sleeping` and `Waiting` are suspended jobs: their last run ended by
/// [`Store::sleep_until`](crate::Store::sleep_until) or [`Store::await_event`](crate::Store::await_event);
/// they hold no worker slot and become claimable at their wake time or event.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Pending and ready: the next claim may take it.
    Available,
    /// Pending until a future time (a delayed spawn, or a retry waiting out its backoff).
    Scheduled,
    /// Claimed by a worker under a lease.
    Running,
    /// Suspended until a time (a sleep).
    Sleeping,
    /// Suspended until an event is emitted or a timeout passes.
    Waiting,
    /// Finished with a result. Terminal.
    Completed,
    /// Finished without success: out of attempts, or a strategy that does not retry. Terminal,
    /// but [`Store::retry`](crate::Store::retry) can revive it.
    Failed,
    /// Cancelled by an operator or by its cancellation policy. Terminal, but
    /// [`Store::retry`](crate::Store::retry) can revive it.
    Cancelled,
    /// Held until every parent it depends on has completed (see [`deps`](crate::deps)); then
    /// available (or scheduled, if its run time is still ahead).
    OnHold,
}

impl JobState {
    /// Every state, in display order.
    pub const ALL: [JobState; 9] = [
        JobState::Available,
        JobState::Scheduled,
        JobState::Running,
        JobState::Sleeping,
        JobState::Waiting,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
        JobState::OnHold,
    ];

    /// The states a finished job can be in (the cleaner's targets).
    pub const FINISHED: [JobState; 3] =
        [JobState::Completed, JobState::Failed, JobState::Cancelled];

    /// The lower-case name used in storage, filters and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Sleeping => "sleeping",
            JobState::Waiting => "waiting",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::OnHold => "on_hold",
        }
    }

    /// True for completed, failed and cancelled.
    pub fn is_finished(self) -> bool {
        Self::FINISHED.contains(&self)
    }

    /// True for available and scheduled.
    pub fn is_pending(self) -> bool {
        matches!(self, JobState::Available | JobState::Scheduled)
    }

    /// True when [`Store::retry`](crate::Store::retry) applies (failed or cancelled).
    pub fn is_retryable(self) -> bool {
        matches!(self, JobState::Failed | JobState::Cancelled)
    }

    /// True when [`Store::cancel`](crate::Store::cancel) changes the job (anything unfinished).
    pub fn is_cancellable(self) -> bool {
        !self.is_finished()
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct ParseStateError(pub String);

impl FromStr for JobState {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseStateError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
        assert!("bogus".parse::<JobState>().is_err());
    }

    #[test]
    fn finished_states_are_terminal_and_not_cancellable() {
        for state in JobState::ALL {
            assert_eq!(state.is_finished(), !state.is_cancellable());
        }
        assert!(JobState::Failed.is_retryable() && JobState::Cancelled.is_retryable());
        assert!(!JobState::Completed.is_retryable());
    }
}
