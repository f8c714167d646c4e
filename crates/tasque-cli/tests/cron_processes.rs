//! Periodic jobs across worker processes (issue 14): three `tasque work --config` processes on
//! one database, a schedule every second. Every tick gets exactly one job, none missing, none
//! doubled; the leader is killed with SIGKILL mid-way, another process takes over, and the
//! ticks of the gap are caught up (the schedule's policy is `catch_up`). Run on a SQLite file,
//! PostgreSQL and MariaDB/MySQL (`TASQUE_TEST_POSTGRES_URL`, `TASQUE_TEST_MYSQL_URL`; under
//! `CI=true` an unreachable server fails the test, elsewhere it is skipped loudly).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasque_testkit::in_ci;

use chrono::{DateTime, Utc};
use tasque_durable::schedule::{HEADER_TICK, LEADER_LEASE};
use tasque_durable::{JobFilter, PageRequest, Store};

/// Deadline of every wait: generous, the machine is loaded.
const PATIENCE: Duration = Duration::from_secs(120);
/// Ticks to see before the kill, and after the takeover.
const TICKS: usize = 8;

const CONFIG: &str = r#"
[[schedule]]
id = "every-second"
every_seconds = 1
task = "tick"
queue = "ticks"
missed = { catch_up = 1000 }
"#;

/// Worker processes, killed when dropped.
struct Workers(Vec<(String, Child)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(url: &str, namespace: &str, config: &std::path::Path) -> Workers {
    let workers = (1..=3)
        .map(|n| {
            let id = format!("cron-worker-{n}");
            let child = Command::new(env!("CARGO_BIN_EXE_tasque"))
                .args(["--database-url", url, "--namespace", namespace, "work"])
                .args(["--worker-id", &id, "--poll-interval", "200ms"])
                .arg("--config")
                .arg(config)
                .env_remove("TASQUE_AUTO_MIGRATE")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start tasque work");
            (id, child)
        })
        .collect();
    Workers(workers)
}

/// Every fired tick, checking that none has two jobs.
async fn ticks(store: &dyn Store) -> Vec<DateTime<Utc>> {
    let mut seen = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let found = store
            .scan(JobFilter::all().queues(["ticks"]), page)
            .await
            .expect("scan");
        for job in &found.jobs {
            let tick = job.headers[HEADER_TICK].as_str().expect("a tick header");
            let tick = DateTime::parse_from_rfc3339(tick).expect("an RFC 3339 tick");
            seen.push(tick.with_timezone(&Utc));
        }
        match found.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    let distinct: BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "a tick has two jobs: {seen:?}");
    seen.sort();
    seen
}

async fn wait_for<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader(store: &dyn Store) -> Option<String> {
    let engine = store.schedules().expect("schedules");
    engine.lease_holder(LEADER_LEASE).await.expect("holder")
}

/// The scenario, on a migrated store that the processes reach through `url` and `namespace`.
async fn three_processes_fire_each_tick_once(store: Arc<dyn Store>, url: &str, namespace: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("cron.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let mut workers = start(url, namespace, &config);
    let before = wait_for("ticks before the kill", || async {
        let n = ticks(&*store).await.len();
        (n >= TICKS).then_some(n)
    })
    .await;
    let killed = wait_for("a leader", || leader(&*store)).await;
    let (_, child) = workers
        .0
        .iter_mut()
        .find(|(id, _)| *id == killed)
        .expect("the leader is one of ours");
    child.kill().expect("SIGKILL the leader");
    child.wait().expect("reap");
    wait_for("another leader", || async {
        leader(&*store).await.filter(|l| *l != killed)
    })
    .await;
    wait_for("ticks after the takeover", || async {
        (ticks(&*store).await.len() >= before + TICKS).then_some(())
    })
    .await;
    drop(workers);
    let fired = ticks(&*store).await;
    for pair in fired.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            chrono::Duration::seconds(1),
            "a tick is missing between {} and {}: {fired:?}",
            pair[0],
            pair[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_three_processes_fire_each_tick_once_across_a_leader_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = tasque_sqlite::SqliteStore::open(&path).await.expect("open");
    store.migrate().await.expect("migrate");
    let url = format!("sqlite://{}", path.display());
    three_processes_fire_each_tick_once(Arc::new(store), &url, "default").await;
}

fn namespace(tag: &str) -> String {
    format!("tqcron{tag}{:08x}", rand::random::<u32>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_processes_fire_each_tick_once_across_a_leader_kill() {
    let url = std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let ns = namespace("pg");
    let config = tasque_postgres::PostgresConfig::new(&url).with_namespace(&ns);
    let store = match tasque_postgres::PostgresStore::connect(config).await {
        Ok(store) => store,
        Err(error) if in_ci() => panic!("PostgreSQL at {url} is unreachable under CI: {error}"),
        Err(error) => return eprintln!("\n!!!!!!!! SKIPPED: PostgreSQL unreachable ({error})\n"),
    };
    store.migrate().await.expect("migrate");
    three_processes_fire_each_tick_once(Arc::new(store.clone()), &url, &ns).await;
    store.drop_schema().await.expect("drop schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_three_processes_fire_each_tick_once_across_a_leader_kill() {
    let url = std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let ns = namespace("my");
    let config = tasque_mysql::MySqlConfig::new(&url).with_namespace(&ns);
    let store = match tasque_mysql::MySqlStore::connect(config).await {
        Ok(store) => store,
        Err(error) if in_ci() => panic!("MySQL at {url} is unreachable under CI: {error}"),
        Err(error) => return eprintln!("\n!!!!!!!! SKIPPED: MySQL unreachable ({error})\n"),
    };
    store.migrate().await.expect("migrate");
    three_processes_fire_each_tick_once(Arc::new(store.clone()), &url, &ns).await;
    store.drop_tables().await.expect("drop tables");
}
