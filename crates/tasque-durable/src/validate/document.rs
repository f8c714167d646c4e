//! Option documents: spawn options as the JSON object producers in other languages pass to the
//! engines' SQL (`tasque_<ns>.spawn(...)` on PostgreSQL, `CALL tasque_<ns>_spawn(...)` on
//! MySQL), and the Rust side of the same contract: [`parse_options`] (also behind
//! `SpawnOptions`'s serde `Deserialize`) and [`options_document`].
//!
//! The rules, checked in this order (the SQL checks them in the same order, so a document with
//! several faults is refused for the same one everywhere):
//!
//! | key | value |
//! |---|---|
//! | (the document) | a JSON object whose keys are all among [`KNOWN_OPTIONS`] |
//! | `max_attempts` | an integer from 1 to 2147483647 |
//! | `priority` | an integer from -2147483648 to 2147483647 (lower runs first) |
//! | `run_at` | a timestamp text ([`parse_timestamp`](super::parse_timestamp)) in [`TIMESTAMP_RANGE_MICROS`](super::TIMESTAMP_RANGE_MICROS); not with `delay_ms` |
//! | `delay_ms`, `timeout_ms` | milliseconds: an integer from 1 to [`MAX_DURATION_MS`] |
//! | `retry` | `{"kind": "none"}`, `{"kind": "fixed", "delay": MS}` or `{"kind": "exponential", "base": MS, "factor": F, "cap": MS or null}` (`cap` optional, at least `base`; `factor` a number from 1 to [`MAX_RETRY_FACTOR`]); no other keys |
//! | `max_duration_ms`, `max_delay_ms` | milliseconds, as `delay_ms` |
//! | `headers` | a JSON object, or null (none) |
//! | `idempotency_key` | a string of 1 to 255 bytes without control characters |
//! | `unique` | `{"key": TEXT, "period_ms": MS, "states": [STATE, ...]}`: `key` as `idempotency_key`; `period_ms` optional, as `delay_ms`; `states` optional (default: every state but failed and cancelled), names of job states that must include every unfinished state (available, scheduled, running, sleeping, waiting); no other keys (see [`unique`](crate::unique)) |
//! | `ordering_key` | a string of 1 to 255 bytes without control characters |
//!
//! "An integer" is any JSON number with an integral value: `3`, `3.0` and `3e0` are all 3
//! (Python's `json` writes floats as `3.0`); `3.5`, strings, booleans and null are refused.
//! Every refusal names the option.

use std::time::Duration;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use super::time::{check_timestamp, parse_timestamp, MAX_DURATION_MS, TIMESTAMP_FORMAT};
use super::validate_idempotency_key;
use crate::error::{Error, Result};
use crate::model::JobState;
use crate::options::{CancellationPolicy, RetryStrategy, RunAt, SpawnOptions};
use crate::unique::{UniqueStates, Uniqueness};

/// The keys an option document may hold.
pub const KNOWN_OPTIONS: [&str; 12] = [
    "max_attempts",
    "priority",
    "run_at",
    "delay_ms",
    "timeout_ms",
    "retry",
    "max_duration_ms",
    "max_delay_ms",
    "headers",
    "idempotency_key",
    "unique",
    "ordering_key",
];

/// The largest growth factor of an exponential retry strategy.
pub const MAX_RETRY_FACTOR: f64 = 1000.0;

/// The reason given for a duration in milliseconds out of range.
fn millis_reason() -> String {
    format!("must be an integer number of milliseconds from 1 to {MAX_DURATION_MS}")
}

/// Reads an integer option: a JSON number with an integral value in `lo..=hi` (every range
/// used is far inside the integers an `f64` holds exactly).
fn integer(option: &'static str, value: &Value, lo: i64, hi: i64, reason: String) -> Result<i64> {
    let n = match value {
        Value::Number(n) => n,
        _ => return Err(Error::invalid_option(option, reason)),
    };
    let read = if let Some(i) = n.as_i64() {
        Some(i)
    } else if n.as_u64().is_some() {
        None
    } else {
        n.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
            .filter(|f| *f >= lo as f64 && *f <= hi as f64)
            .map(|f| f as i64)
    };
    read.filter(|i| (lo..=hi).contains(i))
        .ok_or_else(|| Error::invalid_option(option, reason))
}

/// Reads a duration option in milliseconds.
fn millis(option: &'static str, value: &Value) -> Result<Duration> {
    let max = i64::try_from(MAX_DURATION_MS).unwrap_or(i64::MAX);
    let ms = integer(option, value, 1, max, millis_reason())?;
    Ok(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// The first key of `object` not in `allowed`, in the order PostgreSQL's `jsonb` keeps keys
/// (shorter first, then bytewise), so every engine names the same one.
fn first_unknown<'a>(object: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    object
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .min_by(|a, b| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())))
}

/// Parses an option document (see the [module docs](self) for the rules). Bad input is refused
/// with [`Error::InvalidOption`] naming the option (`options` for the document itself); the
/// result also passes [`validate_options`](super::validate_options).
pub fn parse_options(document: &Value) -> Result<SpawnOptions> {
    let Value::Object(doc) = document else {
        return Err(Error::invalid_option("options", "must be a JSON object"));
    };
    if let Some(key) = first_unknown(doc, &KNOWN_OPTIONS) {
        return Err(Error::invalid_option(
            "options",
            format!(
                "unknown option `{key}`; known: {}",
                KNOWN_OPTIONS.join(", ")
            ),
        ));
    }
    let mut options = SpawnOptions::new();
    if let Some(v) = doc.get("max_attempts") {
        let reason = "must be an integer from 1 to 2147483647".to_string();
        let n = integer("max_attempts", v, 1, i64::from(i32::MAX), reason)?;
        options.max_attempts = u32::try_from(n).ok();
    }
    if let Some(v) = doc.get("priority") {
        let reason = "must be an integer from -2147483648 to 2147483647".to_string();
        let n = integer(
            "priority",
            v,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            reason,
        )?;
        options.priority = i32::try_from(n).ok();
    }
    if doc.contains_key("run_at") && doc.contains_key("delay_ms") {
        return Err(Error::invalid_option(
            "run_at",
            "give run_at or delay_ms, not both",
        ));
    }
    if let Some(v) = doc.get("run_at") {
        let at = v
            .as_str()
            .and_then(parse_timestamp)
            .ok_or_else(|| Error::invalid_option("run_at", TIMESTAMP_FORMAT))?;
        check_timestamp("run_at", at)?;
        options.run_at = Some(RunAt::At(at));
    }
    if let Some(v) = doc.get("delay_ms") {
        options.run_at = Some(RunAt::After(millis("delay_ms", v)?));
    }
    if let Some(v) = doc.get("timeout_ms") {
        options.timeout = Some(millis("timeout_ms", v)?);
    }
    if let Some(v) = doc.get("retry") {
        options.retry = Some(parse_retry(v)?);
    }
    let max_duration = doc
        .get("max_duration_ms")
        .map(|v| millis("max_duration_ms", v))
        .transpose()?;
    let max_delay = doc
        .get("max_delay_ms")
        .map(|v| millis("max_delay_ms", v))
        .transpose()?;
    if max_duration.is_some() || max_delay.is_some() {
        options.cancellation = Some(CancellationPolicy {
            max_duration,
            max_delay,
        });
    }
    match doc.get("headers") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => options.headers = Some(v.clone()),
        Some(_) => return Err(Error::invalid_option("headers", "must be a JSON object")),
    }
    if let Some(v) = doc.get("idempotency_key") {
        let reason = "must be a string of 1 to 255 bytes without control characters";
        let key = v
            .as_str()
            .filter(|k| validate_idempotency_key(k).is_ok())
            .ok_or_else(|| Error::invalid_option("idempotency_key", reason))?;
        options.idempotency_key = Some(key.to_string());
    }
    if let Some(v) = doc.get("unique") {
        options.unique = Some(parse_unique(v)?);
    }
    if let Some(v) = doc.get("ordering_key") {
        let reason = "must be a string of 1 to 255 bytes without control characters";
        let key = v
            .as_str()
            .filter(|k| super::validate_ordering_key(k).is_ok())
            .ok_or_else(|| Error::invalid_option("ordering_key", reason))?;
        options.ordering_key = Some(key.to_string());
    }
    super::validate_options(&options)?;
    Ok(options)
}

/// Parses a unique constraint document.
fn parse_unique(value: &Value) -> Result<Uniqueness> {
    let Value::Object(u) = value else {
        return Err(Error::invalid_option(
            "unique",
            "must be a JSON object such as {\"key\": \"digest:42\", \"period_ms\": 3600000}",
        ));
    };
    let fields = ["key", "period_ms", "states"];
    if let Some(key) = first_unknown(u, &fields) {
        return Err(Error::invalid_option(
            "unique",
            format!("unknown field `{key}`; its fields: {}", fields.join(", ")),
        ));
    }
    let key = u.get("key").and_then(Value::as_str).ok_or_else(|| {
        Error::invalid_option(
            "unique.key",
            "must be a string of 1 to 255 bytes without control characters",
        )
    })?;
    let mut unique = Uniqueness::key(key);
    if let Some(v) = u.get("period_ms") {
        unique.period = Some(millis("unique.period_ms", v)?);
    }
    if let Some(v) = u.get("states") {
        let reason = "must be an array of job state names";
        let names = v
            .as_array()
            .ok_or_else(|| Error::invalid_option("unique.states", reason))?;
        let states = names
            .iter()
            // `on_hold` is no state a unique job can be in (the SQL engines refuse it too).
            .map(|n| n.as_str().and_then(|n| n.parse::<JobState>().ok()))
            .map(|s| s.filter(|s| *s != JobState::OnHold))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::invalid_option("unique.states", reason))?;
        unique.states = UniqueStates::of(states)?;
    }
    unique.validate()?;
    Ok(unique)
}

/// A unique constraint as a document.
fn unique_document(u: &Uniqueness) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), u.key.clone().into());
    if let Some(p) = u.period {
        m.insert("period_ms".into(), document_millis(p).into());
    }
    if u.states != UniqueStates::DEFAULT {
        let names: Vec<Value> = u
            .states
            .states()
            .into_iter()
            .map(|s| s.as_str().into())
            .collect();
        m.insert("states".into(), Value::Array(names));
    }
    Value::Object(m)
}

/// Parses a retry strategy document.
fn parse_retry(value: &Value) -> Result<RetryStrategy> {
    let Value::Object(r) = value else {
        return Err(Error::invalid_option(
            "retry",
            "must be a JSON object such as {\"kind\": \"fixed\", \"delay\": 1000}",
        ));
    };
    let (strategy, fields): (&str, &[&str]) = match r.get("kind").and_then(Value::as_str) {
        Some("none") => ("none", &["kind"]),
        Some("fixed") => ("fixed", &["kind", "delay"]),
        Some("exponential") => ("exponential", &["kind", "base", "factor", "cap"]),
        _ => {
            return Err(Error::invalid_option(
                "retry.kind",
                "must be \"none\", \"fixed\" or \"exponential\"",
            ))
        }
    };
    if let Some(key) = first_unknown(r, fields) {
        return Err(Error::invalid_option(
            "retry",
            format!(
                "unknown field `{key}` of kind {strategy}; its fields: {}",
                fields.join(", ")
            ),
        ));
    }
    let field = |name: &str| r.get(name).unwrap_or(&Value::Null);
    match strategy {
        "none" => Ok(RetryStrategy::None),
        "fixed" => Ok(RetryStrategy::Fixed {
            delay: millis("retry.delay", field("delay"))?,
        }),
        _ => {
            let base = millis("retry.base", field("base"))?;
            let factor = field("factor")
                .as_f64()
                .filter(|f| (1.0..=MAX_RETRY_FACTOR).contains(f))
                .ok_or_else(|| {
                    Error::invalid_option("retry.factor", "must be a number from 1 to 1000")
                })?;
            let cap = match field("cap") {
                Value::Null => None,
                v => Some(millis("retry.cap", v)?),
            };
            if cap.is_some_and(|cap| cap < base) {
                return Err(Error::invalid_option(
                    "retry.cap",
                    "must not be shorter than retry.base",
                ));
            }
            Ok(RetryStrategy::Exponential { base, factor, cap })
        }
    }
}

/// Milliseconds of a duration for a document: saturating, and at least 1 (a positive duration
/// under a millisecond still counts).
fn document_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Spawn options as an option document: only the set fields appear, so the engine's defaults
/// apply exactly as for callers from other languages. `parse_options` of the result gives the
/// options back (to the millisecond and microsecond).
pub fn options_document(o: &SpawnOptions) -> Value {
    let mut m = Map::new();
    if let Some(n) = o.max_attempts {
        m.insert("max_attempts".into(), n.into());
    }
    if let Some(p) = o.priority {
        m.insert("priority".into(), p.into());
    }
    match o.run_at {
        None | Some(RunAt::Now) => {}
        Some(RunAt::At(at)) => {
            let text = at.to_rfc3339_opts(SecondsFormat::Micros, true);
            m.insert("run_at".into(), text.into());
        }
        Some(RunAt::After(d)) => {
            m.insert("delay_ms".into(), document_millis(d).into());
        }
    }
    if let Some(t) = o.timeout {
        m.insert("timeout_ms".into(), document_millis(t).into());
    }
    if let Some(retry) = &o.retry {
        m.insert("retry".into(), retry_document(retry));
    }
    if let Some(policy) = o.cancellation {
        if let Some(d) = policy.max_duration {
            m.insert("max_duration_ms".into(), document_millis(d).into());
        }
        if let Some(d) = policy.max_delay {
            m.insert("max_delay_ms".into(), document_millis(d).into());
        }
    }
    if let Some(headers) = o.headers.as_ref().filter(|h| !h.is_null()) {
        m.insert("headers".into(), headers.clone());
    }
    if let Some(key) = &o.idempotency_key {
        m.insert("idempotency_key".into(), key.clone().into());
    }
    if let Some(unique) = &o.unique {
        m.insert("unique".into(), unique_document(unique));
    }
    if let Some(key) = &o.ordering_key {
        m.insert("ordering_key".into(), key.clone().into());
    }
    Value::Object(m)
}

/// A retry strategy as a document (as stored by the engines).
fn retry_document(retry: &RetryStrategy) -> Value {
    let mut m = Map::new();
    match retry {
        RetryStrategy::None => {
            m.insert("kind".into(), "none".into());
        }
        RetryStrategy::Fixed { delay } => {
            m.insert("kind".into(), "fixed".into());
            m.insert("delay".into(), document_millis(*delay).into());
        }
        RetryStrategy::Exponential { base, factor, cap } => {
            m.insert("kind".into(), "exponential".into());
            m.insert("base".into(), document_millis(*base).into());
            m.insert("factor".into(), (*factor).into());
            m.insert(
                "cap".into(),
                cap.map_or(Value::Null, |c| document_millis(c).into()),
            );
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;

    fn refused_option(document: Value) -> &'static str {
        match parse_options(&document) {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("{document} gave {other:?}"),
        }
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        let options = parse_options(&json!({
            "max_attempts": 3.0, "priority": -2e0, "delay_ms": 1000.0, "timeout_ms": 30000,
            "retry": {"kind": "exponential", "base": 1e3, "factor": 2, "cap": 60000.0},
        }))
        .unwrap();
        assert_eq!(options.max_attempts, Some(3));
        assert_eq!(options.priority, Some(-2));
        assert_eq!(
            options.run_at,
            Some(RunAt::After(Duration::from_millis(1000)))
        );
        assert_eq!(options.timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            options.retry,
            Some(RetryStrategy::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                cap: Some(Duration::from_secs(60)),
            })
        );
    }

    #[test]
    fn each_fault_is_refused_naming_its_option() {
        let cases = [
            (json!([]), "options"),
            (
                json!({"colour": "blue", "zz": 1, "max_attempts": 0}),
                "options",
            ),
            (json!({"max_attempts": 3.5}), "max_attempts"),
            (json!({"max_attempts": "3"}), "max_attempts"),
            (json!({"max_attempts": 2147483648_i64}), "max_attempts"),
            (json!({"priority": 2147483648_i64}), "priority"),
            (json!({"priority": true}), "priority"),
            (
                json!({"run_at": "2030-01-01T00:00:00Z", "delay_ms": 5}),
                "run_at",
            ),
            (json!({"run_at": "infinity"}), "run_at"),
            (json!({"run_at": "-infinity"}), "run_at"),
            (json!({"run_at": "0999-12-31T23:59:59Z"}), "run_at"),
            (json!({"run_at": 1}), "run_at"),
            (json!({"delay_ms": 9.223372036854776e18}), "delay_ms"),
            (json!({"delay_ms": u64::MAX}), "delay_ms"),
            (json!({"delay_ms": MAX_DURATION_MS + 1}), "delay_ms"),
            (json!({"delay_ms": 0}), "delay_ms"),
            (json!({"timeout_ms": -5}), "timeout_ms"),
            (json!({"retry": "fixed"}), "retry"),
            (json!({"retry": {"kind": "sometimes"}}), "retry.kind"),
            (json!({"retry": {"kind": "none", "delay": 5}}), "retry"),
            (json!({"retry": {"kind": "fixed"}}), "retry.delay"),
            (
                json!({"retry": {"kind": "exponential", "base": 10, "factor": 0.5}}),
                "retry.factor",
            ),
            (
                json!({"retry": {"kind": "exponential", "base": 10, "factor": 1001}}),
                "retry.factor",
            ),
            (
                json!({"retry": {"kind": "exponential", "base": 10, "factor": 2, "cap": 5}}),
                "retry.cap",
            ),
            (json!({"max_duration_ms": 1.5}), "max_duration_ms"),
            (json!({"max_delay_ms": null}), "max_delay_ms"),
            (json!({"headers": [1]}), "headers"),
            (json!({"idempotency_key": ""}), "idempotency_key"),
            (json!({"idempotency_key": "a\u{85}b"}), "idempotency_key"),
            (json!({"idempotency_key": 7}), "idempotency_key"),
        ];
        for (document, option) in cases {
            assert_eq!(refused_option(document.clone()), option, "{document}");
        }
    }

    #[test]
    fn the_first_unknown_key_is_named_in_jsonb_key_order() {
        let err = parse_options(&json!({"zz": 1, "colour": 2, "b": 3})).unwrap_err();
        assert!(err.to_string().contains("unknown option `b`"), "{err}");
        let err = parse_options(&json!({"zz": 1, "colour": 2, "aa": 3})).unwrap_err();
        assert!(err.to_string().contains("unknown option `aa`"), "{err}");
    }

    #[test]
    fn documents_round_trip_through_options() {
        let at: DateTime<Utc> = "2031-05-06T07:08:09.123456Z".parse().unwrap();
        let options = SpawnOptions::new()
            .with_max_attempts(4)
            .with_priority(-3)
            .with_run_at(at)
            .with_timeout(Duration::from_millis(1500))
            .with_retry(RetryStrategy::Exponential {
                base: Duration::from_millis(250),
                factor: 1.5,
                cap: None,
            })
            .with_cancellation(CancellationPolicy {
                max_duration: Some(Duration::from_secs(60)),
                max_delay: None,
            })
            .with_headers(json!({"trace": "t"}))
            .with_idempotency_key("k-1");
        let document = options_document(&options);
        assert_eq!(document["run_at"], json!("2031-05-06T07:08:09.123456Z"));
        assert_eq!(parse_options(&document).unwrap(), options);
        assert_eq!(parse_options(&json!({})).unwrap(), SpawnOptions::new());
        assert_eq!(
            parse_options(&json!({"headers": null})).unwrap(),
            SpawnOptions::new()
        );
    }
}
