//! SPEC rows 1.8 to 1.11: await, mailbox, gone callers, names.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tasque_core::{
    AwaitError, Error, LocalNames, Mailbox, NameRegistry, Outcome, Queue, TaskOptions,
    DEFAULT_AWAIT_LIMIT,
};

#[tokio::test]
async fn row_1_8_await_limit_times_out_without_cancelling_and_can_be_retried() {
    let queue = Queue::builder("await").build().unwrap();
    let gate = Gate::new();
    let task_gate = gate.clone();
    let mut handle = queue
        .enqueue(async move {
            task_gate.pass().await;
            "eventually"
        })
        .unwrap();
    let limit = Duration::from_millis(20);
    assert_eq!(
        handle.wait_for(limit).await,
        Err(AwaitError::TimedOut(limit))
    );
    assert_eq!(
        queue.stats().running,
        1,
        "an await timeout cancelled the task"
    );
    gate.open();
    assert_eq!(handle.wait().await, Ok(Outcome::Ok("eventually")));
    assert_eq!(handle.wait().await, Err(AwaitError::AlreadyReceived));
}

#[test]
fn row_1_8_default_await_limit_is_five_seconds() {
    assert_eq!(DEFAULT_AWAIT_LIMIT, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn row_1_9_mailbox_delivers_in_completion_order() {
    let queue = queue("mailbox-order", 3);
    let mut mailbox = Mailbox::new();
    let slow = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            "slow"
        })
        .unwrap();
    let medium = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            "medium"
        })
        .unwrap();
    let fast = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            "fast"
        })
        .unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        let (task_ref, outcome) = mailbox.recv_timeout(PATIENCE).await.unwrap();
        order.push((task_ref, outcome));
    }
    assert_eq!(
        order,
        vec![
            (fast, Outcome::Ok("fast")),
            (medium, Outcome::Ok("medium")),
            (slow, Outcome::Ok("slow")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn row_1_9_selective_receive_keeps_other_deliveries_buffered() {
    let queue = queue("selective", 3);
    let mut mailbox = Mailbox::new();
    let wanted = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            1
        })
        .unwrap();
    let early_a = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async { 2 })
        .unwrap();
    let early_b = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async { 3 })
        .unwrap();
    assert_eq!(mailbox.receive(&wanted, PATIENCE).await, Ok(Outcome::Ok(1)));
    assert_eq!(mailbox.len(), 2);
    assert_eq!(mailbox.try_recv(), Some((early_a, Outcome::Ok(2))));
    assert_eq!(mailbox.try_recv(), Some((early_b, Outcome::Ok(3))));
    assert!(mailbox.is_empty());
}

#[tokio::test]
async fn row_1_9_selective_receive_times_out_and_finds_it_later() {
    let queue = Queue::builder("selective-timeout").build().unwrap();
    let mut mailbox = Mailbox::new();
    let gate = Gate::new();
    let task_gate = gate.clone();
    let slow = queue
        .enqueue_to(&mailbox, TaskOptions::new(), async move {
            task_gate.pass().await;
            "late"
        })
        .unwrap();
    let limit = Duration::from_millis(20);
    assert_eq!(
        mailbox.receive(&slow, limit).await,
        Err(AwaitError::TimedOut(limit))
    );
    gate.open();
    assert_eq!(
        mailbox.receive(&slow, PATIENCE).await,
        Ok(Outcome::Ok("late"))
    );
}

#[tokio::test]
async fn row_1_10_a_gone_caller_is_ignored_and_the_task_still_runs() {
    let queue = queue("gone", 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let handle = queue
        .enqueue(async move {
            tokio::task::yield_now().await;
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    drop(handle);
    let mailbox = Mailbox::new();
    let counter = ran.clone();
    queue
        .enqueue_to(&mailbox, TaskOptions::new(), async move {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    drop(mailbox);
    let after = queue.enqueue(async { "slot freed" }).unwrap();
    assert_eq!(after.await, Outcome::Ok("slot freed"));
    settle(&queue).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    let stats = queue.stats();
    assert_eq!((stats.running, stats.queued, stats.completed), (0, 0, 3));
}

#[tokio::test]
async fn row_1_11_registered_queue_is_found_by_name_and_names_are_exclusive() {
    let queue = Queue::builder("row-1-11-global")
        .register()
        .build()
        .unwrap();
    let found = Queue::lookup("row-1-11-global").expect("registered queue not found");
    assert_eq!(found.enqueue(async { 11 }).unwrap().await, Outcome::Ok(11));
    let taken = Queue::builder("row-1-11-global")
        .register()
        .build()
        .unwrap_err();
    assert!(matches!(taken, Error::NameTaken { name } if name == "row-1-11-global"));
    queue.shutdown(Duration::from_secs(1)).await;
    assert!(
        Queue::lookup("row-1-11-global").is_none(),
        "shut-down queue still registered"
    );
    let again = Queue::builder("row-1-11-global").register().build();
    assert!(again.is_ok(), "name not freed by shutdown");
}

#[tokio::test]
async fn row_1_11_a_custom_registry_can_be_plugged_in() {
    let names = Arc::new(LocalNames::new());
    let registry: Arc<dyn NameRegistry> = names.clone();
    let _queue = Queue::builder("custom")
        .register_in(registry.clone())
        .build()
        .unwrap();
    assert_eq!(names.names(), vec!["custom".to_owned()]);
    assert!(
        Queue::lookup("custom").is_none(),
        "custom names leaked into the global registry"
    );
    let found = registry.lookup("custom").unwrap();
    assert_eq!(found.name(), "custom");
    let taken = Queue::builder("custom")
        .register_in(registry)
        .build()
        .unwrap_err();
    assert!(matches!(taken, Error::NameTaken { .. }));
}
