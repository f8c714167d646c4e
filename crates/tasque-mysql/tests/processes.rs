//! Worker processes on MySQL/MariaDB: three processes share 10,000 jobs and each job runs exactly
//! once; then again with one process killed (SIGKILL) mid-run: every job completes, and the killed
//! process's jobs run again only after their lease expired. The cases are the test kit's
//! (`tasque_testkit::fleet`); the processes are this test binary started again. Each case uses its
//! own tables.
//!
//! Also the test kit's workflow cases with processes (`tasque_testkit::processes`): a worker killed
//! (SIGKILL) between steps resumes from its checkpoints, a queue limit and a blocking queue hold
//! across three worker processes.

mod support;

use std::sync::Arc;

use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_testkit::fleet::{self, Fleet};
use tasque_testkit::processes::{self, Harness};

/// The name of [`child_worker_process`], which children are started with.
const ENTRY: &str = "child_worker_process";

const FLEET: Fleet = Fleet {
    jobs: 10_000,
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
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
        let config = MySqlConfig::new(var("TASQUE_CHILD_MY_URL"))
            .with_table_prefix(var("TASQUE_CHILD_MY_PREFIX"))
            .with_namespace("main");
        let store = MySqlStore::connect(config).await.expect("connect");
        processes::run_child(Arc::new(store)).await;
    });
}

/// A harness on fresh tables, or `None` when the server is unreachable (outside CI).
async fn harness(fresh: &support::Fresh) -> Option<Harness> {
    support::server().await?;
    let store = fresh.store("main").await;
    Some(Harness {
        store: support::dyn_store(&store),
        store_env: vec![
            ("TASQUE_CHILD_MY_URL".into(), support::url()),
            ("TASQUE_CHILD_MY_PREFIX".into(), fresh.prefix.clone()),
        ],
        entry: ENTRY,
        dir: tempfile::tempdir().unwrap(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_run_10000_jobs_exactly_once() {
    let fresh = support::Fresh::new("p");
    if let Some(h) = harness(&fresh).await {
        fleet::worker_processes_run_every_job_exactly_once(&h, FLEET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_process_jobs_rerun_only_after_lease_expiry() {
    let fresh = support::Fresh::new("p");
    if let Some(h) = harness(&fresh).await {
        fleet::killed_worker_process_jobs_rerun_only_after_lease_expiry(&h, FLEET, None).await;
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
async fn fan_in_of_100_parents_runs_the_child_once_across_3_worker_processes() {
    let fresh = support::Fresh::new("fd");
    if let Some(h) = harness(&fresh).await {
        processes::fan_in_of_100_parents_across_worker_processes(&h).await;
    }
}
