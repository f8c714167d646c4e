//! SPEC rows 1.12 to 1.15: supervision, shutdown, introspection, extras.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tasque_core::{Error, ExitReason, Outcome, Queue, TaskOptions};

#[tokio::test]
async fn row_1_12_machinery_failure_restarts_clean_and_callers_hear_about_it() {
    let queue = queue("restart", 2);
    let (gate, running) = occupy(&queue).await;
    let trigger_gate = Gate::new();
    let (trigger, trigger_started) = enqueue_gated(&queue, &trigger_gate);
    started(trigger_started).await;
    let waiting = queue.enqueue(async { "never" }).unwrap();
    // The runner that finishes `trigger` fails outside any task.
    queue.inject_machinery_fault();
    trigger_gate.open();
    assert_eq!(trigger.await, Outcome::Ok(()));
    assert_eq!(running.await, Outcome::Exit(ExitReason::QueueRestarted));
    assert_eq!(waiting.await, Outcome::Exit(ExitReason::QueueRestarted));
    settle(&queue).await;
    let stats = queue.stats();
    assert_eq!(
        (stats.restarts, stats.restarted, stats.running, stats.queued),
        (1, 2, 0, 0)
    );
    // Clean again: the full budget is available.
    let (a, a_started) = enqueue_gated(&queue, &gate);
    let (b, b_started) = enqueue_gated(&queue, &gate);
    started(a_started).await;
    started(b_started).await;
    gate.open();
    assert_eq!((a.await, b.await), (Outcome::Ok(()), Outcome::Ok(())));
}

#[tokio::test]
async fn row_1_13_shutdown_refuses_drops_waiting_and_lets_running_finish() {
    let queue = queue("shutdown", 1);
    let (gate, running) = occupy(&queue).await;
    let waiting = queue.enqueue(async { "never" }).unwrap();
    let shutdown = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.shutdown(PATIENCE).await })
    };
    assert_eq!(waiting.await, Outcome::Exit(ExitReason::Shutdown));
    let refused = queue.enqueue(async {}).unwrap_err();
    assert!(matches!(refused, Error::ShutDown { .. }));
    assert!(!queue.is_accepting());
    gate.open();
    assert_eq!(
        running.await,
        Outcome::Ok(()),
        "running work was not allowed to finish"
    );
    let report = shutdown.await.unwrap();
    assert_eq!((report.dropped_waiting, report.cancelled_running), (1, 0));
}

#[tokio::test]
async fn row_1_13_running_work_past_the_deadline_is_cancelled() {
    let queue = queue("shutdown-deadline", 2);
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let stuck = queue
        .enqueue(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    let report = queue.shutdown(Duration::from_millis(30)).await;
    assert_eq!(report.cancelled_running, 1);
    assert_eq!(stuck.await, Outcome::Exit(ExitReason::Shutdown));
    settle(&queue).await;
    assert!(dropped.raised(), "cancelled task was not aborted");
    assert_eq!(queue.stats().shut_down, 1);
}

#[tokio::test]
async fn row_1_14_stats_snapshot_counts_every_kind_of_outcome() {
    let queue = queue("stats", 1);
    let (gate, blocker) = occupy(&queue).await;
    let to_cancel = queue.enqueue(async {}).unwrap();
    let to_time_out = queue.enqueue_with(timeout_ms(10), async {}).unwrap();
    let to_panic = queue.enqueue(async { panic!("counted") }).unwrap();
    let stats = queue.stats();
    assert_eq!((stats.running, stats.queued), (1, 3));
    assert!(queue.cancel(to_cancel.task_ref()));
    assert_eq!(to_time_out.await, Outcome::Exit(ExitReason::Timeout));
    gate.open();
    blocker.await;
    assert!(matches!(
        to_panic.await,
        Outcome::<()>::Exit(ExitReason::Panicked(_))
    ));
    settle(&queue).await;
    let stats = queue.stats();
    assert_eq!(
        (
            stats.completed,
            stats.failed,
            stats.timed_out,
            stats.cancelled,
            stats.queued,
            stats.running
        ),
        (1, 1, 1, 1, 0, 0)
    );
    assert!(stats.accepting);
}

#[tokio::test]
async fn row_1_15_priority_orders_waiting_work_fifo_within_a_priority() {
    let queue = queue("priority", 1);
    let (gate, blocker) = occupy(&queue).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (label, priority) in [("low", 5), ("a", 0), ("urgent", -1), ("b", 0), ("later", 5)] {
        let order = order.clone();
        let options = TaskOptions::new().priority(priority);
        handles.push(
            queue
                .enqueue_with(options, async move { order.lock().unwrap().push(label) })
                .unwrap(),
        );
    }
    gate.open();
    blocker.await;
    for handle in handles {
        handle.await;
    }
    assert_eq!(
        *order.lock().unwrap(),
        vec!["urgent", "a", "b", "low", "later"]
    );
}

#[tokio::test]
async fn row_1_15_cancel_drops_waiting_aborts_running_and_ignores_finished() {
    let queue = queue("cancel", 1);
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let running = queue
        .enqueue(async move {
            let _guard = guard;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    started(started_rx).await;
    let ran = DropFlag::default();
    let ran_guard = ran.guard();
    let waiting = queue.enqueue(async move { drop(ran_guard) }).unwrap();
    let (waiting_ref, running_ref) = (waiting.task_ref().clone(), running.task_ref().clone());
    assert!(queue.cancel(&waiting_ref));
    assert!(queue.cancel(&running_ref));
    assert_eq!(waiting.await, Outcome::Exit(ExitReason::Cancelled));
    assert_eq!(running.await, Outcome::Exit(ExitReason::Cancelled));
    settle(&queue).await;
    assert!(dropped.raised(), "running task was not aborted");
    assert!(
        !queue.cancel(&running_ref),
        "cancelling a finished task reported success"
    );
    // The waiting task's future was dropped without running: its guard fired
    // on drop, but the queue never counted it as completed.
    assert_eq!(queue.stats().completed, 0);
    let other = Queue::builder("other").build().unwrap();
    let foreign = other.enqueue(std::future::pending::<()>()).unwrap();
    assert!(
        !queue.cancel(foreign.task_ref()),
        "cancelled another queue's task"
    );
}
