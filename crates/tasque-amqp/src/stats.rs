//! Metrics: counters and the consumer's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tasque_core::QueueStats;

/// A snapshot of a consumer's counters, from
/// [`ConsumerHandle::stats`](crate::ConsumerHandle::stats). Cheap; take it as
/// often as you like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Deliveries received from the broker.
    pub received: u64,
    /// Deliveries acked after their handler succeeded.
    pub acked: u64,
    /// Deliveries nacked with requeue: failures under [`RetryMode::Requeue`](crate::RetryMode::Requeue),
    /// work cut short by shutdown, and messages whose retry or dead-letter
    /// publish failed.
    pub nacked: u64,
    /// Failed deliveries republished for another attempt (then acked).
    pub retried: u64,
    /// Messages dead-lettered: attempts exhausted, undecodable payload or unknown task.
    pub dead_lettered: u64,
    /// Deliveries the broker flagged as redelivered.
    pub redelivered: u64,
    /// Settlements dropped because their channel had died: the broker
    /// redelivers those messages on the new connection instead.
    pub settlements_dropped: u64,
    /// How many times the consumer reconnected after losing its connection.
    pub reconnects: u64,
    /// How many times the consumer's connection loop was restarted after a panic (each also
    /// logged at `error`); the session it was running was dropped, so the broker redelivers
    /// its unacked messages.
    pub restarts: u64,
    /// The engine's own counts (running, completed, failed, timed out…).
    pub engine: QueueStats,
}

/// What the consumer is doing, as seen through
/// [`ConsumerHandle::state`](crate::ConsumerHandle::state).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerState {
    /// Connecting (or waiting to reconnect); `attempt` counts from 1 for each
    /// run of failures.
    Connecting {
        /// Connection attempts since the last successful one.
        attempt: u32,
        /// The error that ended the previous connection or attempt, if any.
        last_error: Option<String>,
    },
    /// Connected and consuming; `session` counts connections, from 1.
    Consuming {
        /// Which connection this is (1 for the first, 2 after one reconnect…).
        session: u64,
    },
    /// Shutting down: no longer consuming, finishing running handlers.
    Draining,
    /// Stopped; nothing runs any more.
    Stopped,
}

/// The live counters behind [`ConsumerStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) nacked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) settlements_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) restarts: Arc<AtomicU64>,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, engine: QueueStats) -> ConsumerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ConsumerStats {
            received: read(&self.received),
            acked: read(&self.acked),
            nacked: read(&self.nacked),
            retried: read(&self.retried),
            dead_lettered: read(&self.dead_lettered),
            redelivered: read(&self.redelivered),
            settlements_dropped: read(&self.settlements_dropped),
            reconnects: read(&self.reconnects),
            restarts: read(&self.restarts),
            engine,
        }
    }
}
