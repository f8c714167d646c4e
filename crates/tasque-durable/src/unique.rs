//! Unique jobs: at most one job per unique key (and period) among chosen states.
//!
//! # The model
//!
//! A spawn may carry a [`Uniqueness`]: a key, an optional period and a set of states. The
//! engine stores the key, the job's *bucket* (its scheduled run time divided by the period,
//! or 0 without a period) and the states as a bitmask, and a unique index over
//! `(key, bucket)` holds only the jobs whose current state is among their unique states. A
//! spawn that conflicts inserts nothing and returns the job holding the slot, with
//! `created: false`: one index lookup, no lock and no advisory-lock fallback, whatever states
//! are chosen.
//!
//! * **Key.** The typed client derives it from the job's kind, optionally its queue, and a
//!   chosen subset of its args ([`Unique::by_args`]); the raw API and producers in other
//!   languages give any key (`{"unique": {"key": "..."}}` in an option document). Keys are
//!   namespace-wide: two queues share a key unless it names the queue.
//! * **Period.** With a period of one hour, one job per key per clock hour of scheduled time
//!   (buckets are aligned on the Unix epoch); a job scheduled in the next hour is another slot.
//! * **States.** A job holds its slot while its state is among the chosen ones. Every
//!   unfinished state (available, scheduled, running, sleeping, waiting) is always among them:
//!   a duplicate of a job about to run is the case uniqueness exists for, and a job that could
//!   come back to a pending state by itself (a sleeper waking) must never find its slot taken.
//!   The choice is which finished states also hold it; the default is completed, leaving out
//!   failed and cancelled, as Oban and River do: a job that failed for good or was cancelled
//!   no longer blocks a new one. (Retrying such a job while a newer one holds its slot is
//!   refused by the database.)
//!
//! # Unique jobs and idempotency keys
//!
//! An idempotency key is an exact caller-chosen key, scoped to the queue, held in every state
//! until the cleaner deletes the job: "this request was already made". Uniqueness is derived
//! from the job's content, has a period and ends when the job leaves its states: "no second
//! such job for now". A spawn may carry both; the idempotency key is checked first, and either
//! conflict returns the existing job with `created: false`.

use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::JobState;
use crate::validate::MAX_DURATION_MS;

/// Longest unique key, in bytes. A derived key longer than this is replaced by its digest.
pub const MAX_UNIQUE_KEY_LEN: usize = 255;

/// The states a job holds its unique slot in, as a bitmask over the stored states (the bits
/// every engine's SQL uses): pending (available and scheduled) 1, running 2, sleeping 4,
/// waiting 8, completed 16, failed 32, cancelled 64.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct UniqueStates(u8);

impl UniqueStates {
    /// Every unfinished state: available, scheduled, running, sleeping and waiting, always
    /// included.
    pub const REQUIRED: UniqueStates = UniqueStates(1 | 2 | 4 | 8);
    /// Every state but failed and cancelled (the default, as in Oban and River).
    pub const DEFAULT: UniqueStates = UniqueStates(1 | 2 | 4 | 8 | 16);
    /// Every state.
    pub const ALL: UniqueStates = UniqueStates(127);

    /// The bit of a state.
    pub fn bit(state: JobState) -> u8 {
        match state {
            JobState::Available | JobState::Scheduled => 1,
            JobState::Running => 2,
            JobState::Sleeping => 4,
            JobState::Waiting => 8,
            JobState::Completed => 16,
            JobState::Failed => 32,
            JobState::Cancelled => 64,
            // A job with dependencies cannot be unique (refused at spawn): no bit, so no
            // document names the state.
            JobState::OnHold => 0,
        }
    }

    /// The set of `states`; refused unless it holds every unfinished state (available,
    /// scheduled, running, sleeping and waiting).
    pub fn of(states: impl IntoIterator<Item = JobState>) -> Result<UniqueStates> {
        let states: Vec<JobState> = states.into_iter().collect();
        let required = [
            JobState::Available,
            JobState::Scheduled,
            JobState::Running,
            JobState::Sleeping,
            JobState::Waiting,
        ];
        if !required.iter().all(|s| states.contains(s)) {
            return Err(Error::invalid_option(
                "unique.states",
                "must include available, scheduled, running, sleeping and waiting",
            ));
        }
        Ok(UniqueStates(
            states.into_iter().fold(0, |mask, s| mask | Self::bit(s)),
        ))
    }

    /// The set of a stored bitmask; refused when bits are unknown or required ones missing.
    pub fn from_mask(mask: i64) -> Result<UniqueStates> {
        match u8::try_from(mask) {
            Ok(m) if m & 127 == m && m & 15 == 15 => Ok(UniqueStates(m)),
            _ => Err(Error::invalid_option(
                "unique.states",
                "must include available, scheduled, running, sleeping and waiting",
            )),
        }
    }

    /// The bitmask as stored.
    pub fn mask(self) -> i64 {
        i64::from(self.0)
    }

    /// True when `state` holds the slot.
    pub fn contains(self, state: JobState) -> bool {
        self.0 & Self::bit(state) != 0
    }

    /// The states, in display order (never on hold: a held job cannot be unique, so the SQL
    /// documents do not name that state).
    pub fn states(self) -> Vec<JobState> {
        JobState::ALL
            .into_iter()
            .filter(|s| *s != JobState::OnHold && self.contains(*s))
            .collect()
    }
}

impl Default for UniqueStates {
    fn default() -> Self {
        UniqueStates::DEFAULT
    }
}

/// A resolved unique constraint, as a spawn carries it ([`SpawnOptions::unique`](crate::SpawnOptions::unique)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uniqueness {
    /// The key (1 to 255 bytes, no control characters); namespace-wide.
    pub key: String,
    /// One job per key per this much scheduled time (at least 1 ms); `None`: no period.
    pub period: Option<Duration>,
    /// The states in which a job holds its slot.
    pub states: UniqueStates,
}

impl Uniqueness {
    /// A constraint on `key`, no period, the default states.
    pub fn key(key: impl Into<String>) -> Self {
        Uniqueness {
            key: key.into(),
            period: None,
            states: UniqueStates::DEFAULT,
        }
    }

    /// Sets the period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// Sets the states (see [`UniqueStates::of`]).
    pub fn states(mut self, states: UniqueStates) -> Self {
        self.states = states;
        self
    }

    /// The period in milliseconds, as stored (`None` without a period).
    pub fn period_ms(&self) -> Option<i64> {
        self.period
            .map(|p| i64::try_from(p.as_millis()).unwrap_or(i64::MAX).max(1))
    }

    /// Checks the key and the period.
    pub fn validate(&self) -> Result<()> {
        let key_ok = !self.key.is_empty()
            && self.key.len() <= MAX_UNIQUE_KEY_LEN
            && !self.key.chars().any(char::is_control);
        if !key_ok {
            return Err(Error::invalid_option(
                "unique.key",
                "must be a string of 1 to 255 bytes without control characters",
            ));
        }
        if let Some(p) = self.period {
            let ms = p.as_millis();
            if ms == 0 || ms > u128::from(MAX_DURATION_MS) {
                return Err(Error::invalid_option(
                    "unique.period_ms",
                    format!(
                        "must be an integer number of milliseconds from 1 to {MAX_DURATION_MS}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Which args make a typed job unique, for [`JobOptions::unique`](crate::client::JobOptions::unique):
/// the client turns it into a [`Uniqueness`] when the job is enqueued.
///
/// ```
/// use std::time::Duration;
/// use tasque_durable::unique::Unique;
/// use tasque_durable::JobState;
///
/// // One `digest` job per user per hour, while it is unfinished or failed (not once completed).
/// let unique = Unique::by_args(["user_id"])
///     .period(Duration::from_secs(3600))
///     .states(JobState::ALL.into_iter().filter(|s| !s.is_finished()).chain([JobState::Failed]));
/// # let _ = unique;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unique {
    args: ArgsPart,
    by_queue: bool,
    period: Option<Duration>,
    states: Option<Vec<JobState>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ArgsPart {
    None,
    All,
    Fields(Vec<String>),
}

impl Unique {
    fn with_args(args: ArgsPart) -> Self {
        Unique {
            args,
            by_queue: false,
            period: None,
            states: None,
        }
    }

    /// Unique by kind alone: one job of the kind at a time.
    pub fn by_kind() -> Self {
        Self::with_args(ArgsPart::None)
    }

    /// Unique by kind and the named top-level fields of the args (a missing field counts as
    /// null).
    pub fn by_args<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_args(ArgsPart::Fields(
            fields.into_iter().map(Into::into).collect(),
        ))
    }

    /// Unique by kind and the whole args.
    pub fn by_all_args() -> Self {
        Self::with_args(ArgsPart::All)
    }

    /// Makes the queue part of the key (by default, a key is shared by every queue).
    pub fn by_queue(mut self) -> Self {
        self.by_queue = true;
        self
    }

    /// One job per key per `period` of scheduled time.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// The states in which a job holds its slot (must include every unfinished state);
    /// default: every state but failed and cancelled.
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.states = Some(states.into_iter().collect());
        self
    }

    /// The constraint of a job of `kind` in `queue` with `args`. The key reads
    /// `kind[|queue]|{selected args as compact JSON, keys sorted}`, replaced by
    /// `kind|sha256:<hex>` of that text when longer than 255 bytes.
    pub fn resolve(&self, kind: &str, queue: &str, args: &Value) -> Result<Uniqueness> {
        let mut key = kind.to_string();
        if self.by_queue {
            key.push('|');
            key.push_str(queue);
        }
        let selected = match &self.args {
            ArgsPart::None => None,
            ArgsPart::All => Some(args.clone()),
            ArgsPart::Fields(fields) => {
                let Value::Object(object) = args else {
                    return Err(Error::invalid_option(
                        "unique.by_args",
                        "the args are not a JSON object",
                    ));
                };
                let picked: Map<String, Value> = fields
                    .iter()
                    .map(|f| (f.clone(), object.get(f).cloned().unwrap_or(Value::Null)))
                    .collect();
                Some(Value::Object(picked))
            }
        };
        if let Some(selected) = selected {
            key.push('|');
            key.push_str(&canonical(&selected));
        }
        if key.len() > MAX_UNIQUE_KEY_LEN || key.chars().any(char::is_control) {
            let digest = Sha256::digest(key.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            key = format!("{}|sha256:{hex}", truncate(kind, 120));
        }
        let states = match &self.states {
            Some(states) => UniqueStates::of(states.iter().copied())?,
            None => UniqueStates::DEFAULT,
        };
        let unique = Uniqueness {
            key,
            period: self.period,
            states,
        };
        unique.validate()?;
        Ok(unique)
    }
}

/// Compact JSON with object keys sorted at every level, so equal args give equal keys.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&object[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_depend_on_the_chosen_args_only_and_not_on_their_order() {
        let u = Unique::by_args(["user", "day"]);
        let a = u
            .resolve("digest", "q", &json!({"user": 1, "day": "mon", "x": 1}))
            .unwrap();
        let b = u
            .resolve("digest", "other", &json!({"x": 2, "day": "mon", "user": 1}))
            .unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(a.key, r#"digest|{"day":"mon","user":1}"#);
        let c = u
            .by_queue()
            .resolve("digest", "q", &json!({"user": 1}))
            .unwrap();
        assert_eq!(c.key, r#"digest|q|{"day":null,"user":1}"#);
    }

    #[test]
    fn long_keys_are_digested_and_bad_input_is_refused() {
        let long = "x".repeat(400);
        let u = Unique::by_all_args()
            .resolve("k", "q", &json!({ "a": long }))
            .unwrap();
        assert!(u.key.starts_with("k|sha256:") && u.key.len() < 100);
        assert!(Unique::by_args(["a"]).resolve("k", "q", &json!(3)).is_err());
        let missing_running = Unique::by_kind().states([
            JobState::Available,
            JobState::Scheduled,
            JobState::Sleeping,
            JobState::Waiting,
        ]);
        assert!(missing_running.resolve("k", "q", &json!({})).is_err());
        assert!(Uniqueness::key("").validate().is_err());
        assert!(Uniqueness::key("a")
            .period(Duration::ZERO)
            .validate()
            .is_err());
    }

    #[test]
    fn states_round_trip_through_their_mask() {
        let s = UniqueStates::of([
            JobState::Available,
            JobState::Scheduled,
            JobState::Running,
            JobState::Sleeping,
            JobState::Waiting,
            JobState::Failed,
        ])
        .unwrap();
        assert_eq!(s.mask(), 47);
        assert_eq!(UniqueStates::from_mask(s.mask()).unwrap(), s);
        assert!(UniqueStates::from_mask(3).is_err());
        assert!(UniqueStates::from_mask(300).is_err());
        assert!(!UniqueStates::DEFAULT.contains(JobState::Cancelled));
    }

    #[test]
    fn states_never_name_on_hold() {
        let active =
            UniqueStates::of(JobState::ALL.into_iter().filter(|s| !s.is_finished())).unwrap();
        assert!(!active.states().contains(&JobState::OnHold));
        assert_eq!(active.mask(), 15);
    }
}
