//! The data of the durable queue: ids, states, jobs, claims, queues and inspector filters.

mod filter;
mod ids;
mod job;
mod queue;
mod state;
mod workflow;

pub use filter::{JobFilter, Page, PageRequest, PageStart};
pub use ids::{JobId, ParseRunIdError, RunId};
pub use job::{AttemptError, Claim, JobInfo, JobResult, Spawn, SpawnResult};
pub use queue::{QueueInfo, StateCounts};
pub use state::{JobState, ParseStateError};
pub use workflow::{
    AwaitEvent, AwaitOutcome, BlockedPolicy, BlockingParams, Checkpoint, ParsePolicyError,
    SetCheckpoint, SleepParams, Wake,
};
