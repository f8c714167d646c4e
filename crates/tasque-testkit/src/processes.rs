//! Engine-agnostic workflow tests with real worker processes (SIGKILL, many claimers), run by
//! every engine from its `tests/processes.rs`.
//!
//! # The worker processes
//!
//! A child worker is the test binary itself, started again with
//! `ENTRY --exact --nocapture` and `TASQUE_CHILD=1` in its environment: the test named `ENTRY`
//! (each calling test file defines one) sees the variable, opens the same store as the parent
//! (the calling file reads its own variables for that) and calls [`run_child`], which works
//! the queues named in the environment until the parent kills it. This needs no extra binary
//! target and no dependency from an engine crate on the worker. Each child appends one JSON line
//! per event to its own log file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tasque_durable::{
    BlockedPolicy, BlockingParams, JobFilter, JobId, JobInfo, JobState, PageRequest, RetryStrategy,
    Spawn, SpawnOptions, Store,
};
use tasque_worker::{Handlers, JobContext, Worker};
use tokio::process::{Child, Command};
use tokio::time::Instant;

mod deps;
mod flow;
pub use deps::*;
pub use flow::*;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long anything may take on a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Whether this process is a child worker.
pub fn is_child() -> bool {
    std::env::var_os("TASQUE_CHILD").is_some()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child worker needs {name}"))
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Appends one JSON line to `path` in one write.
fn log(path: &Path, entry: Value) {
    let mut line = entry.to_string();
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    file.write_all(line.as_bytes()).expect("write log");
}

/// The handlers every child knows.
fn handlers(log_path: PathBuf, stall: bool) -> Handlers {
    let handlers = Handlers::new();
    let path = log_path.clone();
    // Three checkpointed steps; a stalling worker stops for good after the first.
    handlers.learn("steps", move |ctx: JobContext, _: Value| {
        let path = path.clone();
        async move {
            for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
                let p = path.clone();
                let job = ctx.job_id().0;
                ctx.step(name, || async move {
                    log(
                        &p,
                        json!({"step": name, "job": job, "pid": std::process::id()}),
                    );
                    Ok::<_, BoxError>(i)
                })
                .await?;
                if stall && i == 0 {
                    std::future::pending::<()>().await;
                }
            }
            Ok::<_, BoxError>(json!("done"))
        }
    });
    // Records its own start and end (µs) in the job's result and in the log; fails while
    // its attempt is at most `fail_times`.
    let path = log_path;
    handlers.learn("timed", move |ctx: JobContext, p: Value| {
        let path = path.clone();
        async move {
            let start_us = now_us();
            tokio::time::sleep(Duration::from_millis(p["ms"].as_u64().unwrap_or(20))).await;
            let ok = u64::from(ctx.attempt()) > p["fail_times"].as_u64().unwrap_or(0);
            let end_us = now_us();
            let entry = json!({
                "queue": ctx.queue(), "job": ctx.job_id().0, "attempt": ctx.attempt(),
                "start_us": start_us, "end_us": end_us, "ok": ok,
            });
            log(&path, entry);
            if !ok {
                return Err(format!("planned failure on attempt {}", ctx.attempt()).into());
            }
            Ok::<_, BoxError>(json!({ "start_us": start_us, "end_us": end_us }))
        }
    });
    handlers
}

/// A child worker's body: works the queues in `TASQUE_CHILD_QUEUES` until killed (or until its
/// parent is gone); a fleet child ([`fleet`](crate::fleet)) runs
/// [`run_fleet_child`](crate::fleet::run_fleet_child) instead.
pub async fn run_child(store: Arc<dyn Store>) {
    if std::env::var_os("TASQUE_CHILD_FLEET").is_some() {
        return crate::fleet::run_fleet_child(store).await;
    }
    let queues: Vec<String> = env("TASQUE_CHILD_QUEUES")
        .split(',')
        .map(str::to_owned)
        .collect();
    let concurrency: usize = env("TASQUE_CHILD_CONCURRENCY")
        .parse()
        .expect("concurrency");
    let lease_ms: u64 = env("TASQUE_CHILD_LEASE_MS").parse().expect("lease");
    let stall = std::env::var_os("TASQUE_CHILD_STALL").is_some();
    let log_path = PathBuf::from(env("TASQUE_CHILD_LOG"));
    let _worker = Worker::builder(store)
        .handlers(handlers(log_path, stall))
        .queues(queues)
        .concurrency(concurrency)
        .lease(Duration::from_millis(lease_ms))
        .poll_interval(Duration::from_millis(20))
        .rescue_interval(Duration::from_millis(100))
        .build()
        .expect("worker")
        .start()
        .expect("start");
    // Work until killed; exit if the parent test died without killing us (we get reparented).
    let parent = std::os::unix::process::parent_id();
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a test needs to start children on its engine.
pub struct Harness {
    /// The parent's store.
    pub store: Arc<dyn Store>,
    /// Variables that tell a child how to open the same store.
    pub store_env: Vec<(String, String)>,
    /// The name of the entry test in the calling test binary.
    pub entry: &'static str,
    /// Where the children's logs go.
    pub dir: tempfile::TempDir,
}

/// One child's settings.
struct ChildSpec<'a> {
    queues: &'a str,
    concurrency: usize,
    lease_ms: u64,
    stall: bool,
}

impl Harness {
    fn log_path(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("child-{index}.log"))
    }

    fn start(&self, index: usize, spec: &ChildSpec<'_>) -> Child {
        let exe = std::env::current_exe().expect("test binary");
        let mut command = Command::new(exe);
        command
            .args([self.entry, "--exact", "--nocapture", "--test-threads=1"])
            .env("TASQUE_CHILD", "1")
            .env("TASQUE_CHILD_QUEUES", spec.queues)
            .env("TASQUE_CHILD_CONCURRENCY", spec.concurrency.to_string())
            .env("TASQUE_CHILD_LEASE_MS", spec.lease_ms.to_string())
            .env("TASQUE_CHILD_LOG", self.log_path(index))
            .envs(self.store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if spec.stall {
            command.env("TASQUE_CHILD_STALL", "1");
        }
        command.spawn().expect("start a child worker")
    }

    /// Every log line of children `0..n`.
    fn logs(&self, n: usize) -> Vec<Value> {
        (0..n)
            .flat_map(|i| {
                std::fs::read_to_string(self.log_path(i))
                    .unwrap_or_default()
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("log line"))
                    .collect::<Vec<Value>>()
            })
            .collect()
    }

    /// Polls until `done` holds for the store, or fails.
    async fn until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut(Arc<dyn Store>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + PATIENCE;
        while !done(self.store.clone()).await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn until_completed(&self, n: u64) {
        self.until_completed_within(n, PATIENCE).await;
    }

    /// Polls until `n` jobs completed, or fails after `patience`.
    async fn until_completed_within(&self, n: u64, patience: Duration) {
        let completed = JobFilter::all().states([JobState::Completed]);
        let deadline = Instant::now() + patience;
        loop {
            if self.store.count(completed.clone()).await.unwrap() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} jobs to complete"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn kill(children: Vec<Child>) {
    for mut child in children {
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reap");
    }
}

async fn all_jobs(store: &dyn Store) -> Vec<JobInfo> {
    let mut jobs = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store.scan(JobFilter::all(), page).await.unwrap();
        jobs.extend(got.jobs);
        match got.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return jobs,
        }
    }
}

/// A worker process killed (SIGKILL) between steps: after its lease expires another process
/// resumes each job from its checkpoints; no step body runs twice.
pub async fn killed_worker_resumes_from_checkpoints(h: &Harness) {
    const JOBS: usize = 4;
    const LEASE_MS: u64 = 1000;
    let spawns = (0..JOBS).map(|_| Spawn::new("steps", "steps", json!({})));
    h.store.spawn_many(spawns.collect()).await.unwrap();
    let stalling = ChildSpec {
        queues: "steps",
        concurrency: JOBS,
        lease_ms: LEASE_MS,
        stall: true,
    };
    let victim = h.start(0, &stalling);
    h.until("every job to pass step one", |store| async move {
        let jobs = all_jobs(&*store).await;
        let mut passed = 0;
        for job in &jobs {
            if !store.get_checkpoints(job.id).await.unwrap().is_empty() {
                passed += 1;
            }
        }
        passed == JOBS
    })
    .await;
    kill(vec![victim]).await;
    let killed_at = h.store.now().await.unwrap().timestamp_millis();
    let healthy = ChildSpec {
        stall: false,
        ..stalling
    };
    let rescuer = h.start(1, &healthy);
    h.until_completed(JOBS as u64).await;
    kill(vec![rescuer]).await;
    let logs = h.logs(2);
    let mut runs: HashMap<(i64, String), Vec<u64>> = HashMap::new();
    for line in &logs {
        let key = (
            line["job"].as_i64().unwrap(),
            line["step"].as_str().unwrap().to_owned(),
        );
        runs.entry(key)
            .or_default()
            .push(line["pid"].as_u64().unwrap());
    }
    assert_eq!(
        runs.len(),
        JOBS * 3,
        "every step of every job ran: {logs:?}"
    );
    for ((job, step), pids) in &runs {
        assert_eq!(
            pids.len(),
            1,
            "job {job} step {step} ran {} times",
            pids.len()
        );
    }
    for job in all_jobs(&*h.store).await {
        assert_eq!(job.state, JobState::Completed);
        assert_eq!(job.attempt, 2, "the lease expiry counted one attempt");
        assert_eq!(job.errors.len(), 1);
        assert!(
            job.errors[0].at_ms >= killed_at + (LEASE_MS as i64 * 2 / 3) - 50,
            "job {} rescued {} ms after the kill, before its lease could expire",
            job.id,
            job.errors[0].at_ms - killed_at
        );
        let checkpoints = h.store.get_checkpoints(job.id).await.unwrap();
        let seq: HashMap<&str, i64> = checkpoints
            .iter()
            .map(|c| (c.name.as_str(), c.run_seq))
            .collect();
        assert!(seq["one"] < seq["two"], "step one kept from the killed run");
        assert_eq!(seq["two"], seq["three"]);
    }
}

/// The largest number of `[start, end)` intervals that overlap at one instant.
fn max_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut edges: Vec<(i64, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    // At equal times, ends before starts: touching intervals do not overlap.
    edges.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        peak = peak.max(now);
    }
    peak as usize
}

/// A queue limit of 2 holds across three worker processes: 50 jobs, never more than 2 running
/// at once (from the start and end times the jobs recorded in their results).
pub async fn queue_limit_holds_across_worker_processes(h: &Harness) {
    const JOBS: usize = 50;
    h.store.set_queue_limit("limited", Some(2)).await.unwrap();
    let spawns = (0..JOBS).map(|_| Spawn::new("limited", "timed", json!({"ms": 20})));
    h.store.spawn_many(spawns.collect()).await.unwrap();
    let spec = ChildSpec {
        queues: "limited",
        concurrency: 4,
        lease_ms: 30_000,
        stall: false,
    };
    let children: Vec<Child> = (0..3).map(|i| h.start(i, &spec)).collect();
    h.until_completed(JOBS as u64).await;
    kill(children).await;
    let intervals: Vec<(i64, i64)> = all_jobs(&*h.store)
        .await
        .iter()
        .map(|job| {
            let result = job.result.as_ref().expect("a result");
            (
                result["start_us"].as_i64().unwrap(),
                result["end_us"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(intervals.len(), JOBS);
    let logged: std::collections::HashSet<u64> = h
        .logs(3)
        .iter()
        .map(|l| l["job"].as_u64().unwrap())
        .collect();
    assert_eq!(logged.len(), JOBS, "every job ran");
    let peak = max_overlap(&intervals);
    assert!(peak <= 2, "{peak} jobs of a queue limited to 2 ran at once");
    assert_eq!(
        peak, 2,
        "the limit allows two at once, and three workers want more"
    );
}

/// A blocking queue with three worker processes: its jobs run one at a time in creation order;
/// a job that fails twice then succeeds holds the jobs behind it; a second queue keeps moving
/// meanwhile.
pub async fn blocking_queue_runs_in_order_across_worker_processes(h: &Harness) {
    const SERIAL: usize = 8;
    const FLAKY: usize = 3;
    const FREE: usize = 10;
    let blocking = BlockingParams {
        blocking: true,
        on_exhausted: BlockedPolicy::Continue,
    };
    h.store
        .set_queue_blocking("serial", blocking)
        .await
        .unwrap();
    let mut serial: Vec<JobId> = Vec::new();
    for i in 0..SERIAL {
        let (params, options) = if i == FLAKY {
            let retry = RetryStrategy::Fixed {
                delay: Duration::from_secs(1),
            };
            let options = SpawnOptions::new().with_max_attempts(5).with_retry(retry);
            (json!({"ms": 20, "fail_times": 2}), options)
        } else {
            (json!({"ms": 20}), SpawnOptions::new())
        };
        let spawn = Spawn::new("serial", "timed", params).with_options(options);
        serial.push(h.store.spawn(spawn).await.unwrap().job_id);
    }
    let spec = ChildSpec {
        queues: "serial,free",
        concurrency: 4,
        lease_ms: 30_000,
        stall: false,
    };
    let children: Vec<Child> = (0..3).map(|i| h.start(i, &spec)).collect();
    let flaky = serial[FLAKY];
    h.until("the flaky job to fail once", |store| async move {
        !store.get_job(flaky).await.unwrap().errors.is_empty()
    })
    .await;
    // The serial queue is now held by the flaky job's backoff; the free queue must move.
    let spawns = (0..FREE).map(|_| Spawn::new("free", "timed", json!({"ms": 10})));
    h.store.spawn_many(spawns.collect()).await.unwrap();
    h.until_completed((SERIAL + FREE) as u64).await;
    kill(children).await;

    let mut runs: Vec<Value> = h.logs(3);
    runs.sort_by_key(|l| l["start_us"].as_i64().unwrap());
    let serial_runs: Vec<&Value> = runs.iter().filter(|l| l["queue"] == "serial").collect();
    let order: Vec<i64> = serial_runs
        .iter()
        .map(|l| l["job"].as_i64().unwrap())
        .collect();
    let mut expected: Vec<i64> = Vec::new();
    for (i, job) in serial.iter().enumerate() {
        let times = if i == FLAKY { 3 } else { 1 };
        expected.extend(std::iter::repeat_n(job.0, times));
    }
    assert_eq!(
        order, expected,
        "serial runs in creation order, the flaky job thrice"
    );
    for pair in serial_runs.windows(2) {
        assert!(
            pair[1]["start_us"].as_i64() >= pair[0]["end_us"].as_i64(),
            "two serial runs overlapped: {} and {}",
            pair[0],
            pair[1]
        );
    }
    let flaky_success = serial_runs
        .iter()
        .find(|l| l["job"] == flaky.0 && l["ok"] == true)
        .expect("the flaky job succeeded")["start_us"]
        .as_i64()
        .unwrap();
    let free_runs: Vec<&Value> = runs.iter().filter(|l| l["queue"] == "free").collect();
    assert_eq!(free_runs.len(), FREE);
    for run in free_runs {
        assert!(
            run["end_us"].as_i64().unwrap() < flaky_success,
            "a free job waited for the blocked serial queue: {run}"
        );
    }
    let flaky_info = h.store.get_job(flaky).await.unwrap();
    assert_eq!((flaky_info.attempt, flaky_info.errors.len()), (3, 2));
}
