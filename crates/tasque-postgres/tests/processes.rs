//! Worker processes: four `tasque-pg-test-worker` processes share 20,000 jobs; each job runs
//! exactly once. Then again with one process killed (SIGKILL) mid-run: every job completes, and
//! exactly the jobs the killed process held run again, each only after its own lease expired
//! (attempt 2, with a "lease expired" error recorded after the kill).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tasque_durable::{JobFilter, JobId, JobState, PageRequest, Spawn, Store};
use tasque_postgres::PostgresStore;
use tokio::process::{Child, Command};

const JOBS: usize = 20_000;
const PROCESSES: usize = 4;
const CONCURRENCY: usize = 50;
/// How long each job's handler takes: long enough that a process always holds running jobs
/// (the kill must find some), short enough that the run is bound by the database.
const HANDLER_MS: u64 = 5;
/// Handler time of the process the kill test kills (the worker staggers it 1 to 4 times by job
/// id, so that the victim nearly always holds running jobs; the kill waits until it does).
const VICTIM_HANDLER_MS: u64 = 100;

async fn spawn_jobs(store: &PostgresStore) {
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(5000) {
        let spawns = chunk
            .iter()
            .map(|n| Spawn::new("default", "noop", json!(n)))
            .collect();
        store.spawn_many(spawns).await.unwrap();
    }
}

fn start(fresh: &support::Fresh, lease_ms: u64, log: &Path, handler_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tasque-pg-test-worker"))
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

async fn all_jobs(store: &PostgresStore) -> Vec<tasque_durable::JobInfo> {
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
async fn held_by(store: &PostgresStore, pid: u32) -> HashMap<JobId, i64> {
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

/// Waits until the server has no session left of the (killed) worker process `pid`: a
/// statement it received before the kill has then committed or rolled back, so nothing the
/// process sent can change a job any more.
async fn wait_sessions_gone(pool: &PgPool, pid: u32) {
    let name = format!("tasque-test-worker-{pid}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sessions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&name)
                .fetch_one(pool)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_run_20000_jobs_exactly_once() {
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
    let Some(pool) = support::server().await else {
        return;
    };
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
    // What the killed process held when it died: its jobs still running in the database once
    // its sessions are gone (a statement the server received before the kill still commits).
    // Its slots are not the bound: a finished run frees its slot before its completion is
    // written. Its leases cannot have run out yet (heartbeats renewed them every third of a
    // lease), and nothing can renew them any more.
    wait_sessions_gone(&pool, pid).await;
    let held = held_by(&store, pid).await;
    assert!(!held.is_empty(), "the killed process held running jobs");
    let read_at = store.now().await.unwrap().timestamp_millis();
    let first_expiry = *held.values().min().unwrap();
    assert!(
        read_at < first_expiry,
        "what the killed process held was read {} ms after its first lease expired",
        read_at - first_expiry
    );
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
    // Exactly the killed process's jobs ran again.
    let rerun: HashSet<JobId> = jobs
        .iter()
        .filter(|j| j.attempt > 1)
        .map(|j| j.id)
        .collect();
    let held_ids: HashSet<JobId> = held.keys().copied().collect();
    let not_held: Vec<_> = rerun.difference(&held_ids).collect();
    assert!(
        not_held.is_empty(),
        "jobs ran again but were not held: {not_held:?}"
    );
    let not_rerun: Vec<_> = held_ids.difference(&rerun).collect();
    assert!(
        not_rerun.is_empty(),
        "held jobs did not run again: {not_rerun:?}"
    );
    for job in jobs.iter().filter(|j| held.contains_key(&j.id)) {
        assert_eq!(job.attempt, 2, "job {}", job.id);
        assert_eq!(job.errors.len(), 1, "job {}", job.id);
        let error = &job.errors[0];
        assert_eq!(error.reason, json!({"error": "lease expired"}));
        // Rescued (and run again) only once its own lease had run out.
        assert!(
            error.at_ms >= held[&job.id],
            "job {} rescued {} ms before its lease expired",
            job.id,
            held[&job.id] - error.at_ms
        );
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
    // The surviving processes ran each job at most once, the re-run ones among them.
    let survivors_ran = ran(&logs[1..]);
    let distinct: HashSet<i64> = survivors_ran.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        survivors_ran.len(),
        "a surviving process ran a job twice"
    );
    assert!(held.keys().all(|id| distinct.contains(&id.0)));
    let margin = jobs
        .iter()
        .filter(|j| held.contains_key(&j.id))
        .map(|j| j.errors[0].at_ms - killed_at)
        .min()
        .unwrap();
    eprintln!(
        "{} jobs of the killed process ran again after their lease expired \
         (the first {margin} ms after the kill)",
        held.len()
    );
}
