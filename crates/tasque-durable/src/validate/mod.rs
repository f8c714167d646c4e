//! Input validation shared by every engine. Engines call these before touching the database,
//! so bad input changes nothing.
//!
//! The rules live here once for Rust: names, options, the timestamp and duration ranges every
//! engine can hold ([`TIMESTAMP_RANGE_MICROS`], [`MAX_DURATION`]) and option documents, the JSON
//! form of spawn options producers in other languages pass to the engines' SQL
//! ([`parse_options`], [`options_document`]). Each engine's SQL holds the same rules once, in
//! one function (PostgreSQL `spawn_problem`, MySQL `<stem>_spawn_check`).

mod document;
mod time;

pub use document::{options_document, parse_options, KNOWN_OPTIONS, MAX_RETRY_FACTOR};
pub use time::{
    check_duration, check_timestamp, parse_timestamp, timestamp_in_range, MAX_DURATION,
    MAX_DURATION_MS, MAX_TIMESTAMP_TEXT, MIN_TIMESTAMP_TEXT, TIMESTAMP_RANGE_MICROS,
};

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{JobFilter, Spawn};
use crate::options::{CancellationPolicy, RetryStrategy, RunAt, SpawnOptions};
use crate::store::ClaimParams;

/// Longest queue, task, worker or namespace name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Default [`Limits::max_payload_bytes`]: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Size limits an engine enforces on JSON payloads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded params, headers, result or failure reason, in bytes. Default 1 MiB.
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

/// Checks a queue, task, worker or namespace name: 1 to 128 bytes of `[A-Za-z0-9_.:-]`.
///
/// The narrow alphabet keeps names safe to show, log and use in URLs and SQL identifiers
/// (quotes, spaces, semicolons and control characters are all refused).
pub fn validate_name(kind: &'static str, name: &str) -> Result<()> {
    let refuse = |reason| Error::InvalidName {
        kind,
        name: name.chars().take(200).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(refuse("must be at most 128 bytes"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    if !name.chars().all(allowed) {
        return Err(refuse(
            "may only contain A-Z, a-z, 0-9, '_', '.', ':' and '-'",
        ));
    }
    Ok(())
}

/// Checks an idempotency key: 1 to 255 bytes without control characters.
pub fn validate_idempotency_key(key: &str) -> Result<()> {
    validate_key("idempotency key", key)
}

/// Checks an ordering key: 1 to 255 bytes without control characters.
pub fn validate_ordering_key(key: &str) -> Result<()> {
    validate_key("ordering key", key)
}

/// Checks a key of some kind: 1 to 255 bytes without control characters.
fn validate_key(kind: &'static str, key: &str) -> Result<()> {
    let refuse = |reason| Error::InvalidName {
        kind,
        name: key.chars().take(200).collect(),
        reason,
    };
    if key.is_empty() {
        return Err(refuse("must not be empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(refuse("must be at most 255 bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err(refuse("must not contain control characters"));
    }
    Ok(())
}

/// Encodes a JSON payload, refusing it when larger than the limit. Returns the encoded text.
pub fn encode_payload(what: &'static str, value: &Value, limits: &Limits) -> Result<String> {
    let text = serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))?;
    if text.len() > limits.max_payload_bytes {
        return Err(Error::PayloadTooLarge {
            what,
            size: text.len(),
            limit: limits.max_payload_bytes,
        });
    }
    Ok(text)
}

/// Checks that a duration option is positive and at most [`MAX_DURATION`] (so the clock plus
/// the duration stays in the timestamp range).
pub fn positive(option: &'static str, value: Duration) -> Result<()> {
    check_duration(option, value)
}

/// Checks a retry strategy: positive delays (at most [`MAX_DURATION`]), a factor from 1 to
/// [`MAX_RETRY_FACTOR`], a cap no shorter than the base.
pub fn validate_retry(strategy: &RetryStrategy) -> Result<()> {
    match strategy {
        RetryStrategy::None => Ok(()),
        RetryStrategy::Fixed { delay } => positive("retry.delay", *delay),
        RetryStrategy::Exponential { base, factor, cap } => {
            positive("retry.base", *base)?;
            if !(1.0..=MAX_RETRY_FACTOR).contains(factor) {
                return Err(Error::invalid_option(
                    "retry.factor",
                    format!("must be a number from 1 to 1000, got {factor}"),
                ));
            }
            if let Some(cap) = cap {
                positive("retry.cap", *cap)?;
                if cap < base {
                    return Err(Error::invalid_option(
                        "retry.cap",
                        "must not be shorter than retry.base",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Checks every set field of spawn (or retry) options; payload sizes are checked by
/// [`encode_payload`] when the engine encodes them.
pub fn validate_options(options: &SpawnOptions) -> Result<()> {
    if let Some(n) = options.max_attempts {
        if n == 0 || i32::try_from(n).is_err() {
            return Err(Error::invalid_option(
                "max_attempts",
                "must be an integer from 1 to 2147483647",
            ));
        }
    }
    if let Some(retry) = &options.retry {
        validate_retry(retry)?;
    }
    if let Some(run_at) = options.run_at {
        validate_run_at("run_at", run_at)?;
    }
    if let Some(timeout) = options.timeout {
        positive("timeout", timeout)?;
    }
    if let Some(CancellationPolicy {
        max_duration,
        max_delay,
    }) = options.cancellation
    {
        if let Some(d) = max_duration {
            positive("cancellation.max_duration", d)?;
        }
        if let Some(d) = max_delay {
            positive("cancellation.max_delay", d)?;
        }
    }
    if let Some(headers) = &options.headers {
        if !headers.is_object() && !headers.is_null() {
            return Err(Error::invalid_option("headers", "must be a JSON object"));
        }
    }
    if let Some(key) = &options.idempotency_key {
        validate_idempotency_key(key)?;
    }
    if let Some(unique) = &options.unique {
        unique.validate()?;
    }
    if let Some(deps) = &options.depends_on {
        deps.validate()?;
        if options.unique.is_some() {
            return Err(Error::invalid_option(
                "depends_on",
                "a job with dependencies cannot be unique",
            ));
        }
    }
    if let Some(key) = &options.ordering_key {
        validate_ordering_key(key)?;
    }
    Ok(())
}

/// Checks a run time: an instant must lie in [`TIMESTAMP_RANGE_MICROS`], a delay must be
/// positive (use [`RunAt::Now`] for none) and at most [`MAX_DURATION`].
pub fn validate_run_at(option: &'static str, run_at: RunAt) -> Result<()> {
    match run_at {
        RunAt::After(delay) => positive(option, delay),
        RunAt::At(at) => check_timestamp(option, at),
        RunAt::Now => Ok(()),
    }
}

/// Checks a whole spawn: names and options (payload size is checked when encoding).
pub fn validate_spawn(spawn: &Spawn) -> Result<()> {
    validate_name("queue", &spawn.queue)?;
    validate_name("task", &spawn.task)?;
    validate_options(&spawn.options)
}

/// Checks a batch size or page limit: at least 1.
pub fn validate_limit(option: &'static str, limit: u32) -> Result<()> {
    if limit == 0 {
        return Err(Error::invalid_option(option, "must be at least 1"));
    }
    Ok(())
}

/// Checks a checkpoint (step) name: 1 to 255 bytes, no control characters.
pub fn validate_step_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() || name.len() > 255 {
        "must be 1 to 255 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        kind: "step",
        name: name.chars().take(200).collect(),
        reason,
    })
}

/// Checks a queue concurrency limit: `None` or at least 1.
pub fn validate_queue_limit(limit: Option<u32>) -> Result<()> {
    match limit {
        Some(0) => Err(Error::invalid_option(
            "concurrency_limit",
            "must be at least 1 (use none to remove the limit, or pause the queue)",
        )),
        _ => Ok(()),
    }
}

/// Checks the names a job filter matches on (queues and tasks).
pub fn validate_filter(filter: &JobFilter) -> Result<()> {
    for queue in &filter.queues {
        validate_name("queue", queue)?;
    }
    for task in &filter.tasks {
        validate_name("task", task)?;
    }
    Ok(())
}

/// Checks a claim: at least one queue, valid queue and worker names, a limit of at least one
/// job and a positive lease.
pub fn validate_claim(params: &ClaimParams) -> Result<()> {
    if params.queues.is_empty() {
        return Err(Error::invalid_option("queues", "name at least one queue"));
    }
    for queue in &params.queues {
        validate_name("queue", queue)?;
    }
    validate_name("worker", &params.worker_id)?;
    validate_limit("limit", params.limit)?;
    positive("lease", params.lease)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_accept_the_safe_alphabet_only() {
        for ok in ["default", "emails.send", "a:b-c_d", "Q1", &"x".repeat(128)] {
            validate_name("queue", ok).unwrap();
        }
        for bad in [
            "",
            &"x".repeat(129),
            "a b",
            "q'; DROP TABLE jobs; --",
            "quote\"",
            "tab\t",
            "nul\0",
            "naïve",
            "a/b",
        ] {
            assert!(
                matches!(validate_name("queue", bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let zero = Duration::ZERO;
        let bad = [
            SpawnOptions::new().with_max_attempts(0),
            SpawnOptions::new().with_delay(zero),
            SpawnOptions::new().with_timeout(zero),
            SpawnOptions::new().with_retry(RetryStrategy::Fixed { delay: zero }),
            SpawnOptions::new().with_retry(RetryStrategy::Exponential {
                base: Duration::from_secs(1),
                factor: 0.5,
                cap: None,
            }),
            SpawnOptions::new().with_retry(RetryStrategy::Exponential {
                base: Duration::from_secs(1),
                factor: f64::NAN,
                cap: None,
            }),
            SpawnOptions::new().with_retry(RetryStrategy::Exponential {
                base: Duration::from_secs(10),
                factor: 2.0,
                cap: Some(Duration::from_secs(1)),
            }),
            SpawnOptions::new().with_cancellation(CancellationPolicy {
                max_duration: Some(zero),
                max_delay: None,
            }),
            SpawnOptions::new().with_headers(json!([1, 2])),
            SpawnOptions::new().with_idempotency_key(""),
            SpawnOptions::new().with_idempotency_key("a\nb"),
            SpawnOptions::new().with_max_attempts(u32::MAX),
            SpawnOptions::new().with_delay(MAX_DURATION + Duration::from_millis(1)),
            SpawnOptions::new().with_timeout(Duration::MAX),
            SpawnOptions::new().with_run_at(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            SpawnOptions::new().with_run_at(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            SpawnOptions::new().with_retry(RetryStrategy::Exponential {
                base: Duration::from_secs(1),
                factor: 1000.5,
                cap: None,
            }),
        ];
        for options in bad {
            let err = validate_options(&options).unwrap_err();
            assert!(err.is_validation(), "{options:?} gave {err}");
        }
        validate_options(
            &SpawnOptions::new()
                .with_max_attempts(1)
                .with_headers(json!({"a": 1})),
        )
        .unwrap();
    }

    #[test]
    fn payloads_over_the_limit_are_refused() {
        let limits = Limits {
            max_payload_bytes: 10,
        };
        assert_eq!(
            encode_payload("params", &json!("abc"), &limits).unwrap(),
            "\"abc\""
        );
        let err = encode_payload("params", &json!("0123456789"), &limits).unwrap_err();
        assert!(matches!(
            err,
            Error::PayloadTooLarge {
                size: 12,
                limit: 10,
                ..
            }
        ));
    }
}
