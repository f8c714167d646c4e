//! Outcomes: the one result every task ref receives.

use std::fmt;

/// Why a task ended without producing a value.
///
/// Every [`TaskRef`](crate::TaskRef) receives exactly one [`Outcome`]; when the
/// task did not return normally, the outcome is [`Outcome::Exit`] carrying one
/// of these reasons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitReason {
    /// The task panicked; the payload is the panic message when it was a string.
    Panicked(String),
    /// The per-task timeout (counted from enqueue) fired before the task finished.
    Timeout,
    /// The task was cancelled by ref before it finished.
    Cancelled,
    /// The queue shut down before the task could finish (or start).
    Shutdown,
    /// The queue's own machinery failed and restarted; work in flight was dropped.
    QueueRestarted,
    /// A named task ran, but its return value could not be serialised to JSON.
    Unserializable(String),
}

impl ExitReason {
    /// A short machine-friendly label (`"panicked"`, `"timeout"`, …), handy for
    /// metrics and for recording a failed attempt.
    pub fn label(&self) -> &'static str {
        match self {
            ExitReason::Panicked(_) => "panicked",
            ExitReason::Timeout => "timeout",
            ExitReason::Cancelled => "cancelled",
            ExitReason::Shutdown => "shutdown",
            ExitReason::QueueRestarted => "queue_restarted",
            ExitReason::Unserializable(_) => "unserializable",
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Panicked(message) => write!(f, "task panicked: {message}"),
            ExitReason::Timeout => f.write_str("task timed out"),
            ExitReason::Cancelled => f.write_str("task cancelled"),
            ExitReason::Shutdown => f.write_str("queue shut down"),
            ExitReason::QueueRestarted => f.write_str("queue restarted"),
            ExitReason::Unserializable(message) => {
                write!(f, "task result could not be serialised: {message}")
            }
        }
    }
}

impl std::error::Error for ExitReason {}

/// The outcome of one task: its value, or the reason it exited.
///
/// A task whose value is itself a `Result` that is `Err` still has an
/// [`Outcome::Ok`] outcome: the queue reports how the task *ended*, not what it
/// computed.
///
/// ```
/// use tasque_core::{ExitReason, Outcome};
///
/// let done: Outcome<u32> = Outcome::Ok(7);
/// assert_eq!(done.into_result(), Ok(7));
/// let crashed: Outcome<u32> = Outcome::Exit(ExitReason::Timeout);
/// assert_eq!(crashed.exit_reason(), Some(&ExitReason::Timeout));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The task returned this value.
    Ok(T),
    /// The task did not return: it panicked, timed out, was cancelled, or the
    /// queue went away.
    Exit(ExitReason),
}

impl<T> Outcome<T> {
    /// `true` for [`Outcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// The value, if the task returned one.
    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Ok(value) => Some(value),
            Outcome::Exit(_) => None,
        }
    }

    /// The exit reason, if the task did not return.
    pub fn exit_reason(&self) -> Option<&ExitReason> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Exit(reason) => Some(reason),
        }
    }

    /// Converts into a standard `Result`, for use with `?`.
    pub fn into_result(self) -> Result<T, ExitReason> {
        match self {
            Outcome::Ok(value) => Ok(value),
            Outcome::Exit(reason) => Err(reason),
        }
    }

    /// Maps the value of an [`Outcome::Ok`], leaving exits untouched.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(value) => Outcome::Ok(f(value)),
            Outcome::Exit(reason) => Outcome::Exit(reason),
        }
    }
}

impl<T> From<Outcome<T>> for Result<T, ExitReason> {
    fn from(outcome: Outcome<T>) -> Self {
        outcome.into_result()
    }
}
