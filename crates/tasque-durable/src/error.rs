//! The one error type of the durable layer, shared by every engine.

use crate::model::{JobId, JobState, RunId};

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a [`Store`](crate::Store) operation can report, with variants a caller can act on.
///
/// Validation errors ([`InvalidOption`](Error::InvalidOption), [`InvalidName`](Error::InvalidName),
/// [`PayloadTooLarge`](Error::PayloadTooLarge)) are raised before anything is written: bad input
/// changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or argument is out of range (zero attempts, zero delay, retry factor below 1...).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as in the builder.
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// A queue, task or worker name is empty, too long or uses characters outside `[A-Za-z0-9_.:-]`.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// What the name names: `"queue"`, `"task"`, `"worker"`, `"namespace"`, `"idempotency key"`.
        kind: &'static str,
        /// The refused name (possibly truncated to 200 characters).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A JSON payload (params, headers, result, reason) is larger than the configured limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Which payload: `"params"`, `"headers"`, `"result"` or `"reason"`.
        what: &'static str,
        /// Its encoded size in bytes.
        size: usize,
        /// The configured limit ([`Limits::max_payload_bytes`](crate::Limits::max_payload_bytes)).
        limit: usize,
    },
    /// No job with this id exists in this store's namespace.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// A spawn names a parent job (see [`deps`](crate::deps)) that does not exist in this
    /// store's namespace. Nothing was inserted.
    #[error("parent job {0} does not exist")]
    UnknownParent(JobId),
    /// A spawn names more parent jobs than allowed. Nothing was inserted.
    #[error("{count} parent jobs, over the limit of {max}")]
    TooManyParents {
        /// How many distinct parents were given.
        count: usize,
        /// The limit ([`MAX_PARENTS`](crate::deps::MAX_PARENTS)).
        max: usize,
    },
    /// The run no longer owns its job: its lease was lost (the job was rescued and possibly
    /// claimed again), it was released or rescheduled, or it already finished. The write was
    /// not applied.
    #[error("run {0} no longer owns its job (lease lost, released or finished); write rejected")]
    StaleRun(RunId),
    /// The run's job was cancelled while it ran; the worker should abort the handler.
    /// The write was not applied.
    #[error("the job of run {0} was cancelled; the run must stop")]
    RunCancelled(RunId),
    /// The operation does not apply to a job in this state (retrying a completed job,
    /// deleting a running one...). Nothing was changed.
    #[error("job {job} is {state}; cannot {operation}")]
    InvalidState {
        /// The job.
        job: JobId,
        /// Its state when the operation was refused.
        state: JobState,
        /// The refused operation, e.g. `"retry"`, `"delete"`.
        operation: &'static str,
    },
    /// The job kept changing state while the operation tried to apply (every guarded write lost
    /// its race with other writers); nothing was changed, and trying again is safe.
    #[error("job {job} kept changing state during {operation}; nothing changed, try again")]
    Contended {
        /// The job.
        job: JobId,
        /// The operation, e.g. `"cancel"`.
        operation: &'static str,
    },
    /// Retrying a failed or cancelled unique job would put it back in its unique slot, which a
    /// newer job of the same key and period now holds. Nothing was changed: finish, cancel or
    /// delete the holder first, or enqueue a new job.
    #[error("job {job} cannot be retried: its unique slot is held by job {holder}")]
    UniqueSlotTaken {
        /// The job that was to be retried.
        job: JobId,
        /// The job holding the slot.
        holder: JobId,
    },
    /// The database was migrated by a newer Tasque; this binary refuses to touch it.
    #[error("database schema is at version {found}, newer than the {supported} this build supports; upgrade Tasque")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The schema has not been created yet: run [`Store::migrate`](crate::Store::migrate) first.
    #[error("database schema is missing or older than this build (version {found}, need {supported}); run migrate")]
    SchemaOutdated {
        /// The version found in the database (0 when empty).
        found: i64,
        /// The version this build needs.
        supported: i64,
    },
    /// Stored data could not be decoded (a corrupt row, or a row written by an incompatible build).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database itself failed (connection, I/O, lock timeout...).
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wraps an engine's database error.
    pub fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Database(Box::new(err))
    }

    /// Builds an [`Error::InvalidOption`].
    pub fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }

    /// The failure reason recorded on a job that a claim took but could not decode, which the
    /// claim fails for good at once (retrying cannot help, and its retry strategy may be the
    /// corrupt part): `{"kind": "undecodable_job", "error": "<column>: <why>"}`.
    pub fn undecodable_job_reason(&self) -> serde_json::Value {
        let detail = match self {
            Error::Corrupt(detail) => detail.clone(),
            other => other.to_string(),
        };
        serde_json::json!({ "kind": "undecodable_job", "error": detail })
    }

    /// The error of a retry the unique index refused: [`Error::UniqueSlotTaken`] naming
    /// `holder`, or [`Error::Contended`] when no job holds the slot any more (it left its
    /// states meanwhile: trying again may succeed).
    pub fn retry_slot_taken(job: JobId, holder: Option<JobId>) -> Error {
        match holder {
            Some(holder) => Error::UniqueSlotTaken { job, holder },
            None => Error::Contended {
                job,
                operation: "retry",
            },
        }
    }

    /// True for errors caused by the caller's input, which changed nothing.
    pub fn is_validation(&self) -> bool {
        matches!(
            self,
            Error::InvalidOption { .. }
                | Error::InvalidName { .. }
                | Error::PayloadTooLarge { .. }
                | Error::UnknownParent(_)
                | Error::TooManyParents { .. }
        )
    }
}
