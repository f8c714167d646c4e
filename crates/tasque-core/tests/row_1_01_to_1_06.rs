//! SPEC rows 1.1 to 1.6: start, refs, task forms, dispatch, outcomes, isolation.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::*;
use tasque_core::{Error, ExitReason, Outcome, Queue, TaskOptions, TaskRegistry};

#[tokio::test]
async fn row_1_1_zero_max_concurrency_is_rejected_at_start() {
    let error = Queue::builder("zero")
        .max_concurrency(0)
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "max_concurrency",
            ..
        }
    ));
    assert!(error.to_string().contains("max_concurrency"));
}

#[tokio::test]
async fn row_1_1_default_max_concurrency_is_ten() {
    let queue = Queue::builder("default").build().unwrap();
    assert_eq!(queue.max_concurrency(), 10);
    assert_eq!(queue.stats().max_concurrency, 10);
}

#[test]
fn row_1_1_starting_outside_a_runtime_is_a_clear_error() {
    let error = Queue::builder("no-runtime").build().unwrap_err();
    assert!(matches!(error, Error::NoRuntime));
}

#[tokio::test]
async fn row_1_1_queues_have_independent_budgets() {
    let busy = queue("busy", 1);
    let free = queue("free", 1);
    let gate = Gate::new();
    let (blocked, started_signal) = enqueue_gated(&busy, &gate);
    started(started_signal).await;
    let other = free.enqueue(async { "ran" }).unwrap();
    assert_eq!(other.await, Outcome::Ok("ran"));
    assert_eq!(busy.stats().running, 1);
    gate.open();
    assert_eq!(blocked.await, Outcome::Ok(()));
}

#[tokio::test]
async fn row_1_2_refs_are_unique_per_call_even_for_the_same_function() {
    let queue = Queue::builder("refs").build().unwrap();
    async fn same() -> u8 {
        1
    }
    let mut seen = HashSet::new();
    let mut handles = Vec::new();
    for _ in 0..100 {
        let handle = queue.enqueue(same()).unwrap();
        assert!(seen.insert(handle.task_ref().clone()), "duplicate ref");
        handles.push(handle);
    }
    for handle in handles {
        assert_eq!(handle.await, Outcome::Ok(1));
    }
}

#[tokio::test]
async fn row_1_2_enqueue_returns_at_once_even_when_the_queue_is_full() {
    let queue = queue("full", 1);
    let (gate, first) = occupy(&queue).await;
    // The queue is full: enqueue must still return immediately with a ref.
    let queued = queue.enqueue(async { 2 }).unwrap();
    assert_eq!(queue.stats().queued, 1);
    gate.open();
    assert_eq!(first.await, Outcome::Ok(()));
    assert_eq!(queued.await, Outcome::Ok(2));
}

#[tokio::test]
async fn row_1_3_async_blocking_and_named_forms_all_run() {
    let tasks = TaskRegistry::new()
        .register(
            "upcase",
            |(text,): (String,)| async move { text.to_uppercase() },
        )
        .register_blocking("add", |(a, b): (i64, i64)| a + b);
    let queue = Queue::builder("forms").tasks(tasks).build().unwrap();
    let async_task = queue.enqueue(async { 40 + 2 }).unwrap();
    let blocking = queue
        .enqueue_blocking(TaskOptions::new(), |_cancel| std::thread::current().id())
        .unwrap();
    let named = queue
        .call("upcase", json!(["hello"]), TaskOptions::new())
        .unwrap();
    let named_blocking = queue
        .call("add", json!([2, 3]), TaskOptions::new())
        .unwrap();
    assert_eq!(async_task.await, Outcome::Ok(42));
    assert!(blocking.await.is_ok());
    assert_eq!(named.await, Outcome::Ok(json!("HELLO")));
    assert_eq!(named_blocking.await, Outcome::Ok(json!(5)));
}

#[tokio::test]
async fn row_1_3_unknown_name_or_bad_args_is_invalid_task_and_queues_nothing() {
    let tasks = TaskRegistry::new().register("double", |n: i64| async move { n * 2 });
    let queue = Queue::builder("invalid").tasks(tasks).build().unwrap();
    let unknown = queue
        .call("triple", json!(3), TaskOptions::new())
        .unwrap_err();
    assert!(matches!(&unknown, Error::UnknownTask { name } if name == "triple"));
    let bad_args = queue
        .call("double", json!("three"), TaskOptions::new())
        .unwrap_err();
    assert!(matches!(&bad_args, Error::InvalidArgs { name, .. } if name == "double"));
    assert!(unknown.is_invalid_task() && bad_args.is_invalid_task());
    let stats = queue.stats();
    assert_eq!((stats.queued, stats.running, stats.completed), (0, 0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn row_1_3_blocking_tasks_do_not_stall_async_tasks_on_the_same_runtime() {
    // On a single-threaded runtime, a blocking closure that waits for an async
    // task would deadlock if it ran on the async worker.
    let queue = queue("no-stall", 4);
    let (to_blocking, from_async) = std::sync::mpsc::channel::<&'static str>();
    let blocking = queue
        .enqueue_blocking(TaskOptions::new(), move |_cancel| {
            from_async
                .recv_timeout(PATIENCE)
                .expect("async task never ran")
        })
        .unwrap();
    let async_task = queue
        .enqueue(async move {
            tokio::task::yield_now().await;
            to_blocking.send("hello from async").unwrap();
        })
        .unwrap();
    assert_eq!(async_task.await, Outcome::Ok(()));
    assert_eq!(blocking.await, Outcome::Ok("hello from async"));
}

#[tokio::test]
async fn row_1_4_dispatch_is_fifo() {
    let queue = queue("fifo", 1);
    let (gate, first) = occupy(&queue).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let order = order.clone();
            queue
                .enqueue(async move { order.lock().unwrap().push(i) })
                .unwrap()
        })
        .collect();
    gate.open();
    first.await;
    for handle in handles {
        handle.await;
    }
    assert_eq!(*order.lock().unwrap(), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn row_1_4_free_slots_start_at_once_and_full_ones_wait() {
    let queue = queue("slots", 2);
    let gate = Gate::new();
    let (a, a_started) = enqueue_gated(&queue, &gate);
    let (b, b_started) = enqueue_gated(&queue, &gate);
    started(a_started).await;
    started(b_started).await;
    let (c, mut c_started) = enqueue_gated(&queue, &gate);
    let stats = queue.stats();
    assert_eq!((stats.running, stats.queued), (2, 1));
    assert!(
        c_started.try_recv().is_err(),
        "third task started over the budget"
    );
    gate.open();
    started(c_started).await;
    for handle in [a, b, c] {
        assert_eq!(handle.await, Outcome::Ok(()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_4_running_never_exceeds_max_concurrency() {
    let queue = queue("bound", 3);
    let concurrency = Concurrency::default();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let concurrency = concurrency.clone();
            queue
                .enqueue(async move {
                    let _inside = concurrency.enter();
                    if i % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                })
                .unwrap()
        })
        .collect();
    for handle in handles {
        assert!(handle.await.is_ok());
    }
    assert!(concurrency.peak() <= 3, "peak {}", concurrency.peak());
    assert!(concurrency.peak() >= 1);
}

#[tokio::test]
async fn row_1_5_a_task_returning_err_is_an_ok_outcome() {
    let queue = Queue::builder("err-is-ok").build().unwrap();
    let handle = queue.enqueue(async { Err::<u8, &str>("nope") }).unwrap();
    assert_eq!(handle.await, Outcome::Ok(Err("nope")));
}

#[tokio::test]
async fn row_1_6_a_panic_is_isolated_and_frees_its_slot() {
    let queue = queue("panic", 1);
    let crash = queue.enqueue(async { panic!("kaboom {}", 7) }).unwrap();
    let next = queue.enqueue(async { "still running" }).unwrap();
    assert_eq!(
        crash.await,
        Outcome::<()>::Exit(ExitReason::Panicked("kaboom 7".into()))
    );
    assert_eq!(next.await, Outcome::Ok("still running"));
    let stats = queue.stats();
    assert_eq!((stats.failed, stats.completed), (1, 1));
}

#[tokio::test]
async fn row_1_6_a_panic_does_not_disturb_other_running_tasks() {
    let queue = queue("neighbours", 4);
    let (gate, neighbour) = occupy(&queue).await;
    let crash = queue.enqueue(async { panic!("boom") }).unwrap();
    assert!(matches!(
        crash.await,
        Outcome::<()>::Exit(ExitReason::Panicked(_))
    ));
    gate.open();
    assert_eq!(neighbour.await, Outcome::Ok(()));
}

#[tokio::test]
async fn row_1_6_blocking_panics_are_isolated_too() {
    let queue = queue("blocking-panic", 1);
    let crash = queue
        .enqueue_blocking(TaskOptions::new(), |_| -> u8 { panic!("blocking boom") })
        .unwrap();
    let next = queue.enqueue_blocking(TaskOptions::new(), |_| 9u8).unwrap();
    assert_eq!(
        crash.await,
        Outcome::Exit(ExitReason::Panicked("blocking boom".into()))
    );
    assert_eq!(next.await, Outcome::Ok(9));
}

#[tokio::test]
async fn row_1_6_a_thousand_panics_do_not_take_the_queue_down() {
    let queue = queue("many-panics", 8);
    let crashes: Vec<_> = (0..1000)
        .map(|_| queue.enqueue(async { panic!("again") }).unwrap())
        .collect();
    for crash in crashes {
        assert!(matches!(
            crash.await,
            Outcome::<()>::Exit(ExitReason::Panicked(_))
        ));
    }
    assert_eq!(queue.enqueue(async { 1 }).unwrap().await, Outcome::Ok(1));
    settle(&queue).await;
    assert_eq!(queue.stats().failed, 1000);
}

#[tokio::test]
async fn row_1_6_after_a_panic_on_a_serial_queue_the_next_task_still_runs() {
    let queue = queue("serial-panic", 1);
    let _ = queue.enqueue(async { panic!("first") }).unwrap();
    let after = queue.enqueue(async { "next" }).unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), after)
            .await
            .unwrap(),
        Outcome::Ok("next")
    );
}
