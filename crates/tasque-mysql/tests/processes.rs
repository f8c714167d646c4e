//! Worker processes: four `tasque-my-test-worker` processes share 20,000 jobs; each job runs
//! exactly once. Then again with one process killed (SIGKILL) mid-run: every job completes, and
//! the killed process's jobs run again only after their lease expired (attempt 2, with a
//! "lease expired" error recorded after the kill).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tasque_durable::{JobFilter, JobId, JobState, PageRequest, Spawn, Store};
use tasque_mysql::MySqlStore;
use tokio::process::{Child, Command};

const JOBS: usize = 10_000;
const PROCESSES: usize = 3;
const CONCURRENCY: usize = 50;
/// How long each job's handler takes: long enough that a process always holds running jobs
/// (the kill must find some), short enough that the run is bound by the database.
const HANDLER_MS: u64 = 5;
/// Handler time of the process the kill test kills (the worker staggers it 1 to 4 times by job
/// id, so that the victim nearly always holds running jobs; the kill waits until it does).
const VICTIM_HANDLER_MS: u64 = 100;

async fn spawn_jobs(store: &MySqlStore) {
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(5000) {
        let spawns = chunk
            .iter()
            .map(|n| Spawn::new("default", "noop", json!(n)))
            .collect();
        store.spawn_many(spawns).await.unwrap();
    }
}

fn start(fresh: &support::Fresh, lease_ms: u64, log: &Path, handler_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tasque-my-test-worker"))
        .args([
            support::url(),
            fresh.prefix.clone(),
            "main".to_string(),
            "default".to_string(),
            CONCURRENCY.to_string(),
            lease_ms.to_string(),
            log.display().to_string(),
            handler_ms.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start a worker process")
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    (0..PROCESSES)
        .map(|i| dir.join(format!("worker-{i}.log")))
        .collect()
}

async fn wait_exit(child: &mut Child) {
    let status = tokio::time::timeout(Duration::from_secs(180), child.wait())
        .await
        .expect("the worker process finished in time")
        .unwrap();
    assert!(status.success(), "worker process exited with {status}");
}

/// Job ids each log records, all logs together.
fn ran(logs: &[PathBuf]) -> Vec<i64> {
    logs.iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect::<Vec<i64>>()
        })
        .collect()
}

async fn all_jobs(store: &MySqlStore) -> Vec<tasque_durable::JobInfo> {
    let mut jobs = Vec::new();
    let mut page = PageRequest::first(5000);
    loop {
        let got = store.scan(JobFilter::all(), page).await.unwrap();
        jobs.extend(got.jobs);
        match got.next {
            Some(next) => page = PageRequest::after(next, 5000),
            None => return jobs,
        }
    }
}

/// The jobs the worker process `pid` runs, as the database says, with their lease ends (ms).
async fn held_by(store: &MySqlStore, pid: u32) -> HashMap<JobId, i64> {
    let prefix = format!("worker-{pid}-");
    let mut held = HashMap::new();
    let mut page = PageRequest::first(1000);
    loop {
        let running = JobFilter::all().states([JobState::Running]);
        let got = store.scan(running, page).await.unwrap();
        for job in &got.jobs {
            if job.worker_id.as_deref().unwrap_or("").starts_with(&prefix) {
                held.insert(job.id, job.lease_expires_at.unwrap().timestamp_millis());
            }
        }
        match got.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return held,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_run_10000_jobs_exactly_once() {
    if support::server().await.is_none() {
        return;
    }
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    spawn_jobs(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = logs(dir.path());
    let mut children: Vec<Child> = logs
        .iter()
        .map(|log| start(&fresh, 30_000, log, HANDLER_MS))
        .collect();
    for child in &mut children {
        wait_exit(child).await;
    }
    let ran = ran(&logs);
    let distinct: HashSet<i64> = ran.iter().copied().collect();
    assert_eq!(ran.len(), JOBS, "runs in all processes' logs");
    assert_eq!(distinct.len(), JOBS, "no job ran twice");
    let jobs = all_jobs(&store).await;
    assert_eq!(jobs.len(), JOBS);
    assert!(jobs
        .iter()
        .all(|j| j.state == JobState::Completed && j.attempt == 1 && j.errors.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_process_jobs_rerun_only_after_lease_expiry() {
    if support::server().await.is_none() {
        return;
    }
    const LEASE_MS: u64 = 3000;
    let fresh = support::Fresh::new("p");
    let store = fresh.store("main").await;
    spawn_jobs(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = logs(dir.path());
    // The victim's handlers take longer, so it always holds running jobs: between the check
    // below and the kill, it cannot finish (and record) everything it holds.
    let mut children: Vec<Child> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let handler_ms = if i == 0 {
                VICTIM_HANDLER_MS
            } else {
                HANDLER_MS
            };
            start(&fresh, LEASE_MS, log, handler_ms)
        })
        .collect();
    // Kill one process once the run is well under way and it holds running jobs.
    let mut victim = children.remove(0);
    let pid = victim.id().expect("the victim runs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = store
            .count(JobFilter::all().states([JobState::Completed]))
            .await
            .unwrap();
        if done >= (JOBS / 10) as u64 && !held_by(&store, pid).await.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not get under way"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    victim.start_kill().unwrap(); // SIGKILL
    victim.wait().await.unwrap();
    let killed_at = store.now().await.unwrap().timestamp_millis();
    // What the killed process held when it died: its jobs still running in the database (its
    // leases cannot have run out yet: heartbeats renewed them every third of a lease). Its
    // slots are not the bound: a finished run frees its slot before its completion is written.
    let held = held_by(&store, pid).await;
    assert!(!held.is_empty(), "the killed process held running jobs");
    for child in &mut children {
        wait_exit(child).await;
    }
    let jobs = all_jobs(&store).await;
    assert_eq!(jobs.len(), JOBS);
    let unfinished: Vec<_> = jobs
        .iter()
        .filter(|j| j.state != JobState::Completed)
        .map(|j| (j.id, j.state, j.attempt, j.run_at, j.errors.clone()))
        .collect();
    assert!(unfinished.is_empty(), "every job completed: {unfinished:?}");
    let rerun: Vec<_> = jobs.iter().filter(|j| j.attempt > 1).collect();
    // Only the killed process's jobs ran again: every other job ran once without error (checked
    // below), and each re-run records the killed attempt as a lost lease. Each held job either
    // ran again or had been completed by the killed process's last write (a statement the
    // server received before the kill still commits). A claim statement still executing at the
    // kill can also commit after `held` was read, so a re-run job may be missing from `held`:
    // for those the bound on the rescue time is relative to the kill only.
    let unheld = rerun.iter().filter(|j| !held.contains_key(&j.id)).count();
    for id in held.keys() {
        let job = jobs.iter().find(|j| j.id == *id).unwrap();
        assert!(
            job.attempt == 2 || job.errors.is_empty(),
            "held job {id} neither ran again nor completed"
        );
    }
    for job in &rerun {
        assert_eq!(job.attempt, 2, "job {}", job.id);
        assert_eq!(job.errors.len(), 1, "job {}", job.id);
        let error = &job.errors[0];
        assert_eq!(error.reason, json!({"error": "lease expired"}));
        // Rescued (and run again) only once its lease had run out.
        if let Some(lease_end) = held.get(&job.id) {
            assert!(
                error.at_ms >= *lease_end,
                "job {} rescued {} ms before its lease expired",
                job.id,
                lease_end - error.at_ms
            );
        }
        assert!(
            error.at_ms >= killed_at + (LEASE_MS as i64 * 2 / 3) - 50,
            "job {} rescued {} ms after the kill",
            job.id,
            error.at_ms - killed_at
        );
        assert!(job.attempted_at.unwrap().timestamp_millis() >= error.at_ms);
    }
    assert!(jobs
        .iter()
        .filter(|j| j.attempt == 1)
        .all(|j| j.errors.is_empty()));
    eprintln!(
        "{} jobs of the killed process ran again after their lease expired ({unheld} claimed by \
         a statement that committed after the kill)",
        rerun.len()
    );
}
