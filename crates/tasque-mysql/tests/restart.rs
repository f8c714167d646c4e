//! MariaDB (or MySQL) restarted (stopped and started by this test) while three workers burn
//! down 5,000 jobs: the workers reconnect on their own, every job completes, none completes
//! twice while its lease holds (issue 18). This binary holds this one test only, so nothing
//! else in it uses the server while it is down; the server is always started again (a guard).
//! Needs root (it signals the server process); under `CI=true` an unreachable server fails.

#[path = "../../tasque-worker/tests/support/restart_cases.rs"]
mod restart_cases;
#[path = "../../tasque-worker/tests/support/servers.rs"]
mod servers;
mod support;

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_while_three_workers_burn_down_5000_jobs() {
    let Some(admin) = support::server().await else {
        return;
    };
    let pid_file: String = sqlx::query_scalar("SELECT @@pid_file")
        .fetch_one(&admin)
        .await
        .unwrap();
    admin.close().await;
    let server = servers::Server::mariadb(&support::url(), &pid_file);
    let fresh = support::Fresh::new("r");
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        let config = fresh.config("main").with_max_connections(4);
        stores.push(Arc::new(fresh.store_with(config).await));
    }
    let observer = support::dyn_store(&fresh.store("main").await);
    restart_cases::three_workers_survive_a_restart(stores, observer, || async move {
        tokio::task::spawn_blocking(move || server.restart(Duration::from_secs(3)))
            .await
            .expect("restart the server");
    })
    .await;
}
