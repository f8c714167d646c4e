//! End-to-end tests of `tasque amqp work`, `tasque amqp publish` and `tasque amqp queues`: the
//! built binary against the RabbitMQ server at `TASQUE_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Under `CI=true` an unreachable broker fails
//! these tests; otherwise they are skipped loudly. Each test uses its own queues and
//! deletes them afterwards (they also expire after ten idle minutes, should a test die).

#[path = "../../tasque-amqp/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{broker, header};
use serde_json::Value;
use tasque_amqp::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Generous: the machine is shared and may be loaded.
const PATIENCE: Duration = Duration::from_secs(120);

fn tasque(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasque"));
    command
        .args(args)
        .env("TASQUE_DATABASE_URL", "sqlite::memory:")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(args: &[&str]) -> Output {
    let output = tokio::time::timeout(PATIENCE, tasque(args).output())
        .await
        .unwrap_or_else(|_| panic!("tasque {args:?} did not finish within {PATIENCE:?}"))
        .expect("run tasque");
    assert!(
        output.status.success(),
        "tasque {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn json(args: &[&str]) -> Value {
    let output = run(args).await;
    serde_json::from_slice(&output.stdout).expect("--json output is one JSON document")
}

fn touch(dir: &Path, name: &str) -> String {
    format!("touch {}", dir.join(name).display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_work_runs_exec_messages_acks_successes_and_dead_letters_failures() {
    let Some(mut broker) = broker("amqp_work_runs_exec_messages").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let queue = broker.queue("work").await;
    let dead = broker.queue("dead").await;
    let url = broker.url.clone();

    for i in 0..3 {
        let script = touch(dir.path(), &format!("ok-{i}"));
        let published = json(&[
            "--json", "amqp", "publish", "--url", &url, "--queue", &queue, "exec", "--", "sh",
            "-c", &script,
        ])
        .await;
        assert_eq!(published["published"], true);
    }
    let failing = "echo card declined >&2; exit 4";
    run(&[
        "amqp", "publish", "--url", &url, "--queue", &queue, "exec", "--", "sh", "-c", failing,
    ])
    .await;
    let garbage = Message::raw(b"{not json".to_vec()).task("exec");
    broker
        .publisher
        .publish_to_queue(&queue, &garbage)
        .await
        .unwrap();
    assert_eq!(broker.ready(&queue).await, 5);

    let worked = json(&[
        "--json",
        "amqp",
        "work",
        "--url",
        &url,
        "--queue",
        &queue,
        "--concurrency",
        "4",
        "--max-attempts",
        "2",
        "--timeout",
        "60s",
        "--dead-letter-queue",
        &dead,
        "--until-empty",
    ])
    .await;
    assert_eq!(worked["acked"], 3, "{worked}");
    assert_eq!(worked["retried"], 1, "{worked}");
    assert_eq!(worked["dead_lettered"], 2, "{worked}");
    assert_eq!(
        worked["received"], 6,
        "3 successes, 2 attempts of the failure, the garbage: {worked}"
    );
    for i in 0..3 {
        assert!(
            dir.path().join(format!("ok-{i}")).exists(),
            "ok-{i} did not run"
        );
    }
    assert_eq!(broker.ready(&queue).await, 0);

    let dead_letters = broker.take_all(&dead).await;
    let mut reasons: Vec<String> = dead_letters
        .iter()
        .map(|m| header(m, "x-tasque-dead-letter-reason").expect("a reason header"))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("gave up after 2 attempts")
            && reasons[0].contains("exited with status 4: card declined"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("undecodable payload"), "{reasons:?}");
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_work_stops_on_sigterm_after_finishing_the_running_command() {
    let Some(mut broker) = broker("amqp_work_stops_on_sigterm").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let queue = broker.queue("term").await;
    let url = broker.url.clone();
    let started = dir.path().join("started");
    let script = format!(
        "touch {}; sleep 1; {}",
        started.display(),
        touch(dir.path(), "finished")
    );

    let mut worker = tasque(&["--json", "amqp", "work", "--url", &url, "--queue", &queue])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tasque work");
    // The worker says it is consuming once its signal handlers are installed.
    let mut stderr = BufReader::new(worker.stderr.take().unwrap()).lines();
    let announced = tokio::time::timeout(PATIENCE, stderr.next_line())
        .await
        .expect("the worker announces itself")
        .unwrap()
        .unwrap_or_default();
    assert!(announced.contains("consuming"), "{announced}");

    run(&[
        "amqp", "publish", "--url", &url, "--queue", &queue, "exec", "--", "sh", "-c", &script,
    ])
    .await;
    let deadline = Instant::now() + PATIENCE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = worker.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let output = tokio::time::timeout(PATIENCE, worker.wait_with_output())
        .await
        .expect("the worker stops after SIGTERM")
        .unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let stats: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stats["acked"], 1, "the running command finished: {stats}");
    assert_eq!(stats["requeued"], 0, "{stats}");
    assert!(dir.path().join("finished").exists());
    assert_eq!(broker.ready(&queue).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_work_max_messages_stops_after_that_many() {
    let Some(mut broker) = broker("amqp_work_max_messages").await else {
        return;
    };
    let queue = broker.queue("bounded").await;
    let url = broker.url.clone();
    // Each runs a moment, so the stop is seen while the second one runs.
    for _ in 0..5 {
        run(&[
            "amqp", "publish", "--url", &url, "--queue", &queue, "exec", "--", "sleep", "0.2",
        ])
        .await;
    }
    let worked = json(&[
        "--json",
        "amqp",
        "work",
        "--url",
        &url,
        "--queue",
        &queue,
        "--concurrency",
        "1",
        "--max-messages",
        "2",
    ])
    .await;
    let acked = worked["acked"].as_u64().unwrap();
    // Prefetch 1: at most one more message was in hand when the bound was reached.
    assert!((2..=3).contains(&acked), "{worked}");
    assert_eq!(u64::from(broker.ready(&queue).await), 5 - acked, "{worked}");
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_queues_shows_declares_and_purges_through_the_admin_api() {
    let Some(mut broker) = broker("amqp_queues_shows_declares_and_purges").await else {
        return;
    };
    let url = broker.url.clone();
    let queue = broker.queue("shown").await;
    let declared = broker.name("declared");
    broker.track(&declared);
    let missing = broker.name("missing");
    for _ in 0..2 {
        run(&[
            "amqp", "publish", "--url", &url, "--queue", &queue, "exec", "--", "true",
        ])
        .await;
    }

    let shown = json(&["--json", "amqp", "queues", "--url", &url, &queue, &missing]).await;
    assert_eq!(shown["queues"][0]["ready"], 2, "{shown}");
    assert_eq!(shown["queues"][0]["consumers"], 0, "{shown}");
    assert_eq!(shown["queues"][1]["exists"], false, "{shown}");

    let first = json(&[
        "--json", "amqp", "queues", "--url", &url, "declare", &declared,
    ])
    .await;
    assert_eq!(first["declared"], true, "{first}");
    let again = json(&[
        "--json", "amqp", "queues", "--url", &url, "declare", &declared,
    ])
    .await;
    assert_eq!(again["declared"], false, "{again}");
    assert_eq!(broker.ready(&declared).await, 0);

    let purged = json(&["--json", "amqp", "queues", "--url", &url, "purge", &queue]).await;
    assert_eq!(purged["purged"], 2, "{purged}");
    assert_eq!(broker.ready(&queue).await, 0);

    let output = tasque(&["amqp", "queues", "--url", &url, "purge", &missing])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
    broker.cleanup().await;
}
