//! Shared helpers for the contract tests: gates, start signals, drop flags.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tasque_core::{Queue, TaskHandle, TaskOptions};
use tokio::sync::{oneshot, Semaphore};

/// How long any test waits for an event before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A gate that async tasks wait on until the test opens it.
#[derive(Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    pub fn new() -> Self {
        Gate(Arc::new(Semaphore::new(0)))
    }
    pub async fn pass(&self) {
        let _permit = self.0.acquire().await.expect("gate closed");
        self.0.add_permits(1);
    }
    pub fn open(&self) {
        self.0.add_permits(1);
    }
}

/// Enqueues a task that signals when it starts and then waits on `gate`.
pub fn enqueue_gated(queue: &Queue, gate: &Gate) -> (TaskHandle<()>, oneshot::Receiver<()>) {
    let (started_tx, started_rx) = oneshot::channel();
    let gate = gate.clone();
    let handle = queue
        .enqueue(async move {
            let _ = started_tx.send(());
            gate.pass().await;
        })
        .expect("enqueue gated task");
    (handle, started_rx)
}

/// Waits for a start signal, failing the test after [`PATIENCE`].
pub async fn started(signal: oneshot::Receiver<()>) {
    tokio::time::timeout(PATIENCE, signal)
        .await
        .expect("task did not start in time")
        .expect("task dropped before starting");
}

/// A flag raised when the value holding it is dropped (a future being aborted).
#[derive(Clone, Default)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Tracks how many tasks run at once and the highest value seen.
#[derive(Clone, Default)]
pub struct Concurrency {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Concurrency {
    pub fn enter(&self) -> ConcurrencyGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        ConcurrencyGuard(self.now.clone())
    }
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

pub struct ConcurrencyGuard(Arc<AtomicUsize>);

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Options with a timeout in milliseconds.
pub fn timeout_ms(ms: u64) -> TaskOptions {
    TaskOptions::new().timeout(Duration::from_millis(ms))
}

/// Waits until the queue is idle, failing the test after [`PATIENCE`].
pub async fn settle(queue: &Queue) {
    assert!(queue.wait_idle(PATIENCE).await, "queue did not become idle");
}

/// Starts a queue called `name` with `max` slots.
pub fn queue(name: &str, max: usize) -> Queue {
    Queue::builder(name)
        .max_concurrency(max)
        .build()
        .expect("start queue")
}

/// Occupies one slot of `queue` with a gated task that has started; open
/// the returned gate to let it finish.
pub async fn occupy(queue: &Queue) -> (Gate, TaskHandle<()>) {
    let gate = Gate::new();
    let (handle, signal) = enqueue_gated(queue, &gate);
    started(signal).await;
    (gate, handle)
}
