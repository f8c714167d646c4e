//! The rescuer (leader only): makes jobs whose lease expired (their worker crashed) claimable
//! again, counting a failed attempt, and enforces cancellation policies.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::Store;

use super::{while_leading, Leadership};
use crate::stop::Stop;

/// Jobs one rescue call handles at most; passes repeat while they come back full.
const BATCH: u32 = 1000;

/// Rescues every `interval` while this process leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
) {
    while_leading(leadership, interval, stop, || pass(&*store)).await;
}

/// One pass: rescue in batches until a batch comes back short.
async fn pass(store: &dyn Store) {
    loop {
        match store.rescue_expired(BATCH).await {
            Ok(report) => {
                if report.retried + report.failed + report.cancelled > 0 {
                    tracing::info!(?report, "rescued expired runs");
                }
                if report.retried + report.failed < u64::from(BATCH) {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "rescue failed; will retry");
                return;
            }
        }
    }
}
