//! Cases: results, the inspector (count, scan, delete, purge), the cleaner, queues, migrations.

use std::time::Duration;

use serde_json::json;

use super::{claim_of, claim_one, eventually, job, Backend};
use crate::{CompleteParams, Error, JobFilter, JobId, JobState, PageRequest, Store};

/// Spawns `n` jobs of `task` in `queue`, returning their ids.
async fn spawn_n(store: &dyn Store, queue: &str, task: &str, n: i64) -> Vec<JobId> {
    let batch = (0..n).map(|i| job(queue, task, i)).collect();
    store
        .spawn_many(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.job_id)
        .collect()
}

/// Claims and completes every ready job of `queue`.
async fn complete_all(store: &dyn Store, queue: &str) {
    let claims = store.claim(claim_of(queue, 1000)).await.unwrap();
    let items = claims
        .iter()
        .map(|c| CompleteParams::new(c.run_id, json!("ok")))
        .collect();
    store.complete_many(items).await.unwrap();
}

/// get_result reports state, result and failure; unknown jobs are not found.
pub async fn get_result_reports_state_result_and_failure(b: &dyn Backend) {
    let store = b.open("main").await;
    let ids = spawn_n(&*store, "default", "work", 2).await;
    let pending = store.get_result(ids[0]).await.unwrap();
    assert_eq!(
        (pending.state, pending.result, pending.failure),
        (JobState::Available, None, None)
    );
    let first = claim_one(&*store, "default").await;
    store
        .complete(CompleteParams::new(first.run_id, json!({"sum": 3})))
        .await
        .unwrap();
    let done = store.get_result(first.job_id).await.unwrap();
    assert_eq!(
        (done.state, done.result),
        (JobState::Completed, Some(json!({"sum": 3})))
    );
    store.cancel(ids[1]).await.unwrap();
    assert_eq!(
        store.get_result(ids[1]).await.unwrap().state,
        JobState::Cancelled
    );
    assert!(matches!(
        store.get_result(JobId(999_999)).await,
        Err(Error::NotFound(_))
    ));
}

/// count combines states, tasks and queues.
pub async fn count_filters_by_state_task_and_queue(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "a", "x", 3).await;
    spawn_n(&*store, "a", "y", 2).await;
    spawn_n(&*store, "b", "x", 4).await;
    store.claim(claim_of("b", 1)).await.unwrap();
    let count = |f: JobFilter| {
        let store = store.clone();
        async move { store.count(f).await.unwrap() }
    };
    assert_eq!(count(JobFilter::all()).await, 9);
    assert_eq!(count(JobFilter::all().queues(["a"])).await, 5);
    assert_eq!(count(JobFilter::all().tasks(["x"])).await, 7);
    assert_eq!(count(JobFilter::all().tasks(["x"]).queues(["a"])).await, 3);
    assert_eq!(count(JobFilter::all().states([JobState::Running])).await, 1);
    assert_eq!(
        count(JobFilter::all().states([JobState::Available, JobState::Running])).await,
        9
    );
    assert_eq!(
        count(JobFilter::all().states([JobState::Completed])).await,
        0
    );
    assert!(store
        .count(JobFilter::all().queues(["bad'"]))
        .await
        .unwrap_err()
        .is_validation());
}

/// scan pages by cursor through every matching job exactly once, in id order.
pub async fn scan_pages_by_cursor(b: &dyn Backend) {
    let store = b.open("main").await;
    let ids = spawn_n(&*store, "default", "work", 25).await;
    spawn_n(&*store, "other", "work", 5).await;
    let filter = JobFilter::all().queues(["default"]);
    let mut seen = Vec::new();
    let mut page = store
        .scan(filter.clone(), PageRequest::first(10))
        .await
        .unwrap();
    loop {
        assert!(page.jobs.len() <= 10);
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(cursor) => {
                page = store
                    .scan(filter.clone(), PageRequest::after(cursor, 10))
                    .await
                    .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

/// scan pages by offset.
pub async fn scan_pages_by_offset(b: &dyn Backend) {
    let store = b.open("main").await;
    let ids = spawn_n(&*store, "default", "work", 7).await;
    let page = store
        .scan(JobFilter::all(), PageRequest::offset(5, 10))
        .await
        .unwrap();
    assert_eq!(page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), ids[5..]);
    assert_eq!(page.next, None);
    let page = store
        .scan(JobFilter::all(), PageRequest::offset(2, 3))
        .await
        .unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        ids[2..5]
    );
    assert_eq!(page.next, Some(ids[4]));
    assert!(store
        .scan(JobFilter::all(), PageRequest::first(0))
        .await
        .unwrap_err()
        .is_validation());
}

/// A safe delete refuses running jobs.
pub async fn delete_refuses_running_jobs(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "default", "work", 1).await;
    let claim = claim_one(&*store, "default").await;
    let err = store.delete(claim.job_id).await.unwrap_err();
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
    assert_eq!(
        store.get_job(claim.job_id).await.unwrap().state,
        JobState::Running
    );
}

/// Pending and finished jobs can be deleted; unknown jobs are not found.
pub async fn delete_removes_finished_jobs(b: &dyn Backend) {
    let store = b.open("main").await;
    let ids = spawn_n(&*store, "default", "work", 2).await;
    store.delete(ids[0]).await.unwrap();
    complete_all(&*store, "default").await;
    store.delete(ids[1]).await.unwrap();
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 0);
    assert!(matches!(
        store.delete(ids[1]).await,
        Err(Error::NotFound(_))
    ));
}

/// purge deletes every matching job except running ones.
pub async fn purge_deletes_matching_jobs_but_never_running_ones(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "a", "work", 4).await;
    spawn_n(&*store, "b", "work", 3).await;
    let running = claim_one(&*store, "a").await;
    assert_eq!(
        store.purge(JobFilter::all().queues(["a"])).await.unwrap(),
        3
    );
    assert_eq!(
        store.count(JobFilter::all().queues(["a"])).await.unwrap(),
        1
    );
    assert_eq!(
        store.get_job(running.job_id).await.unwrap().state,
        JobState::Running
    );
    assert_eq!(
        store
            .purge(JobFilter::all().states([JobState::Running]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count(JobFilter::all().queues(["b"])).await.unwrap(),
        3
    );
}

/// The cleaner deletes finished jobs older than the age, at most a batch per call.
pub async fn cleaner_deletes_old_finished_jobs_in_batches(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "default", "work", 7).await;
    complete_all(&*store, "default").await;
    let pending = spawn_n(&*store, "default", "work", 2).await;
    assert_eq!(
        store.clean(Duration::from_secs(3600), 100).await.unwrap(),
        0,
        "too young"
    );
    let old = Duration::from_millis(20);
    let first = eventually("finished jobs to age", || async {
        let n = store.clean(old, 3).await.unwrap();
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(first, 3);
    assert_eq!(store.clean(old, 3).await.unwrap(), 3);
    assert_eq!(store.clean(old, 3).await.unwrap(), 1);
    assert_eq!(store.clean(old, 3).await.unwrap(), 0);
    let left: Vec<JobId> = store
        .scan(JobFilter::all(), PageRequest::first(10))
        .await
        .unwrap()
        .jobs
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, pending, "unfinished jobs are never cleaned");
    assert!(store.clean(old, 0).await.unwrap_err().is_validation());
}

/// list_queues reports each queue with its counts by state.
pub async fn list_queues_reports_counts_by_state(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "a", "work", 3).await;
    spawn_n(&*store, "b", "work", 1).await;
    let claim = claim_one(&*store, "a").await;
    store
        .complete(CompleteParams::new(claim.run_id, json!(1)))
        .await
        .unwrap();
    claim_one(&*store, "a").await;
    let queues = store.list_queues().await.unwrap();
    assert_eq!(queues.len(), 2);
    let a = &queues[0];
    assert_eq!(a.name, "a");
    assert_eq!(
        (a.counts.available, a.counts.running, a.counts.completed),
        (1, 1, 1)
    );
    assert_eq!(a.counts.total(), 3);
    assert!(!a.paused && !a.blocking && a.concurrency_limit.is_none());
    assert_eq!(queues[1].counts.available, 1);
}

/// create_queue creates once and reports the existing queue afterwards.
pub async fn create_queue_is_idempotent(b: &dyn Backend) {
    let store = b.open("main").await;
    let first = store.create_queue("reports").await.unwrap();
    assert_eq!(
        (first.name.as_str(), first.paused, first.counts.total()),
        ("reports", false, 0)
    );
    store.pause_queue("reports").await.unwrap();
    let again = store.create_queue("reports").await.unwrap();
    assert!(again.paused, "creating an existing queue changes nothing");
    assert_eq!(again.created_at, first.created_at);
    assert!(store
        .create_queue("no spaces")
        .await
        .unwrap_err()
        .is_validation());
    assert_eq!(store.list_queues().await.unwrap().len(), 1);
}

/// Migrating an up-to-date database changes nothing and keeps the jobs.
pub async fn migrate_is_idempotent(b: &dyn Backend) {
    let store = b.open("main").await;
    spawn_n(&*store, "default", "work", 2).await;
    let report = store.migrate().await.unwrap();
    assert_eq!(report.from, report.to);
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), 2);
}
