//! The worker registry: each worker process records itself in its namespace (id, host, pid,
//! the queues it serves, when it started, its last heartbeat), so operators see who works and
//! the dashboard can say exactly that no live worker serves a queue.
//!
//! # Contract
//!
//! - A worker beats ([`WorkerRegistry::worker_beat`]) when it starts and then periodically; each
//!   beat sets its heartbeat to the database clock and keeps its row alive for the beat's time to
//!   live. The first beat of an id records when it started.
//! - A worker that stops forgets itself ([`WorkerRegistry::worker_forget`]). One that dies
//!   stops beating: its row is no longer alive once its time to live passed, and the leader
//!   deletes rows dead for longer than [`STALE_AFTER`] ([`WorkerRegistry::worker_prune`]).
//! - [`served_queues`] is the set of queues some live worker serves.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;

/// How long the leader keeps the row of a worker that stopped beating before deleting it.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// One heartbeat of a worker: the parameters of [`WorkerRegistry::worker_beat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerBeat {
    /// The worker's id (unique in the namespace).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// How long the row stays alive without another beat.
    pub ttl: Duration,
}

/// A recorded worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRecord {
    /// The worker's id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Its first beat (database clock).
    pub started_at: DateTime<Utc>,
    /// Its last beat (database clock).
    pub heartbeat_at: DateTime<Utc>,
    /// Whether its last beat's time to live has not passed yet.
    pub alive: bool,
}

/// The storage of the worker registry, implemented by each engine and reached through
/// [`Store::registry`](crate::Store::registry).
#[async_trait]
pub trait WorkerRegistry: Send + Sync {
    /// Records a worker (its first beat sets when it started) or renews it: heartbeat now,
    /// alive for `ttl`, queues, host and pid as given.
    async fn worker_beat(&self, beat: &WorkerBeat) -> Result<()>;

    /// Every recorded worker, by id.
    async fn worker_list(&self) -> Result<Vec<WorkerRecord>>;

    /// Deletes a worker's row (it stops). Returns false if there was none.
    async fn worker_forget(&self, id: &str) -> Result<bool>;

    /// Deletes the rows of workers dead for longer than `older_than`; returns how many.
    async fn worker_prune(&self, older_than: Duration) -> Result<u64>;
}

/// The queues some live worker of `workers` serves.
pub fn served_queues(workers: &[WorkerRecord]) -> BTreeSet<String> {
    workers
        .iter()
        .filter(|w| w.alive)
        .flat_map(|w| w.queues.iter().cloned())
        .collect()
}

/// The queues of a beat as stored: a JSON array of names.
pub fn encode_queues(queues: &[String]) -> String {
    serde_json::to_string(queues).unwrap_or_else(|_| "[]".to_string())
}

/// The queues of a stored row; malformed text is [`Error::Corrupt`](crate::Error::Corrupt).
pub fn decode_queues(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| crate::Error::Corrupt(format!("worker registry queues: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, queues: &[&str], alive: bool) -> WorkerRecord {
        WorkerRecord {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            heartbeat_at: DateTime::<Utc>::UNIX_EPOCH,
            alive,
        }
    }

    #[test]
    fn only_live_workers_serve_queues() {
        let workers = [
            record("a", &["default", "mail"], true),
            record("b", &["reports"], false),
        ];
        let served: Vec<String> = served_queues(&workers).into_iter().collect();
        assert_eq!(served, ["default", "mail"]);
    }

    #[test]
    fn queues_round_trip_and_bad_text_is_corrupt() {
        let queues = vec!["a".to_string(), "b\"c".to_string()];
        assert_eq!(decode_queues(&encode_queues(&queues)).unwrap(), queues);
        assert!(decode_queues("{").is_err());
    }
}
