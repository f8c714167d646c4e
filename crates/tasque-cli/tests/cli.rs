//! End-to-end tests of the `tasque` binary against a temporary SQLite file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::Cli;

#[test]
fn enqueue_exec_work_until_empty_and_inspect() {
    let cli = Cli::new();
    let ok = cli.enqueue(&["exec", "--", "sh", "-c", "echo hello; echo warn >&2"]);
    let bad = cli.enqueue(&[
        "exec",
        "--max-attempts",
        "1",
        "--",
        "sh",
        "-c",
        "echo broken >&2; exit 7",
    ]);
    let slow = cli.enqueue(&[
        "exec",
        "--max-attempts",
        "1",
        "--exec-timeout",
        "100ms",
        "--",
        "sleep",
        "30",
    ]);
    cli.work_until_empty();

    let ok = cli.job(ok);
    assert_eq!(ok["state"], "completed");
    assert_eq!(ok["result"]["exit_code"], 0);
    assert_eq!(ok["result"]["stdout_tail"], "hello\n");
    assert_eq!(ok["result"]["stderr_tail"], "warn\n");

    let bad = cli.job(bad);
    assert_eq!(bad["state"], "failed");
    assert_eq!(bad["failure"]["report"]["exit_code"], 7);
    assert_eq!(bad["failure"]["report"]["stderr_tail"], "broken\n");

    let slow = cli.job(slow);
    assert_eq!(slow["state"], "failed");
    assert_eq!(slow["failure"]["report"]["timed_out"], true);

    let listed = cli.json(&["jobs", "--state", "failed"]);
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);
    let stats = cli.json(&["stats"]);
    assert_eq!(stats["total"]["completed"], 1);
    assert_eq!(stats["total"]["failed"], 2);
    let human = cli.ok(&["jobs"]);
    assert!(
        human.contains("completed") && human.contains("failed"),
        "{human}"
    );
    for human in [human, cli.ok(&["stats"]), cli.ok(&["queues"])] {
        assert!(
            !human.contains('\x1b'),
            "colours only on a terminal: {human:?}"
        );
    }
}

#[test]
fn exec_failure_is_retried_by_the_jobs_options() {
    let cli = Cli::new();
    let marker = cli.dir.path().join("ran-once");
    let script = format!(
        "if [ -e {m} ]; then echo second; else touch {m}; exit 1; fi",
        m = marker.display()
    );
    let id = cli.enqueue(&["exec", "--max-attempts", "3", "--", "sh", "-c", &script]);
    cli.ok(&[
        "work",
        "--until-empty",
        "--wait-scheduled",
        "--poll-interval",
        "20ms",
    ]);
    let job = cli.job(id);
    assert_eq!(job["state"], "completed");
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["errors"].as_array().unwrap().len(), 1);
    assert_eq!(job["result"]["stdout_tail"], "second\n");
}

#[test]
fn json_params_from_argument_and_stdin_and_options_as_flags() {
    let cli = Cli::new();
    let from_arg = cli.enqueue(&[
        "greet",
        r#"{"name":"ada"}"#,
        "--queue",
        "mail",
        "--priority",
        "-3",
        "--delay",
        "1h",
        "--max-attempts",
        "4",
    ]);
    let mut child = cli
        .command(&["--json", "enqueue", "greet", "--queue", "mail"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"name":"grace"}"#)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let from_stdin: Value = serde_json::from_slice(&output.stdout).unwrap();
    let job = cli.job(from_arg);
    assert_eq!(job["params"]["name"], "ada");
    assert_eq!(
        (
            job["queue"].as_str(),
            job["priority"].as_i64(),
            job["max_attempts"].as_i64()
        ),
        (Some("mail"), Some(-3), Some(4))
    );
    assert_eq!(job["state"], "scheduled");
    let job = cli.job(from_stdin["job_id"].as_i64().unwrap());
    assert_eq!(job["params"]["name"], "grace");
}

#[test]
fn idempotency_key_returns_the_existing_job() {
    let cli = Cli::new();
    let first = cli.json(&["enqueue", "report", "{}", "--idempotency-key", "day-1"]);
    let second = cli.json(&["enqueue", "report", "{}", "--idempotency-key", "day-1"]);
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(
        (first["created"].as_bool(), second["created"].as_bool()),
        (Some(true), Some(false))
    );
}

#[test]
fn unique_key_returns_the_existing_job_and_jobs_show_names_it() {
    let cli = Cli::new();
    let args = [
        "enqueue",
        "digest",
        "{}",
        "--unique-key",
        "digest:7",
        "--unique-period",
        "1h",
    ];
    let first = cli.json(&args);
    let second = cli.json(&args);
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(
        (first["created"].as_bool(), second["created"].as_bool()),
        (Some(true), Some(false))
    );
    let id = first["job_id"].to_string();
    let shown = cli.json(&["jobs", "show", &id]);
    assert_eq!(shown["unique_key"], "digest:7");
}

#[test]
fn depends_on_holds_a_job_and_jobs_show_lists_its_parents() {
    let cli = Cli::new();
    let a = cli.enqueue(&["exec", "--", "true"]);
    let b = cli.enqueue(&["exec", "--", "true"]);
    let child = cli.enqueue(&[
        "exec",
        "--depends-on",
        &a.to_string(),
        "--depends-on",
        &b.to_string(),
        "--on-parent-failure",
        "run",
        "--",
        "true",
    ]);
    let shown = cli.job(child);
    assert_eq!(shown["state"], "on_hold");
    assert_eq!(shown["on_parent_failure"], "run");
    let parents = shown["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 2);
    assert_eq!(
        (parents[0]["id"].as_i64(), parents[1]["id"].as_i64()),
        (Some(a), Some(b))
    );
    assert_eq!(parents[0]["state"], "available");
    assert_eq!(
        shown["waits"],
        format!("waiting on 2 of 2 parents ({a}, {b})").as_str()
    );
    assert_eq!(cli.job(a)["dependents"], 1);
    let text = cli.ok(&["jobs", "show", &child.to_string()]);
    assert!(text.contains("parents    2"), "{text}");
    assert!(text.contains(&format!("job {a}")), "{text}");
    assert!(text.contains("waiting on 2 of 2 parents"), "{text}");
    let held = cli.json(&["jobs", "--state", "on_hold"]);
    assert_eq!(held["jobs"].as_array().map(Vec::len), Some(1), "{held}");

    let refused = cli.run(&["enqueue", "later", "{}", "--depends-on", "987654"]);
    assert_ne!(refused.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("987654"), "{stderr}");

    cli.work_until_empty();
    assert_eq!(cli.job(child)["state"], "completed");
    assert_eq!(cli.job(child)["parents"][1]["state"], "completed");
}

#[test]
fn cancel_retry_purge_and_clean() {
    let cli = Cli::new();
    let id = cli.enqueue(&["later", "{}", "--delay", "1h"]);
    let cancelled = cli.json(&["cancel", &id.to_string()]);
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cli.job(id)["state"], "cancelled");
    let again = cli.json(&["cancel", &id.to_string()]);
    assert_eq!(
        again["cancelled"], false,
        "cancelling a finished job is a no-op"
    );
    cli.json(&["retry", &id.to_string()]);
    assert_eq!(cli.job(id)["state"], "available");
    let purged = cli.json(&["purge", "--task", "later"]);
    assert_eq!(purged["deleted"], 1);
    let missing = cli.run(&["jobs", "show", &id.to_string()]);
    assert_eq!(missing.status.code(), Some(1));

    let done = cli.enqueue(&["exec", "--", "true"]);
    cli.work_until_empty();
    assert_eq!(cli.job(done)["state"], "completed");
    let kept = cli.json(&["clean", "--older-than", "1h"]);
    assert_eq!(kept["deleted"], 0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cleaned = cli.json(&["clean", "--older-than", "10ms"]);
    assert_eq!(cleaned["deleted"], 1);
}

#[test]
fn queues_pause_and_resume() {
    let cli = Cli::new();
    let id = cli.enqueue(&["exec", "--queue", "nightly", "--", "true"]);
    cli.json(&["queues", "pause", "nightly"]);
    let listed = cli.json(&["queues"]);
    let nightly = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "nightly")
        .unwrap()
        .clone();
    assert_eq!(nightly["paused"], true);
    cli.ok(&[
        "work",
        "--queue",
        "nightly",
        "--until-empty",
        "--poll-interval",
        "20ms",
    ]);
    assert_eq!(
        cli.job(id)["state"],
        "available",
        "a paused queue was worked"
    );
    cli.json(&["queues", "resume", "nightly"]);
    cli.ok(&[
        "work",
        "--queue",
        "nightly",
        "--until-empty",
        "--poll-interval",
        "20ms",
    ]);
    assert_eq!(cli.job(id)["state"], "completed");
}

#[test]
fn bad_input_is_one_clear_line_a_nonzero_exit_and_nothing_written() {
    let cli = Cli::new();
    cli.ok(&["migrate"]);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["enqueue", "task", "{not json"], 2, "not valid JSON"),
        (
            vec!["enqueue", "task", "{}", "--max-attempts", "0"],
            2,
            "max_attempts",
        ),
        (
            vec!["enqueue", "bad'; DROP TABLE jobs;--", "{}"],
            2,
            "invalid task name",
        ),
        (vec!["enqueue", "task", "{}", "--queue", ""], 2, "queue"),
        (vec!["enqueue", "exec"], 2, "argv"),
        (
            vec!["enqueue", "task", "{}", "--depends-on", "987654"],
            2,
            "parent job 987654 does not exist",
        ),
        (
            vec!["enqueue", "task", "{}", "--on-parent-failure", "run"],
            2,
            "--depends-on",
        ),
        (vec!["frobnicate"], 2, "unrecognized subcommand"),
        (
            vec!["--database-url", "sqlite:///no/such/dir/x.db", "jobs"],
            3,
            "does not exist",
        ),
        (
            vec!["--database-url", "postgres://app:pw@127.0.0.1:1/x", "jobs"],
            3,
            "cannot reach the database at postgres://app:***@127.0.0.1:1/x",
        ),
        (
            vec![
                "--database-url",
                "postgres://app@127.0.0.1:1/x?sslmode=disable&password=hunter2",
                "enqueue",
                "task",
                "{}",
            ],
            3,
            "postgres://app@127.0.0.1:1/x?sslmode=disable&password=***",
        ),
        (
            vec!["--database-url", "oracle://db", "jobs"],
            2,
            "unsupported database URL",
        ),
        (vec!["cancel", "999"], 1, "not found"),
        (vec!["emit", "order.paid", "{nope"], 2, "not valid JSON"),
        (vec!["emit", "bad name"], 2, "invalid event name"),
        (
            vec!["queues", "limit", "q", "0"],
            2,
            "positive number or none",
        ),
        (vec!["queues", "blocking", "q", "maybe"], 2, "use on or off"),
        (
            vec!["queues", "blocking", "q", "on", "--on-exhausted", "explode"],
            2,
            "stay-blocked",
        ),
        (vec!["enqueue", "greet", "{}", "--", "ls"], 2, "only exec"),
        (
            vec!["enqueue", "--amqp-url", "amqp://h", "exec", "--", "true"],
            2,
            "unexpected argument '--amqp-url'",
        ),
        (vec!["work", "--timeout", "1s"], 2, "unexpected argument"),
        (
            vec![
                "amqp",
                "--url",
                "amqp://guest:hunter2@127.0.0.1:1/%2f",
                "work",
                "--queue",
                "q",
            ],
            3,
            "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f",
        ),
        (
            vec![
                "amqp",
                "publish",
                "--url",
                "amqp://guest:guest@127.0.0.1:1/%2f",
                "--queue",
                "q",
                "exec",
                "--",
                "true",
            ],
            3,
            "cannot reach RabbitMQ",
        ),
        (
            vec!["amqp", "publish", "--queue", "q", "greet", "{nope"],
            2,
            "not valid JSON",
        ),
        (vec!["amqp", "work"], 2, "--queue"),
        (vec!["amqp", "queues"], 2, "name the queues"),
    ];
    for (args, code, needle) in cases {
        let output = cli.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
        assert!(
            !stderr.contains("hunter2"),
            "{args:?} printed a password: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
    }
    let stats = cli.json(&["stats"]);
    assert_eq!(
        stats["total"],
        serde_json::json!({"available":0,"scheduled":0,"running":0,"sleeping":0,"waiting":0,"completed":0,"failed":0,"cancelled":0,"on_hold":0})
    );
}

#[test]
fn every_subcommand_has_help_with_examples() {
    let cli = Cli::new();
    for sub in [
        "migrate",
        "enqueue",
        "work",
        "jobs",
        "stats",
        "retry",
        "cancel",
        "purge",
        "clean",
        "queues",
        "emit",
        "demo",
        "amqp",
        "completions",
    ] {
        let help = cli.ok(&[sub, "--help"]);
        assert!(
            help.contains("Example"),
            "tasque {sub} --help has no example"
        );
    }
    let top = cli.ok(&["--help"]);
    assert!(top.contains("Exit codes"), "{top}");
    let queues = cli.ok(&["queues", "--help"]);
    for action in ["limit", "blocking", "pause", "resume"] {
        assert!(queues.contains(action), "queues --help lacks {action}");
        let help = cli.ok(&["queues", action, "--help"]);
        assert!(help.contains("Example"), "queues {action} --help: {help}");
    }
    assert!(cli.ok(&["jobs", "show", "--help"]).contains("Example"));
    for sub in ["work", "publish", "queues"] {
        let help = cli.ok(&["amqp", sub, "--help"]);
        assert!(help.contains("Example"), "amqp {sub} --help: {help}");
    }
    assert!(!cli.ok(&["work", "--help"]).contains("amqp"));
}

#[test]
fn demo_runs_every_feature_on_the_embedded_default() {
    let cli = Cli::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasque"));
    command
        .args(["--json", "demo", "--jobs", "20"])
        .current_dir(cli.dir.path())
        .env_remove("TASQUE_DATABASE_URL");
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        Path::new(&cli.dir.path().join("tasque.db")).exists(),
        "the default database is a file in the working directory"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let states: Vec<&str> = report["showcase"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "completed",
            "completed",
            "failed",
            "failed",
            "scheduled",
            "completed",
            "completed",
            "completed",
            "completed",
            "cancelled"
        ]
    );
    assert_eq!(report["by_state"]["failed"], 2);
    // The workflow job resumed twice (after its sleep and after the event) and
    // got the payload the demo emitted.
    let workflow = &report["showcase"][8]["job"];
    assert_eq!(workflow["task"], "demo.onboard");
    assert_eq!(workflow["result"]["account"], "acct-ada");
    assert_eq!(workflow["result"]["verified"]["by"], "tasque demo");
    assert_eq!(workflow["result"]["runs_so_far"], 3);
}

#[test]
fn work_stops_gracefully_on_sigterm() {
    use std::io::BufRead;
    let cli = Cli::new();
    cli.ok(&["migrate"]);
    let mut worker = cli
        .command(&["--json", "work", "--poll-interval", "20ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It announces itself once its signal handlers are installed.
    let mut stderr = std::io::BufReader::new(worker.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("running"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = worker.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["completed"], 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("terminated; shutting down"), "{rest}");
}

#[test]
fn help_never_shows_a_password_from_the_environment() {
    let cli = Cli::new();
    for args in [
        vec!["--help"],
        vec!["work", "--help"],
        vec!["amqp", "--help"],
    ] {
        let output = cli
            .command(&args)
            .env("TASQUE_DATABASE_URL", "postgres://app:hunter2@db/app")
            .env("TASQUE_AMQP_URL", "amqp://app:hunter2@mq/%2f")
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(printed.contains("TASQUE_"), "{args:?}: {printed}");
        assert!(
            !printed.contains("hunter2"),
            "{args:?} printed a password: {printed}"
        );
    }
}

#[test]
fn version_and_shell_completions_come_from_clap() {
    let cli = Cli::new();
    let version = cli.ok(&["--version"]);
    assert_eq!(
        version.trim(),
        format!("tasque {}", env!("CARGO_PKG_VERSION"))
    );
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef tasque"),
        ("fish", "complete -c tasque"),
    ] {
        let script = cli.ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("amqp"), "{shell} completes subcommands");
    }
    let output = cli.run(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
}
