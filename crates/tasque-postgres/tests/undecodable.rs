//! A worker meets undecodable rows on PostgreSQL (a fresh prefix per case): the shared cases of
//! `tasque-worker/tests/support/undecodable_cases.rs`.

mod support;

#[macro_use]
#[path = "../../tasque-worker/tests/support/undecodable_cases.rs"]
mod undecodable_cases;

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};

/// One case's namespaces, all under one random prefix.
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

/// A fresh backend, or `None` when the server is unreachable outside CI.
async fn fresh() -> Option<Fresh> {
    support::server().await?;
    Some(Fresh(support::Fresh::new("u")))
}

undecodable_cases!(fresh());
