//! Fault tests with real worker processes (`tasque work`) on one SQLite file:
//! several processes share the file; one is killed with SIGKILL mid-job.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tasque_durable::{
    JobFilter, JobInfo, JobState, PageRequest, RetryStrategy, Spawn, SpawnOptions, Store,
};
use tasque_sqlite::{SqliteConfig, SqliteStore};

const PATIENCE: Duration = Duration::from_secs(180);

async fn store(dir: &tempfile::TempDir) -> (Arc<dyn Store>, String) {
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::connect(SqliteConfig::file(&path))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), format!("sqlite://{}", path.display()))
}

fn worker(url: &str, id: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tasque"))
        .args([
            "work",
            "--worker-id",
            id,
            "--until-empty",
            "--wait-scheduled",
            "--poll-interval",
            "25ms",
        ])
        .args(extra)
        .env("TASQUE_DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tasque work")
}

fn wait_exit(mut child: Child, deadline: Instant) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("worker did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn all_jobs(store: &dyn Store) -> Vec<JobInfo> {
    let mut jobs = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let result = store.scan(JobFilter::all(), page).await.unwrap();
        jobs.extend(result.jobs);
        match result.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return jobs,
        }
    }
}

fn quick_retry() -> SpawnOptions {
    SpawnOptions::new()
        .with_max_attempts(5)
        .with_retry(RetryStrategy::Fixed {
            delay: Duration::from_millis(50),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_on_one_file_complete_10k_jobs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = store(&dir).await;
    let spawns: Vec<Spawn> = (0..10_000)
        .map(|i| {
            Spawn::new(
                "default",
                "exec",
                json!({ "argv": ["true", i.to_string()] }),
            )
        })
        .collect();
    for chunk in spawns.chunks(2_000) {
        store.spawn_many(chunk.to_vec()).await.unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    let workers: Vec<Child> = ["w1", "w2", "w3"]
        .iter()
        .map(|id| worker(&url, id, &["--concurrency", "8"]))
        .collect();
    for child in workers {
        wait_exit(child, deadline);
    }
    let jobs = all_jobs(&*store).await;
    assert_eq!(jobs.len(), 10_000);
    for job in &jobs {
        assert_eq!(
            job.state,
            JobState::Completed,
            "job {} is {:?}",
            job.id,
            job.state
        );
        // One claim only: the first run completed, no attempt failed, none was rescued.
        assert_eq!(
            (job.run_id.seq, job.attempt),
            (1, 1),
            "job {} ran more than once",
            job.id
        );
        assert!(job.errors.is_empty());
    }
    let workers: std::collections::HashSet<_> =
        jobs.iter().filter_map(|j| j.worker_id.clone()).collect();
    assert!(
        workers.len() >= 2,
        "the processes did not share the work: {workers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_loses_no_job_its_jobs_rerun_after_lease_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = store(&dir).await;
    let spawns: Vec<Spawn> = (0..60)
        .map(|i| {
            Spawn::new(
                "default",
                "exec",
                json!({ "argv": ["sh", "-c", "sleep 0.2", i.to_string()] }),
            )
            .with_options(quick_retry())
        })
        .collect();
    store.spawn_many(spawns).await.unwrap();
    let lease = Duration::from_secs(1);
    let lease_arg = ["--lease", "1s", "--concurrency", "4"];
    let mut victim = worker(&url, "victim", &lease_arg);
    // Kill the victim once it is running jobs.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let running = all_jobs(&*store)
            .await
            .into_iter()
            .filter(|j| j.state == JobState::Running && j.worker_id.as_deref() == Some("victim"))
            .count();
        if running > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "victim never started a job");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_at = store.now().await.unwrap();
    let orphaned: Vec<_> = all_jobs(&*store)
        .await
        .into_iter()
        .filter(|j| j.state == JobState::Running && j.worker_id.as_deref() == Some("victim"))
        .map(|j| j.id)
        .collect();
    assert!(!orphaned.is_empty());

    let survivor = worker(&url, "survivor", &lease_arg);
    wait_exit(survivor, deadline);

    let jobs = all_jobs(&*store).await;
    assert_eq!(jobs.len(), 60, "a job was lost");
    for job in &jobs {
        assert_eq!(
            job.state,
            JobState::Completed,
            "job {} is {:?}",
            job.id,
            job.state
        );
        if orphaned.contains(&job.id) {
            assert_eq!(
                job.attempt, 2,
                "job {}: the killed attempt was not counted",
                job.id
            );
            let error = &job.errors[0];
            assert!(
                error.reason.to_string().contains("lease expired"),
                "{:?}",
                error.reason
            );
            // Rescued only once the lease had really expired.
            let lease_end = killed_at.timestamp_millis() + lease.as_millis() as i64 - 400;
            assert!(
                error.at_ms >= lease_end,
                "job {} rescued before its lease expired",
                job.id
            );
        } else {
            assert_eq!(
                job.attempt, 1,
                "job {} was re-run although its lease held",
                job.id
            );
        }
    }
}
