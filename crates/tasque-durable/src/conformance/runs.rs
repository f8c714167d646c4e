//! Cases: complete, fail, retry timing, leases, reschedule, release, stale owners.

use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_one, eventually, job, job_with, Backend, LONG};
use crate::{
    CompleteParams, Error, FailOutcome, JobId, JobState, LeaseStatus, RetryStrategy, RunAt, RunId,
    RunWrite, SpawnOptions, Store,
};

fn fixed(delay: Duration) -> RetryStrategy {
    RetryStrategy::Fixed { delay }
}

async fn spawn_and_claim(store: &dyn Store, options: SpawnOptions) -> (JobId, RunId) {
    let spawned = store.spawn(job_with("default", options)).await.unwrap();
    let claim = claim_one(store, "default").await;
    assert_eq!(claim.job_id, spawned.job_id);
    (claim.job_id, claim.run_id)
}

/// complete stores the result and finishes the job.
pub async fn complete_stores_the_result(b: &dyn Backend) {
    let store = b.open("main").await;
    let (id, run) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    store
        .complete(CompleteParams::new(run, json!({"ok": true})))
        .await
        .unwrap();
    let info = store.get_job(id).await.unwrap();
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.result, Some(json!({"ok": true})));
    assert!(info.finished_at.is_some() && info.lease_expires_at.is_none());
    assert_nothing_claimable(&*store, "default").await;
}

/// With delete on success, the completed job is gone.
pub async fn complete_with_delete_on_success_removes_the_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let (id, run) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    let params = CompleteParams {
        delete_on_success: true,
        ..CompleteParams::new(run, json!(1))
    };
    store.complete(params).await.unwrap();
    assert!(matches!(store.get_job(id).await, Err(Error::NotFound(_))));
}

/// complete_many applies the owning runs and reports stale and cancelled ones, in input order.
pub async fn complete_many_reports_each_run(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn_many((0..5).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let claims = store.claim(super::claim_of("default", 5)).await.unwrap();
    store.cancel(claims[1].job_id).await.unwrap();
    store.release(vec![claims[2].run_id]).await.unwrap();
    let items = vec![
        CompleteParams::new(claims[0].run_id, json!("a")),
        CompleteParams::new(claims[1].run_id, json!("b")),
        CompleteParams::new(claims[2].run_id, json!("c")),
        CompleteParams {
            delete_on_success: true,
            ..CompleteParams::new(claims[3].run_id, json!("d"))
        },
        CompleteParams::new(claims[4].run_id, json!({"e": [1, 2]})),
    ];
    let outcomes = store.complete_many(items).await.unwrap();
    use RunWrite::*;
    assert_eq!(outcomes, [Applied, Cancelled, Stale, Applied, Applied]);
    assert_eq!(
        store.get_result(claims[0].job_id).await.unwrap().result,
        Some(json!("a"))
    );
    assert_eq!(
        store.get_job(claims[1].job_id).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        store.get_job(claims[2].job_id).await.unwrap().state,
        JobState::Available
    );
    assert!(matches!(
        store.get_job(claims[3].job_id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store.get_result(claims[4].job_id).await.unwrap().result,
        Some(json!({"e": [1, 2]}))
    );
    assert!(store.complete_many(Vec::new()).await.unwrap().is_empty());
}

/// A run listed twice in one `complete_many` is applied once, by its first occurrence (whose
/// result is kept); every later occurrence is `Stale`, exactly as a second `complete` of a
/// finished run would be. A batch is the same as its items completed one after another.
pub async fn complete_many_with_a_run_listed_twice_applies_the_first_and_stales_the_rest(
    b: &dyn Backend,
) {
    let store = b.open("main").await;
    store
        .spawn_many((0..3).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let claims = store.claim(super::claim_of("default", 3)).await.unwrap();
    store.cancel(claims[2].job_id).await.unwrap();
    let items = vec![
        CompleteParams::new(claims[0].run_id, json!("first")),
        CompleteParams::new(claims[1].run_id, json!("other")),
        CompleteParams {
            delete_on_success: true,
            ..CompleteParams::new(claims[0].run_id, json!("second"))
        },
        CompleteParams::new(claims[2].run_id, json!("cancelled")),
        CompleteParams::new(claims[0].run_id, json!("third")),
        CompleteParams::new(claims[2].run_id, json!("cancelled again")),
    ];
    let outcomes = store.complete_many(items).await.unwrap();
    use RunWrite::*;
    assert_eq!(
        outcomes,
        [Applied, Applied, Stale, Cancelled, Stale, Cancelled]
    );
    let first = store.get_result(claims[0].job_id).await.unwrap();
    assert_eq!(
        (first.state, first.result),
        (JobState::Completed, Some(json!("first"))),
        "the first occurrence wins; a later delete_on_success does not apply"
    );
    assert_eq!(
        store.get_job(claims[2].job_id).await.unwrap().state,
        JobState::Cancelled
    );
}

/// A finished run cannot complete again.
pub async fn completing_twice_is_stale(b: &dyn Backend) {
    let store = b.open("main").await;
    let (_, run) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    store
        .complete(CompleteParams::new(run, json!(1)))
        .await
        .unwrap();
    let err = store
        .complete(CompleteParams::new(run, json!(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleRun(r) if r == run), "{err}");
    assert!(matches!(
        store.fail(run, json!("late")).await,
        Err(Error::StaleRun(_))
    ));
}

/// A failure with attempts left schedules the next attempt after the strategy's delay, as a new
/// run, and records the error.
pub async fn fail_schedules_a_retry_with_the_strategy_delay(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new()
        .with_max_attempts(3)
        .with_retry(fixed(Duration::from_secs(3600)));
    let (id, run) = spawn_and_claim(&*store, options).await;
    let before = store.now().await.unwrap();
    let outcome = store.fail(run, json!({"error": "boom"})).await.unwrap();
    let FailOutcome::Retrying { attempt, at } = outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert_eq!(attempt, 2);
    assert!(
        at >= before + chrono::Duration::minutes(59)
            && at <= before + chrono::Duration::minutes(61)
    );
    let info = store.get_job(id).await.unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.attempt, 2);
    assert_ne!(info.run_id, run);
    assert_eq!(info.errors.len(), 1);
    assert_eq!((info.errors[0].attempt, info.errors[0].run), (1, run.seq));
    assert_eq!(info.errors[0].reason, json!({"error": "boom"}));
    assert_nothing_claimable(&*store, "default").await;
}

/// A failure on the last attempt fails the job for good with the reason.
pub async fn fail_on_the_last_attempt_fails_for_good(b: &dyn Backend) {
    let store = b.open("main").await;
    let (id, run) = spawn_and_claim(&*store, SpawnOptions::new().with_max_attempts(1)).await;
    assert_eq!(
        store.fail(run, json!("fatal")).await.unwrap(),
        FailOutcome::Failed
    );
    let info = store.get_job(id).await.unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.failure, Some(json!("fatal")));
    assert_eq!(info.errors.len(), 1);
    assert!(info.finished_at.is_some());
}

/// The `None` strategy never retries, whatever max_attempts says.
pub async fn fail_without_retry_strategy_fails_at_once(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new()
        .with_max_attempts(10)
        .with_retry(RetryStrategy::None);
    let (id, run) = spawn_and_claim(&*store, options).await;
    assert_eq!(
        store.fail(run, json!("no")).await.unwrap(),
        FailOutcome::Failed
    );
    assert_eq!(store.get_job(id).await.unwrap().state, JobState::Failed);
}

/// fail_with_retry_at schedules the next attempt at the given time, but respects max attempts.
pub async fn fail_with_retry_at_forces_the_time(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new()
        .with_max_attempts(2)
        .with_retry(RetryStrategy::None);
    let (id, run) = spawn_and_claim(&*store, options).await;
    let at = store.now().await.unwrap() + chrono::Duration::hours(2);
    let outcome = store
        .fail_with_retry_at(run, json!("later"), RunAt::At(at))
        .await
        .unwrap();
    let FailOutcome::Retrying {
        attempt: 2,
        at: got,
    } = outcome
    else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!((got - at).num_milliseconds().abs() <= 1);
    assert_eq!(store.get_job(id).await.unwrap().state, JobState::Scheduled);
    // On the last attempt a forced retry time does not add attempts: the job fails.
    let store2 = b.open("other").await;
    let (id2, run2) = spawn_and_claim(&*store2, SpawnOptions::new().with_max_attempts(1)).await;
    let outcome = store2
        .fail_with_retry_at(run2, json!("x"), RunAt::Now)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Failed);
    assert_eq!(store2.get_job(id2).await.unwrap().state, JobState::Failed);
}

/// After a short backoff the job is claimable again, as the next attempt with a new run id.
pub async fn retry_after_backoff_is_claimable_as_next_attempt(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new().with_retry(fixed(Duration::from_millis(30)));
    let (id, run) = spawn_and_claim(&*store, options).await;
    store.fail(run, json!("flaky")).await.unwrap();
    let claim = eventually("the retry to become claimable", || async {
        store
            .claim(super::claim_of("default", 1))
            .await
            .unwrap()
            .pop()
    })
    .await;
    assert_eq!(claim.job_id, id);
    assert_eq!(claim.attempt, 2);
    assert!(claim.run_id.seq > run.seq);
}

/// extend_lease moves the expiry forward for the owning run.
pub async fn extend_lease_pushes_the_expiry(b: &dyn Backend) {
    let store = b.open("main").await;
    let claim = {
        store.spawn(job("default", "work", 1)).await.unwrap();
        super::claim_leased(&*store, "default", Duration::from_secs(10)).await
    };
    let until = store.extend_lease(claim.run_id, LONG).await.unwrap();
    assert!(until > claim.lease_expires_at + chrono::Duration::minutes(30));
    let info = store.get_job(claim.job_id).await.unwrap();
    assert_eq!(info.lease_expires_at, Some(until));
    assert!(store
        .extend_lease(claim.run_id, Duration::ZERO)
        .await
        .unwrap_err()
        .is_validation());
}

/// The heartbeat batch tells each run to go on, or that its job was cancelled or its lease lost.
pub async fn extend_leases_reports_extended_cancelled_and_lost(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn_many((0..3).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let claims = store.claim(super::claim_of("default", 3)).await.unwrap();
    store.cancel(claims[1].job_id).await.unwrap();
    store.release(vec![claims[2].run_id]).await.unwrap();
    let runs: Vec<RunId> = claims.iter().map(|c| c.run_id).collect();
    let statuses = store.extend_leases(runs, LONG).await.unwrap();
    assert!(
        matches!(statuses[0], LeaseStatus::Extended(_)),
        "{statuses:?}"
    );
    assert_eq!(statuses[1..], [LeaseStatus::Cancelled, LeaseStatus::Lost]);
    let err = store
        .extend_lease(claims[1].run_id, LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RunCancelled(_)), "{err}");
    let err = store
        .extend_lease(claims[2].run_id, LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleRun(_)), "{err}");
}

/// schedule_run gives the job back until a time, same attempt, new run.
pub async fn schedule_run_does_not_count_an_attempt(b: &dyn Backend) {
    let store = b.open("main").await;
    let (id, run) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    store
        .schedule_run(run, RunAt::After(Duration::from_secs(3600)))
        .await
        .unwrap();
    let info = store.get_job(id).await.unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.attempt, 1);
    assert!(info.errors.is_empty());
    assert_nothing_claimable(&*store, "default").await;
    let err = store
        .complete(CompleteParams::new(run, json!(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleRun(_)), "{err}");
    // Snoozing to a short delay makes it claimable again, still attempt 1.
    let (id2, run2) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    store
        .schedule_run(run2, RunAt::After(Duration::from_millis(20)))
        .await
        .unwrap();
    let claim = eventually("the snoozed job", || async {
        store
            .claim(super::claim_of("default", 1))
            .await
            .unwrap()
            .pop()
    })
    .await;
    assert_eq!((claim.job_id, claim.attempt), (id2, 1));
}

/// release makes runs claimable at once without counting an attempt.
pub async fn release_makes_runs_claimable_at_once_without_counting(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn_many((0..3).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let claims = store.claim(super::claim_of("default", 3)).await.unwrap();
    let runs: Vec<RunId> = claims.iter().map(|c| c.run_id).collect();
    assert_eq!(store.release(runs.clone()).await.unwrap(), 3);
    assert_eq!(
        store.release(runs.clone()).await.unwrap(),
        0,
        "stale runs are skipped"
    );
    let again = store.claim(super::claim_of("default", 3)).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(again
        .iter()
        .all(|c| c.attempt == 1 && !runs.contains(&c.run_id)));
    assert_eq!(store.release(Vec::new()).await.unwrap(), 0);
}

/// Every write from a run that lost its job is rejected and changes nothing.
pub async fn stale_run_writes_are_rejected(b: &dyn Backend) {
    let store = b.open("main").await;
    let (id, old) = spawn_and_claim(&*store, SpawnOptions::new()).await;
    store.release(vec![old]).await.unwrap();
    let current = claim_one(&*store, "default").await.run_id;
    let stale = |e: Error| assert!(matches!(e, Error::StaleRun(r) if r == old), "{e}");
    stale(
        store
            .complete(CompleteParams::new(old, json!(1)))
            .await
            .unwrap_err(),
    );
    stale(store.fail(old, json!("x")).await.unwrap_err());
    stale(
        store
            .fail_with_retry_at(old, json!("x"), RunAt::Now)
            .await
            .unwrap_err(),
    );
    stale(store.extend_lease(old, LONG).await.unwrap_err());
    stale(store.schedule_run(old, RunAt::Now).await.unwrap_err());
    let info = store.get_job(id).await.unwrap();
    assert_eq!((info.state, info.run_id), (JobState::Running, current));
    assert!(info.errors.is_empty() && info.result.is_none());
}
