//! Cases: cancel and retry.

use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_one, job, job_with, Backend, LONG};
use crate::{
    CancelOutcome, CompleteParams, Error, JobId, JobState, LeaseStatus, RetryStrategy, RunAt,
    SpawnOptions,
};

/// A cancelled pending job never runs.
pub async fn cancel_pending_job_never_runs(b: &dyn Backend) {
    let store = b.open("main").await;
    let now = store.spawn(job("default", "work", 1)).await.unwrap();
    let later = store
        .spawn(job_with("default", SpawnOptions::new().with_delay(LONG)))
        .await
        .unwrap();
    assert_eq!(
        store.cancel(now.job_id).await.unwrap(),
        CancelOutcome::Cancelled {
            was: JobState::Available
        }
    );
    assert_eq!(
        store.cancel(later.job_id).await.unwrap(),
        CancelOutcome::Cancelled {
            was: JobState::Scheduled
        }
    );
    assert_nothing_claimable(&*store, "default").await;
    let result = store.get_result(now.job_id).await.unwrap();
    assert_eq!(result.state, JobState::Cancelled);
    assert!(result.failure.is_some());
}

/// Cancelling a running job: the heartbeat reports it and the worker's outcome is rejected.
pub async fn cancel_running_job_signals_the_worker(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    assert_eq!(
        store.cancel(claim.job_id).await.unwrap(),
        CancelOutcome::Cancelled {
            was: JobState::Running
        }
    );
    assert_eq!(
        store.extend_leases(vec![claim.run_id], LONG).await.unwrap(),
        [LeaseStatus::Cancelled]
    );
    let err = store
        .complete(CompleteParams::new(claim.run_id, json!(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RunCancelled(r) if r == claim.run_id),
        "{err}"
    );
    let err = store.fail(claim.run_id, json!("x")).await.unwrap_err();
    assert!(matches!(err, Error::RunCancelled(_)), "{err}");
    assert_eq!(
        store.get_job(claim.job_id).await.unwrap().state,
        JobState::Cancelled
    );
}

/// Cancelling a finished job changes nothing and says so.
pub async fn cancel_finished_job_is_a_reported_noop(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    store
        .complete(CompleteParams::new(claim.run_id, json!("done")))
        .await
        .unwrap();
    assert_eq!(
        store.cancel(claim.job_id).await.unwrap(),
        CancelOutcome::AlreadyFinished {
            state: JobState::Completed
        }
    );
    let result = store.get_result(claim.job_id).await.unwrap();
    assert_eq!(
        (result.state, result.result),
        (JobState::Completed, Some(json!("done")))
    );
    // Cancelling twice is idempotent too.
    let other = store.spawn(job("default", "work", 2)).await.unwrap();
    store.cancel(other.job_id).await.unwrap();
    assert_eq!(
        store.cancel(other.job_id).await.unwrap(),
        CancelOutcome::AlreadyFinished {
            state: JobState::Cancelled
        }
    );
}

/// Cancelling a job that does not exist is `NotFound`.
pub async fn cancel_unknown_job_is_not_found(b: &dyn Backend) {
    let store = b.open("main").await;
    assert!(matches!(
        store.cancel(JobId(987_654)).await,
        Err(Error::NotFound(JobId(987_654)))
    ));
}

/// A failed job retried runs again as attempt 1 of a new run.
pub async fn retry_failed_job_runs_again_from_attempt_one(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new().with_max_attempts(1);
    let spawned = store.spawn(job_with("default", options)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    store.fail(claim.run_id, json!("boom")).await.unwrap();
    let retried = store.retry(spawned.job_id, None).await.unwrap();
    assert_eq!(
        (retried.job_id, retried.attempt, retried.created),
        (spawned.job_id, 1, false)
    );
    assert!(retried.run_id.seq > claim.run_id.seq);
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Available);
    assert!(info.failure.is_none() && info.finished_at.is_none());
    assert_eq!(info.errors.len(), 1, "the error history is kept");
    let again = claim_one(&*store, "default").await;
    assert_eq!(
        (again.run_id, again.attempt, again.max_attempts),
        (retried.run_id, 1, 1)
    );
}

/// A cancelled job can be retried with new options, which replace only the fields they set.
pub async fn retry_cancelled_job_with_new_options(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new()
        .with_max_attempts(2)
        .with_priority(4)
        .with_headers(json!({"a": 1}));
    let spawned = store.spawn(job_with("default", options)).await.unwrap();
    store.cancel(spawned.job_id).await.unwrap();
    let new = SpawnOptions::new()
        .with_max_attempts(9)
        .with_retry(RetryStrategy::None)
        .with_delay(Duration::from_secs(3600));
    store.retry(spawned.job_id, Some(new)).await.unwrap();
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.max_attempts, 9);
    assert_eq!(info.retry, RetryStrategy::None);
    assert_eq!(info.priority, 4);
    assert_eq!(info.headers, json!({"a": 1}));
    let bad = SpawnOptions::new().with_max_attempts(0);
    store.cancel(spawned.job_id).await.unwrap();
    assert!(store
        .retry(spawned.job_id, Some(bad))
        .await
        .unwrap_err()
        .is_validation());
    assert_eq!(
        store.get_job(spawned.job_id).await.unwrap().state,
        JobState::Cancelled
    );
}

/// Pending, running and completed jobs cannot be retried; unknown ones are not found.
pub async fn retry_refuses_jobs_that_are_not_failed_or_cancelled(b: &dyn Backend) {
    let store = b.open("main").await;
    let pending = store.spawn(job("default", "work", 1)).await.unwrap();
    let err = store.retry(pending.job_id, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidState {
                state: JobState::Available,
                ..
            }
        ),
        "{err}"
    );
    let claim = claim_one(&*store, "default").await;
    let err = store.retry(claim.job_id, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidState {
                state: JobState::Running,
                ..
            }
        ),
        "{err}"
    );
    store
        .complete(CompleteParams::new(claim.run_id, json!(1)))
        .await
        .unwrap();
    let err = store.retry(claim.job_id, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidState {
                state: JobState::Completed,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        store.retry(JobId(424_242), None).await,
        Err(Error::NotFound(_))
    ));
    let at = RunAt::Now;
    assert!(store.schedule_run(claim.run_id, at).await.is_err());
}

/// A refused operator write (retrying a job that is waiting to run) leaves the job claimable at
/// once: whatever the refused write locked is released before it returns, so a claim right
/// after it, which skips locked jobs, still finds the job. Repeated to catch a late release.
pub async fn refused_retry_leaves_the_job_claimable_at_once(b: &dyn Backend) {
    let store = b.open("main").await;
    for n in 0..25 {
        let pending = store.spawn(job("default", "work", n)).await.unwrap();
        let err = store.retry(pending.job_id, None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidState { .. }), "{err}");
        let claim = claim_one(&*store, "default").await;
        assert_eq!(claim.job_id, pending.job_id);
        store
            .complete(CompleteParams::new(claim.run_id, json!(n)))
            .await
            .unwrap();
    }
}

/// Cancels racing each other and racing workers that claim, fail and complete, while an
/// operator retries failed jobs: `cancel` reports `AlreadyFinished` only with a finished state,
/// at most one cancel of a job reports `Cancelled` per time it was unfinished, and every job
/// ends finished.
pub async fn cancel_under_contention_never_reports_an_unfinished_job_as_finished(b: &dyn Backend) {
    const JOBS: i64 = 12;
    let store = b.open("main").await;
    let options = SpawnOptions::new().with_max_attempts(1);
    let spawned = store
        .spawn_many(
            (0..JOBS)
                .map(|n| job("default", "work", n).with_options(options.clone()))
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<JobId> = spawned.iter().map(|s| s.job_id).collect();
    let worker = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..200u32 {
                let claims = store.claim(super::claim_of("default", 4)).await.unwrap();
                for (i, claim) in claims.into_iter().enumerate() {
                    // Half fail (and may be retried below), half complete; a cancelled or
                    // stale run's write is rejected, which is fine here.
                    if (round as usize + i) % 2 == 0 {
                        let _ = store.fail(claim.run_id, json!("boom")).await;
                    } else {
                        let _ = store
                            .complete(CompleteParams::new(claim.run_id, json!(1)))
                            .await;
                    }
                }
            }
        })
    };
    let retrier = {
        let (store, ids) = (store.clone(), ids.clone());
        tokio::spawn(async move {
            for _ in 0..20 {
                for id in &ids {
                    // Refused (InvalidState) unless the job is failed or cancelled.
                    let _ = store.retry(*id, None).await;
                }
            }
        })
    };
    let cancellers: Vec<_> = (0..4)
        .map(|_| {
            let (store, ids) = (store.clone(), ids.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    for id in &ids {
                        seen.push((*id, store.cancel(*id).await.unwrap()));
                    }
                }
                seen
            })
        })
        .collect();
    for canceller in cancellers {
        for (id, outcome) in canceller.await.unwrap() {
            match outcome {
                CancelOutcome::AlreadyFinished { state } => assert!(
                    state.is_finished(),
                    "cancel of job {id} reported AlreadyFinished with the unfinished state {state}"
                ),
                CancelOutcome::Cancelled { was } => assert!(
                    !was.is_finished() || was == JobState::Failed,
                    "job {id} was cancelled from the finished state {was}"
                ),
            }
        }
    }
    worker.await.unwrap();
    retrier.await.unwrap();
    for id in &ids {
        // Whatever is left unfinished by the race is cancelled now, once, and then finished.
        if let CancelOutcome::AlreadyFinished { state } = store.cancel(*id).await.unwrap() {
            assert!(state.is_finished(), "job {id}: {state}");
        }
        assert_eq!(
            store.cancel(*id).await.unwrap(),
            CancelOutcome::AlreadyFinished {
                state: store.get_result(*id).await.unwrap().state
            }
        );
        assert!(store.get_result(*id).await.unwrap().state.is_finished());
    }
}
