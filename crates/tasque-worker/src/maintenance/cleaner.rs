//! The cleaner (leader only, when configured): deletes finished jobs older than an age, in
//! bounded batches.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::Store;

use super::{while_leading, Leadership};
use crate::stop::Stop;

/// Jobs one clean call deletes at most; passes repeat while they come back full.
const BATCH: u32 = 1000;

/// Cleans every tenth of `age` (between 1 s and 60 s) while this process leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    leadership: Leadership,
    age: Duration,
    stop: Arc<Stop>,
) {
    let interval = (age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    while_leading(leadership, interval, stop, || pass(&*store, age)).await;
}

async fn pass(store: &dyn Store, age: Duration) {
    loop {
        match store.clean(age, BATCH).await {
            Ok(deleted) if deleted == u64::from(BATCH) => continue,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "cleaning failed; will retry");
                return;
            }
        }
    }
}
