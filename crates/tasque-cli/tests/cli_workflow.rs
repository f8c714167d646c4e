//! End-to-end tests of the workflow and queue-control subcommands (`jobs show` with
//! checkpoints, `emit`, `queues limit`, `queues blocking` and the blocked-by display):
//! the built binary against a temporary SQLite file, which the test also opens directly
//! to create checkpoints and event waits.

use serde_json::{json, Value};
use tasque_durable::{
    AwaitEvent, AwaitOutcome, ClaimParams, JobId, PollOrder, RunId, SetCheckpoint, Spawn, Store,
};
use tasque_sqlite::{SqliteConfig, SqliteStore};

mod common;
use common::Cli;

/// The same SQLite file the binary uses, opened in the test, with a runtime to drive it.
struct DirectStore {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
}

impl DirectStore {
    fn open(cli: &Cli) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let path = cli.dir.path().join("jobs.db");
        let store = runtime.block_on(async {
            let store = SqliteStore::connect(SqliteConfig::file(path))
                .await
                .unwrap();
            store.migrate().await.unwrap();
            store
        });
        DirectStore { runtime, store }
    }

    /// Spawns a job into `queue` and claims it: returns its id and run.
    fn spawn_and_claim(&self, queue: &str, task: &str) -> (JobId, RunId) {
        self.runtime.block_on(async {
            let spawned = self
                .store
                .spawn(Spawn::new(queue, task, json!({})))
                .await
                .unwrap();
            let claims = self
                .store
                .claim(ClaimParams {
                    queues: vec![queue.to_owned()],
                    limit: 1,
                    lease: std::time::Duration::from_secs(60),
                    worker_id: "test-worker".into(),
                    order: PollOrder::default(),
                })
                .await
                .unwrap();
            assert_eq!(claims.len(), 1);
            (spawned.job_id, claims[0].run_id)
        })
    }
}

#[test]
fn jobs_show_displays_checkpoints_in_human_and_json_output() {
    let cli = Cli::new();
    let direct = DirectStore::open(&cli);
    let (job, run) = direct.spawn_and_claim("default", "import");
    direct.runtime.block_on(async {
        for (name, value) in [("download", json!({"rows": 42})), ("parse", json!("ok"))] {
            direct
                .store
                .set_checkpoint(SetCheckpoint {
                    run,
                    name: name.into(),
                    value,
                    extend_lease: std::time::Duration::from_secs(60),
                })
                .await
                .unwrap();
        }
    });
    let shown = cli.job(job.0);
    let checkpoints = shown["checkpoints"].as_array().unwrap();
    let names: Vec<&str> = checkpoints
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["download", "parse"]);
    assert_eq!(checkpoints[0]["value"], json!({"rows": 42}));
    assert_eq!(checkpoints[1]["value"], "ok");
    let human = cli.ok(&["jobs", "show", &job.0.to_string()]);
    assert!(human.contains("checkpoints (2)"), "{human}");
    assert!(
        human.contains("download") && human.contains(r#"{"rows":42}"#),
        "{human}"
    );
}

#[test]
fn emit_wakes_waiting_jobs_and_prints_how_many() {
    let cli = Cli::new();
    let direct = DirectStore::open(&cli);
    let waiters: Vec<JobId> = (0..2)
        .map(|_| {
            let (job, run) = direct.spawn_and_claim("orders", "ship");
            let outcome = direct
                .runtime
                .block_on(direct.store.await_event(AwaitEvent {
                    run,
                    name: "order.paid".into(),
                    timeout: None,
                }));
            assert_eq!(outcome.unwrap(), AwaitOutcome::Suspended);
            job
        })
        .collect();
    for job in &waiters {
        assert_eq!(cli.job(job.0)["state"], "waiting");
    }
    let emitted = cli.json(&["emit", "order.paid", r#"{"order": 1001}"#]);
    assert_eq!(emitted, json!({"event": "order.paid", "woken": 2}));
    for job in &waiters {
        assert_eq!(cli.job(job.0)["state"], "available");
    }
    let claims = direct.runtime.block_on(direct.store.claim(ClaimParams {
        queues: vec!["orders".into()],
        limit: 10,
        lease: std::time::Duration::from_secs(60),
        worker_id: "test-worker".into(),
        order: PollOrder::default(),
    }));
    let claims = claims.unwrap();
    assert_eq!(claims.len(), 2);
    assert!(claims
        .iter()
        .all(|c| c.event_payload == Some(json!({"order": 1001}))));
    let human = cli.ok(&["emit", "nobody.listens"]);
    assert_eq!(human.trim(), "emitted nobody.listens: woke 0 waiting jobs");
}

fn queue_row(cli: &Cli, name: &str) -> Value {
    let listed = cli.json(&["queues"]);
    listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("queue {name} not listed: {listed}"))
        .clone()
}

#[test]
fn queues_limit_and_blocking_are_set_and_listed_with_the_blocking_job() {
    let cli = Cli::new();
    let limited = cli.json(&["queues", "limit", "reports", "2"]);
    assert_eq!(limited["concurrency_limit"], 2);
    assert_eq!(queue_row(&cli, "reports")["concurrency_limit"], 2);
    cli.json(&["queues", "limit", "reports", "none"]);
    assert_eq!(queue_row(&cli, "reports")["concurrency_limit"], Value::Null);

    let set = cli.json(&[
        "queues",
        "blocking",
        "payments",
        "on",
        "--on-exhausted",
        "stay-blocked",
    ]);
    assert_eq!(set["on_exhausted"], "stay_blocked");
    let head = cli.enqueue(&[
        "exec",
        "--queue",
        "payments",
        "--max-attempts",
        "1",
        "--",
        "sh",
        "-c",
        "echo card declined >&2; exit 1",
    ]);
    let behind = cli.enqueue(&["exec", "--queue", "payments", "--", "true"]);
    let payments = queue_row(&cli, "payments");
    assert_eq!(
        (
            &payments["blocking"],
            &payments["on_exhausted"],
            &payments["blocked"]
        ),
        (&json!(true), &json!("stay_blocked"), &json!(false))
    );

    // The worker stops although a job is left: the queue is blocked, and it says by which.
    let worked = cli.json(&[
        "work",
        "--queue",
        "payments",
        "--until-empty",
        "--poll-interval",
        "20ms",
    ]);
    assert_eq!(
        worked["blocked_queues"],
        json!([{"queue": "payments", "blocked_by": head}])
    );
    assert_eq!(cli.job(head)["state"], "failed");
    assert_eq!(cli.job(behind)["state"], "available");
    let payments = queue_row(&cli, "payments");
    assert_eq!(
        (&payments["blocked"], &payments["blocked_by"]),
        (&json!(true), &json!(head))
    );
    let human = cli.ok(&["queues"]);
    let line = human
        .lines()
        .find(|l| l.starts_with("payments"))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        line.contains(&format!("blocked by job {head}"))
            && line.contains("blocking (stay_blocked)"),
        "{human}"
    );
    assert!(human.lines().next().unwrap().contains("LIMIT"), "{human}");

    // Keeping the policy: `blocking on` without --on-exhausted does not reset it.
    cli.json(&["queues", "blocking", "payments", "on"]);
    assert_eq!(queue_row(&cli, "payments")["on_exhausted"], "stay_blocked");

    // An operator cancels the head: the queue moves again.
    cli.json(&["cancel", &head.to_string()]);
    cli.ok(&[
        "work",
        "--queue",
        "payments",
        "--until-empty",
        "--poll-interval",
        "20ms",
    ]);
    assert_eq!(cli.job(behind)["state"], "completed");
    let payments = queue_row(&cli, "payments");
    assert_eq!(payments["blocked_by"], Value::Null);
    cli.json(&["queues", "blocking", "payments", "off"]);
    assert_eq!(queue_row(&cli, "payments")["blocking"], false);
}
