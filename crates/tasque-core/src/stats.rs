//! Introspection: a cheap snapshot of a queue's counts.

use crate::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ExitReason;

/// A snapshot of one queue, as returned by [`Queue::stats`](crate::Queue::stats).
/// Taking it costs one short lock; call it as often as you like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// The concurrency budget.
    pub max_concurrency: usize,
    /// Tasks waiting for a slot (timed-out or cancelled ones excluded).
    pub queued: usize,
    /// Slots taken. A blocking task whose caller already got a timeout still
    /// counts here until its thread returns.
    pub running: usize,
    /// Tasks that returned a value.
    pub completed: u64,
    /// Tasks that panicked (or whose named result did not serialise).
    pub failed: u64,
    /// Tasks ended by their timeout, queued or running.
    pub timed_out: u64,
    /// Tasks cancelled by ref.
    pub cancelled: u64,
    /// Tasks ended by shutdown.
    pub shut_down: u64,
    /// Tasks ended because the queue's machinery restarted.
    pub restarted: u64,
    /// How many times the queue's machinery restarted.
    pub restarts: u64,
    /// Whether the queue still accepts work.
    pub accepting: bool,
}

/// Outcome counters, updated by whoever delivers an outcome.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) shut_down: AtomicU64,
    pub(crate) restarted: AtomicU64,
    pub(crate) restarts: AtomicU64,
}

impl Counters {
    /// Counts one delivered outcome: a value is a completion, an exit counts
    /// by its reason.
    pub(crate) fn outcome<T>(&self, outcome: &Outcome<T>) {
        match outcome {
            Outcome::Ok(_) => bump(&self.completed),
            Outcome::Exit(reason) => self.exit(reason),
        }
    }

    /// Counts one delivered exit.
    pub(crate) fn exit(&self, reason: &ExitReason) {
        let counter = match reason {
            ExitReason::Panicked(_) | ExitReason::Unserializable(_) => &self.failed,
            ExitReason::Timeout => &self.timed_out,
            ExitReason::Cancelled => &self.cancelled,
            ExitReason::Shutdown => &self.shut_down,
            ExitReason::QueueRestarted => &self.restarted,
        };
        bump(counter);
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// What [`Queue::shutdown`](crate::Queue::shutdown) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Waiting tasks that were dropped with `Exit(Shutdown)`.
    pub dropped_waiting: usize,
    /// Running tasks still going at the deadline, cancelled with
    /// `Exit(Shutdown)` (blocking ones were signalled).
    pub cancelled_running: usize,
}
