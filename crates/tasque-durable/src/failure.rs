//! [`FailureReason`]: the one typed shape of a failed attempt's reason.
//!
//! Every reason a worker records (a handler's error, a panic, a timeout, undecodable params,
//! an unserializable result) is built here and stored as JSON of the shape
//! `{"kind": "...", "error": "<message>", "attempt": N}`, which older reasons already had
//! (`attempt` is new and optional). Reading is lenient: [`FailureReason::from_json`] accepts
//! any stored reason, including the engines' `{"error": "lease expired"}` and free-form JSON
//! from other producers, so a reader never fails on a reason it did not write.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of failure ended an attempt (or the job).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The handler returned an error.
    Error,
    /// The handler panicked.
    #[serde(rename = "panic")]
    Panicked,
    /// The run exceeded its timeout.
    Timeout,
    /// The job's params (or its stored row) could not be decoded; failed for good at once.
    #[serde(rename = "undecodable_job")]
    Undecodable,
    /// The handler's result could not be encoded as JSON.
    UnserializableResult,
    /// The job was cancelled (by an operator or its cancellation policy).
    Cancelled,
    /// The run's lease expired (its worker crashed, hung or lost the database).
    LeaseExpired,
    /// Any other kind, as stored.
    #[serde(untagged)]
    Other(String),
}

impl FailureKind {
    /// The stored name of the kind (`"error"`, `"panic"`, `"timeout"`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Panicked => "panic",
            FailureKind::Timeout => "timeout",
            FailureKind::Undecodable => "undecodable_job",
            FailureKind::UnserializableResult => "unserializable_result",
            FailureKind::Cancelled => "cancelled",
            FailureKind::LeaseExpired => "lease_expired",
            FailureKind::Other(kind) => kind,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed, as recorded in the job's errors and final failure.
///
/// ```
/// use tasque_durable::{FailureKind, FailureReason};
///
/// let reason = FailureReason::new(FailureKind::Timeout, "run exceeded its timeout of 5s").attempt(2);
/// let json = reason.to_json();
/// assert_eq!(json["kind"], "timeout");
/// assert_eq!(FailureReason::from_json(&json), reason);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    /// The kind of failure.
    pub kind: FailureKind,
    /// A human-readable message (stored as `error`).
    #[serde(rename = "error")]
    pub message: String,
    /// The attempt that failed, when the writer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl FailureReason {
    /// A reason of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        FailureReason {
            kind,
            message: message.into(),
            attempt: None,
        }
    }

    /// The handler returned an error with this message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Error, message)
    }

    /// Records the attempt that failed.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// The reason as stored.
    pub fn to_json(&self) -> Value {
        let mut json = serde_json::json!({ "kind": self.kind.as_str(), "error": self.message });
        if let (Some(attempt), Some(object)) = (self.attempt, json.as_object_mut()) {
            object.insert("attempt".into(), attempt.into());
        }
        json
    }

    /// Reads any stored reason. A reason without a `kind` is an error (or, for the engines'
    /// `{"error": "lease expired"}`, a lease expiry); a reason with no `error` string keeps its
    /// whole JSON as the message.
    pub fn from_json(reason: &Value) -> Self {
        let message = match reason.get("error") {
            Some(Value::String(message)) => message.clone(),
            _ => match reason {
                Value::String(message) => message.clone(),
                other => other.to_string(),
            },
        };
        let kind = match reason.get("kind").and_then(Value::as_str) {
            Some(kind) => serde_json::from_value(Value::String(kind.to_string()))
                .unwrap_or_else(|_| FailureKind::Other(kind.to_string())),
            None if message == "lease expired" => FailureKind::LeaseExpired,
            None => FailureKind::Error,
        };
        let attempt = reason
            .get("attempt")
            .and_then(Value::as_u64)
            .and_then(|a| u32::try_from(a).ok());
        FailureReason {
            kind,
            message,
            attempt,
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.attempt {
            Some(attempt) => write!(f, "{} (attempt {attempt}): {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_are_stored_with_the_existing_kind_names() {
        for (kind, name) in [
            (FailureKind::Error, "error"),
            (FailureKind::Panicked, "panic"),
            (FailureKind::Timeout, "timeout"),
            (FailureKind::Undecodable, "undecodable_job"),
            (FailureKind::UnserializableResult, "unserializable_result"),
            (FailureKind::Cancelled, "cancelled"),
            (FailureKind::LeaseExpired, "lease_expired"),
        ] {
            let json = FailureReason::new(kind.clone(), "m").to_json();
            assert_eq!(json, json!({ "kind": name, "error": "m" }));
            assert_eq!(FailureReason::from_json(&json).kind, kind);
            assert_eq!(serde_json::to_value(&kind).unwrap(), json!(name));
        }
    }

    #[test]
    fn reading_is_lenient_with_reasons_other_writers_made() {
        let rescued = FailureReason::from_json(&json!({"error": "lease expired"}));
        assert_eq!(rescued.kind, FailureKind::LeaseExpired);
        let custom = FailureReason::from_json(&json!({"exit_code": 3}));
        assert_eq!(custom.kind, FailureKind::Error);
        assert_eq!(custom.message, r#"{"exit_code":3}"#);
        let other = FailureReason::from_json(&json!({"kind": "exec", "error": "x", "attempt": 4}));
        assert_eq!(other.kind, FailureKind::Other("exec".into()));
        assert_eq!(other.attempt, Some(4));
    }
}
