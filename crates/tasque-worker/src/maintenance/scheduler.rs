//! The scheduler: registers this worker's schedules (every worker, at start; with pruning on,
//! also deletes the stored schedules it does not declare), then, on the leader only, fires
//! every due tick of every stored schedule
//! ([`fire_due`](tasque_durable::schedule::fire_due)), on the database clock.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use tasque_durable::schedule::{fire_due, Schedule, ScheduleEngine};
use tasque_durable::Store;

use super::{while_leading, Leadership};
use crate::stop::Stop;

/// The schedules a worker declares.
pub(crate) struct Declared {
    /// The schedules.
    pub(crate) schedules: Arc<Vec<Schedule>>,
    /// Whether they are the namespace's whole list (others stored are deleted).
    pub(crate) prune: bool,
}

/// Registers the declared schedules, retrying until it works, then fires due ticks every
/// `interval` while this process leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    declared: Declared,
    leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
) {
    if store.schedules().is_none() {
        return stop.raised().await;
    }
    let needed = !declared.schedules.is_empty() || declared.prune;
    if needed && !register(&*store, &declared, &stop).await {
        return;
    }
    while_leading(leadership, interval, stop, || pass(&*store)).await;
}

/// Upserts the schedules, then prunes the undeclared ones if asked; false if stopped first.
async fn register(store: &dyn Store, declared: &Declared, stop: &Stop) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(engine) = store.schedules() else {
            return true;
        };
        match sync(engine, declared).await {
            Ok(()) => return true,
            Err(error) => tracing::warn!(%error, "registering schedules failed; will retry"),
        }
        if stop.sleep(backoff).await {
            return false;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Upserts the declared schedules; with pruning, deletes every other stored one.
async fn sync(engine: &dyn ScheduleEngine, declared: &Declared) -> tasque_durable::Result<()> {
    if !declared.schedules.is_empty() {
        engine.upsert_schedules(&declared.schedules).await?;
    }
    if declared.prune {
        let ids: HashSet<&str> = declared.schedules.iter().map(|s| s.id.as_str()).collect();
        for record in engine.list_schedules().await? {
            if !ids.contains(record.schedule.id.as_str()) {
                engine.delete_schedule(&record.schedule.id).await?;
                tracing::info!(id = %record.schedule.id, "schedule no longer declared; deleted");
            }
        }
    }
    Ok(())
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
