//! The `core` suite: no-op tasks through the in-process queue versus raw
//! tokio (`Semaphore` + `spawn` + `oneshot`) in the same run, at several
//! concurrency limits and producer counts; and memory per queued task.
//!
//! Both sides have the same shape: producers submit every task without
//! waiting (the baseline spawns a task that first acquires a semaphore
//! permit, which is how a bounded pool is built by hand), then the outcomes
//! are awaited. Each configuration runs several rounds, alternating sides, and
//! the best round of each side is kept, since these machines are noisy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tasque_core::{Outcome, Queue};
use tokio::sync::{oneshot, Semaphore};

use crate::report::{figure, ratio, resident_bytes};

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tasks = if quick { 20_000 } else { 200_000 };
    let rounds = if quick { 2 } else { 5 };
    for concurrency in [1, 10, 1000] {
        for producers in [1, 4] {
            let (ours, baseline) =
                runtime.block_on(compare(concurrency, producers, tasks, rounds))?;
            let name = format!("core_c{concurrency}_p{producers}");
            figure(&format!("{name}_tasks_per_s"), ours, "tasks/s");
            figure(&format!("{name}_tokio_tasks_per_s"), baseline, "tasks/s");
            ratio(&format!("{name}_vs_tokio"), ours, baseline);
        }
    }
    let queued = if quick { 100_000 } else { 1_000_000 };
    let bytes = runtime.block_on(bytes_per_queued_task(queued))?;
    figure("core_bytes_per_queued_task", bytes, "bytes");
    let tokio_bytes = runtime.block_on(bytes_per_waiting_tokio_task(queued));
    figure("core_tokio_bytes_per_waiting_task", tokio_bytes, "bytes");
    Ok(())
}

async fn compare(
    concurrency: usize,
    producers: usize,
    tasks: usize,
    rounds: usize,
) -> Result<(f64, f64)> {
    let mut best_ours = Duration::MAX;
    let mut best_baseline = Duration::MAX;
    for round in 0..rounds {
        let queue = Queue::builder(format!("bench-{concurrency}-{producers}-{round}"))
            .max_concurrency(concurrency)
            .build()?;
        best_baseline = best_baseline.min(baseline_round(concurrency, producers, tasks).await);
        best_ours = best_ours.min(tasque_round(&queue, producers, tasks).await?);
    }
    let per_s = |elapsed: Duration| tasks as f64 / elapsed.as_secs_f64();
    Ok((per_s(best_ours), per_s(best_baseline)))
}

async fn tasque_round(queue: &Queue, producers: usize, tasks: usize) -> Result<Duration> {
    let started = Instant::now();
    let mut producer_tasks = Vec::with_capacity(producers);
    for _ in 0..producers {
        let queue = queue.clone();
        producer_tasks.push(tokio::spawn(async move {
            let mut handles = Vec::with_capacity(tasks / producers);
            for _ in 0..tasks / producers {
                handles.push(queue.enqueue(async {})?);
            }
            for handle in handles {
                if let Outcome::Exit(reason) = handle.await {
                    anyhow::bail!("no-op task exited: {reason}");
                }
            }
            Ok(())
        }));
    }
    for producer in producer_tasks {
        producer.await??;
    }
    Ok(started.elapsed())
}

async fn baseline_round(concurrency: usize, producers: usize, tasks: usize) -> Duration {
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut producer_tasks = Vec::with_capacity(producers);
    for _ in 0..producers {
        let semaphore = semaphore.clone();
        producer_tasks.push(tokio::spawn(async move {
            let mut receivers = Vec::with_capacity(tasks / producers);
            for _ in 0..tasks / producers {
                let (sender, receiver) = oneshot::channel::<()>();
                let semaphore = semaphore.clone();
                tokio::spawn(async move {
                    let _permit = semaphore.acquire().await;
                    let _ = sender.send(());
                });
                receivers.push(receiver);
            }
            for receiver in receivers {
                let _ = receiver.await;
            }
        }));
    }
    for producer in producer_tasks {
        let _ = producer.await;
    }
    started.elapsed()
}

/// Memory per waiting no-op task: a gate occupies the only slot while
/// `count` tasks queue behind it; the handles are kept, as a caller would.
async fn bytes_per_queued_task(count: usize) -> Result<f64> {
    let queue = Queue::builder("bench-memory").max_concurrency(1).build()?;
    let (release, gate) = oneshot::channel::<()>();
    let blocker = queue.enqueue(async move {
        let _ = gate.await;
    })?;
    let before = resident_bytes();
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        handles.push(queue.enqueue(async {})?);
    }
    let after = resident_bytes();
    let _ = release.send(());
    let _ = blocker.await;
    for handle in handles {
        let _ = handle.await;
    }
    Ok(after.saturating_sub(before) as f64 / count as f64)
}

/// The same measure for the baseline: spawned tasks waiting on a semaphore.
async fn bytes_per_waiting_tokio_task(count: usize) -> f64 {
    let semaphore = Arc::new(Semaphore::new(0));
    let before = resident_bytes();
    let mut receivers = Vec::with_capacity(count);
    for _ in 0..count {
        let (sender, receiver) = oneshot::channel::<()>();
        let semaphore = semaphore.clone();
        tokio::spawn(async move {
            let _permit = semaphore.acquire().await;
            let _ = sender.send(());
        });
        receivers.push(receiver);
    }
    tokio::task::yield_now().await;
    let after = resident_bytes();
    semaphore.add_permits(count);
    for receiver in receivers {
        let _ = receiver.await;
    }
    after.saturating_sub(before) as f64 / count as f64
}
