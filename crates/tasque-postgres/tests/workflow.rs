//! Durable workflows through the worker on PostgreSQL (a fresh schema per case): the shared
//! cases of `tasque-worker/tests/support/workflow_cases.rs`.

mod support;

#[macro_use]
#[path = "../../tasque-worker/tests/support/workflow_cases.rs"]
mod workflow_cases;

use std::sync::Arc;

use tasque_durable::Store;

/// A migrated store in a fresh schema (dropped with the guard), or `None` when the server is
/// unreachable outside CI.
async fn fresh() -> Option<(support::Fresh, Arc<dyn Store>)> {
    support::server().await?;
    let fresh = support::Fresh::new("wf");
    let store = support::dyn_store(&fresh.store("main").await);
    Some((fresh, store))
}

workflow_cases!(fresh());
