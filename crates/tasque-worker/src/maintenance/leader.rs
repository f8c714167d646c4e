//! Leader election: one worker per namespace holds the `leader` lease of the store's
//! [`ScheduleEngine`](tasque_durable::schedule::ScheduleEngine) (a lease row on every engine,
//! timed by the database clock) and runs the leader-only services.
//!
//! Every worker tries to take or renew the lease every fifth of its time to live. A leader
//! that cannot renew (database unreachable, lease lost) steps down at once; when a leader dies,
//! its lease expires and another worker takes it at its next try, so takeover takes at most
//! the lease's time to live plus one try interval. A leader that shuts down gives the lease
//! up, so another takes over within one try interval. Two leaders for a moment (a leader
//! paused longer than its lease) are harmless: every leader-only service is safe to run
//! concurrently (fires are compare-and-swaps, rescues and cleans are guarded writes).
//!
//! Stores without a schedule engine have no lease: every worker leads itself, as before
//! leader election existed.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::schedule::LEADER_LEASE;
use tasque_durable::Store;
use tokio::sync::watch;

use crate::stop::Stop;

/// Runs the election for `holder` until `stop`, publishing whether this worker leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    holder: String,
    ttl: Duration,
    leading: Arc<watch::Sender<bool>>,
    stop: Arc<Stop>,
) {
    let Some(engine) = store.schedules() else {
        leading.send_replace(true);
        return stop.raised().await;
    };
    let interval = ttl / 5;
    loop {
        let won = match engine.acquire_lease(LEADER_LEASE, &holder, ttl).await {
            Ok(won) => won,
            Err(error) => {
                tracing::warn!(%error, "leader lease renewal failed; stepping down");
                false
            }
        };
        let was = leading.send_replace(won);
        if won != was {
            tracing::info!(worker = %holder, leading = won, "leadership changed");
        }
        if stop.sleep(interval).await {
            break;
        }
    }
    if leading.send_replace(false) {
        if let Err(error) = engine.release_lease(LEADER_LEASE, &holder).await {
            tracing::warn!(%error, "could not give the leader lease up; it will expire");
        }
    }
}
