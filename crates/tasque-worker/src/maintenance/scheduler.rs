//! The scheduler: registers this worker's schedules (every worker, at start), then, on the
//! leader only, fires every due tick of every stored schedule
//! ([`fire_due`](tasque_durable::schedule::fire_due)), on the database clock.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::schedule::{fire_due, Schedule};
use tasque_durable::Store;

use super::{while_leading, Leadership};
use crate::stop::Stop;

/// Registers `schedules`, retrying until it works, then fires due ticks every `interval`
/// while this process leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    schedules: Arc<Vec<Schedule>>,
    leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
) {
    if store.schedules().is_none() {
        return stop.raised().await;
    }
    if !schedules.is_empty() && !register(&*store, &schedules, &stop).await {
        return;
    }
    while_leading(leadership, interval, stop, || pass(&*store)).await;
}

/// Upserts the schedules; false if stopped first.
async fn register(store: &dyn Store, schedules: &[Schedule], stop: &Stop) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(engine) = store.schedules() else {
            return true;
        };
        match engine.upsert_schedules(schedules).await {
            Ok(()) => return true,
            Err(error) => tracing::warn!(%error, "registering schedules failed; will retry"),
        }
        if stop.sleep(backoff).await {
            return false;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One pass on the database clock.
async fn pass(store: &dyn Store) {
    let Some(engine) = store.schedules() else {
        return;
    };
    let now = match store.now().await {
        Ok(now) => now,
        Err(error) => {
            tracing::warn!(%error, "scheduler could not read the clock; will retry");
            return;
        }
    };
    match fire_due(engine, now).await {
        Ok(report) => {
            for error in &report.invalid {
                tracing::warn!(%error, "stored schedule no longer valid; not fired");
            }
            if report.created + report.passed + report.skipped_running > 0 {
                tracing::debug!(?report, "scheduler pass");
            }
        }
        Err(error) => tracing::warn!(%error, "scheduler pass failed; will retry"),
    }
}
