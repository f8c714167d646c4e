//! Flow control: per-key order and concurrency, and rate limits, all enforced by the claim.
//!
//! # Per-key order and concurrency
//!
//! A job spawned with an ordering key ([`SpawnOptions::ordering_key`](crate::SpawnOptions))
//! belongs to that key within its queue. The jobs of one key start in enqueue order, at most
//! the queue's key concurrency `K` at a time ([`KeyPolicy::concurrency`], default 1: strictly
//! serial). The rule the claim applies is a window: a keyed job may start only when fewer than
//! `K` jobs of its key created before it are unfinished (pending, running, sleeping, waiting,
//! or failed and kept by the policy below). So a key whose oldest job waits out a retry
//! backoff holds the jobs behind it, exactly as a blocking queue does, but for that key only.
//!
//! When a keyed job exhausts its attempts, the queue's [`KeyPolicy::on_exhausted`] decides:
//! [`BlockedPolicy::Continue`] (the default) leaves it failed and the key moves on;
//! [`BlockedPolicy::StayBlocked`] keeps it holding its key until an operator retries, cancels
//! or deletes it. Other keys of the queue are never held.
//!
//! Fairness: each key offers at most `K` jobs to the claim at any time, so one busy key cannot
//! starve the others of a shared queue; among the offered jobs the poll order applies.
//!
//! Blocking queues ([`Store::set_queue_blocking`](crate::Store::set_queue_blocking)) are the
//! per-queue case and keep working as before.
//!
//! # Rate limits
//!
//! A queue may have a [`RateLimit`]: at most `limit` starts per window (for example 50 per
//! second), counted per [`RateKey`]: the whole queue, each ordering key, or each value of an
//! argument (a dotted path into the params, `customer.id`). Windows are fixed and aligned to
//! the Unix epoch (a window of 1 s starts on every whole second), and the count of each
//! (queue, key, window) is a row the claim updates in its own transaction, under the queue's
//! lock, so the limit is exact across every worker on every machine. A throttled key does not
//! hold up the other keys of the queue: the claim skips its jobs.
//!
//! Limits, pauses and blocking mode still hold, and blocking queues honour rate limits too
//! (their head waits for room in its key's window). A rate-limited queue is claimed under its
//! queue row's lock like a queue with a concurrency limit. The per-key window needs no lock: a
//! claim finishes no job, so the unfinished jobs a window counts only shrink while claims run,
//! and two claimers cannot both start a job the window holds (PostgreSQL claims keyed queues
//! with its plain windowed statement; SQLite's single writer serialises claims anyway; MySQL
//! claims them on its gated path).
//!
//! # Seeing why a job waits
//!
//! [`Flow::why_waiting`] names the rule holding an available job: its key at its limit, its
//! key blocked by a failed job, or the rate limit with the next start it allows.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::error::{Error, Result};
use crate::model::{BlockedPolicy, JobId};
use crate::validate::{positive, validate_name, MAX_DURATION};

/// The most jobs of one key a queue may run at once (sanity bound).
pub const MAX_KEY_CONCURRENCY: u32 = 1_000_000;

/// What a rate limit counts its starts by.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RateKey {
    /// One count for the whole queue.
    #[default]
    Queue,
    /// One count per ordering key (jobs without one share a count).
    OrderingKey,
    /// One count per value of an argument: a dotted path into the params (`customer.id`);
    /// jobs without it share a count.
    Arg(String),
}

impl RateKey {
    /// The stored form: `queue`, `ordering_key` or `arg:PATH`.
    pub fn as_stored(&self) -> String {
        match self {
            RateKey::Queue => "queue".to_string(),
            RateKey::OrderingKey => "ordering_key".to_string(),
            RateKey::Arg(path) => format!("arg:{path}"),
        }
    }

    /// Reads the stored form.
    pub fn from_stored(s: &str) -> Result<RateKey> {
        match s {
            "queue" => Ok(RateKey::Queue),
            "ordering_key" => Ok(RateKey::OrderingKey),
            _ => match s.strip_prefix("arg:") {
                Some(path) => {
                    validate_arg_path(path)?;
                    Ok(RateKey::Arg(path.to_string()))
                }
                None => Err(Error::Corrupt(format!("unknown rate key {s:?}"))),
            },
        }
    }

    /// The argument path's segments (empty unless [`RateKey::Arg`]).
    pub fn path(&self) -> Vec<&str> {
        match self {
            RateKey::Arg(path) => path.split('.').collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateKey::Queue => f.write_str("queue"),
            RateKey::OrderingKey => f.write_str("ordering key"),
            RateKey::Arg(path) => write!(f, "arg {path}"),
        }
    }
}

/// Checks an argument path: 1 to 8 dot-separated segments of 1 to 64 characters of
/// `A-Z a-z 0-9 _ -` (so every engine can render it into its JSON path syntax safely).
pub fn validate_arg_path(path: &str) -> Result<()> {
    let segments: Vec<&str> = path.split('.').collect();
    let ok = segments.len() <= 8
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_option(
            "rate_limit.key",
            "an argument path is 1 to 8 dot-separated names of A-Z a-z 0-9 _ -",
        ))
    }
}

/// At most `limit` starts per `window`, counted per `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Starts allowed per window (at least 1).
    pub limit: u32,
    /// The window (at least 1 ms; windows are aligned to the Unix epoch).
    pub window: Duration,
    /// What the starts are counted by.
    pub key: RateKey,
}

impl RateLimit {
    /// `limit` starts per `window` for the whole queue.
    pub fn new(limit: u32, window: Duration) -> RateLimit {
        RateLimit {
            limit,
            window,
            key: RateKey::Queue,
        }
    }

    /// The same limit counted per `key`.
    pub fn per(mut self, key: RateKey) -> RateLimit {
        self.key = key;
        self
    }

    /// The stored key column of an optional rate limit: its key's stored form, or the queue's
    /// when the queue has no rate limit (the column is never empty).
    pub fn stored_key(rate: Option<&RateLimit>) -> String {
        rate.map_or(RateKey::Queue, |r| r.key.clone()).as_stored()
    }

    /// The window in whole milliseconds (at least 1).
    pub fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Reads the stored columns: the limit (`None`: no rate limit), the window in ms and the
    /// stored key ([`RateKey::as_stored`]).
    pub fn from_stored(
        limit: Option<i64>,
        window_ms: Option<i64>,
        key: &str,
    ) -> Result<Option<RateLimit>> {
        let Some(limit) = limit else {
            return Ok(None);
        };
        let limit = u32::try_from(limit)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::Corrupt(format!("rate limit {limit}")))?;
        let window_ms = window_ms
            .and_then(|w| u64::try_from(w).ok())
            .filter(|w| *w > 0)
            .ok_or_else(|| Error::Corrupt(format!("rate window {window_ms:?}")))?;
        Ok(Some(RateLimit {
            limit,
            window: Duration::from_millis(window_ms),
            key: RateKey::from_stored(key)?,
        }))
    }

    /// Checks the limit.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 {
            return Err(Error::invalid_option(
                "rate_limit.limit",
                "must be at least 1",
            ));
        }
        positive("rate_limit.window", self.window)?;
        if self.window < Duration::from_millis(1) || self.window > MAX_DURATION {
            return Err(Error::invalid_option(
                "rate_limit.window",
                "must be from 1 ms to 1000 years",
            ));
        }
        if let RateKey::Arg(path) = &self.key {
            validate_arg_path(path)?;
        }
        Ok(())
    }
}

/// How the ordering keys of a queue run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Most jobs of one key running at once (at least 1; 1 = strictly serial per key).
    pub concurrency: u32,
    /// What a keyed job that exhausts its attempts does to its key.
    pub on_exhausted: BlockedPolicy,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            concurrency: 1,
            on_exhausted: BlockedPolicy::Continue,
        }
    }
}

/// A queue's flow settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueFlow {
    /// Its ordering keys' policy.
    pub keys: KeyPolicy,
    /// Its rate limit, if any.
    pub rate: Option<RateLimit>,
}

impl QueueFlow {
    /// Reads the stored columns: key concurrency, key policy, then as
    /// [`RateLimit::from_stored`].
    pub fn from_stored(
        concurrency: i64,
        on_exhausted: &str,
        limit: Option<i64>,
        window_ms: Option<i64>,
        key: &str,
    ) -> Result<QueueFlow> {
        let concurrency = u32::try_from(concurrency)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::Corrupt(format!("key concurrency {concurrency}")))?;
        let on_exhausted = on_exhausted
            .parse::<BlockedPolicy>()
            .map_err(|_| Error::Corrupt(format!("key policy {on_exhausted:?}")))?;
        Ok(QueueFlow {
            keys: KeyPolicy {
                concurrency,
                on_exhausted,
            },
            rate: RateLimit::from_stored(limit, window_ms, key)?,
        })
    }
}

/// A rate key as the engines' statements bind it: its kind (`queue`, `ordering_key` or
/// `arg`) and the argument path's segments.
pub fn rate_key_binds(key: &RateKey) -> (&'static str, Vec<String>) {
    match key {
        RateKey::Queue => ("queue", Vec::new()),
        RateKey::OrderingKey => ("ordering_key", Vec::new()),
        RateKey::Arg(_) => ("arg", key.path().into_iter().map(String::from).collect()),
    }
}

/// Why an available job does not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowWait {
    /// Its key already has `limit` unfinished jobs created before it.
    KeyAtLimit {
        /// The ordering key.
        key: String,
        /// The queue's key concurrency.
        limit: u32,
    },
    /// Its key is held by a failed job kept by [`BlockedPolicy::StayBlocked`].
    KeyBlocked {
        /// The ordering key.
        key: String,
        /// The failed job.
        by: JobId,
    },
    /// Its rate key used up the current window.
    RateLimited {
        /// The rate key's value (empty: the whole queue or jobs without the key).
        key: String,
        /// When the next window opens.
        next_start: DateTime<Utc>,
    },
}

impl fmt::Display for FlowWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowWait::KeyAtLimit { key, limit } => {
                write!(f, "key {key} at its limit ({limit} at a time)")
            }
            FlowWait::KeyBlocked { key, by } => write!(f, "key {key} blocked by job {by}"),
            FlowWait::RateLimited { key, next_start } => {
                let at = next_start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                if key.is_empty() {
                    write!(f, "rate limit: next start at {at}")
                } else {
                    write!(f, "rate limit of key {key}: next start at {at}")
                }
            }
        }
    }
}

/// A job's flow facts as an engine reads them ([`FlowEngine::flow_job`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFlowFacts {
    /// Its queue's settings.
    pub queue: QueueFlow,
    /// Its ordering key.
    pub ordering_key: Option<String>,
    /// True when it is pending and ready now (only such a job can be waiting on a rule).
    pub ready: bool,
    /// The oldest unfinished jobs of its key created before it (at most the key concurrency),
    /// each with true when it is a failed job holding the key.
    pub ahead: Vec<(JobId, bool)>,
    /// Its rate key's value (when the queue has a rate limit).
    pub rate_key: Option<String>,
    /// Starts counted in the rate key's current window.
    pub rate_used: u32,
    /// The database clock.
    pub now: DateTime<Utc>,
}

/// A job's ordering key and why it waits, if a flow rule holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFlow {
    /// Its ordering key.
    pub ordering_key: Option<String>,
    /// The rule holding it, if any.
    pub waits: Option<FlowWait>,
}

/// The start of the epoch-aligned window holding `now_ms`.
pub fn window_start_ms(now_ms: i64, window_ms: i64) -> i64 {
    now_ms.div_euclid(window_ms.max(1)) * window_ms.max(1)
}

impl JobFlowFacts {
    /// The rule holding the job, if any (keys first, then the rate limit).
    pub fn wait(&self) -> Option<FlowWait> {
        if !self.ready {
            return None;
        }
        if let Some(key) = &self.ordering_key {
            if let Some((by, _)) = self.ahead.iter().find(|(_, holds)| *holds) {
                return Some(FlowWait::KeyBlocked {
                    key: key.clone(),
                    by: *by,
                });
            }
            if self.ahead.len() >= self.queue.keys.concurrency as usize {
                return Some(FlowWait::KeyAtLimit {
                    key: key.clone(),
                    limit: self.queue.keys.concurrency,
                });
            }
        }
        let rate = self.queue.rate.as_ref()?;
        if self.rate_used < rate.limit {
            return None;
        }
        let window = rate.window_ms();
        let next = window_start_ms(self.now.timestamp_millis(), window).saturating_add(window);
        Some(FlowWait::RateLimited {
            key: self.rate_key.clone().unwrap_or_default(),
            next_start: Utc.timestamp_millis_opt(next).single().unwrap_or(self.now),
        })
    }
}

/// The engine side of flow control: storage of the settings and the facts behind a wait. The
/// claim itself enforces the rules (see the engines' `ops/gated.rs`).
#[async_trait]
pub trait FlowEngine: Send + Sync {
    /// Sets a queue's key policy (validated), creating the queue if needed.
    async fn flow_set_keys(&self, queue: &str, policy: KeyPolicy) -> Result<()>;

    /// Sets or removes a queue's rate limit (validated), creating the queue if needed.
    async fn flow_set_rate(&self, queue: &str, rate: Option<&RateLimit>) -> Result<()>;

    /// A queue's flow settings (defaults for a queue that does not exist).
    async fn flow_queue(&self, queue: &str) -> Result<QueueFlow>;

    /// A job's flow facts.
    async fn flow_job(&self, job: JobId) -> Result<JobFlowFacts>;
}

/// Flow control of a store ([`Store::flow`](crate::Store::flow)): validates, then asks the
/// engine.
#[derive(Clone, Copy)]
pub struct Flow<'a> {
    engine: &'a dyn FlowEngine,
}

impl fmt::Debug for Flow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flow")
    }
}

impl<'a> Flow<'a> {
    /// Flow control over an engine.
    pub fn new(engine: &'a dyn FlowEngine) -> Flow<'a> {
        Flow { engine }
    }

    /// Sets how a queue's ordering keys run (creating the queue if needed). A concurrency of
    /// 0 is refused.
    pub async fn set_key_policy(&self, queue: &str, policy: KeyPolicy) -> Result<()> {
        validate_name("queue", queue)?;
        if policy.concurrency == 0 || policy.concurrency > MAX_KEY_CONCURRENCY {
            return Err(Error::invalid_option(
                "key_concurrency",
                "must be from 1 to 1000000",
            ));
        }
        self.engine.flow_set_keys(queue, policy).await
    }

    /// Sets (or, with `None`, removes) a queue's rate limit (creating the queue if needed).
    pub async fn set_rate_limit(&self, queue: &str, rate: Option<RateLimit>) -> Result<()> {
        validate_name("queue", queue)?;
        if let Some(rate) = &rate {
            rate.validate()?;
        }
        self.engine.flow_set_rate(queue, rate.as_ref()).await
    }

    /// A queue's flow settings.
    pub async fn queue(&self, queue: &str) -> Result<QueueFlow> {
        validate_name("queue", queue)?;
        self.engine.flow_queue(queue).await
    }

    /// A job's ordering key, and the flow rule holding it if it is available but held.
    pub async fn job(&self, job: JobId) -> Result<JobFlow> {
        let facts = self.engine.flow_job(job).await?;
        Ok(JobFlow {
            waits: facts.wait(),
            ordering_key: facts.ordering_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> JobFlowFacts {
        JobFlowFacts {
            queue: QueueFlow::default(),
            ordering_key: Some("k".into()),
            ready: true,
            ahead: Vec::new(),
            rate_key: None,
            rate_used: 0,
            now: Utc.timestamp_millis_opt(10_500).unwrap(),
        }
    }

    #[test]
    fn a_key_at_its_limit_or_blocked_is_named() {
        let mut f = facts();
        assert_eq!(f.wait(), None);
        f.ahead = vec![(JobId(1), false)];
        assert_eq!(
            f.wait(),
            Some(FlowWait::KeyAtLimit {
                key: "k".into(),
                limit: 1
            })
        );
        f.ahead = vec![(JobId(1), true)];
        assert_eq!(
            f.wait().map(|w| w.to_string()).as_deref(),
            Some("key k blocked by job 1")
        );
        f.ready = false;
        assert_eq!(f.wait(), None);
    }

    #[test]
    fn a_spent_window_names_the_next_start() {
        let mut f = facts();
        f.queue.rate = Some(RateLimit::new(2, Duration::from_secs(1)));
        f.rate_used = 1;
        assert_eq!(f.wait(), None);
        f.rate_used = 2;
        let Some(FlowWait::RateLimited { next_start, .. }) = f.wait() else {
            panic!("expected a rate wait");
        };
        assert_eq!(next_start.timestamp_millis(), 11_000);
    }

    #[test]
    fn rate_keys_round_trip_and_bad_paths_are_refused() {
        for key in [
            RateKey::Queue,
            RateKey::OrderingKey,
            RateKey::Arg("customer.id".into()),
        ] {
            assert_eq!(RateKey::from_stored(&key.as_stored()).unwrap(), key);
        }
        assert!(validate_arg_path("a..b").is_err());
        assert!(validate_arg_path("a'b").is_err());
        assert!(RateLimit::new(0, Duration::from_secs(1))
            .validate()
            .is_err());
        assert!(RateLimit::new(1, Duration::ZERO).validate().is_err());
        assert_eq!(window_start_ms(10_500, 1000), 10_000);
    }
}
