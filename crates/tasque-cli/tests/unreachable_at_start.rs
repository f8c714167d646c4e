//! The database unreachable at worker start (issue 18, SPEC Part 4 "survives its servers"):
//! `tasque work` retries with backoff, logs one clear line per attempt, then works once the
//! database answers.
//!
//! The worker is pointed at a local port where nothing listens; after it has tried twice, the
//! test opens a TCP relay on that port to the real PostgreSQL server
//! (`TASQUE_TEST_POSTGRES_URL`). No server is stopped, so other tests are not disturbed.
//! Under `CI=true` an unreachable server fails the test; elsewhere it is skipped loudly.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use tasque_durable::{JobFilter, JobState, Spawn, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const PATIENCE: Duration = Duration::from_secs(120);

fn postgres_url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Relays every connection to `target` until the task is aborted.
async fn relay(listener: TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_retries_an_unreachable_database_with_backoff_then_works() {
    let url = postgres_url();
    if let Err(error) = sqlx::PgConnection::connect(&url).await {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("PostgreSQL at {url} is unreachable under CI: {error}");
        }
        eprintln!("\n!!!!!!!! SKIPPED: PostgreSQL at {url} is unreachable ({error}) !!!!!!!!\n");
        return;
    }
    let namespace = format!("tqcliup{:08x}", rand::random::<u32>());
    let store = PostgresStore::connect(PostgresConfig::new(&url).with_namespace(&namespace))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let spawns = (0..20)
        .map(|i| {
            Spawn::new(
                "default",
                "exec",
                json!({ "argv": ["true", i.to_string()] }),
            )
        })
        .collect();
    store.spawn_many(spawns).await.unwrap();

    // A port where nothing listens yet, and the same URL through it.
    let parsed = url::Url::parse(&url).unwrap();
    let target = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut relayed = parsed.clone();
    relayed.set_host(Some("127.0.0.1")).unwrap();
    relayed.set_port(Some(port)).unwrap();

    let mut worker = Command::new(env!("CARGO_BIN_EXE_tasque"))
        .args(["--json", "--database-url", relayed.as_str(), "--namespace"])
        .arg(&namespace)
        .args(["work", "--until-empty", "--poll-interval", "50ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tasque work");
    let mut lines = BufReader::new(worker.stderr.take().unwrap()).lines();
    let mut attempts = Vec::new();
    while attempts.len() < 2 {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the worker reports each attempt")
            .unwrap()
            .expect("the worker keeps running while the database is away");
        attempts.push(line);
    }
    for (i, line) in attempts.iter().enumerate() {
        assert!(
            line.starts_with("tasque work: database unavailable")
                && line.contains(&format!("(attempt {})", i + 1))
                && line.contains("retrying in")
                && line.contains(&format!("127.0.0.1:{port}")),
            "{line}"
        );
    }
    assert!(
        attempts[1].contains("retrying in 2s"),
        "backoff doubles: {attempts:?}"
    );

    // The database comes back.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let relaying = tokio::spawn(relay(listener, target));
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    let output = tokio::time::timeout(PATIENCE, worker.wait_with_output())
        .await
        .expect("the worker finished the jobs once the database answered")
        .unwrap();
    relaying.abort();
    let rest = rest.await.unwrap();
    assert!(output.status.success(), "{:?}: {rest:?}", output.status);
    assert!(
        rest.iter()
            .any(|line| line.contains("database reached after")),
        "{rest:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["completed"], 20, "{report}");
    let completed = store
        .count(JobFilter::all().states([JobState::Completed]))
        .await
        .unwrap();
    assert_eq!(completed, 20);
    store.drop_schema().await.unwrap();
}
