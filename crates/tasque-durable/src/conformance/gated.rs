//! Cases: per-queue concurrency limits and blocking queues.

use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_of, claim_one, eventually, job, Backend};
use crate::{
    BlockedPolicy, BlockingParams, CancelOutcome, CompleteParams, JobId, JobState, RetryStrategy,
    SpawnOptions, Store,
};

async fn spawn_n(store: &dyn Store, queue: &str, n: i64, options: SpawnOptions) -> Vec<JobId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let spawned = store
            .spawn(job(queue, "work", i).with_options(options.clone()))
            .await
            .unwrap();
        ids.push(spawned.job_id);
    }
    ids
}

async fn blocking(store: &dyn Store, queue: &str, on_exhausted: BlockedPolicy) {
    let params = BlockingParams {
        blocking: true,
        on_exhausted,
    };
    store.set_queue_blocking(queue, params).await.unwrap();
}

async fn complete(store: &dyn Store, run: crate::RunId) {
    store
        .complete(CompleteParams::new(run, json!(null)))
        .await
        .unwrap();
}

async fn queue_info(store: &dyn Store, name: &str) -> crate::QueueInfo {
    let queues = store.list_queues().await.unwrap();
    queues.into_iter().find(|q| q.name == name).expect("queue")
}

/// A queue's limit caps its running jobs across every claimer; removing it lifts the cap.
pub async fn queue_limit_caps_running_jobs(b: &dyn Backend) {
    let store = b.open("main").await;
    let other = b.open("main").await;
    store.set_queue_limit("limited", Some(2)).await.unwrap();
    assert!(store.set_queue_limit("limited", Some(0)).await.is_err());
    spawn_n(&*store, "limited", 6, SpawnOptions::new()).await;
    let first = store.claim(claim_of("limited", 10)).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_nothing_claimable(&*other, "limited").await;
    complete(&*store, first[0].run_id).await;
    let next = other.claim(claim_of("limited", 10)).await.unwrap();
    assert_eq!(next.len(), 1);
    let info = queue_info(&*store, "limited").await;
    assert_eq!(info.concurrency_limit, Some(2));
    store.set_queue_limit("limited", None).await.unwrap();
    let rest = other.claim(claim_of("limited", 10)).await.unwrap();
    assert_eq!(rest.len(), 3);
}

/// Many concurrent claimers never exceed a queue's limit of one.
pub async fn queue_limit_holds_under_concurrent_claimers(b: &dyn Backend) {
    let store = b.open("main").await;
    store.set_queue_limit("serial", Some(1)).await.unwrap();
    spawn_n(&*store, "serial", 20, SpawnOptions::new()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = b.open("main").await;
        tasks.push(tokio::spawn(async move {
            store.claim(claim_of("serial", 5)).await.unwrap().len()
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 1, "a limit of 1 admits one running job");
}

/// A blocking queue runs one job at a time, in creation order (priority ignored).
pub async fn blocking_queue_runs_one_job_at_a_time_in_order(b: &dyn Backend) {
    let store = b.open("main").await;
    blocking(&*store, "serial", BlockedPolicy::Continue).await;
    let mut ids = Vec::new();
    for (n, priority) in [(0, 5), (1, -5), (2, 0)] {
        let options = SpawnOptions::new().with_priority(priority);
        let spawned = store
            .spawn(job("serial", "work", n).with_options(options))
            .await
            .unwrap();
        ids.push(spawned.job_id);
    }
    for id in ids {
        let claims = store.claim(claim_of("serial", 10)).await.unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].job_id, id);
        assert_nothing_claimable(&*store, "serial").await;
        complete(&*store, claims[0].run_id).await;
    }
    assert_nothing_claimable(&*store, "serial").await;
}

/// A failing head is retried with its backoff and holds the jobs behind it; other queues move.
pub async fn blocking_queue_failure_holds_the_jobs_behind_it(b: &dyn Backend) {
    let store = b.open("main").await;
    blocking(&*store, "serial", BlockedPolicy::Continue).await;
    // Long enough that the checks below always run before the retry is due, even on a
    // loaded machine.
    let retry = RetryStrategy::Fixed {
        delay: Duration::from_secs(1),
    };
    let ids = spawn_n(&*store, "serial", 2, SpawnOptions::new().with_retry(retry)).await;
    store.spawn(job("free", "work", 1)).await.unwrap();
    let head = claim_one(&*store, "serial").await;
    store.fail(head.run_id, json!("boom")).await.unwrap();
    assert_nothing_claimable(&*store, "serial").await;
    let info = queue_info(&*store, "serial").await;
    assert!(info.blocking);
    assert_eq!(info.blocked_by, Some(ids[0]));
    claim_one(&*store, "free").await;
    let again = eventually("the head is retried", || async {
        store.claim(claim_of("serial", 10)).await.unwrap().pop()
    })
    .await;
    assert_eq!((again.job_id, again.attempt), (ids[0], 2));
    complete(&*store, again.run_id).await;
    assert_eq!(claim_one(&*store, "serial").await.job_id, ids[1]);
}

/// With the `continue` policy, an exhausted head fails and the queue moves on.
pub async fn blocking_queue_gives_up_and_continues(b: &dyn Backend) {
    let store = b.open("main").await;
    blocking(&*store, "serial", BlockedPolicy::Continue).await;
    let options = SpawnOptions::new().with_retry(RetryStrategy::None);
    let ids = spawn_n(&*store, "serial", 2, options).await;
    let head = claim_one(&*store, "serial").await;
    store.fail(head.run_id, json!("boom")).await.unwrap();
    assert_eq!(claim_one(&*store, "serial").await.job_id, ids[1]);
}

/// With `stay_blocked`, an exhausted head holds the queue until an operator retries or
/// cancels it.
pub async fn blocking_queue_stays_blocked_until_an_operator_acts(b: &dyn Backend) {
    let store = b.open("main").await;
    blocking(&*store, "serial", BlockedPolicy::StayBlocked).await;
    let options = SpawnOptions::new().with_retry(RetryStrategy::None);
    let ids = spawn_n(&*store, "serial", 3, options).await;
    let head = claim_one(&*store, "serial").await;
    store.fail(head.run_id, json!("boom")).await.unwrap();
    assert_nothing_claimable(&*store, "serial").await;
    let info = queue_info(&*store, "serial").await;
    assert_eq!(info.on_exhausted, BlockedPolicy::StayBlocked);
    assert_eq!(info.blocked_by, Some(ids[0]));
    // Retry: the same job runs again first.
    store.retry(ids[0], None).await.unwrap();
    let again = claim_one(&*store, "serial").await;
    assert_eq!(again.job_id, ids[0]);
    store.fail(again.run_id, json!("boom")).await.unwrap();
    assert_nothing_claimable(&*store, "serial").await;
    // Cancel: the queue moves on.
    let outcome = store.cancel(ids[0]).await.unwrap();
    let was = CancelOutcome::Cancelled {
        was: JobState::Failed,
    };
    assert_eq!(outcome, was);
    assert_eq!(claim_one(&*store, "serial").await.job_id, ids[1]);
}

/// Turning blocking mode off lets the queue run in parallel again.
pub async fn blocking_mode_can_be_turned_off(b: &dyn Backend) {
    let store = b.open("main").await;
    blocking(&*store, "serial", BlockedPolicy::Continue).await;
    spawn_n(&*store, "serial", 3, SpawnOptions::new()).await;
    assert_eq!(store.claim(claim_of("serial", 10)).await.unwrap().len(), 1);
    store
        .set_queue_blocking("serial", BlockingParams::default())
        .await
        .unwrap();
    assert_eq!(store.claim(claim_of("serial", 10)).await.unwrap().len(), 2);
    assert!(!queue_info(&*store, "serial").await.blocking);
}
