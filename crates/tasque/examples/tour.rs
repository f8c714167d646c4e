//! A tour of the in-process queue: a CPU-bound queue capped at the number of
//! cores and an I/O-bound queue with a higher limit, as in the reference's
//! examples, printing what happens as it happens.
//!
//! Run with `cargo run -p tasque --example tour`.

use std::time::{Duration, Instant};

use serde_json::json;
use tasque::{ExitReason, Mailbox, Outcome, Queue, TaskOptions, TaskRegistry};

fn log(start: Instant, message: impl std::fmt::Display) {
    println!(
        "[{:>6.1} ms] {message}",
        start.elapsed().as_secs_f64() * 1000.0
    );
}

/// Deliberately slow prime counting: CPU-bound work.
fn count_primes(limit: u64) -> usize {
    (2..limit)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .count()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // Task panics are caught by the queue; keep the default hook's backtraces
    // out of the tour's output.
    std::panic::set_hook(Box::new(|info| eprintln!("(a task panicked: {info})")));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cpu = Queue::builder("cpu")
        .max_concurrency(cores)
        .register()
        .build()?;
    let tasks = TaskRegistry::new().register("fetch_profile", |user_id: u64| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        json!({ "id": user_id, "name": format!("user-{user_id}") })
    });
    let io = Queue::builder("io")
        .max_concurrency(50)
        .tasks(tasks)
        .register()
        .build()?;
    log(
        start,
        format!("started queue cpu (max {cores}) and queue io (max 50)"),
    );

    // CPU-bound: blocking closures, at most `cores` at a time, off the async workers.
    let mut renders = Vec::new();
    for i in 0..(cores * 2) as u64 {
        renders.push(
            cpu.enqueue_blocking(TaskOptions::new(), move |_cancel| count_primes(40_000 + i))?,
        );
    }
    let stats = cpu.stats();
    log(
        start,
        format!("cpu: {} running, {} waiting", stats.running, stats.queued),
    );

    // I/O-bound: named tasks (name + JSON args) into a mailbox, in completion order.
    let mut mailbox = Mailbox::new();
    for user_id in [3, 1, 2] {
        io.call_to(
            &mailbox,
            "fetch_profile",
            json!(user_id),
            TaskOptions::new(),
        )?;
    }
    // A call that cannot be valid is refused at enqueue; nothing is queued.
    let refused = io
        .call("fetch_profile", json!("not a number"), TaskOptions::new())
        .unwrap_err();
    log(start, format!("io: refused at enqueue: {refused}"));

    // Per-task timeout counted from enqueue, and a crash that stays isolated.
    let slow = io.enqueue_with(
        TaskOptions::new().timeout(Duration::from_millis(50)),
        async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        },
    )?;
    let crash = io.enqueue(async { panic!("remote API sent garbage") })?;

    for _ in 0..3 {
        let (task_ref, outcome) = mailbox.recv_timeout(Duration::from_secs(5)).await?;
        log(start, format!("io: {task_ref} delivered {outcome:?}"));
    }
    match crash.await {
        Outcome::Exit(ExitReason::Panicked(message)) => log(
            start,
            format!("io: crash isolated: panicked with {message:?}"),
        ),
        other => log(start, format!("io: unexpected {other:?}")),
    }
    log(start, format!("io: slow task -> {:?}", slow.await));

    // Await with a limit only bounds the wait; the task keeps going.
    let mut long = io.enqueue(async {
        tokio::time::sleep(Duration::from_millis(80)).await;
        "done eventually"
    })?;
    log(
        start,
        format!(
            "io: short await -> {:?}",
            long.wait_for(Duration::from_millis(10)).await
        ),
    );
    log(start, format!("io: await again -> {:?}", long.wait().await));

    for (i, render) in renders.into_iter().enumerate() {
        log(start, format!("cpu: render {i} -> {:?}", render.await));
    }

    // Named queues can be found from anywhere in the process.
    let found = Queue::lookup("io").expect("io is registered");
    log(
        start,
        format!("lookup(\"io\") -> {found:?}; stats {:?}", found.stats()),
    );

    let report = io.shutdown(Duration::from_secs(1)).await;
    cpu.shutdown(Duration::from_secs(1)).await;
    log(
        start,
        format!(
            "shut down: {report:?}; enqueue now -> {}",
            io.enqueue(async {}).unwrap_err()
        ),
    );
    Ok(())
}
