//! Flow control with real worker processes: a per-key rate limit and per-key order hold across
//! three worker processes (see the parent module for the processes).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::flow::{RateKey, RateLimit};
use tasque_durable::{JobId, Spawn, SpawnOptions};
use tokio::process::Child;

use super::{all_jobs, kill, ChildSpec, Harness};

/// A rate limit of 50 starts per second on a key, with three worker processes: over 500 jobs
/// of that key (10 s at the limit), no one-second window (epoch-aligned, from the database's
/// start times) holds more than 50 of its starts, and it spans at least 10 windows; the other
/// key of the same queue is not held up: its jobs, enqueued behind the throttled ones, all
/// finish before the throttled key is half done.
pub async fn rate_limit_per_key_holds_across_worker_processes(h: &Harness) {
    const SLOW: usize = 500;
    const FAST: usize = 40;
    const LIMIT: u32 = 50;
    let flow = h.store.flow().expect("flow control");
    let rate = RateLimit::new(LIMIT, Duration::from_secs(1)).per(RateKey::Arg("tenant".into()));
    flow.set_rate_limit("rated", Some(rate)).await.unwrap();
    let slow =
        (0..SLOW).map(|i| Spawn::new("rated", "timed", json!({"ms": 1, "tenant": "slow", "i": i})));
    h.store.spawn_many(slow.collect()).await.unwrap();
    let fast =
        (0..FAST).map(|i| Spawn::new("rated", "timed", json!({"ms": 1, "tenant": "fast", "i": i})));
    h.store.spawn_many(fast.collect()).await.unwrap();
    let spec = ChildSpec {
        queues: "rated",
        concurrency: 8,
        lease_ms: 30_000,
        stall: false,
    };
    let children: Vec<Child> = (0..3).map(|i| h.start(i, &spec)).collect();
    // 10 s at the limit, plus generous room for a loaded machine.
    h.until_completed_within((SLOW + FAST) as u64, Duration::from_secs(120))
        .await;
    kill(children).await;

    let jobs = all_jobs(&*h.store).await;
    let started_ms = |tenant: &str| -> Vec<i64> {
        jobs.iter()
            .filter(|j| j.params["tenant"] == tenant)
            .map(|j| j.attempted_at.expect("a start").timestamp_millis())
            .collect()
    };
    let slow_starts = started_ms("slow");
    assert_eq!(slow_starts.len(), SLOW);
    let mut per_window: BTreeMap<i64, u32> = BTreeMap::new();
    for at in &slow_starts {
        *per_window.entry(at.div_euclid(1000)).or_default() += 1;
    }
    let busiest = per_window.values().max().copied().unwrap_or(0);
    assert!(
        busiest <= LIMIT,
        "a window held {busiest} starts of a key limited to {LIMIT}: {per_window:?}"
    );
    assert!(
        per_window.len() >= SLOW / LIMIT as usize,
        "500 starts at 50 per second span at least 10 windows: {per_window:?}"
    );
    let fast_done = jobs
        .iter()
        .filter(|j| j.params["tenant"] == "fast")
        .map(|j| j.finished_at.expect("finished").timestamp_millis())
        .max()
        .unwrap();
    let (first, last) = (
        *slow_starts.iter().min().unwrap(),
        *slow_starts.iter().max().unwrap(),
    );
    assert!(
        fast_done < first + (last - first) / 2,
        "the other key was held up: its last job finished at {fast_done}, the throttled key \
         ran from {first} to {last}"
    );
}

/// Per-key order with K = 1 across three worker processes: 20 keys of 100 jobs each; each
/// key's jobs run and complete in enqueue order, never two at once (from the start and end
/// times each run logged).
pub async fn keyed_order_holds_across_worker_processes(h: &Harness) {
    const KEYS: usize = 20;
    const PER_KEY: usize = 100;
    let mut spawns = Vec::with_capacity(KEYS * PER_KEY);
    for i in 0..PER_KEY {
        for k in 0..KEYS {
            let options = SpawnOptions::new().with_ordering_key(format!("k{k}"));
            let spawn = Spawn::new("keyed", "timed", json!({"ms": 2, "key": k, "i": i}));
            spawns.push(spawn.with_options(options));
        }
    }
    let results = h.store.spawn_many(spawns).await.unwrap();
    let key_of: HashMap<JobId, usize> = results
        .iter()
        .enumerate()
        .map(|(n, r)| (r.job_id, n % KEYS))
        .collect();
    let spec = ChildSpec {
        queues: "keyed",
        concurrency: 8,
        lease_ms: 30_000,
        stall: false,
    };
    let children: Vec<Child> = (0..3).map(|i| h.start(i, &spec)).collect();
    h.until_completed_within((KEYS * PER_KEY) as u64, Duration::from_secs(180))
        .await;
    kill(children).await;

    let runs: Vec<Value> = h.logs(3);
    assert_eq!(runs.len(), KEYS * PER_KEY, "each job ran once");
    let mut by_key: Vec<Vec<&Value>> = vec![Vec::new(); KEYS];
    for run in &runs {
        let job = JobId(run["job"].as_i64().unwrap());
        by_key[key_of[&job]].push(run);
    }
    for (k, key_runs) in by_key.iter_mut().enumerate() {
        key_runs.sort_by_key(|r| r["start_us"].as_i64().unwrap());
        let order: Vec<i64> = key_runs
            .iter()
            .map(|r| r["job"].as_i64().unwrap())
            .collect();
        let mut enqueued = order.clone();
        enqueued.sort_unstable();
        assert_eq!(order, enqueued, "key k{k} started out of enqueue order");
        for pair in key_runs.windows(2) {
            assert!(
                pair[1]["start_us"].as_i64() >= pair[0]["end_us"].as_i64(),
                "two jobs of key k{k} overlapped: {} and {}",
                pair[0],
                pair[1]
            );
        }
    }
}
