//! Cases: job dependencies (fan-out, fan-in, failure policies, refusals, parents finished at
//! enqueue, concurrent completions).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_one, job, Backend};
use crate::deps::{Deps, ParentFailure, MAX_PARENTS};
use crate::model::JobFilter;
use crate::unique::Uniqueness;
use crate::{CompleteParams, Error, JobId, JobState, RetryStrategy, SpawnOptions, Store};

/// The store's dependencies, failing the case when it has none.
fn deps(store: &dyn Store) -> Deps<'_> {
    store.deps().expect("this store supports job dependencies")
}

fn after(parents: &[JobId]) -> SpawnOptions {
    SpawnOptions::new().with_depends_on(parents.iter().copied())
}

fn after_or_run(parents: &[JobId]) -> SpawnOptions {
    after(parents).with_on_parent_failure(ParentFailure::Run)
}

async fn state(store: &dyn Store, job: JobId) -> JobState {
    store.get_job(job).await.expect("get job").state
}

/// Claims the one job of `queue` and completes it, checking it is `expected`.
async fn run_one(store: &dyn Store, queue: &str, expected: JobId) {
    let claim = claim_one(store, queue).await;
    assert_eq!(claim.job_id, expected, "claimed the wrong job of {queue}");
    store
        .complete(CompleteParams::new(claim.run_id, json!("done")))
        .await
        .expect("complete");
}

/// Claims the one job of `queue` and fails it for good.
async fn fail_one(store: &dyn Store, queue: &str, expected: JobId) {
    let claim = claim_one(store, queue).await;
    assert_eq!(claim.job_id, expected, "claimed the wrong job of {queue}");
    store
        .fail(claim.run_id, json!({"error": "boom"}))
        .await
        .expect("fail");
}

fn no_retry() -> SpawnOptions {
    SpawnOptions::new().with_retry(RetryStrategy::None)
}

/// Fan-out: children of one parent are held (not claimable, counted on hold, cancellable) until
/// it completes, then every one is available; `jobs show` facts list parents and dependents.
pub async fn dependencies_fan_out_releases_every_child(b: &dyn Backend) {
    let store = b.open("main").await;
    let parent = store.spawn(job("p", "work", 0)).await.unwrap().job_id;
    let mut children = Vec::new();
    for n in 0..3 {
        let child = store
            .spawn(job("c", "work", n).with_options(after(&[parent])))
            .await
            .unwrap();
        assert!(child.created);
        children.push(child.job_id);
    }
    let spare = store
        .spawn(job("spare", "work", 9).with_options(after(&[parent])))
        .await
        .unwrap()
        .job_id;
    for child in &children {
        assert_eq!(state(&*store, *child).await, JobState::OnHold);
    }
    assert_nothing_claimable(&*store, "c").await;
    let held = store
        .count(JobFilter::all().states([JobState::OnHold]))
        .await
        .unwrap();
    assert_eq!(held, 4);
    let queues = store.list_queues().await.unwrap();
    let c = queues.iter().find(|q| q.name == "c").expect("queue c");
    assert_eq!(c.counts.on_hold, 3);
    let facts = deps(&*store).job(children[0]).await.unwrap();
    assert_eq!(facts.parents.len(), 1);
    assert_eq!(facts.parents[0].id, parent);
    assert_eq!(facts.parents[0].state, Some(JobState::Available));
    assert_eq!(facts.on_parent_failure, ParentFailure::Cancel);
    assert_eq!(
        facts.wait_reason().as_deref(),
        Some(format!("waiting on 1 of 1 parents ({parent})").as_str())
    );
    assert_eq!(deps(&*store).job(parent).await.unwrap().dependents, 4);
    // An operator may cancel a held job; it then never runs.
    store.cancel(spare).await.unwrap();
    assert_eq!(state(&*store, spare).await, JobState::Cancelled);

    run_one(&*store, "p", parent).await;
    for child in &children {
        assert_eq!(state(&*store, *child).await, JobState::Available);
    }
    assert_eq!(state(&*store, spare).await, JobState::Cancelled);
    let claimed = store.claim(super::claim_of("c", 10)).await.unwrap();
    let mut ids: Vec<JobId> = claimed.iter().map(|c| c.job_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, children);
    assert!(claimed.iter().all(|c| c.attempt == 1));
    let facts = deps(&*store).job(children[1]).await.unwrap();
    assert!(facts.parents[0].resolved && facts.wait_reason().is_none());
}

/// Fan-in: a child of three parents stays held until the last one completes (one of them
/// deleted on success, which counts as completed), and a child whose own run time is ahead is
/// scheduled when released. Deleting a finished parent later changes nothing.
pub async fn dependencies_fan_in_releases_after_the_last_parent(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut parents = Vec::new();
    for n in 0..3 {
        parents.push(store.spawn(job("p", "work", n)).await.unwrap().job_id);
    }
    let child = store
        .spawn(job("c", "work", 0).with_options(after(&parents)))
        .await
        .unwrap()
        .job_id;
    let later = store
        .spawn(
            job("later", "work", 0)
                .with_options(after(&parents).with_delay(Duration::from_secs(3600))),
        )
        .await
        .unwrap()
        .job_id;
    run_one(&*store, "p", parents[0]).await;
    assert_eq!(state(&*store, child).await, JobState::OnHold);
    let facts = deps(&*store).job(child).await.unwrap();
    assert_eq!(facts.unresolved(), parents[1..].to_vec());
    assert_eq!(
        facts.wait_reason().as_deref(),
        Some(format!("waiting on 2 of 3 parents ({}, {})", parents[1], parents[2]).as_str())
    );
    let claim = claim_one(&*store, "p").await;
    assert_eq!(claim.job_id, parents[1]);
    store
        .complete(CompleteParams {
            run: claim.run_id,
            result: json!(1),
            delete_on_success: true,
        })
        .await
        .unwrap();
    assert_eq!(state(&*store, child).await, JobState::OnHold);
    assert_nothing_claimable(&*store, "c").await;
    run_one(&*store, "p", parents[2]).await;
    assert_eq!(state(&*store, child).await, JobState::Available);
    assert_eq!(state(&*store, later).await, JobState::Scheduled);
    // The decision is taken: deleting a finished parent changes nothing.
    store.delete(parents[0]).await.unwrap();
    let facts = deps(&*store).job(child).await.unwrap();
    assert_eq!(facts.parents.len(), 3);
    assert_eq!(
        facts.parents[0].state, None,
        "a deleted parent has no state"
    );
    assert_eq!(facts.parents[1].state, None);
    run_one(&*store, "c", child).await;
}

/// Policy cancel (the default): a parent failing for good cancels its child, naming the
/// parent, and transitively the child's own dependents with policy cancel; a grandchild with
/// policy run counts the cancelled child as resolved. Retrying the failed parent later changes
/// none of them.
pub async fn a_failed_parent_cancels_its_dependents_transitively(b: &dyn Backend) {
    let store = b.open("main").await;
    let parent = store
        .spawn(job("p", "work", 0).with_options(no_retry()))
        .await
        .unwrap()
        .job_id;
    let child = store
        .spawn(job("c", "work", 0).with_options(after(&[parent])))
        .await
        .unwrap()
        .job_id;
    let grandchild = store
        .spawn(job("g", "work", 0).with_options(after(&[child])))
        .await
        .unwrap()
        .job_id;
    let runner = store
        .spawn(job("r", "work", 0).with_options(after_or_run(&[child])))
        .await
        .unwrap()
        .job_id;
    fail_one(&*store, "p", parent).await;
    assert_eq!(state(&*store, child).await, JobState::Cancelled);
    let failure = store.get_result(child).await.unwrap().failure;
    let failure = failure.expect("a failure reason");
    assert_eq!(failure["parent"], json!(parent.0));
    assert_eq!(failure["parent_state"], json!("failed"));
    assert_eq!(state(&*store, grandchild).await, JobState::Cancelled);
    assert_eq!(state(&*store, runner).await, JobState::Available);
    // Retrying the parent does not revive its children.
    store.retry(parent, None).await.unwrap();
    run_one(&*store, "p", parent).await;
    assert_eq!(state(&*store, child).await, JobState::Cancelled);
    assert_nothing_claimable(&*store, "c").await;
    // An operator's cancel of a parent counts as a failure too.
    let parent = store.spawn(job("p2", "work", 0)).await.unwrap().job_id;
    let child = store
        .spawn(job("c2", "work", 0).with_options(after(&[parent])))
        .await
        .unwrap()
        .job_id;
    store.cancel(parent).await.unwrap();
    assert_eq!(state(&*store, child).await, JobState::Cancelled);
}

/// Policy run: a parent failing for good or cancelled counts as resolved; the child runs once
/// its other parents completed.
pub async fn policy_run_treats_a_failed_parent_as_resolved(b: &dyn Backend) {
    let store = b.open("main").await;
    let failing = store
        .spawn(job("p", "work", 0).with_options(no_retry()))
        .await
        .unwrap()
        .job_id;
    let cancelled = store.spawn(job("q", "work", 0)).await.unwrap().job_id;
    let fine = store.spawn(job("ok", "work", 0)).await.unwrap().job_id;
    let child = store
        .spawn(job("c", "work", 0).with_options(after_or_run(&[failing, cancelled, fine])))
        .await
        .unwrap()
        .job_id;
    fail_one(&*store, "p", failing).await;
    store.cancel(cancelled).await.unwrap();
    assert_eq!(state(&*store, child).await, JobState::OnHold);
    assert_eq!(
        deps(&*store).job(child).await.unwrap().on_parent_failure,
        ParentFailure::Run
    );
    run_one(&*store, "ok", fine).await;
    assert_eq!(state(&*store, child).await, JobState::Available);
    run_one(&*store, "c", child).await;
}

/// A parent that does not exist (or lives in another namespace) refuses the spawn naming it,
/// and nothing is inserted, in a batch too; too many parents and unique jobs with
/// dependencies are refused.
pub async fn an_unknown_parent_is_refused_and_nothing_is_inserted(b: &dyn Backend) {
    let store = b.open("main").await;
    let other = b.open("other").await;
    let parent = store.spawn(job("p", "work", 0)).await.unwrap().job_id;
    // Ids may be per namespace: take one beyond every id of `main`.
    let mut foreign = parent;
    for n in 0..5 {
        foreign = other.spawn(job("p", "work", n)).await.unwrap().job_id;
    }
    let before = store.count(JobFilter::all()).await.unwrap();
    let missing = JobId(parent.0.max(foreign.0) + 1000);
    let refused = store
        .spawn(job("c", "work", 0).with_options(after(&[parent, missing])))
        .await;
    assert!(
        matches!(refused, Err(Error::UnknownParent(id)) if id == missing),
        "{refused:?}"
    );
    let refused = store
        .spawn(job("c", "work", 0).with_options(after(&[foreign])))
        .await;
    assert!(
        matches!(refused, Err(Error::UnknownParent(id)) if id == foreign),
        "{refused:?}"
    );
    let refused = store
        .spawn_many(vec![
            job("c", "work", 1),
            job("c", "work", 2).with_options(after(&[parent])),
            job("c", "work", 3).with_options(after(&[missing])),
        ])
        .await;
    assert!(
        matches!(refused, Err(Error::UnknownParent(_))),
        "{refused:?}"
    );
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), before);
    assert!(!store.get_job(parent).await.unwrap().state.is_finished());
    let many: Vec<JobId> = (1..=MAX_PARENTS as i64 + 1).map(JobId).collect();
    let refused = store
        .spawn(job("c", "work", 0).with_options(after(&many)))
        .await;
    assert!(
        matches!(refused, Err(Error::TooManyParents { count, .. }) if count == MAX_PARENTS + 1),
        "{refused:?}"
    );
    let refused = store
        .spawn(job("c", "work", 0).with_options(after(&[parent]).with_unique(Uniqueness::key("u"))))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::InvalidOption {
                option: "depends_on",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(store.count(JobFilter::all()).await.unwrap(), before);
    assert_eq!(deps(&*store).job(parent).await.unwrap().dependents, 0);
}

/// Parents already finished at enqueue count at once: all completed makes the child available
/// at once; a failed one cancels a child with policy cancel and is resolved for policy run.
pub async fn parents_finished_at_enqueue_count_at_once(b: &dyn Backend) {
    let store = b.open("main").await;
    let done = store.spawn(job("p", "work", 0)).await.unwrap().job_id;
    run_one(&*store, "p", done).await;
    let failed = store
        .spawn(job("f", "work", 0).with_options(no_retry()))
        .await
        .unwrap()
        .job_id;
    fail_one(&*store, "f", failed).await;
    let pending = store.spawn(job("w", "work", 0)).await.unwrap().job_id;

    let ready = store
        .spawn(job("c", "work", 0).with_options(after(&[done])))
        .await
        .unwrap()
        .job_id;
    assert_eq!(state(&*store, ready).await, JobState::Available);
    let cancelled = store
        .spawn(job("c", "work", 1).with_options(after(&[done, failed, pending])))
        .await
        .unwrap()
        .job_id;
    assert_eq!(state(&*store, cancelled).await, JobState::Cancelled);
    let failure = store.get_result(cancelled).await.unwrap().failure;
    assert_eq!(failure.expect("a reason")["parent"], json!(failed.0));
    let run = store
        .spawn(job("r", "work", 0).with_options(after_or_run(&[failed, pending])))
        .await
        .unwrap()
        .job_id;
    assert_eq!(state(&*store, run).await, JobState::OnHold);
    let facts = deps(&*store).job(run).await.unwrap();
    assert_eq!(facts.unresolved(), vec![pending]);
    run_one(&*store, "c", ready).await;
    run_one(&*store, "w", pending).await;
    assert_eq!(state(&*store, run).await, JobState::Available);
    // The cancelled child stays cancelled even though its pending parent completed.
    assert_eq!(state(&*store, cancelled).await, JobState::Cancelled);
}

/// Two parents completed at the same moment by two workers release their child exactly once,
/// round after round.
pub async fn concurrent_parent_completions_release_the_child_exactly_once(b: &dyn Backend) {
    let store: Arc<dyn Store> = b.open("main").await;
    for round in 0..20 {
        let queue = format!("p{round}");
        let a = store.spawn(job(&queue, "work", 0)).await.unwrap().job_id;
        let b2 = store.spawn(job(&queue, "work", 1)).await.unwrap().job_id;
        let child = store
            .spawn(job("c", "work", round).with_options(after(&[a, b2])))
            .await
            .unwrap()
            .job_id;
        let claims = store.claim(super::claim_of(&queue, 2)).await.unwrap();
        assert_eq!(claims.len(), 2);
        let gate = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = claims
            .into_iter()
            .map(|claim| {
                let store = store.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    gate.wait().await;
                    store
                        .complete(CompleteParams::new(claim.run_id, json!(null)))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("complete");
        }
        assert_eq!(
            state(&*store, child).await,
            JobState::Available,
            "round {round}"
        );
        let claimed = store.claim(super::claim_of("c", 10)).await.unwrap();
        assert_eq!(claimed.len(), 1, "round {round}");
        assert_eq!((claimed[0].job_id, claimed[0].run_id.seq), (child, 1));
        store
            .complete(CompleteParams::new(claimed[0].run_id, json!(null)))
            .await
            .unwrap();
    }
}
