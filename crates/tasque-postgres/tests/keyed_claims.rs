//! PostgreSQL claims keyed and unkeyed queues in one statement order: a claim of several
//! queues takes the oldest claimable jobs of them all, even when the unkeyed queues alone
//! could fill its limit (the unkeyed claim takes nothing when a queue holds keyed jobs, and
//! the windowed claim runs instead).

mod support;

use serde_json::json;
use tasque_durable::{ClaimParams, PollOrder, Spawn, SpawnOptions, Store};

#[tokio::test]
async fn a_claim_of_keyed_and_unkeyed_queues_takes_the_oldest_jobs_of_both() {
    let Some(_pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("keyed");
    let store = fresh.store("keyed").await;
    let keyed = |n: i64| {
        Spawn::new("keyed", "work", json!(n))
            .with_options(SpawnOptions::new().with_ordering_key("k"))
    };
    let plain = |n: i64| Spawn::new("plain", "work", json!(n));
    let params = |limit: u32| ClaimParams {
        queues: vec!["plain".into(), "keyed".into()],
        limit,
        lease: std::time::Duration::from_secs(600),
        worker_id: "w".into(),
        order: PollOrder::PriorityThenAge,
    };
    // The store first sees the queues without keyed jobs.
    let first = store.spawn(plain(0)).await.unwrap().job_id;
    let claimed = store.claim(params(5)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job_id).collect::<Vec<_>>(),
        vec![first]
    );

    let k1 = store.spawn(keyed(1)).await.unwrap().job_id;
    let p1 = store.spawn(plain(2)).await.unwrap().job_id;
    let _k2 = store.spawn(keyed(3)).await.unwrap().job_id;
    let p2 = store.spawn(plain(4)).await.unwrap().job_id;
    let mut two: Vec<_> = store
        .claim(params(2))
        .await
        .unwrap()
        .iter()
        .map(|c| c.job_id)
        .collect();
    two.sort();
    assert_eq!(two, vec![k1, p1], "the two oldest claimable jobs");
    let rest: Vec<_> = store
        .claim(params(10))
        .await
        .unwrap()
        .iter()
        .map(|c| c.job_id)
        .collect();
    assert_eq!(rest, vec![p2], "k2 waits for k1");
    store.close().await;
}
