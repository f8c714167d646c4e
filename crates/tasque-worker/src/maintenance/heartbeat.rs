//! The heartbeat: every worker (leader or not) renews the leases of its own running jobs.

use std::sync::Arc;
use std::time::Duration;

use tasque_core::Queue;
use tasque_durable::{LeaseStatus, Store};

use crate::inflight::{Abort, InFlight};
use crate::stop::Stop;

/// Renews the leases of running jobs; aborts the handlers of jobs that were
/// cancelled or whose lease was lost.
pub(crate) async fn heartbeat(
    store: Arc<dyn Store>,
    inflight: Arc<InFlight>,
    queue: Queue,
    interval: Duration,
    lease: Duration,
    stop: Arc<Stop>,
) {
    while !stop.sleep(interval).await {
        beat(&*store, &inflight, &queue, lease).await;
    }
}

/// One heartbeat: extends every live run's lease in one round trip.
pub(crate) async fn beat(store: &dyn Store, inflight: &InFlight, queue: &Queue, lease: Duration) {
    let runs = inflight.live_runs();
    if runs.is_empty() {
        return;
    }
    match store.extend_leases(runs.clone(), lease).await {
        Ok(statuses) => {
            for (run, status) in runs.into_iter().zip(statuses) {
                let abort = match status {
                    LeaseStatus::Extended(_) => continue,
                    LeaseStatus::Cancelled => Abort::Cancelled,
                    LeaseStatus::Lost => Abort::LeaseLost,
                };
                tracing::info!(%run, ?abort, "aborting handler");
                if let Some(task) = inflight.abort(run, abort) {
                    queue.cancel(&task);
                }
            }
        }
        Err(error) => tracing::warn!(%error, "heartbeat failed; will retry"),
    }
}
