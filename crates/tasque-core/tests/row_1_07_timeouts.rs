//! SPEC row 1.7: per-task timeouts counted from enqueue, and their races.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use support::*;
use tasque_core::{Error, ExitReason, Mailbox, Outcome, Queue, TaskOptions, Timeout};

#[tokio::test]
async fn row_1_7_zero_timeout_is_an_invalid_option_and_queues_nothing() {
    let queue = Queue::builder("zero-timeout").build().unwrap();
    let error = queue
        .enqueue_with(TaskOptions::new().timeout(Duration::ZERO), async {})
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "timeout",
            ..
        }
    ));
    let stats = queue.stats();
    assert_eq!((stats.queued, stats.running, stats.completed), (0, 0, 0));
}

#[tokio::test]
async fn row_1_7_infinity_means_no_timeout() {
    let queue = Queue::builder("infinity").build().unwrap();
    let handle = queue
        .enqueue_with(TaskOptions::new().timeout(Timeout::Infinity), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            "done"
        })
        .unwrap();
    assert_eq!(handle.await, Outcome::Ok("done"));
}

#[tokio::test]
async fn row_1_7_timeout_while_queued_never_starts() {
    let queue = queue("queued-timeout", 1);
    let (gate, blocker) = occupy(&queue).await;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let doomed = queue
        .enqueue_with(
            timeout_ms(30),
            async move { flag.store(true, Ordering::SeqCst) },
        )
        .unwrap();
    assert_eq!(doomed.await, Outcome::Exit(ExitReason::Timeout));
    assert_eq!(
        queue.stats().queued,
        0,
        "timed-out task still counted as queued"
    );
    gate.open();
    assert_eq!(blocker.await, Outcome::Ok(()));
    settle(&queue).await;
    assert!(
        !ran.load(Ordering::SeqCst),
        "a task that timed out while queued ran"
    );
    assert_eq!(queue.stats().timed_out, 1);
}

#[tokio::test(start_paused = true)]
async fn row_1_7_timeout_counts_queue_wait_plus_run_time() {
    // Waits 100 ms for the slot, then needs 100 ms to run: 200 ms in all,
    // over its 150 ms budget, although either part alone fits.
    let queue = queue("from-enqueue", 1);
    // (`sleep` inside `async` so the clock starts when the task runs.)
    let first = queue
        .enqueue(async { tokio::time::sleep(Duration::from_millis(100)).await })
        .unwrap();
    let second = queue
        .enqueue_with(timeout_ms(150), async {
            tokio::time::sleep(Duration::from_millis(100)).await
        })
        .unwrap();
    assert_eq!(first.await, Outcome::Ok(()));
    assert_eq!(second.await, Outcome::Exit(ExitReason::Timeout));
}

#[tokio::test]
async fn row_1_7_timeout_while_running_aborts_async_task_and_frees_slot() {
    let queue = queue("running-timeout", 1);
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let stuck = queue
        .enqueue_with(timeout_ms(30), async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    let next = queue.enqueue(async { "next" }).unwrap();
    assert_eq!(stuck.await, Outcome::Exit(ExitReason::Timeout));
    assert_eq!(next.await, Outcome::Ok("next"), "slot was not freed");
    assert!(dropped.raised(), "timed-out future was not aborted");
}

#[tokio::test]
async fn row_1_7_blocking_timeout_signals_and_keeps_its_slot_until_return() {
    let queue = queue("blocking-timeout", 1);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (saw_cancel_tx, saw_cancel) = std::sync::mpsc::channel::<bool>();
    let blocking = queue
        .enqueue_blocking(timeout_ms(30), move |cancel| {
            let deadline = std::time::Instant::now() + PATIENCE;
            while !cancel.is_cancelled() && std::time::Instant::now() < deadline {
                std::thread::park_timeout(Duration::from_millis(1));
            }
            saw_cancel_tx.send(cancel.is_cancelled()).unwrap();
            released.recv_timeout(PATIENCE).unwrap();
        })
        .unwrap();
    let (next, mut next_started) = {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = queue.enqueue(async move { tx.send(()).unwrap() }).unwrap();
        (handle, rx)
    };
    assert_eq!(blocking.await, Outcome::Exit(ExitReason::Timeout));
    let observed = tokio::task::spawn_blocking(move || saw_cancel.recv_timeout(PATIENCE))
        .await
        .unwrap();
    assert_eq!(observed, Ok(true), "the closure was not signalled");
    // The thread has not returned: its slot is still taken.
    assert_eq!(queue.stats().running, 1);
    assert!(
        next_started.try_recv().is_err(),
        "next task started while the slot was taken"
    );
    release.send(()).unwrap();
    assert_eq!(next.await, Outcome::Ok(()));
}

#[tokio::test]
async fn row_1_7_after_a_timeout_on_a_serial_queue_the_next_task_still_runs() {
    let queue = queue("serial-timeout", 1);
    let stuck = queue
        .enqueue_with(timeout_ms(10), std::future::pending::<()>())
        .unwrap();
    let next = queue.enqueue(async { 5 }).unwrap();
    assert_eq!(stuck.await, Outcome::Exit(ExitReason::Timeout));
    assert_eq!(next.await, Outcome::Ok(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_7_completion_and_timeout_race_yields_exactly_one_outcome() {
    // 2,000 tasks whose run time straddles their timeout. Outcomes go to a
    // mailbox so a second delivery would be seen; every ref must get one.
    let queue = queue("race", 16);
    let mut mailbox = Mailbox::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7a5c);
    let mut expected = HashMap::new();
    for _ in 0..2_000 {
        let run_micros = rng.gen_range(0..2_000u64);
        let timeout = Duration::from_micros(rng.gen_range(200..1_500u64));
        let task = async move {
            if run_micros > 0 {
                tokio::time::sleep(Duration::from_micros(run_micros)).await;
            }
            run_micros
        };
        let task_ref = queue
            .enqueue_to(&mailbox, TaskOptions::new().timeout(timeout), task)
            .unwrap();
        expected.insert(task_ref, run_micros);
    }
    let mut outcomes = HashMap::new();
    while outcomes.len() < expected.len() {
        let (task_ref, outcome) = mailbox
            .recv_timeout(PATIENCE)
            .await
            .expect("an outcome is missing");
        match &outcome {
            Outcome::Ok(value) => assert_eq!(Some(value), expected.get(&task_ref)),
            Outcome::Exit(reason) => assert_eq!(reason, &ExitReason::Timeout),
        }
        assert!(
            outcomes.insert(task_ref, outcome).is_none(),
            "two outcomes for one ref"
        );
    }
    settle(&queue).await;
    assert!(mailbox.try_recv().is_none(), "an extra outcome arrived");
    let stats = queue.stats();
    assert_eq!(stats.completed + stats.timed_out, 2_000);
    assert_eq!((stats.running, stats.queued), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_1_7_timers_of_finished_tasks_are_cancelled() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let queue = queue("timers", 10);
    let before = metrics.num_alive_tasks();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            queue
                .enqueue_with(
                    TaskOptions::new().timeout(Duration::from_secs(3600)),
                    async move { i },
                )
                .unwrap()
        })
        .collect();
    for handle in handles {
        assert!(handle.await.is_ok());
    }
    settle(&queue).await;
    // Aborted timers leave the runtime as soon as it processes the abort.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metrics.num_alive_tasks() > before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timers outlived their tasks"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn row_1_7_huge_timeouts_and_limits_mean_no_limit_not_a_panic() {
    let queue = queue("huge", 2);
    let handle = queue
        .enqueue_with(TaskOptions::new().timeout(Duration::MAX), async { 1 })
        .unwrap();
    assert_eq!(handle.await, Outcome::Ok(1));
    assert!(queue.wait_idle(Duration::MAX).await);
    let report = queue.shutdown(Duration::MAX).await;
    assert_eq!(report.cancelled_running, 0);
}
