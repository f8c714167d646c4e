//! The crate's one error type.

/// Errors from building, running or publishing with the RabbitMQ source.
///
/// Configuration mistakes are reported by [`ConsumerBuilder::build`](crate::ConsumerBuilder::build),
/// before anything connects. Broker errors met *while consuming* are not
/// returned: the consumer logs them and reconnects with backoff.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is outside its documented range.
    #[error("invalid configuration {option}: {reason}")]
    InvalidConfig {
        /// The setting's name (`queues`, `max_concurrency`, …).
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The AMQP URL does not parse, or asks for something this build lacks.
    #[error("invalid AMQP URL: {0}")]
    InvalidUrl(String),
    /// Two handlers were registered under the same task name.
    #[error("more than one handler is registered for task {task:?}")]
    DuplicateHandler {
        /// The contested task name.
        task: String,
    },
    /// The broker or the connection to it failed.
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
    /// The broker refused a published message (negative confirm) or could
    /// not route it anywhere (it came back as a mandatory return).
    #[error("the broker did not take the message: {0}")]
    NotConfirmed(String),
    /// A payload could not be serialised to JSON.
    #[error("the payload could not be encoded as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The in-process engine refused to start (for example outside a tokio runtime).
    #[error(transparent)]
    Engine(#[from] tasque_core::Error),
    /// The consumer's own supervising task ended abnormally.
    #[error("the consumer stopped abnormally: {0}")]
    Stopped(String),
}

impl Error {
    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            option,
            reason: reason.into(),
        }
    }
}
