//! Finished-job announcements, so that [`Client::wait`](super::Client::wait) wakes when a job
//! ends instead of polling.
//!
//! Two paths carry them. In-process, a hub (one per process, by namespace) hears every job a
//! worker of this process finished. Across processes, engines that can push
//! ([`Store::announce_finished`], PostgreSQL's NOTIFY) put a message
//! `"#finished:<id>,<id>..."` ([`FINISHED_PREFIX`]) on their wake-up channel
//! ([`Store::subscribe_wakeups`]). Both are hints: a waiter re-reads the job when told, and
//! polls with a backing-off interval as the fallback, so a lost announcement costs latency,
//! never a wrong answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::model::JobId;
use crate::Store;

/// The start of a finished-jobs message on an engine's wake-up channel, followed by the jobs'
/// ids separated by commas. Never a valid queue name, so workers ignore it.
pub const FINISHED_PREFIX: &str = "#finished:";

/// How many announcements a slow waiter may miss before it is told it lagged (and re-reads).
const CAPACITY: usize = 1024;

type Senders = Mutex<HashMap<String, broadcast::Sender<Arc<[JobId]>>>>;

fn senders() -> &'static Senders {
    static HUB: OnceLock<Senders> = OnceLock::new();
    HUB.get_or_init(Senders::default)
}

/// Subscribes to this process's announcements for `namespace`.
pub(crate) fn subscribe(namespace: &str) -> broadcast::Receiver<Arc<[JobId]>> {
    let mut senders = senders().lock().unwrap_or_else(|e| e.into_inner());
    senders
        .entry(namespace.to_string())
        .or_insert_with(|| broadcast::channel(CAPACITY).0)
        .subscribe()
}

/// Tells this process's waiters on `namespace` that `jobs` finished (completed, failed for
/// good, cancelled or deleted).
pub fn announce_finished_locally(namespace: &str, jobs: &[JobId]) {
    if jobs.is_empty() {
        return;
    }
    let mut senders = senders().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sender) = senders.get(namespace) {
        if sender.send(jobs.into()).is_err() {
            // Nobody waits on this namespace any more.
            senders.remove(namespace);
        }
    }
}

/// Tells every waiter that `jobs` finished: this process's at once, other processes' through
/// the engine when it can push ([`Store::announce_finished`]). A worker calls this after
/// writing outcomes; an error of the engine's announcement is returned for logging only (the
/// waiters' polling covers it).
pub async fn announce_finished<S: Store + ?Sized>(store: &S, jobs: &[JobId]) -> crate::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    announce_finished_locally(store.namespace(), jobs);
    store.announce_finished(jobs).await
}

/// The jobs a wake-up channel message announces as finished: `None` for other messages
/// (queue names).
pub fn parse_finished(message: &str) -> Option<Vec<JobId>> {
    let ids = message.strip_prefix(FINISHED_PREFIX)?;
    Some(
        ids.split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
    )
}

/// A finished-jobs message for the jobs, split so that each stays under `max_len` bytes.
pub fn finished_messages(jobs: &[JobId], max_len: usize) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::from(FINISHED_PREFIX);
    for job in jobs {
        let id = job.to_string();
        if current.len() > FINISHED_PREFIX.len() && current.len() + id.len() + 1 > max_len {
            messages.push(std::mem::replace(
                &mut current,
                String::from(FINISHED_PREFIX),
            ));
        }
        if current.len() > FINISHED_PREFIX.len() {
            current.push(',');
        }
        current.push_str(&id);
    }
    if current.len() > FINISHED_PREFIX.len() {
        messages.push(current);
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_messages_round_trip_and_split_under_the_limit() {
        let jobs: Vec<JobId> = (1..=500).map(JobId).collect();
        let messages = finished_messages(&jobs, 100);
        assert!(messages.len() > 1);
        assert!(messages.iter().all(|m| m.len() <= 100));
        let back: Vec<JobId> = messages
            .iter()
            .flat_map(|m| parse_finished(m).unwrap())
            .collect();
        assert_eq!(back, jobs);
        assert_eq!(parse_finished("emails"), None);
    }

    #[tokio::test]
    async fn local_announcements_reach_subscribers_of_the_namespace_only() {
        let mut mine = subscribe("hub-test-a");
        let mut other = subscribe("hub-test-b");
        announce_finished_locally("hub-test-a", &[JobId(7)]);
        assert_eq!(&*mine.recv().await.unwrap(), &[JobId(7)]);
        assert!(other.try_recv().is_err());
    }
}
