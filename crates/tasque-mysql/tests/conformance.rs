//! The shared conformance suite on MySQL/MariaDB, unchanged: every case gets its own random
//! table prefix (so cases run in parallel and never meet) whose tables are dropped when it ends.

mod support;

/// One case's namespaces, all under one random table prefix.
async fn fresh() -> support::Fresh {
    if support::server().await.is_none() {
        // Outside CI only (under CI=true `server` panics): every case here needs the server.
        std::process::exit(0);
    }
    support::Fresh::new("c")
}

tasque_durable::conformance_tests!(fresh);
