//! Cases: flow control (per-key order and concurrency, rate limits), enforced by the claim.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::{assert_nothing_claimable, claim_of, job, Backend};
use crate::flow::{Flow, FlowWait, KeyPolicy, RateKey, RateLimit};
use crate::{
    BlockedPolicy, CancelOutcome, Claim, ClaimParams, CompleteParams, JobId, RetryStrategy, Spawn,
    SpawnOptions, Store,
};

/// A window no test outlives (windows are epoch-aligned: the next boundary is in 2070).
const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

fn flow(store: &dyn Store) -> Flow<'_> {
    store.flow().expect("this engine has flow control")
}

fn keyed(queue: &str, key: &str, n: i64) -> Spawn {
    job(queue, "work", n).with_options(SpawnOptions::new().with_ordering_key(key))
}

async fn spawn(store: &dyn Store, spawn: Spawn) -> JobId {
    store.spawn(spawn).await.unwrap().job_id
}

async fn complete(store: &dyn Store, claim: &Claim) {
    store
        .complete(CompleteParams::new(claim.run_id, json!(null)))
        .await
        .unwrap();
}

fn ids(claims: &[Claim]) -> Vec<JobId> {
    let mut ids: Vec<JobId> = claims.iter().map(|c| c.job_id).collect();
    ids.sort();
    ids
}

/// Jobs with one ordering key run one at a time in enqueue order; other keys and unkeyed jobs
/// of the queue are not held.
pub async fn keyed_jobs_run_one_at_a_time_in_enqueue_order(b: &dyn Backend) {
    let store = b.open("main").await;
    let a1 = spawn(&*store, keyed("keyed", "a", 1)).await;
    let b1 = spawn(&*store, keyed("keyed", "b", 2)).await;
    let a2 = spawn(&*store, keyed("keyed", "a", 3)).await;
    let plain = spawn(&*store, job("keyed", "work", 4)).await;
    let a3 = spawn(&*store, keyed("keyed", "a", 5)).await;
    let first = store.claim(claim_of("keyed", 10)).await.unwrap();
    assert_eq!(ids(&first), vec![a1, b1, plain]);
    assert_nothing_claimable(&*store, "keyed").await;
    let why = flow(&*store).job(a2).await.unwrap();
    assert_eq!(why.ordering_key.as_deref(), Some("a"));
    assert_eq!(
        why.waits,
        Some(FlowWait::KeyAtLimit {
            key: "a".into(),
            limit: 1
        })
    );
    let a1_claim = first.iter().find(|c| c.job_id == a1).unwrap();
    complete(&*store, a1_claim).await;
    let next = store.claim(claim_of("keyed", 10)).await.unwrap();
    assert_eq!(ids(&next), vec![a2]);
    complete(&*store, &next[0]).await;
    let last = store.claim(claim_of("keyed", 10)).await.unwrap();
    assert_eq!(ids(&last), vec![a3]);
    assert_eq!(flow(&*store).job(b1).await.unwrap().waits, None);
}

/// A key concurrency of K lets the K oldest unfinished jobs of a key run at once.
pub async fn key_concurrency_lets_k_jobs_of_a_key_run(b: &dyn Backend) {
    let store = b.open("main").await;
    let policy = KeyPolicy {
        concurrency: 2,
        on_exhausted: BlockedPolicy::Continue,
    };
    flow(&*store).set_key_policy("pairs", policy).await.unwrap();
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(spawn(&*store, keyed("pairs", "k", i)).await);
    }
    let first = store.claim(claim_of("pairs", 10)).await.unwrap();
    assert_eq!(ids(&first), vec![jobs[0], jobs[1]]);
    complete(&*store, &first[1]).await;
    let next = store.claim(claim_of("pairs", 10)).await.unwrap();
    assert_eq!(ids(&next), vec![jobs[2]]);
    assert_nothing_claimable(&*store, "pairs").await;
    assert_eq!(flow(&*store).queue("pairs").await.unwrap().keys, policy);
}

/// One busy key cannot starve the other keys of a shared queue.
pub async fn a_busy_key_does_not_starve_other_keys(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawns: Vec<Spawn> = (0..40).map(|i| keyed("shared", "busy", i)).collect();
    store.spawn_many(spawns).await.unwrap();
    let quiet = spawn(&*store, keyed("shared", "quiet", 99)).await;
    let claims = store.claim(claim_of("shared", 2)).await.unwrap();
    assert_eq!(claims.len(), 2);
    assert!(claims.iter().any(|c| c.job_id == quiet));
}

/// A queue that starts holding keyed jobs after a store claimed from it unkeyed keeps its
/// order and its windows, alone and claimed with an unkeyed queue, and claims go on after the
/// keyed jobs are gone.
pub async fn keys_that_arrive_later_keep_order_and_windows(b: &dyn Backend) {
    let store = b.open("main").await;
    let first = spawn(&*store, job("later", "work", 0)).await;
    assert_eq!(
        ids(&store.claim(claim_of("later", 5)).await.unwrap()),
        vec![first]
    );
    let a1 = spawn(&*store, keyed("later", "a", 1)).await;
    let plain = spawn(&*store, job("later", "work", 2)).await;
    let a2 = spawn(&*store, keyed("later", "a", 3)).await;
    let oldest = store.claim(claim_of("later", 1)).await.unwrap();
    assert_eq!(ids(&oldest), vec![a1], "the oldest job first, keyed or not");
    let rest = store.claim(claim_of("later", 5)).await.unwrap();
    assert_eq!(ids(&rest), vec![plain], "a2 waits for a1");
    complete(&*store, &oldest[0]).await;
    let next = store.claim(claim_of("later", 5)).await.unwrap();
    assert_eq!(ids(&next), vec![a2]);
    complete(&*store, &next[0]).await;
    let after = spawn(&*store, job("later", "work", 4)).await;
    assert_eq!(
        ids(&store.claim(claim_of("later", 5)).await.unwrap()),
        vec![after]
    );

    let k1 = spawn(&*store, keyed("mixed_keyed", "k", 5)).await;
    let p1 = spawn(&*store, job("mixed_plain", "work", 6)).await;
    let _k2 = spawn(&*store, keyed("mixed_keyed", "k", 7)).await;
    let p2 = spawn(&*store, job("mixed_plain", "work", 8)).await;
    let both = ClaimParams {
        queues: vec!["mixed_plain".into(), "mixed_keyed".into()],
        ..claim_of("mixed_plain", 10)
    };
    let claimed = store.claim(both).await.unwrap();
    assert_eq!(ids(&claimed), vec![k1, p1, p2], "k2 waits for k1");
}

/// Concurrent claimers never run two jobs of a key at once.
pub async fn keyed_order_holds_under_concurrent_claimers(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut spawns = Vec::new();
    for i in 0..4 {
        for key in ["k0", "k1", "k2", "k3", "k4"] {
            spawns.push(keyed("race", key, i));
        }
    }
    store.spawn_many(spawns).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = b.open("main").await;
        tasks.push(tokio::spawn(async move {
            store.claim(claim_of("race", 5)).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    assert_eq!(claimed.len(), 5, "one job per key: {claimed:?}");
    let params: HashSet<String> = claimed.iter().map(|c| c.params.to_string()).collect();
    assert_eq!(params.len(), 1, "each key's first job: {params:?}");
}

/// With `stay_blocked`, a keyed job that exhausts its attempts holds its key (only) until an
/// operator cancels it.
pub async fn an_exhausted_keyed_job_holds_its_key_until_an_operator_acts(b: &dyn Backend) {
    let store = b.open("main").await;
    let policy = KeyPolicy {
        concurrency: 1,
        on_exhausted: BlockedPolicy::StayBlocked,
    };
    flow(&*store).set_key_policy("held", policy).await.unwrap();
    let once = SpawnOptions::new()
        .with_ordering_key("a")
        .with_max_attempts(1)
        .with_retry(RetryStrategy::None);
    let a1 = spawn(&*store, job("held", "work", 1).with_options(once)).await;
    let a2 = spawn(&*store, keyed("held", "a", 2)).await;
    let b1 = spawn(&*store, keyed("held", "b", 3)).await;
    let first = store.claim(claim_of("held", 10)).await.unwrap();
    assert_eq!(ids(&first), vec![a1, b1]);
    let a1_claim = first.iter().find(|c| c.job_id == a1).unwrap();
    store.fail(a1_claim.run_id, json!("boom")).await.unwrap();
    let b2 = spawn(&*store, keyed("held", "b", 4)).await;
    let b1_claim = first.iter().find(|c| c.job_id == b1).unwrap();
    complete(&*store, b1_claim).await;
    let next = store.claim(claim_of("held", 10)).await.unwrap();
    assert_eq!(ids(&next), vec![b2], "key a is held, key b goes on");
    assert_eq!(
        flow(&*store).job(a2).await.unwrap().waits,
        Some(FlowWait::KeyBlocked {
            key: "a".into(),
            by: a1
        })
    );
    let cancelled = store.cancel(a1).await.unwrap();
    assert!(
        matches!(cancelled, CancelOutcome::Cancelled { .. }),
        "{cancelled:?}"
    );
    let after = store.claim(claim_of("held", 10)).await.unwrap();
    assert_eq!(ids(&after), vec![a2]);
}

/// With the default policy, a keyed job that exhausts its attempts lets its key go on.
pub async fn an_exhausted_keyed_job_lets_its_key_go_on_by_default(b: &dyn Backend) {
    let store = b.open("main").await;
    let once = SpawnOptions::new()
        .with_ordering_key("a")
        .with_max_attempts(1)
        .with_retry(RetryStrategy::None);
    let a1 = spawn(&*store, job("goes-on", "work", 1).with_options(once)).await;
    let a2 = spawn(&*store, keyed("goes-on", "a", 2)).await;
    let first = store.claim(claim_of("goes-on", 10)).await.unwrap();
    assert_eq!(ids(&first), vec![a1]);
    store.fail(first[0].run_id, json!("boom")).await.unwrap();
    let next = store.claim(claim_of("goes-on", 10)).await.unwrap();
    assert_eq!(ids(&next), vec![a2]);
}

/// A queue's rate limit caps its starts per window, whatever finished; the wait names the
/// next window; removing the limit lifts it.
pub async fn a_rate_limit_caps_starts_per_window(b: &dyn Backend) {
    let store = b.open("main").await;
    let other = b.open("main").await;
    let rate = RateLimit::new(3, CENTURY);
    flow(&*store)
        .set_rate_limit("rated", Some(rate.clone()))
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(spawn(&*store, job("rated", "work", i)).await);
    }
    let first = store.claim(claim_of("rated", 2)).await.unwrap();
    assert_eq!(first.len(), 2);
    let second = other.claim(claim_of("rated", 10)).await.unwrap();
    assert_eq!(second.len(), 1);
    for claim in first.iter().chain(&second) {
        complete(&*store, claim).await;
    }
    assert_nothing_claimable(&*other, "rated").await;
    let waiting = jobs[4];
    match flow(&*store).job(waiting).await.unwrap().waits {
        Some(FlowWait::RateLimited { next_start, .. }) => {
            assert!(next_start > store.now().await.unwrap());
        }
        other => panic!("expected a rate limit wait, got {other:?}"),
    }
    assert_eq!(flow(&*store).queue("rated").await.unwrap().rate, Some(rate));
    flow(&*store).set_rate_limit("rated", None).await.unwrap();
    assert_eq!(store.claim(claim_of("rated", 10)).await.unwrap().len(), 2);
}

/// A rate limit per key (an argument) throttles each key alone: a throttled key does not hold
/// up the others.
pub async fn a_rate_limit_per_key_skips_throttled_keys(b: &dyn Backend) {
    let store = b.open("main").await;
    let rate = RateLimit::new(2, CENTURY).per(RateKey::Arg("customer.id".into()));
    flow(&*store)
        .set_rate_limit("per-key", Some(rate))
        .await
        .unwrap();
    let mut spawns = Vec::new();
    for i in 0..5 {
        spawns.push(Spawn::new(
            "per-key",
            "work",
            json!({"customer": {"id": "A"}, "n": i}),
        ));
    }
    for i in 0..3 {
        spawns.push(Spawn::new(
            "per-key",
            "work",
            json!({"customer": {"id": "B"}, "n": i}),
        ));
    }
    store.spawn_many(spawns).await.unwrap();
    let claims = store.claim(claim_of("per-key", 10)).await.unwrap();
    let per = |id: &str| {
        claims
            .iter()
            .filter(|c| c.params["customer"]["id"] == id)
            .count()
    };
    assert_eq!((per("A"), per("B")), (2, 2));
    assert_nothing_claimable(&*store, "per-key").await;
}

/// A blocking queue honours its rate limit too: its head waits for the next window, and the
/// wait names the rate limit.
pub async fn a_rate_limit_holds_a_blocking_queue(b: &dyn Backend) {
    let store = b.open("main").await;
    let params = crate::BlockingParams {
        blocking: true,
        on_exhausted: BlockedPolicy::Continue,
    };
    store
        .set_queue_blocking("serial-rated", params)
        .await
        .unwrap();
    flow(&*store)
        .set_rate_limit("serial-rated", Some(RateLimit::new(1, CENTURY)))
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for i in 0..3 {
        jobs.push(spawn(&*store, job("serial-rated", "work", i)).await);
    }
    let first = store.claim(claim_of("serial-rated", 10)).await.unwrap();
    assert_eq!(ids(&first), vec![jobs[0]]);
    complete(&*store, &first[0]).await;
    assert_nothing_claimable(&*store, "serial-rated").await;
    assert!(
        matches!(
            flow(&*store).job(jobs[1]).await.unwrap().waits,
            Some(FlowWait::RateLimited { .. })
        ),
        "the head waits for the rate limit"
    );
    flow(&*store)
        .set_rate_limit("serial-rated", None)
        .await
        .unwrap();
    let next = store.claim(claim_of("serial-rated", 10)).await.unwrap();
    assert_eq!(ids(&next), vec![jobs[1]], "still one at a time, in order");
}

/// Bad flow settings are refused with typed errors and change nothing.
pub async fn bad_flow_settings_are_refused(b: &dyn Backend) {
    let store = b.open("main").await;
    let flow = flow(&*store);
    let zero = KeyPolicy {
        concurrency: 0,
        on_exhausted: BlockedPolicy::Continue,
    };
    assert!(flow.set_key_policy("bad", zero).await.is_err());
    assert!(flow
        .set_rate_limit("bad", Some(RateLimit::new(0, CENTURY)))
        .await
        .is_err());
    let bad_path = RateLimit::new(1, CENTURY).per(RateKey::Arg("a'b".into()));
    assert!(flow.set_rate_limit("bad", Some(bad_path)).await.is_err());
    assert!(flow.set_rate_limit("bad queue", None).await.is_err());
    let bad_key = SpawnOptions::new().with_ordering_key("");
    assert!(store
        .spawn(job("bad", "work", 1).with_options(bad_key))
        .await
        .is_err());
    assert_eq!(
        flow.queue("bad").await.unwrap(),
        crate::flow::QueueFlow::default()
    );
}
