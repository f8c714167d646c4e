//! Measures the server-engine suites (`postgres`, `mysql`) share: batch spawns and the
//! single-worker burn-down of ready no-op jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tasque_durable::{Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};

use crate::report::per_s;

/// Spawns `n` no-op jobs in batches of 5,000; jobs/s.
pub async fn spawn_batches(store: &dyn Store, n: usize) -> Result<f64> {
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let size = left.min(5000);
        let spawns = (0..size)
            .map(|i| Spawn::new("default", "noop", json!(i)))
            .collect();
        store.spawn_many(spawns).await?;
        left -= size;
    }
    Ok(per_s(n, start.elapsed()))
}

/// One worker with `slots` works `n` ready no-op jobs; jobs/s from its start to the last
/// completion written.
pub async fn burn_down<S: Store + Clone + 'static>(
    store: &S,
    n: usize,
    slots: usize,
) -> Result<f64> {
    burn_down_with(store, n, slots, false).await
}

/// [`burn_down`], deleting each job when it succeeds when `delete` (the worker's
/// `delete_on_success`) instead of keeping it completed.
pub async fn burn_down_with<S: Store + Clone + 'static>(
    store: &S,
    n: usize,
    slots: usize,
    delete: bool,
) -> Result<f64> {
    let handlers = Handlers::new();
    handlers.learn("noop", |_ctx: JobContext, _n: i64| async {
        Ok::<_, std::io::Error>(())
    });
    let start = Instant::now();
    let worker = Worker::builder(Arc::new(store.clone()))
        .handlers(handlers)
        .concurrency(slots)
        .poll_limit(slots.min(500))
        .delete_on_success(delete)
        .build()?
        .start()?;
    let emptied = worker
        .wait_until_empty(false, Duration::from_secs(240))
        .await;
    let elapsed = start.elapsed();
    let completed = worker.stats().completed;
    worker.shutdown(Duration::from_secs(5)).await;
    anyhow::ensure!(
        emptied && completed as usize == n,
        "burn-down incomplete: {completed}/{n}"
    );
    Ok(per_s(n, elapsed))
}
