//! The queue's counters under races (rows 1.7, 1.12, 1.13, 1.14): shutdown and
//! restart racing the timeouts and cancels of waiting tasks. Over many seeded
//! rounds on a multi-threaded runtime, every ref gets exactly one outcome,
//! `stats().queued` never exceeds what is waiting (no wrap below zero; a debug
//! build would also panic on the subtraction), and after each round the
//! counts add up: nothing queued or running, every task counted once.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::PATIENCE;
use tasque_core::{ExitReason, Outcome, Queue, TaskOptions};
use tokio::sync::oneshot;

/// How the round ends the waiting line.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Shutdown,
    Restart,
}

const WAITING: usize = 24;

async fn round(seed: u64, ending: Ending) {
    let mut rng = StdRng::seed_from_u64(seed);
    let queue = Queue::builder(format!("race-{seed}"))
        .max_concurrency(1)
        .build()
        .expect("queue");
    // One task holds the only slot, so every other task waits in line.
    let (release, held) = oneshot::channel::<()>();
    let blocker = queue
        .enqueue(async move {
            let _ = held.await;
        })
        .expect("blocker");
    let mut handles = Vec::new();
    for _ in 0..WAITING {
        let mut options = TaskOptions::new();
        if rng.gen_bool(0.5) {
            options = options.timeout(Duration::from_micros(rng.gen_range(50..3_000)));
        }
        handles.push(queue.enqueue_with(options, async { 1u8 }).expect("enqueue"));
    }
    // Cancels racing the ending, from other worker threads.
    let mut cancels = Vec::new();
    for handle in &handles {
        if !rng.gen_bool(0.4) {
            continue;
        }
        let (queue, task) = (queue.clone(), handle.task_ref().clone());
        let pause = Duration::from_micros(rng.gen_range(0..3_000));
        cancels.push(tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            queue.cancel(&task);
        }));
    }
    // A sampler that reads the counters throughout the race.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (queue, sampling) = (queue.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut worst = 0;
            while sampling.load(Ordering::Relaxed) {
                worst = worst.max(queue.stats().queued);
                tokio::task::yield_now().await;
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_micros(rng.gen_range(0..3_000))).await;
    match ending {
        Ending::Shutdown => {
            let _ = release.send(());
            queue.shutdown(Duration::from_secs(5)).await;
        }
        Ending::Restart => {
            queue.inject_machinery_fault();
            let _ = release.send(());
        }
    }
    for cancel in cancels {
        cancel.await.expect("cancel task");
    }
    let mut ended = 0u64;
    let mut seen = Vec::new();
    for handle in handles {
        let outcome = tokio::time::timeout(PATIENCE, handle)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: a waiting task got no outcome"));
        seen.push(format!("{outcome:?}"));
        match outcome {
            Outcome::Ok(1) => {}
            Outcome::Exit(
                ExitReason::Timeout
                | ExitReason::Cancelled
                | ExitReason::Shutdown
                | ExitReason::QueueRestarted,
            ) => {}
            other => panic!("seed {seed}: unexpected outcome {other:?}"),
        }
        ended += 1;
    }
    let blocked = tokio::time::timeout(PATIENCE, blocker).await;
    seen.push(format!("blocker: {blocked:?}"));
    assert!(
        queue.wait_idle(PATIENCE).await,
        "seed {seed}: queue never idle"
    );
    sampling.store(false, Ordering::Relaxed);
    let worst = sampler.await.expect("sampler");
    assert!(
        worst <= WAITING,
        "seed {seed} ({ending:?}): stats().queued read {worst} with {WAITING} tasks waiting"
    );
    let stats = queue.stats();
    assert_eq!(stats.queued, 0, "seed {seed} ({ending:?}): {stats:?}");
    assert_eq!(stats.running, 0, "seed {seed} ({ending:?}): {stats:?}");
    let counted = stats.completed
        + stats.failed
        + stats.timed_out
        + stats.cancelled
        + stats.shut_down
        + stats.restarted;
    // The blocker is counted too (completed, or restarted by the fault).
    assert_eq!(
        counted,
        ended + 1,
        "seed {seed} ({ending:?}): every task counted once: {stats:?}; outcomes {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_13_shutdown_racing_timeouts_and_cancels_keeps_counters_exact() {
    for seed in 0..300 {
        round(seed, Ending::Shutdown).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_12_restart_racing_timeouts_and_cancels_keeps_counters_exact() {
    for seed in 1_000..1_300 {
        round(seed, Ending::Restart).await;
    }
}
