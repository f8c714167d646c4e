//! Cases: spawn, options, idempotency, batches, validation, scheduling.

use std::time::Duration;

use serde_json::json;

use super::{
    assert_nothing_claimable, claim_of, claim_one, eventually, job, job_with, Backend, SHORT,
};
use crate::validate::{MAX_DURATION, TIMESTAMP_RANGE_MICROS};
use crate::{
    CancellationPolicy, Error, JobFilter, JobState, RetryStrategy, RunId, Spawn, SpawnOptions,
    DEFAULT_MAX_ATTEMPTS,
};

/// spawn returns the job id, its first run id, attempt 1 and `created`; the job is available.
pub async fn spawn_returns_job_run_and_attempt_one(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store.spawn(job("default", "work", 1)).await.unwrap();
    assert!(spawned.created);
    assert_eq!(spawned.attempt, 1);
    assert_eq!(spawned.run_id.job, spawned.job_id);
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Available);
    assert_eq!(info.run_id, spawned.run_id);
    assert_eq!(info.params, json!({"n": 1}));
    let other = store.spawn(job("default", "work", 2)).await.unwrap();
    assert_ne!(other.job_id, spawned.job_id);
}

/// Unset options take the documented defaults.
pub async fn spawn_applies_documented_defaults(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store.spawn(job("default", "work", 1)).await.unwrap();
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(info.priority, 0);
    assert_eq!(info.retry, RetryStrategy::default());
    assert_eq!(info.timeout, None);
    assert_eq!(info.cancellation, CancellationPolicy::default());
    assert_eq!(info.headers, serde_json::Value::Null);
    assert_eq!(info.idempotency_key, None);
    assert!(info.errors.is_empty() && info.result.is_none() && info.failure.is_none());
}

/// Every option given at spawn is stored and reported.
pub async fn spawn_stores_every_option(b: &dyn Backend) {
    let store = b.open("main").await;
    let retry = RetryStrategy::Exponential {
        base: Duration::from_millis(500),
        factor: 3.0,
        cap: Some(Duration::from_secs(60)),
    };
    let policy = CancellationPolicy {
        max_duration: Some(Duration::from_secs(600)),
        max_delay: Some(Duration::from_secs(300)),
    };
    let options = SpawnOptions::new()
        .with_max_attempts(7)
        .with_retry(retry.clone())
        .with_priority(-3)
        .with_timeout(Duration::from_secs(9))
        .with_cancellation(policy)
        .with_headers(json!({"trace": "abc"}))
        .with_idempotency_key("key-1");
    let spawned = store.spawn(job_with("default", options)).await.unwrap();
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.max_attempts, 7);
    assert_eq!(info.retry, retry);
    assert_eq!(info.priority, -3);
    assert_eq!(info.timeout, Some(Duration::from_secs(9)));
    assert_eq!(info.cancellation, policy);
    assert_eq!(info.headers, json!({"trace": "abc"}));
    assert_eq!(info.idempotency_key.as_deref(), Some("key-1"));
}

/// A second spawn with the same key returns the first job, `created: false`, and adds nothing.
pub async fn idempotency_key_returns_existing_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new().with_idempotency_key("order-123");
    let first = store
        .spawn(job_with("default", options.clone()))
        .await
        .unwrap();
    let second = store
        .spawn(job("default", "other", 9).with_options(options))
        .await
        .unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(second.job_id, first.job_id);
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 1);
    assert_eq!(store.get_job(first.job_id).await.unwrap().task, "work");
}

/// The same key in two queues makes two jobs.
pub async fn idempotency_key_is_scoped_to_its_queue(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new().with_idempotency_key("k");
    let a = store.spawn(job_with("a", options.clone())).await.unwrap();
    let b2 = store.spawn(job_with("b", options)).await.unwrap();
    assert!(a.created && b2.created);
    assert_ne!(a.job_id, b2.job_id);
}

/// spawn_many inserts every job, results in input order, duplicates by key resolved in-batch.
pub async fn spawn_many_inserts_a_batch_in_order(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut batch: Vec<Spawn> = (0..50)
        .map(|n| job(if n % 2 == 0 { "even" } else { "odd" }, "work", n))
        .collect();
    batch.push(job_with(
        "even",
        SpawnOptions::new().with_idempotency_key("dup"),
    ));
    batch.push(job_with(
        "even",
        SpawnOptions::new().with_idempotency_key("dup"),
    ));
    let results = store.spawn_many(batch).await.unwrap();
    assert_eq!(results.len(), 52);
    for (n, result) in results.iter().take(50).enumerate() {
        let info = store.get_job(result.job_id).await.unwrap();
        assert_eq!(info.params, json!({"n": n}));
        assert!(result.created);
    }
    assert!(results[50].created && !results[51].created);
    assert_eq!(results[50].job_id, results[51].job_id);
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 51);
    assert!(store.spawn_many(Vec::new()).await.unwrap().is_empty());
}

/// One invalid job in a batch refuses the whole batch.
pub async fn spawn_many_with_one_invalid_job_changes_nothing(b: &dyn Backend) {
    let store = b.open("main").await;
    let batch = vec![job("default", "work", 1), job("default", "bad name", 2)];
    let err = store.spawn_many(batch).await.unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
}

/// Hostile names and out-of-range options are refused with typed errors; nothing is stored.
pub async fn bad_input_is_refused_and_changes_nothing(b: &dyn Backend) {
    let store = b.open("main").await;
    let long = "q".repeat(129);
    let hostile = [
        "",
        long.as_str(),
        "a'; DROP TABLE jobs; --",
        "quote\"d",
        "line\nbreak",
        "sp ace",
    ];
    for name in hostile {
        let err = store.spawn(job(name, "work", 1)).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "queue", .. }),
            "{name:?}: {err}"
        );
        let err = store.spawn(job("default", name, 1)).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "task", .. }),
            "{name:?}: {err}"
        );
    }
    let zero = Duration::ZERO;
    let bad_options = [
        SpawnOptions::new().with_max_attempts(0),
        SpawnOptions::new().with_delay(zero),
        SpawnOptions::new().with_timeout(zero),
        SpawnOptions::new().with_retry(RetryStrategy::Fixed { delay: zero }),
        SpawnOptions::new().with_retry(RetryStrategy::Exponential {
            base: Duration::from_secs(1),
            factor: 0.9,
            cap: None,
        }),
        SpawnOptions::new().with_cancellation(CancellationPolicy {
            max_duration: None,
            max_delay: Some(zero),
        }),
        SpawnOptions::new().with_headers(json!("not an object")),
        // Issue 12: times every engine can hold, durations that keep the clock in range.
        SpawnOptions::new().with_run_at(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        SpawnOptions::new().with_run_at(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        SpawnOptions::new().with_run_at(past_the_range()),
        SpawnOptions::new().with_delay(Duration::from_millis(u64::MAX)),
        SpawnOptions::new().with_delay(MAX_DURATION + Duration::from_millis(1)),
        SpawnOptions::new().with_timeout(Duration::MAX),
        SpawnOptions::new().with_max_attempts(u32::MAX),
        SpawnOptions::new().with_retry(RetryStrategy::Exponential {
            base: Duration::from_secs(1),
            factor: 2.0,
            cap: Some(Duration::MAX),
        }),
        SpawnOptions::new().with_cancellation(CancellationPolicy {
            max_duration: Some(Duration::MAX),
            max_delay: None,
        }),
    ];
    for options in bad_options {
        let err = store
            .spawn(job_with("default", options.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidOption { .. }),
            "{options:?}: {err}"
        );
    }
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    assert!(
        store.list_queues().await.unwrap().is_empty(),
        "no queue was created"
    );
}

/// The first instant after the timestamp range.
fn past_the_range() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(*TIMESTAMP_RANGE_MICROS.end() + 1).unwrap_or_default()
}

/// The ends of the timestamp range, and the longest delays from them, are stored and read
/// back (issue 12: every engine and chrono hold the whole range).
pub async fn ends_of_the_timestamp_range_are_stored_and_read_back(b: &dyn Backend) {
    let store = b.open("main").await;
    let first = chrono::DateTime::from_timestamp_micros(*TIMESTAMP_RANGE_MICROS.start())
        .unwrap_or_default();
    let last = past_the_range() - chrono::Duration::microseconds(1);
    let longest = CancellationPolicy {
        max_duration: Some(MAX_DURATION),
        max_delay: Some(MAX_DURATION),
    };
    for at in [first, last] {
        let options = SpawnOptions::new()
            .with_run_at(at)
            .with_timeout(MAX_DURATION)
            .with_cancellation(longest);
        let spawned = store.spawn(job_with("ends", options)).await.unwrap();
        let stored = store.get_job(spawned.job_id).await.unwrap();
        let off = (stored.run_at - at).num_milliseconds().abs();
        assert!(off <= 1, "{at} came back as {}", stored.run_at);
        assert_eq!(stored.timeout, Some(MAX_DURATION));
        assert_eq!(stored.cancellation, longest);
    }
    let delayed = store
        .spawn(job_with(
            "ends",
            SpawnOptions::new().with_delay(MAX_DURATION),
        ))
        .await
        .unwrap();
    let stored = store.get_job(delayed.job_id).await.unwrap();
    assert_eq!(stored.state, JobState::Scheduled);
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 3);
}

/// Params larger than the configured limit (default 1 MiB) are refused.
pub async fn payload_over_the_limit_is_refused(b: &dyn Backend) {
    let store = b.open("main").await;
    let huge = Spawn::new("default", "work", json!("x".repeat(2 * 1024 * 1024)));
    let err = store.spawn(huge).await.unwrap_err();
    assert!(
        matches!(err, Error::PayloadTooLarge { what: "params", .. }),
        "{err}"
    );
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
}

/// Spawning into a new queue creates it.
pub async fn queues_are_created_on_first_use(b: &dyn Backend) {
    let store = b.open("main").await;
    assert!(store.list_queues().await.unwrap().is_empty());
    store.spawn(job("mail", "send", 1)).await.unwrap();
    store
        .spawn_many(vec![job("billing", "charge", 1)])
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["billing", "mail"]);
}

/// A delayed job is scheduled and no claim takes it before its time.
pub async fn delayed_job_is_scheduled_and_not_claimable_early(b: &dyn Backend) {
    let store = b.open("main").await;
    let at = store.now().await.unwrap() + chrono::Duration::hours(1);
    let a = store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_delay(Duration::from_secs(3600)),
        ))
        .await
        .unwrap();
    let c = store
        .spawn(job_with("default", SpawnOptions::new().with_run_at(at)))
        .await
        .unwrap();
    for id in [a.job_id, c.job_id] {
        assert_eq!(store.get_job(id).await.unwrap().state, JobState::Scheduled);
    }
    assert_nothing_claimable(&*store, "default").await;
}

/// A job delayed a little becomes claimable once its time comes.
pub async fn scheduled_job_becomes_claimable_when_due(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store
        .spawn(job_with("default", SpawnOptions::new().with_delay(SHORT)))
        .await
        .unwrap();
    let claim = eventually("the delayed job to become claimable", || async {
        store.claim(claim_of("default", 1)).await.unwrap().pop()
    })
    .await;
    assert_eq!(claim.job_id, spawned.job_id);
    assert_eq!(claim.run_id, RunId::new(spawned.job_id, spawned.run_id.seq));
}

/// A run time in the past means now.
pub async fn run_at_in_the_past_is_available_at_once(b: &dyn Backend) {
    let store = b.open("main").await;
    let past = store.now().await.unwrap() - chrono::Duration::hours(1);
    let spawned = store
        .spawn(job_with("default", SpawnOptions::new().with_run_at(past)))
        .await
        .unwrap();
    assert_eq!(
        store.get_job(spawned.job_id).await.unwrap().state,
        JobState::Available
    );
    assert_eq!(claim_one(&*store, "default").await.job_id, spawned.job_id);
}
