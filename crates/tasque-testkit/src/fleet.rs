//! Fleets of worker processes on one database, engine-agnostic: several processes share
//! thousands of no-op jobs and each job runs exactly once; then again with one process killed
//! (SIGKILL) mid-run, whose jobs run again only once their leases expired (attempt 2, with a
//! "lease expired" error recorded after the kill).
//!
//! The processes are the calling test binary started again, as in [`processes`](crate::processes)
//! (the same entry test serves both: [`run_child`](crate::processes::run_child) sees
//! `TASQUE_CHILD_FLEET` and runs [`run_fleet_child`]). Each appends the id of every job it ran
//! to its own log, one per line, so a test can prove that no job ran twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tasque_durable::{JobFilter, JobId, JobInfo, JobState, PageRequest, Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::process::{Child, Command};

use crate::processes::Harness;

/// Handler slots per process.
const CONCURRENCY: usize = 50;
/// How long each job's handler takes: long enough that a process always holds running jobs
/// (the kill must find some), short enough that the run is bound by the database.
const HANDLER_MS: u64 = 5;
/// Handler time of the process the kill test kills (staggered 1 to 4 times by job id, so that
/// the victim nearly always holds running jobs; the kill waits until it does).
const VICTIM_HANDLER_MS: u64 = 100;
/// The lease of the kill test.
const LEASE_MS: u64 = 3000;

/// What an engine can tell about a killed process's database sessions.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync {
    /// Waits until the server has no session left of the killed worker process `pid` (a
    /// statement it received before the kill has then committed or rolled back, so nothing the
    /// process sent can change a job any more). Fails the test after a generous deadline.
    async fn wait_gone(&self, pid: u32);
}

/// The size of a fleet test.
#[derive(Copy, Clone, Debug)]
pub struct Fleet {
    /// How many jobs.
    pub jobs: usize,
    /// How many worker processes.
    pub processes: usize,
}

/// A fleet child's body: works task `noop` of queue `default` until nothing is ready, running
/// or scheduled, logging each job id, then shuts down; panics (failing the child) when an
/// outcome could not be written.
pub async fn run_fleet_child(store: Arc<dyn Store>) {
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("fleet child needs {name}"));
    let lease_ms: u64 = var("TASQUE_CHILD_LEASE_MS").parse().expect("lease");
    let handler_ms: u64 = var("TASQUE_CHILD_HANDLER_MS").parse().expect("handler ms");
    let file = std::fs::File::create(var("TASQUE_CHILD_LOG")).expect("log file");
    let log = Arc::new(Mutex::new(std::io::BufWriter::new(file)));
    let handlers = Handlers::new();
    let ran = log.clone();
    handlers.learn("noop", move |ctx: JobContext, _: serde_json::Value| {
        let ran = ran.clone();
        async move {
            if handler_ms > 0 {
                let stagger = 1 + ctx.job_id().0.rem_euclid(4) as u64;
                tokio::time::sleep(Duration::from_millis(handler_ms * stagger)).await;
            }
            let mut log = ran.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(log, "{}", ctx.job_id());
            Ok::<_, std::io::Error>(serde_json::Value::Null)
        }
    });
    let worker = Worker::builder(store)
        .handlers(handlers)
        .queues(["default"])
        .concurrency(CONCURRENCY)
        .lease(Duration::from_millis(lease_ms))
        .rescue_interval(Duration::from_millis(200))
        .build()
        .expect("worker")
        .start()
        .expect("start");
    // Scheduled jobs count: a job rescued from a killed process waits out its retry backoff.
    worker.wait_until_empty(true, Duration::MAX).await;
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(10)).await;
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .flush()
        .expect("flush log");
    assert_eq!(
        stats.store_errors, 0,
        "outcomes could not be written (their jobs run again once their leases expire)"
    );
}

fn log_path(h: &Harness, index: usize) -> PathBuf {
    h.dir.path().join(format!("fleet-{index}.log"))
}

fn start(h: &Harness, index: usize, lease_ms: u64, handler_ms: u64) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([h.entry, "--exact", "--nocapture", "--test-threads=1"])
        .env("TASQUE_CHILD", "1")
        .env("TASQUE_CHILD_FLEET", "1")
        .env("TASQUE_CHILD_LEASE_MS", lease_ms.to_string())
        .env("TASQUE_CHILD_HANDLER_MS", handler_ms.to_string())
        .env("TASQUE_CHILD_LOG", log_path(h, index))
        .envs(h.store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start a worker process")
}

async fn spawn_jobs(store: &dyn Store, jobs: usize) {
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(5000) {
        let spawns = chunk
            .iter()
            .map(|n| Spawn::new("default", "noop", json!(n)))
            .collect();
        store.spawn_many(spawns).await.unwrap();
    }
}

async fn wait_exit(child: &mut Child) {
    let status = tokio::time::timeout(Duration::from_secs(180), child.wait())
        .await
        .expect("the worker process finished in time")
        .unwrap();
    assert!(status.success(), "worker process exited with {status}");
}

/// Job ids the logs record, all logs together.
fn ran(logs: &[PathBuf]) -> Vec<i64> {
    logs.iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| l.parse().expect("a job id"))
                .collect::<Vec<i64>>()
        })
        .collect()
}

async fn all_jobs(store: &dyn Store) -> Vec<JobInfo> {
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
async fn held_by(store: &dyn Store, pid: u32) -> HashMap<JobId, i64> {
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

/// `fleet.processes` worker processes share `fleet.jobs` jobs: each job runs exactly once.
pub async fn worker_processes_run_every_job_exactly_once(h: &Harness, fleet: Fleet) {
    let store = &*h.store;
    spawn_jobs(store, fleet.jobs).await;
    let logs: Vec<PathBuf> = (0..fleet.processes).map(|i| log_path(h, i)).collect();
    let mut children: Vec<Child> = (0..fleet.processes)
        .map(|i| start(h, i, 30_000, HANDLER_MS))
        .collect();
    for child in &mut children {
        wait_exit(child).await;
    }
    let ran = ran(&logs);
    let distinct: HashSet<i64> = ran.iter().copied().collect();
    assert_eq!(ran.len(), fleet.jobs, "runs in all processes' logs");
    assert_eq!(distinct.len(), fleet.jobs, "no job ran twice");
    let jobs = all_jobs(store).await;
    assert_eq!(jobs.len(), fleet.jobs);
    assert!(jobs
        .iter()
        .all(|j| j.state == JobState::Completed && j.attempt == 1 && j.errors.is_empty()));
}

/// One of `fleet.processes` worker processes is killed (SIGKILL) mid-run: every job completes,
/// the surviving processes run each job at most once, and the killed process's jobs run again
/// only once their own lease expired. With `sessions` (the engine can tell when the killed
/// process's sessions are gone), exactly the jobs it held run again.
pub async fn killed_worker_process_jobs_rerun_only_after_lease_expiry(
    h: &Harness,
    fleet: Fleet,
    sessions: Option<&dyn Sessions>,
) {
    let store = &*h.store;
    spawn_jobs(store, fleet.jobs).await;
    let logs: Vec<PathBuf> = (0..fleet.processes).map(|i| log_path(h, i)).collect();
    // The victim's handlers take longer, so it always holds running jobs: between the check
    // below and the kill, it cannot finish (and record) everything it holds.
    let mut children: Vec<Child> = (0..fleet.processes)
        .map(|i| {
            let handler_ms = if i == 0 {
                VICTIM_HANDLER_MS
            } else {
                HANDLER_MS
            };
            start(h, i, LEASE_MS, handler_ms)
        })
        .collect();
    let mut victim = children.remove(0);
    let pid = victim.id().expect("the victim runs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = store
            .count(JobFilter::all().states([JobState::Completed]))
            .await
            .unwrap();
        if done >= (fleet.jobs / 10) as u64 && !held_by(store, pid).await.is_empty() {
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
    // Once its sessions are gone, a statement the server received before the kill has
    // committed, so the read is exact.
    if let Some(sessions) = sessions {
        sessions.wait_gone(pid).await;
    }
    let held = held_by(store, pid).await;
    assert!(!held.is_empty(), "the killed process held running jobs");
    if sessions.is_some() {
        let read_at = store.now().await.unwrap().timestamp_millis();
        let first_expiry = *held.values().min().unwrap();
        assert!(
            read_at < first_expiry,
            "what the killed process held was read {} ms after its first lease expired",
            read_at - first_expiry
        );
    }
    for child in &mut children {
        wait_exit(child).await;
    }
    let jobs = all_jobs(store).await;
    assert_eq!(jobs.len(), fleet.jobs);
    let unfinished: Vec<_> = jobs
        .iter()
        .filter(|j| j.state != JobState::Completed)
        .map(|j| (j.id, j.state, j.attempt, j.run_at, j.errors.clone()))
        .collect();
    assert!(unfinished.is_empty(), "every job completed: {unfinished:?}");
    let rerun: Vec<&JobInfo> = jobs.iter().filter(|j| j.attempt > 1).collect();
    check_reruns(&jobs, &rerun, &held, sessions.is_some());
    for job in &rerun {
        assert_eq!(job.attempt, 2, "job {}", job.id);
        assert_eq!(job.errors.len(), 1, "job {}", job.id);
        let error = &job.errors[0];
        assert_eq!(error.reason, json!({"error": "lease expired"}));
        // Rescued (and run again) only once its own lease had run out.
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
    // The surviving processes ran each job at most once, the re-run ones among them.
    let survivors_ran = ran(&logs[1..]);
    let distinct: HashSet<i64> = survivors_ran.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        survivors_ran.len(),
        "a surviving process ran a job twice"
    );
    assert!(rerun.iter().all(|j| distinct.contains(&j.id.0)));
    eprintln!(
        "{} jobs of the killed process ran again after their lease expired",
        rerun.len()
    );
}

/// Which jobs ran again. Exactly the held ones when the read of `held` was exact. Otherwise
/// each held job ran again or had been completed by the killed process's last write (a
/// statement the server received before the kill still commits), and a claim still executing
/// at the kill may have committed after the read, so a re-run job may be missing from `held`.
fn check_reruns(jobs: &[JobInfo], rerun: &[&JobInfo], held: &HashMap<JobId, i64>, exact: bool) {
    let held_ids: HashSet<JobId> = held.keys().copied().collect();
    let rerun_ids: HashSet<JobId> = rerun.iter().map(|j| j.id).collect();
    if exact {
        let not_held: Vec<_> = rerun_ids.difference(&held_ids).collect();
        assert!(
            not_held.is_empty(),
            "jobs ran again but were not held: {not_held:?}"
        );
        let not_rerun: Vec<_> = held_ids.difference(&rerun_ids).collect();
        assert!(
            not_rerun.is_empty(),
            "held jobs did not run again: {not_rerun:?}"
        );
        return;
    }
    for id in &held_ids {
        let job = jobs
            .iter()
            .find(|j| j.id == *id)
            .expect("a held job exists");
        assert!(
            job.attempt == 2 || job.errors.is_empty(),
            "held job {id} neither ran again nor completed"
        );
    }
}
