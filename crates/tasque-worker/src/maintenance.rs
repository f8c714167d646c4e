//! The worker's background services: heartbeat, rescuer and (optional) cleaner.
//! Each is a loop that ends when the worker's stop signal is raised.

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

/// Makes jobs whose lease expired (their worker crashed) claimable again.
pub(crate) async fn rescuer(store: Arc<dyn Store>, interval: Duration, stop: Arc<Stop>) {
    const BATCH: u32 = 1000;
    while !stop.sleep(interval).await {
        loop {
            match store.rescue_expired(BATCH).await {
                Ok(report) => {
                    if report.retried + report.failed + report.cancelled > 0 {
                        tracing::info!(?report, "rescued expired runs");
                    }
                    if report.retried + report.failed < u64::from(BATCH) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "rescue failed; will retry");
                    break;
                }
            }
        }
    }
}

/// Deletes finished jobs older than `age`, in bounded batches.
pub(crate) async fn cleaner(store: Arc<dyn Store>, age: Duration, stop: Arc<Stop>) {
    const BATCH: u32 = 1000;
    let interval = (age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    while !stop.sleep(interval).await {
        loop {
            match store.clean(age, BATCH).await {
                Ok(deleted) if deleted == u64::from(BATCH) => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cleaning failed; will retry");
                    break;
                }
            }
        }
    }
}
