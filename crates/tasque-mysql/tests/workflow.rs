//! Durable workflows through the worker on MySQL/MariaDB (a fresh schema per case): the test
//! kit's shared cases (`tasque_testkit::workflow`).

mod support;

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

tasque_testkit::workflow_cases!(fresh());
