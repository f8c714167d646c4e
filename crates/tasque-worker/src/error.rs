//! The worker's error type.

use tasque_durable::RunId;

/// Errors from configuring or running a worker, and from a handler's workflow calls
/// ([`JobContext::step`](crate::JobContext::step) and friends).
///
/// A handler propagates workflow errors with `?` into its own error type (which needs a
/// `From<tasque_worker::Error>`: `Box<dyn Error + Send + Sync>` and `anyhow::Error` have one).
/// When the error is [`LeaseLost`](Error::LeaseLost) or [`Cancelled`](Error::Cancelled), the
/// worker writes nothing for the run whatever the handler returns: the job belongs to
/// another run now, or is cancelled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range; the worker was not built.
    #[error("invalid worker option `{option}`: {reason}")]
    InvalidOption {
        /// The setting.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A schedule is invalid (expression, zone, task, options) or two share an id; the worker
    /// was not built and nothing was written.
    #[error(transparent)]
    Schedule(#[from] tasque_durable::schedule::ScheduleError),
    /// The in-process queue could not start (no tokio runtime, ...).
    #[error("in-process queue: {0}")]
    Queue(#[from] tasque_core::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tasque_durable::Error),
    /// The run no longer owns its job (its lease expired and the job was rescued, or it was
    /// released): the workflow call wrote nothing and the run's outcome will not be written.
    #[error("run {0} lost its lease; nothing more is written for it")]
    LeaseLost(RunId),
    /// The run's job was cancelled: the workflow call wrote nothing and the run must stop.
    #[error("the job of run {0} was cancelled; nothing more is written for it")]
    Cancelled(RunId),
    /// A step name is empty, too long, has control characters, or starts with the prefix
    /// `tasque:` that sleeps and event waits use for their own checkpoints.
    #[error("invalid step name {name:?}: {reason}")]
    InvalidStep {
        /// The refused name (possibly truncated).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A step's result could not be encoded as JSON.
    #[error("step {step:?}: result does not encode as JSON: {source}")]
    Encode {
        /// The step.
        step: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored checkpoint does not decode into the type the step asks for (the handler's
    /// code changed its type since the checkpoint was written).
    #[error("step {step:?}: stored checkpoint does not decode: {source}")]
    Decode {
        /// The step.
        step: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}
