//! Durable workflows: checkpoints, suspensions (sleeps and event waits), events, and the
//! blocking-queue policy.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RunId;
use crate::options::RunAt;

/// One stored step result of a job, as [`Store::get_checkpoints`](crate::Store::get_checkpoints)
/// returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The step's name, unique within its job.
    pub name: String,
    /// The step's result (JSON).
    pub value: Value,
    /// The run sequence number that wrote it.
    pub run_seq: i64,
    /// When it was written (engine clock).
    pub updated_at: DateTime<Utc>,
}

/// Parameters of [`Store::set_checkpoint`](crate::Store::set_checkpoint).
#[derive(Clone, Debug, PartialEq)]
pub struct SetCheckpoint {
    /// The run writing it; it must own its job.
    pub run: RunId,
    /// The step's name (1 to 255 bytes, no control characters).
    pub name: String,
    /// The step's result.
    pub value: Value,
    /// The run's lease is extended to this long from now by the same write (positive).
    pub extend_lease: Duration,
}

/// Parameters of [`Store::sleep_until`](crate::Store::sleep_until).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SleepParams {
    /// The run that suspends; it must own its job.
    pub run: RunId,
    /// When the job becomes claimable again (engine clock for relative times).
    pub until: RunAt,
}

/// Parameters of [`Store::await_event`](crate::Store::await_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwaitEvent {
    /// The run that waits; it must own its job.
    pub run: RunId,
    /// The event's name (a valid name, as for queues).
    pub name: String,
    /// How long to wait at most; `None` waits until the event is emitted.
    pub timeout: Option<Duration>,
}

/// What [`Store::await_event`](crate::Store::await_event) did.
#[derive(Clone, Debug, PartialEq)]
pub enum AwaitOutcome {
    /// The event had already been emitted: here is its payload; the run keeps running.
    Received(Value),
    /// The event has not been emitted: the run ended, the job is `waiting`. It becomes
    /// claimable again when the event is emitted (the claim carries the payload) or the timeout
    /// passes (the claim says it timed out, see [`Claim::wake`](crate::Claim::wake)).
    Suspended,
}

/// Why a claimed run was resumed after waiting for an event: [`Claim::wake`](crate::Claim::wake).
#[derive(Clone, Debug, PartialEq)]
pub enum Wake {
    /// The event was emitted with this payload.
    Event {
        /// The event's name.
        name: String,
        /// Its payload (`Value::Null` when emitted without one).
        payload: Value,
    },
    /// The wait's timeout passed first.
    TimedOut {
        /// The event's name.
        name: String,
    },
}

/// What a blocking queue does when its head job fails for good (exhausts its attempts).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedPolicy {
    /// Give up on it: the job stays `failed` and the jobs behind it run (the default).
    #[default]
    Continue,
    /// Stay blocked: the failed job keeps holding the queue until an operator retries it
    /// ([`Store::retry`](crate::Store::retry)), cancels it ([`Store::cancel`](crate::Store::cancel)
    /// turns it `cancelled`) or deletes it.
    StayBlocked,
}

impl BlockedPolicy {
    /// The name used in storage and the CLI: `continue` or `stay_blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedPolicy::Continue => "continue",
            BlockedPolicy::StayBlocked => "stay_blocked",
        }
    }
}

impl fmt::Display for BlockedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown [`BlockedPolicy`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: use continue or stay-blocked")]
pub struct ParsePolicyError(pub String);

impl FromStr for BlockedPolicy {
    type Err = ParsePolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "continue" => Ok(BlockedPolicy::Continue),
            "stay_blocked" => Ok(BlockedPolicy::StayBlocked),
            _ => Err(ParsePolicyError(s.to_string())),
        }
    }
}

/// Settings of [`Store::set_queue_blocking`](crate::Store::set_queue_blocking).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockingParams {
    /// Blocking mode on or off.
    pub blocking: bool,
    /// What happens when the head job exhausts its attempts.
    pub on_exhausted: BlockedPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_their_names() {
        for p in [BlockedPolicy::Continue, BlockedPolicy::StayBlocked] {
            assert_eq!(p.as_str().parse::<BlockedPolicy>().unwrap(), p);
        }
        assert_eq!(
            "stay-blocked".parse::<BlockedPolicy>().unwrap(),
            BlockedPolicy::StayBlocked
        );
        assert!("nope".parse::<BlockedPolicy>().is_err());
    }
}
