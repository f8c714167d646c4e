//! The shared conformance suite on PostgreSQL in test mode: connections put the namespace's
//! schema before `pg_catalog` (`PostgresConfig::with_virtual_clock`), so every `now()` and
//! `clock_timestamp()` of the engine's statements and functions runs the schema's virtual
//! clock (no virtual time set: it falls back to the database clock). Proves every operation
//! behaves in test mode as in production.

mod support;

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};

/// One case's namespaces, all under one random schema prefix, in test mode.
struct TestMode(support::Fresh);

#[async_trait::async_trait]
impl Backend for TestMode {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        let config = self.0.config(namespace).with_virtual_clock();
        Arc::new(self.0.store_with(config).await)
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        self.0.corrupt(namespace, job, what).await;
    }
}

async fn test_mode() -> TestMode {
    if support::server().await.is_none() {
        // Outside CI only (under CI=true `server` panics): every case here needs the server.
        std::process::exit(0);
    }
    TestMode(support::Fresh::new("v"))
}

tasque_durable::conformance_tests!(test_mode);
