//! The failure reasons the store itself records (the worker records its own handlers'):
//! one place, so every engine writes the same JSON.

use serde_json::{json, Value};

use crate::error::Error;

/// The reason of an attempt whose lease expired: `{"error": "lease expired"}`.
pub fn lease_expired() -> Value {
    json!({ "error": "lease expired" })
}

/// The reason of a job that a claim or the rescuer could not decode, failed for good:
/// `{"kind": "undecodable_job", "error": "<column>: <why>"}`.
pub fn undecodable_job(error: &Error) -> Value {
    error.undecodable_job_reason()
}
