//! [`ClientError`]: everything a [`Client`](super::Client) call can report.

use std::time::Duration;

use crate::failure::FailureReason;
use crate::model::{JobId, JobState};
use crate::Error;

/// What a [`Client`](super::Client) call can report, with variants a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The store refused or failed (validation, not found, database...).
    #[error(transparent)]
    Store(#[from] Error),
    /// A job's args could not be encoded as JSON; nothing was written.
    #[error("cannot encode the args of a `{kind}` job: {source}")]
    Encode {
        /// The job's kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A completed job's result does not decode as the kind's output type.
    #[error("the result of job {job} does not decode as the output of `{kind}`: {source}")]
    Decode {
        /// The job.
        job: JobId,
        /// The kind waited for.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The job failed for good.
    #[error("job {job} failed: {reason}")]
    Failed {
        /// The job.
        job: JobId,
        /// Its final failure reason.
        reason: FailureReason,
    },
    /// The job was cancelled.
    #[error("job {job} was cancelled")]
    Cancelled {
        /// The job.
        job: JobId,
        /// The cancellation reason, when one was recorded.
        reason: Option<FailureReason>,
    },
    /// The job did not finish within the wait's limit (it keeps going; wait again later).
    #[error("job {job} did not finish within {limit:?}; it is {state}")]
    TimedOut {
        /// The job.
        job: JobId,
        /// Its state when the limit passed.
        state: JobState,
        /// The limit.
        limit: Duration,
    },
}

impl ClientError {
    /// True for errors caused by the caller's input, which changed nothing.
    pub fn is_validation(&self) -> bool {
        match self {
            ClientError::Store(error) => error.is_validation(),
            ClientError::Encode { .. } => true,
            _ => false,
        }
    }
}
