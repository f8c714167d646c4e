//! The crate's error type.

use std::time::Duration;

/// Errors returned by queue operations. Nothing is queued when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A named task is unknown to the queue's [`TaskRegistry`](crate::TaskRegistry).
    #[error("invalid task: no task named {name:?} is registered")]
    UnknownTask {
        /// The name that was looked up.
        name: String,
    },
    /// A named task's arguments do not decode into the function's argument type.
    #[error("invalid task: arguments for {name:?} do not decode: {source}")]
    InvalidArgs {
        /// The task name.
        name: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// An option has a value outside its documented range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name (`max_concurrency`, `timeout`, …).
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The queue is shutting down or has shut down and accepts no more work.
    #[error("queue {queue:?} is shut down and accepts no new tasks")]
    ShutDown {
        /// The queue's name.
        queue: String,
    },
    /// Another queue is already registered under this name.
    #[error("a queue named {name:?} is already registered")]
    NameTaken {
        /// The contested name.
        name: String,
    },
    /// The queue was built outside a tokio runtime.
    #[error("a tasque queue must be started inside a tokio runtime")]
    NoRuntime,
}

impl Error {
    /// `true` for the errors that mean "this task is not valid" (the analogue of
    /// `{:error, :invalid_task}`): unknown name or undecodable arguments.
    pub fn is_invalid_task(&self) -> bool {
        matches!(self, Error::UnknownTask { .. } | Error::InvalidArgs { .. })
    }

    pub(crate) fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}

/// Why waiting for an outcome returned without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AwaitError {
    /// The wait limit passed first. Nothing was cancelled: the task is still
    /// queued or running, and waiting again later still yields its outcome.
    #[error("await timed out after {0:?}; the task keeps running")]
    TimedOut(Duration),
    /// The outcome was already taken by an earlier wait.
    #[error("the outcome of this task was already received")]
    AlreadyReceived,
}
