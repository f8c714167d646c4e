//! Connection loss (SPEC Part 2, fail row: "no job is ever lost"): a worker whose server
//! connections are killed (`KILL CONNECTION`) mid-run reconnects and goes on; every job
//! completes and none runs twice while its lease holds.
//!
//! The worker's store connects as a user of its own, created for this test, so its connections
//! are exactly the rows of `information_schema.PROCESSLIST` with that user: the test kills
//! those, and nothing of the other tests running beside it.

mod support;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::MySqlPool;
use tasque_durable::{JobFilter, JobId, JobState, PageRequest, Spawn, Store};
use tasque_worker::{Handlers, JobContext, Worker};

const JOBS: usize = 3000;

/// A server user of this test's own, dropped at the end.
struct OwnUser {
    admin: MySqlPool,
    name: String,
}

impl OwnUser {
    async fn create(admin: &MySqlPool) -> OwnUser {
        let name = format!("tq_kill_{:08x}", rand::random::<u32>());
        let options = MySqlConnectOptions::from_str(&support::url()).unwrap();
        let database = options.get_database().unwrap_or("test").to_string();
        for statement in [
            format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{name}'"),
            format!("GRANT ALL PRIVILEGES ON `{database}`.* TO '{name}'@'%'"),
        ] {
            sqlx::query(&statement).execute(admin).await.unwrap();
        }
        OwnUser {
            admin: admin.clone(),
            name,
        }
    }

    /// The test server's URL, as this user.
    fn url(&self) -> String {
        let options = MySqlConnectOptions::from_str(&support::url()).unwrap();
        format!(
            "mysql://{user}:{user}@{host}:{port}/{db}",
            user = self.name,
            host = options.get_host(),
            port = options.get_port(),
            db = options.get_database().unwrap_or("test"),
        )
    }

    /// Kills every connection of this user; returns how many.
    async fn kill_connections(&self) -> usize {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?")
                .bind(&self.name)
                .fetch_all(&self.admin)
                .await
                .unwrap();
        let mut killed = 0;
        for id in ids {
            // A connection may close on its own meanwhile (error 1094: unknown thread).
            if sqlx::query(&format!("KILL CONNECTION {id}"))
                .execute(&self.admin)
                .await
                .is_ok()
            {
                killed += 1;
            }
        }
        killed
    }

    async fn drop_user(self) {
        let statement = format!("DROP USER IF EXISTS '{}'@'%'", self.name);
        sqlx::query(&statement).execute(&self.admin).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_reconnect_and_lose_or_repeat_nothing() {
    let Some(admin) = support::server().await else {
        return;
    };
    let user = OwnUser::create(&admin).await;
    let fresh = support::Fresh::new("k");
    let mut config = fresh.config("main");
    config.url = user.url();
    let store = fresh.store_with(config).await;
    let spawns = (0..JOBS)
        .map(|n| Spawn::new("default", "tick", json!(n)))
        .collect();
    store.spawn_many(spawns).await.unwrap();

    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let handlers = Handlers::new();
    let counted = runs.clone();
    handlers.learn("tick", move |ctx: JobContext, _n: i64| {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap().entry(ctx.job_id()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok::<_, std::io::Error>(())
        }
    });
    let worker = Worker::builder(support::dyn_store(&store))
        .handlers(handlers)
        .concurrency(20)
        .lease(Duration::from_secs(5))
        .rescue_interval(Duration::from_millis(500))
        .build()
        .unwrap()
        .start()
        .unwrap();

    // Kill every connection of the worker's store a few times, each once the worker has made
    // progress since the last (so the faults land mid-run, not all at the start).
    let mut killed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for round in 1..=5u64 {
        loop {
            let done = worker.stats().completed;
            if done >= round * (JOBS as u64) / 8 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no progress: {done} done"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        killed += user.kill_connections().await;
    }
    assert!(killed >= 5, "killed {killed} connections");
    // Scheduled jobs count as work left: a claim whose commit reached the server but whose
    // answer was lost with its connection leaves jobs the worker never saw; their lease
    // expires, the rescuer fails that attempt and they come back after the retry backoff.
    assert!(
        worker.wait_until_empty(true, Duration::from_secs(90)).await,
        "the worker finished every job"
    );
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(5)).await;

    let completed = store
        .count(JobFilter::all().states([JobState::Completed]))
        .await
        .unwrap();
    if completed != JOBS as u64 {
        let left = store
            .scan(JobFilter::all(), PageRequest::first(JOBS as u32))
            .await
            .unwrap()
            .jobs
            .into_iter()
            .filter(|j| j.state != JobState::Completed)
            .map(|j| (j.id, j.state, j.attempt, j.errors))
            .collect::<Vec<_>>();
        panic!("{completed} of {JOBS} jobs completed ({stats:?}); not completed: {left:?}");
    }
    let jobs = store
        .scan(JobFilter::all(), PageRequest::first(JOBS as u32))
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), JOBS);
    let rescued = jobs.iter().filter(|j| !j.errors.is_empty()).count();
    eprintln!("killed {killed} connections; {rescued} jobs rescued after their lease expired");
    let runs = runs.lock().unwrap().clone();
    for job in jobs {
        let ran = runs.get(&job.id).copied().unwrap_or(0);
        assert!(ran >= 1, "job {} completed without running", job.id);
        if job.errors.is_empty() {
            assert_eq!(
                ran, 1,
                "job {} ran {ran} times without a lease expiring",
                job.id
            );
        } else {
            // Only a lease that really expired may run a job again (at-least-once).
            assert!(job
                .errors
                .iter()
                .all(|e| e.reason == json!({"error": "lease expired"})));
            assert!(ran <= 1 + job.errors.len() as u32);
        }
    }
    store.close().await;
    user.drop_user().await;
}
