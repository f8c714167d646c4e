//! Spawn options: attempts, retry strategy, priority, schedule, timeout, cancellation policy,
//! headers and idempotency key.
//!
//! Every field of [`SpawnOptions`] is optional; an unset field takes its documented default when
//! the job is spawned, and is left unchanged when the options are given to
//! [`Store::retry`](crate::Store::retry).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default [`SpawnOptions::max_attempts`]: 20, as in Oban.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;
/// Default priority: 0. Lower values run first.
pub const DEFAULT_PRIORITY: i32 = 0;
/// Base delay of the default exponential retry strategy: 1 s.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Factor of the default exponential retry strategy: 2.
pub const DEFAULT_RETRY_FACTOR: f64 = 2.0;
/// Cap of the default exponential retry strategy: 1 hour.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(3600);

/// How long to wait before the next attempt after a failed one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RetryStrategy {
    /// Never retry: the first failure is final, whatever `max_attempts` says.
    None,
    /// Wait the same delay after every failure.
    Fixed {
        /// The delay, in milliseconds when stored (must be positive).
        #[serde(with = "millis")]
        delay: Duration,
    },
    /// Wait `base * factor^(attempt - 1)`, at most `cap`.
    Exponential {
        /// Delay after the first failure (must be positive).
        #[serde(with = "millis")]
        base: Duration,
        /// Growth factor per attempt (at least 1, finite).
        factor: f64,
        /// Upper bound of the delay; `None` means no bound but the internal one of one year.
        #[serde(with = "opt_millis", default)]
        cap: Option<Duration>,
    },
}

impl Default for RetryStrategy {
    /// Exponential from 1 s, doubling, capped at 1 hour: 20 attempts span about 9 hours.
    fn default() -> Self {
        RetryStrategy::Exponential {
            base: DEFAULT_RETRY_BASE,
            factor: DEFAULT_RETRY_FACTOR,
            cap: Some(DEFAULT_RETRY_CAP),
        }
    }
}

/// When a run should start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunAt {
    /// As soon as possible.
    Now,
    /// At this instant (an instant in the past means now).
    At(DateTime<Utc>),
    /// After this delay, measured on the engine's clock (must be positive).
    After(Duration),
}

/// Cancel a job automatically when it takes too long to start or to finish.
///
/// Enforced by [`Store::rescue_expired`](crate::Store::rescue_expired) (which a worker's
/// maintenance loop runs) and by claims, which never take a job past its limit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CancellationPolicy {
    /// Cancel the job if it is still unfinished this long after its first run started
    /// (across all its attempts and retry delays).
    pub max_duration: Option<Duration>,
    /// Cancel the job if its first run has not started this long after its scheduled run time.
    pub max_delay: Option<Duration>,
}

/// Options of a spawned job (or new options for a retried one). Build with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use tasque_durable::{RetryStrategy, SpawnOptions};
///
/// let options = SpawnOptions::new()
///     .with_max_attempts(3)
///     .with_retry(RetryStrategy::Fixed { delay: Duration::from_secs(30) })
///     .with_priority(-1)
///     .with_idempotency_key("order-123");
/// assert_eq!(options.max_attempts, Some(3));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpawnOptions {
    /// Attempts allowed before the job fails for good (at least 1). Default 20.
    pub max_attempts: Option<u32>,
    /// Delay between attempts. Default: [`RetryStrategy::default`].
    pub retry: Option<RetryStrategy>,
    /// Lower runs first among ready jobs of the claimed queues. Default 0.
    pub priority: Option<i32>,
    /// When the first run may start. Default: now.
    pub run_at: Option<RunAt>,
    /// Limit of one run's duration, enforced by the worker (must be positive). Default: none.
    pub timeout: Option<Duration>,
    /// Automatic cancellation. Default: none.
    pub cancellation: Option<CancellationPolicy>,
    /// Arbitrary JSON metadata (an object) handed to the handler with the params.
    pub headers: Option<Value>,
    /// Spawning again with a key already used in the same queue returns the existing job
    /// instead of creating one (whatever its state, until the cleaner deletes it).
    pub idempotency_key: Option<String>,
    /// Per-key order: jobs of one queue with the same ordering key start in enqueue order, at
    /// most the queue's key concurrency (default 1) at a time; see [`crate::flow`].
    pub ordering_key: Option<String>,
    /// At most one job per unique key (and period) among chosen states: a conflicting spawn
    /// returns the existing job with `created: false`. See [`unique`](crate::unique).
    pub unique: Option<crate::unique::Uniqueness>,
    /// Parents: the job is held until every one of them completed; see [`deps`](crate::deps).
    /// Not carried by option documents.
    pub depends_on: Option<crate::deps::Dependencies>,
}

impl SpawnOptions {
    /// Options with every field unset (defaults apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of attempts.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Sets the retry strategy.
    pub fn with_retry(mut self, retry: RetryStrategy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets the priority (lower runs first).
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Schedules the first run at an instant.
    pub fn with_run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(RunAt::At(at));
        self
    }

    /// Schedules the first run after a delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(RunAt::After(delay));
        self
    }

    /// Sets the per-run timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancellation policy.
    pub fn with_cancellation(mut self, policy: CancellationPolicy) -> Self {
        self.cancellation = Some(policy);
        self
    }

    /// Sets the headers (a JSON object).
    pub fn with_headers(mut self, headers: Value) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the ordering key (see [`crate::flow`]).
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Sets the unique constraint.
    pub fn with_unique(mut self, unique: crate::unique::Uniqueness) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Makes the job wait for `parents` (existing job ids), cancelling it if one of them
    /// fails for good (see [`with_on_parent_failure`](Self::with_on_parent_failure)).
    pub fn with_depends_on(mut self, parents: impl IntoIterator<Item = crate::JobId>) -> Self {
        let policy = self
            .depends_on
            .as_ref()
            .map(|d| d.on_parent_failure)
            .unwrap_or_default();
        self.depends_on = Some(crate::deps::Dependencies::on(parents).on_parent_failure(policy));
        self
    }

    /// Sets what a parent's failure does to the job (with [`with_depends_on`](Self::with_depends_on)).
    pub fn with_on_parent_failure(mut self, policy: crate::deps::ParentFailure) -> Self {
        let deps = self.depends_on.take().unwrap_or_default();
        self.depends_on = Some(deps.on_parent_failure(policy));
        self
    }

    /// The options with every unset field taken from `base`.
    pub fn or(self, base: &SpawnOptions) -> SpawnOptions {
        SpawnOptions {
            max_attempts: self.max_attempts.or(base.max_attempts),
            retry: self.retry.or_else(|| base.retry.clone()),
            priority: self.priority.or(base.priority),
            run_at: self.run_at.or(base.run_at),
            timeout: self.timeout.or(base.timeout),
            cancellation: self.cancellation.or(base.cancellation),
            headers: self.headers.or_else(|| base.headers.clone()),
            idempotency_key: self
                .idempotency_key
                .or_else(|| base.idempotency_key.clone()),
            ordering_key: self.ordering_key.or_else(|| base.ordering_key.clone()),
            unique: self.unique.or_else(|| base.unique.clone()),
            depends_on: self.depends_on.or_else(|| base.depends_on.clone()),
        }
    }
}

/// Serde helper: a [`Duration`] as integer milliseconds. Any JSON number with an integral
/// value is read (`1000`, `1000.0`, `1e3`: Python's `json` writes floats that way); `1.5`,
/// negative numbers and other types are refused.
mod millis {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Millis)
    }

    /// Reads milliseconds from any integral number.
    pub(super) struct Millis;

    impl<'de> Visitor<'de> for Millis {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer number of milliseconds")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_millis(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_millis)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            // 2^64 is the first float past u64::MAX.
            if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                Ok(Duration::from_millis(v as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }
}

/// Serde helper: an optional [`Duration`] as integer milliseconds (null: none), read as
/// [`millis`] reads.
mod opt_millis {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use super::millis::Millis;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(OptMillis)
    }

    struct OptMillis;

    impl<'de> Visitor<'de> for OptMillis {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null or a non-negative integer number of milliseconds")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Millis).map(Some)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Millis.visit_u64(v).map(Some)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Millis.visit_i64(v).map(Some)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Millis.visit_f64(v).map(Some)
        }
    }
}

/// Spawn options serialize as their option document
/// ([`options_document`](crate::validate::options_document)).
impl Serialize for SpawnOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::validate::options_document(self).serialize(s)
    }
}

/// Spawn options deserialize from an option document, with every rule of
/// [`parse_options`](crate::validate::parse_options): `{"max_attempts": 3.0}` is 3 attempts,
/// `{"max_attempts": 3.5}` is refused naming `max_attempts`.
impl<'de> Deserialize<'de> for SpawnOptions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let document = Value::deserialize(d)?;
        crate::validate::parse_options(&document).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_strategy_is_stored_as_tagged_json_in_millis() {
        let strategy = RetryStrategy::Exponential {
            base: Duration::from_millis(1500),
            factor: 2.0,
            cap: None,
        };
        let json = serde_json::to_value(&strategy).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "exponential", "base": 1500, "factor": 2.0, "cap": null})
        );
        assert_eq!(
            serde_json::from_value::<RetryStrategy>(json).unwrap(),
            strategy
        );
        let none = serde_json::to_value(RetryStrategy::None).unwrap();
        assert_eq!(
            serde_json::from_value::<RetryStrategy>(none).unwrap(),
            RetryStrategy::None
        );
    }

    #[test]
    fn retry_delays_read_integral_floats_and_refuse_fractions() {
        let read: RetryStrategy =
            serde_json::from_value(serde_json::json!({"kind": "fixed", "delay": 1000.0})).unwrap();
        assert_eq!(
            read,
            RetryStrategy::Fixed {
                delay: Duration::from_secs(1)
            }
        );
        let read: RetryStrategy = serde_json::from_str(
            r#"{"kind": "exponential", "base": 1e3, "factor": 2, "cap": 3600000.0}"#,
        )
        .unwrap();
        assert_eq!(read, RetryStrategy::default());
        for bad in [
            r#"{"kind": "fixed", "delay": 1000.5}"#,
            r#"{"kind": "fixed", "delay": -1}"#,
            r#"{"kind": "fixed", "delay": "1000"}"#,
            r#"{"kind": "exponential", "base": 1, "factor": 2, "cap": 0.5}"#,
        ] {
            assert!(serde_json::from_str::<RetryStrategy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spawn_options_deserialize_from_option_documents_with_the_same_rules() {
        let options: SpawnOptions =
            serde_json::from_str(r#"{"max_attempts": 3.0, "delay_ms": 1000.0}"#).unwrap();
        assert_eq!(options.max_attempts, Some(3));
        assert_eq!(
            options.run_at,
            Some(RunAt::After(Duration::from_millis(1000)))
        );
        let err = serde_json::from_str::<SpawnOptions>(r#"{"max_attempts": 3.5}"#).unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let back: SpawnOptions =
            serde_json::from_value(serde_json::to_value(&options).unwrap()).unwrap();
        assert_eq!(back, options);
    }

    #[test]
    fn or_fills_only_unset_fields() {
        let base = SpawnOptions::new().with_max_attempts(5).with_priority(3);
        let merged = SpawnOptions::new().with_priority(1).or(&base);
        assert_eq!(merged.max_attempts, Some(5));
        assert_eq!(merged.priority, Some(1));
    }
}
