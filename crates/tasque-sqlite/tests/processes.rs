//! Worker processes on one SQLite file: three processes share 5,000 jobs and each job runs exactly
//! once; then again with one process killed (SIGKILL, "kill -9") mid-run: every job completes, and
//! the killed process's jobs run again only after their lease expired. The cases are the test kit's
//! (`tasque_testkit::fleet`); the processes are this test binary started again.
//!
//! Also the test kit's workflow cases with processes (`tasque_testkit::processes`): a worker killed
//! (SIGKILL) between steps resumes from its checkpoints, a queue limit and a blocking queue hold
//! across three worker processes.

use std::sync::Arc;

use tasque_durable::Store;
use tasque_sqlite::SqliteStore;
use tasque_testkit::fleet::{self, Fleet};
use tasque_testkit::processes::{self, Harness};

/// The name of [`child_worker_process`], which children are started with.
const ENTRY: &str = "child_worker_process";

const FLEET: Fleet = Fleet {
    jobs: 5_000,
    processes: 3,
};

/// Not a test: the body of a child worker process, doing nothing unless `TASQUE_CHILD` is set.
#[test]
fn child_worker_process() {
    if !processes::is_child() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let path = std::env::var("TASQUE_CHILD_SQLITE").expect("TASQUE_CHILD_SQLITE");
        let store = SqliteStore::open(path).await.expect("open the store");
        processes::run_child(Arc::new(store)).await;
    });
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    Harness {
        store: Arc::new(store),
        store_env: vec![("TASQUE_CHILD_SQLITE".into(), path.display().to_string())],
        entry: ENTRY,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_run_5000_jobs_exactly_once() {
    fleet::worker_processes_run_every_job_exactly_once(&harness().await, FLEET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_process_jobs_rerun_only_after_lease_expiry() {
    fleet::killed_worker_process_jobs_rerun_only_after_lease_expiry(&harness().await, FLEET, None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_worker_killed_between_steps_resumes_after_lease_expiry() {
    processes::killed_worker_resumes_from_checkpoints(&harness().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limit_2_holds_across_3_worker_processes() {
    processes::queue_limit_holds_across_worker_processes(&harness().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_queue_runs_in_order_across_3_worker_processes() {
    processes::blocking_queue_runs_in_order_across_worker_processes(&harness().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_50_per_s_on_a_key_holds_across_3_worker_processes() {
    processes::rate_limit_per_key_holds_across_worker_processes(&harness().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_order_20_keys_x_100_jobs_holds_across_3_worker_processes() {
    processes::keyed_order_holds_across_worker_processes(&harness().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_of_100_parents_runs_the_child_once_across_3_worker_processes() {
    processes::fan_in_of_100_parents_across_worker_processes(&harness().await).await;
}
