//! The shared schedule cases (periodic jobs, leader lease) on PostgreSQL: every case gets its own random schema
//! prefix (so cases run in parallel and never meet) whose schemas are dropped when it ends.

mod support;

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};

/// One case's namespaces, all under one random schema prefix.
struct Fresh(support::Fresh);

#[async_trait::async_trait]
impl Backend for Fresh {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        Arc::new(self.0.store(namespace).await)
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        self.0.corrupt(namespace, job, what).await;
    }
}

async fn fresh() -> Fresh {
    if support::server().await.is_none() {
        // Outside CI only (under CI=true `server` panics): every case here needs the server.
        std::process::exit(0);
    }
    Fresh(support::Fresh::new("c"))
}

tasque_durable::schedule_conformance_tests!(fresh);
