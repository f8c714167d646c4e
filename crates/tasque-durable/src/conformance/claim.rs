//! Cases: claiming, ordering, visibility, paused queues, concurrency, namespaces.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_of, claim_one, job, Backend, LONG};
use crate::{ClaimParams, Error, JobFilter, JobState, PollOrder, RetryStrategy, SpawnOptions};

/// A claim carries ids, attempt, task, params, headers, retry strategy, max attempts, timeout.
pub async fn claim_carries_everything_the_handler_needs(b: &dyn Backend) {
    let store = b.open("main").await;
    let retry = RetryStrategy::Fixed {
        delay: Duration::from_secs(5),
    };
    let options = SpawnOptions::new()
        .with_max_attempts(4)
        .with_retry(retry.clone())
        .with_timeout(Duration::from_secs(30))
        .with_headers(json!({"h": 1}))
        .with_priority(2);
    let spawned = store
        .spawn(job("mail", "send", 7).with_options(options))
        .await
        .unwrap();
    let before = store.now().await.unwrap();
    let claim = claim_one(&*store, "mail").await;
    assert_eq!(claim.job_id, spawned.job_id);
    assert_eq!(claim.run_id, spawned.run_id);
    assert_eq!(claim.queue, "mail");
    assert_eq!(claim.task, "send");
    assert_eq!(claim.params, json!({"n": 7}));
    assert_eq!(claim.headers, json!({"h": 1}));
    assert_eq!(claim.attempt, 1);
    assert_eq!(claim.max_attempts, 4);
    assert_eq!(claim.retry, retry);
    assert_eq!(claim.priority, 2);
    assert_eq!(claim.timeout, Some(Duration::from_secs(30)));
    assert!(claim.lease_expires_at >= before + chrono::Duration::minutes(59));
    assert_eq!((claim.wake_event, claim.event_payload), (None, None));
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Running);
    assert_eq!(info.worker_id.as_deref(), Some("worker-1"));
    assert!(info.first_started_at.is_some() && info.attempted_at.is_some());
}

/// A claim never returns more than its limit.
pub async fn claim_respects_its_limit(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn_many((0..10).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    assert_eq!(store.claim(claim_of("default", 3)).await.unwrap().len(), 3);
    assert_eq!(
        store.claim(claim_of("default", 100)).await.unwrap().len(),
        7
    );
    assert_nothing_claimable(&*store, "default").await;
}

/// Lower priority values first; equal priorities oldest first.
pub async fn claim_orders_by_priority_then_age(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut ids = Vec::new();
    for (n, priority) in [(0, 5), (1, 1), (2, 5), (3, -2), (4, 1)] {
        let options = SpawnOptions::new().with_priority(priority);
        ids.push(
            store
                .spawn(job("default", "work", n).with_options(options))
                .await
                .unwrap()
                .job_id,
        );
    }
    let claims = store.claim(claim_of("default", 10)).await.unwrap();
    let order: Vec<_> = claims.iter().map(|c| c.job_id).collect();
    assert_eq!(order, [ids[3], ids[1], ids[4], ids[0], ids[2]]);
    let first = store.claim(claim_of("default", 1)).await.unwrap();
    assert!(first.is_empty());
}

/// With `PollOrder::Age`, priority is ignored: oldest first.
pub async fn claim_orders_by_age_when_asked(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut ids = Vec::new();
    for (n, priority) in [(0, 5), (1, 1), (2, -3)] {
        let options = SpawnOptions::new().with_priority(priority);
        ids.push(
            store
                .spawn(job("default", "work", n).with_options(options))
                .await
                .unwrap()
                .job_id,
        );
    }
    let params = ClaimParams {
        order: PollOrder::Age,
        ..claim_of("default", 1)
    };
    for id in &ids {
        let claims = store.claim(params.clone()).await.unwrap();
        assert_eq!(claims.iter().map(|c| c.job_id).collect::<Vec<_>>(), [*id]);
    }
}

/// A claimed job is not claimed again while its lease holds.
pub async fn claimed_job_is_invisible_to_other_claimers(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    claim_one(&*store, "default").await;
    let other = ClaimParams {
        worker_id: "worker-2".into(),
        ..claim_of("default", 10)
    };
    assert!(store.claim(other).await.unwrap().is_empty());
}

/// A claim takes jobs of the named queues only, from all of them.
pub async fn claim_takes_only_the_named_queues(b: &dyn Backend) {
    let store = b.open("main").await;
    for queue in ["a", "b", "c"] {
        store.spawn(job(queue, "work", 1)).await.unwrap();
    }
    let params = ClaimParams {
        queues: vec!["a".into(), "c".into()],
        ..claim_of("a", 10)
    };
    let claims = store.claim(params).await.unwrap();
    let queues: HashSet<_> = claims.iter().map(|c| c.queue.as_str()).collect();
    assert_eq!(queues, HashSet::from(["a", "c"]));
    assert_eq!(claim_one(&*store, "b").await.queue, "b");
}

/// A paused queue keeps accepting jobs but none is claimed until it is resumed.
pub async fn paused_queue_is_not_claimed_until_resumed(b: &dyn Backend) {
    let store = b.open("main").await;
    store.pause_queue("default").await.unwrap();
    store.spawn(job("default", "work", 1)).await.unwrap();
    store.spawn(job("other", "work", 2)).await.unwrap();
    assert_nothing_claimable(&*store, "default").await;
    let queue = store
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.name == "default")
        .unwrap();
    assert!(queue.paused);
    assert_eq!(
        claim_one(&*store, "other").await.queue,
        "other",
        "other queues are unaffected"
    );
    store.resume_queue("default").await.unwrap();
    assert_eq!(claim_one(&*store, "default").await.params, json!({"n": 1}));
}

/// Many claimers at once: every job is claimed exactly once.
pub async fn concurrent_claimers_never_get_the_same_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let total = 200;
    store
        .spawn_many((0..total).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let params = ClaimParams {
                    worker_id: format!("worker-{w}"),
                    ..claim_of("default", 7)
                };
                let claims = store.claim(params).await.unwrap();
                if claims.is_empty() {
                    return mine;
                }
                mine.extend(claims.into_iter().map(|c| c.job_id));
            }
        });
    }
    let mut seen = HashSet::new();
    while let Some(mine) = tasks.join_next().await {
        for id in mine.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen.len(), total as usize);
}

/// Two namespaces on one database never see each other's jobs or queues.
pub async fn namespaces_are_isolated(b: &dyn Backend) {
    let one = b.open("one").await;
    let two = b.open("two").await;
    let spawned = one.spawn(job("default", "work", 1)).await.unwrap();
    one.pause_queue("paused").await.unwrap();
    assert_eq!(two.count(JobFilter::all()).await.unwrap(), 0);
    assert!(two.list_queues().await.unwrap().is_empty());
    assert_nothing_claimable(&*two, "default").await;
    assert!(matches!(
        two.get_job(spawned.job_id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        two.cancel(spawned.job_id).await,
        Err(Error::NotFound(_))
    ));
    two.spawn(job("default", "work", 2)).await.unwrap();
    assert_eq!(claim_one(&*one, "default").await.job_id, spawned.job_id);
    assert_eq!(claim_one(&*two, "default").await.params, json!({"n": 2}));
    assert_eq!(one.namespace(), "one");
}

/// Claims with no queue, a zero limit, a zero lease or a bad worker name are refused.
pub async fn claim_refuses_bad_parameters(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    let bad = [
        ClaimParams {
            queues: vec![],
            ..claim_of("default", 1)
        },
        ClaimParams {
            limit: 0,
            ..claim_of("default", 1)
        },
        ClaimParams {
            lease: Duration::ZERO,
            ..claim_of("default", 1)
        },
        ClaimParams {
            worker_id: "bad worker'".into(),
            ..claim_of("default", 1)
        },
        ClaimParams {
            queues: vec!["x'--".into()],
            ..claim_of("default", 1)
        },
    ];
    for params in bad {
        let err = store.claim(params.clone()).await.unwrap_err();
        assert!(err.is_validation(), "{params:?}: {err}");
    }
    let params = ClaimParams {
        lease: LONG,
        ..claim_of("default", 1)
    };
    assert_eq!(
        store.claim(params).await.unwrap().len(),
        1,
        "the job was left claimable"
    );
}
