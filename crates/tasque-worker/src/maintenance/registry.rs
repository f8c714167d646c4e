//! The roll call (every worker): records this worker in the namespace's worker registry
//! ([`tasque_durable::registry`]) with its host, pid and queues, beats every heartbeat
//! interval (alive for three intervals), and forgets itself when it stops. The leader also
//! deletes the rows of workers dead for longer than
//! [`STALE_AFTER`](tasque_durable::registry::STALE_AFTER).

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::registry::{WorkerBeat, STALE_AFTER};
use tasque_durable::Store;

use super::Leadership;
use crate::stop::Stop;

/// What this worker records about itself.
pub(crate) struct Identity {
    /// The worker's id.
    pub(crate) id: String,
    /// The queues it serves.
    pub(crate) queues: Vec<String>,
}

/// Beats every `interval` until `stop`, then forgets this worker.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    identity: Arc<Identity>,
    leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
) {
    let Some(registry) = store.registry() else {
        return stop.raised().await;
    };
    let beat = WorkerBeat {
        id: identity.id.clone(),
        host: host_name(),
        pid: std::process::id(),
        queues: identity.queues.clone(),
        ttl: interval * 3,
    };
    loop {
        if let Err(error) = registry.worker_beat(&beat).await {
            tracing::warn!(%error, "recording this worker in the registry failed; will retry");
        }
        if *leadership.borrow() {
            match registry.worker_prune(STALE_AFTER).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "forgot workers dead for long"),
                Err(error) => tracing::warn!(%error, "pruning the worker registry failed"),
            }
        }
        if stop.sleep(interval).await {
            break;
        }
    }
    if let Err(error) = registry.worker_forget(&beat.id).await {
        tracing::warn!(%error, "could not remove this worker from the registry; it will expire");
    }
}

/// This machine's name (`unknown` when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
