//! Worker processes on PostgreSQL: four processes share 20,000 jobs and each job runs exactly once;
//! then again with one process killed (SIGKILL) mid-run: every job completes, and exactly the jobs
//! the killed process held run again, each only after its own lease expired. The cases are the test
//! kit's (`tasque_testkit::fleet`); the processes are this test binary started again. Each case
//! uses its own schema.
//!
//! Also the test kit's workflow cases with processes (`tasque_testkit::processes`): a worker killed
//! (SIGKILL) between steps resumes from its checkpoints, a queue limit and a blocking queue hold
//! across three worker processes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tasque_postgres::{PostgresConfig, PostgresStore};
use tasque_testkit::fleet::{self, Fleet, Sessions};
use tasque_testkit::processes::{self, Harness};

/// The name of [`child_worker_process`], which children are started with.
const ENTRY: &str = "child_worker_process";

const FLEET: Fleet = Fleet {
    jobs: 20_000,
    processes: 4,
};

/// The pool's connections of a child (the listener has one more): few, so that the processes
/// stay well inside the server's `max_connections` (a refused connection can lose a completion,
/// and its job then runs again once its lease expires).
const CHILD_CONNECTIONS: u32 = 4;

/// Not a test: the body of a child worker process, doing nothing unless `TASQUE_CHILD` is set.
/// Its connections report `application_name` `tasque-test-worker-PID`, so the parent sees in
/// `pg_stat_activity` when a killed child's sessions are gone.
#[test]
fn child_worker_process() {
    if !processes::is_child() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
        let config = PostgresConfig::new(var("TASQUE_CHILD_PG_URL"))
            .with_schema_prefix(var("TASQUE_CHILD_PG_PREFIX"))
            .with_namespace("main")
            .with_application_name(format!("tasque-test-worker-{}", std::process::id()))
            .with_max_connections(CHILD_CONNECTIONS);
        let store = PostgresStore::connect(config).await.expect("connect");
        processes::run_child(Arc::new(store)).await;
    });
}

/// A harness on a fresh schema, or `None` when the server is unreachable (outside CI).
async fn harness(fresh: &support::Fresh) -> Option<Harness> {
    support::server().await?;
    let store = fresh.store("main").await;
    Some(Harness {
        store: support::dyn_store(&store),
        store_env: vec![
            ("TASQUE_CHILD_PG_URL".into(), support::url()),
            ("TASQUE_CHILD_PG_PREFIX".into(), fresh.prefix.clone()),
        ],
        entry: ENTRY,
        dir: tempfile::tempdir().unwrap(),
    })
}

/// Sessions seen through `pg_stat_activity`.
struct PgSessions(sqlx::PgPool);

#[async_trait::async_trait]
impl Sessions for PgSessions {
    async fn wait_gone(&self, pid: u32) {
        let name = format!("tasque-test-worker-{pid}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let sessions: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&name)
            .fetch_one(&self.0)
            .await
            .unwrap();
            if sessions == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sessions} sessions of the killed process {pid} outlived it"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_run_20000_jobs_exactly_once() {
    let fresh = support::Fresh::new("p");
    if let Some(h) = harness(&fresh).await {
        fleet::worker_processes_run_every_job_exactly_once(&h, FLEET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_process_jobs_rerun_only_after_lease_expiry() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("p");
    if let Some(h) = harness(&fresh).await {
        let sessions = PgSessions(pool);
        fleet::killed_worker_process_jobs_rerun_only_after_lease_expiry(&h, FLEET, Some(&sessions))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_worker_killed_between_steps_resumes_after_lease_expiry() {
    let fresh = support::Fresh::new("wk");
    if let Some(h) = harness(&fresh).await {
        processes::killed_worker_resumes_from_checkpoints(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limit_2_holds_across_3_worker_processes() {
    let fresh = support::Fresh::new("wl");
    if let Some(h) = harness(&fresh).await {
        processes::queue_limit_holds_across_worker_processes(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_queue_runs_in_order_across_3_worker_processes() {
    let fresh = support::Fresh::new("wb");
    if let Some(h) = harness(&fresh).await {
        processes::blocking_queue_runs_in_order_across_worker_processes(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_50_per_s_on_a_key_holds_across_3_worker_processes() {
    let fresh = support::Fresh::new("fr");
    if let Some(h) = harness(&fresh).await {
        processes::rate_limit_per_key_holds_across_worker_processes(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_order_20_keys_x_100_jobs_holds_across_3_worker_processes() {
    let fresh = support::Fresh::new("fo");
    if let Some(h) = harness(&fresh).await {
        processes::keyed_order_holds_across_worker_processes(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_of_100_parents_runs_the_child_once_across_3_worker_processes() {
    let fresh = support::Fresh::new("fd");
    if let Some(h) = harness(&fresh).await {
        processes::fan_in_of_100_parents_across_worker_processes(&h).await;
    }
}
