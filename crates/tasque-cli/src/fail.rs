//! Errors of the CLI and their exit codes.

use std::fmt;

/// Exit code: the operation failed (e.g. job not found, not retryable).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad usage or input; nothing was written.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the database or the broker is unreachable, or the database is incompatible.
pub const EXIT_DATABASE: i32 = 3;

/// A failure, classified by who can fix it.
#[derive(Debug)]
pub enum CliError {
    /// The input is wrong (bad JSON, invalid option, unknown URL scheme).
    Usage(String),
    /// The database (or the RabbitMQ broker) cannot be used.
    Database(String),
    /// The database's schema does not fit this build: missing or older (run `tasque
    /// migrate`), or newer (upgrade tasque). Retrying will not help.
    Schema(String),
    /// The operation did not apply (not found, wrong state).
    Failed(String),
}

impl CliError {
    /// Classifies a store error.
    pub fn from_store(error: tasque_durable::Error) -> Self {
        use tasque_durable::Error as E;
        match &error {
            E::SchemaTooNew { .. } | E::SchemaOutdated { .. } => {
                CliError::Schema(error.to_string())
            }
            E::Database(_) if error.to_string().contains("disk is full") => {
                CliError::Database(format!(
                    "{error}: the disk holding the database is full, so nothing was written; \
                     free some space and try again (jobs already stored are intact)"
                ))
            }
            E::Database(_) | E::Corrupt(_) => CliError::Database(error.to_string()),
            E::UniqueSlotTaken { holder, .. } => CliError::Failed(format!(
                "{error}; nothing changed: cancel or delete job {holder} first, or enqueue a \
                 new job (see tasque jobs show {holder})"
            )),
            e if e.is_validation() => CliError::Usage(error.to_string()),
            _ => CliError::Failed(error.to_string()),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Database(_) | CliError::Schema(_) => EXIT_DATABASE,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message)
            | CliError::Database(message)
            | CliError::Schema(message)
            | CliError::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

impl From<tasque_durable::Error> for CliError {
    fn from(error: tasque_durable::Error) -> Self {
        CliError::from_store(error)
    }
}

impl From<tasque_worker::Error> for CliError {
    fn from(error: tasque_worker::Error) -> Self {
        match error {
            tasque_worker::Error::Store(error) => CliError::from_store(error),
            other => CliError::Usage(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CliError;
    use tasque_durable::{Error, JobId};

    #[test]
    fn a_retry_refused_by_a_taken_unique_slot_names_the_holder() {
        let error = CliError::from_store(Error::UniqueSlotTaken {
            job: JobId(5),
            holder: JobId(9),
        });
        let CliError::Failed(message) = error else {
            panic!("expected a failed operation");
        };
        assert!(message.contains("job 5 cannot be retried"), "{message}");
        assert!(message.contains("held by job 9"), "{message}");
        assert!(message.contains("tasque jobs show 9"), "{message}");
    }
}
