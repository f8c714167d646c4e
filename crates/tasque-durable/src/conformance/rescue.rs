//! Cases: the rescuer (expired leases) and cancellation policies.

use std::time::Duration;

use serde_json::json;

use super::{
    assert_nothing_claimable, claim_leased, claim_of, eventually, job_with, Backend, LONG, SHORT,
};
use crate::{
    CancellationPolicy, CompleteParams, Error, JobState, LeaseStatus, RescueReport, RetryStrategy,
    SpawnOptions, Store,
};

/// Runs the rescuer until it reports something.
async fn rescue_until_busy(store: &dyn Store) -> RescueReport {
    eventually("the rescuer to find work", || async {
        let report = store.rescue_expired(100).await.unwrap();
        (report != RescueReport::default()).then_some(report)
    })
    .await
}

fn no_delay() -> RetryStrategy {
    RetryStrategy::Fixed {
        delay: Duration::from_millis(1),
    }
}

/// A lease that runs out counts as a failed attempt; the job becomes claimable again.
pub async fn expired_lease_is_rescued_as_a_failed_attempt(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_retry(no_delay()),
        ))
        .await
        .unwrap();
    let claim = claim_leased(&*store, "default", SHORT).await;
    let report = rescue_until_busy(&*store).await;
    assert_eq!(
        report,
        RescueReport {
            retried: 1,
            failed: 0,
            cancelled: 0
        }
    );
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.attempt, 2);
    assert_eq!(info.errors.len(), 1);
    assert_eq!(info.errors[0].reason, json!({"error": "lease expired"}));
    let again = eventually("the rescued job to be claimable", || async {
        store.claim(claim_of("default", 1)).await.unwrap().pop()
    })
    .await;
    assert_eq!(again.job_id, claim.job_id);
    assert_eq!(again.attempt, 2);
    assert_ne!(again.run_id, claim.run_id);
}

/// The worker whose lease was lost cannot complete, fail or extend its run any more.
pub async fn completing_after_rescue_is_rejected_as_stale(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_retry(no_delay()),
        ))
        .await
        .unwrap();
    let lost = claim_leased(&*store, "default", SHORT).await;
    rescue_until_busy(&*store).await;
    let winner = eventually("the job to be claimed again", || async {
        store.claim(claim_of("default", 1)).await.unwrap().pop()
    })
    .await;
    let err = store
        .complete(CompleteParams::new(lost.run_id, json!("late")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::StaleRun(r) if r == lost.run_id),
        "{err}"
    );
    assert!(matches!(
        store.fail(lost.run_id, json!("x")).await,
        Err(Error::StaleRun(_))
    ));
    let statuses = store
        .extend_leases(vec![lost.run_id, winner.run_id], LONG)
        .await
        .unwrap();
    assert_eq!(statuses[0], LeaseStatus::Lost);
    assert!(matches!(statuses[1], LeaseStatus::Extended(_)));
    store
        .complete(CompleteParams::new(winner.run_id, json!("ok")))
        .await
        .unwrap();
    assert_eq!(
        store.get_result(winner.job_id).await.unwrap().result,
        Some(json!("ok"))
    );
}

/// A lease that runs out on the last attempt fails the job for good.
pub async fn expired_lease_on_last_attempt_fails_the_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_max_attempts(1),
        ))
        .await
        .unwrap();
    claim_leased(&*store, "default", SHORT).await;
    let report = rescue_until_busy(&*store).await;
    assert_eq!(
        report,
        RescueReport {
            retried: 0,
            failed: 1,
            cancelled: 0
        }
    );
    let result = store.get_result(spawned.job_id).await.unwrap();
    assert_eq!(result.state, JobState::Failed);
    assert_eq!(result.failure, Some(json!({"error": "lease expired"})));
    assert_nothing_claimable(&*store, "default").await;
}

/// Live leases are never rescued.
pub async fn rescue_leaves_live_leases_alone(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store
        .spawn(job_with("default", SpawnOptions::new()))
        .await
        .unwrap();
    claim_leased(&*store, "default", LONG).await;
    assert_eq!(
        store.rescue_expired(100).await.unwrap(),
        RescueReport::default()
    );
    assert_eq!(
        store.get_job(spawned.job_id).await.unwrap().state,
        JobState::Running
    );
    assert!(store.rescue_expired(0).await.unwrap_err().is_validation());
}

/// A job running longer than its max duration is cancelled; its worker learns it.
pub async fn max_duration_policy_cancels_a_running_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let policy = CancellationPolicy {
        max_duration: Some(SHORT),
        max_delay: None,
    };
    let spawned = store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_cancellation(policy),
        ))
        .await
        .unwrap();
    let claim = claim_leased(&*store, "default", LONG).await;
    let report = rescue_until_busy(&*store).await;
    assert_eq!(report.cancelled, 1);
    let result = store.get_result(spawned.job_id).await.unwrap();
    assert_eq!(result.state, JobState::Cancelled);
    assert_eq!(
        result.failure,
        Some(json!({"error": "max duration exceeded"}))
    );
    let statuses = store.extend_leases(vec![claim.run_id], LONG).await.unwrap();
    assert_eq!(statuses, [LeaseStatus::Cancelled]);
}

/// A job not started within its max delay is cancelled and never claimed.
pub async fn max_delay_policy_cancels_an_unstarted_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let policy = CancellationPolicy {
        max_duration: None,
        max_delay: Some(SHORT),
    };
    let spawned = store
        .spawn(job_with(
            "default",
            SpawnOptions::new().with_cancellation(policy),
        ))
        .await
        .unwrap();
    let deadline =
        store.get_job(spawned.job_id).await.unwrap().run_at + chrono::Duration::milliseconds(50);
    eventually("the max delay to pass", || async {
        (store.now().await.unwrap() > deadline).then_some(())
    })
    .await;
    assert_nothing_claimable(&*store, "default").await;
    assert_eq!(store.rescue_expired(10).await.unwrap().cancelled, 1);
    let result = store.get_result(spawned.job_id).await.unwrap();
    assert_eq!(result.state, JobState::Cancelled);
    assert_eq!(result.failure, Some(json!({"error": "max delay exceeded"})));
}
