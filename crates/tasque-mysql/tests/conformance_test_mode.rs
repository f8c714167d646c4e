//! The shared conformance suite on MySQL/MariaDB in test mode
//! (`MySqlConfig::with_virtual_clock`): every statement, and the stored procedures the
//! migration creates, read the namespace's virtual clock table instead of `UTC_TIMESTAMP(6)`
//! (no virtual time set: it falls back to the server clock). Proves every operation behaves
//! in test mode as in production, its rendered SQL included.

mod support;

use std::sync::Arc;

use tasque_durable::conformance::{Backend, Corruption};
use tasque_durable::{JobId, Store};

/// One case's namespaces, all under one random table prefix, in test mode.
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
