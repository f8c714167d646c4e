//! `tasque cron` and `tasque work --config` on SQLite: schedules registered by a worker are
//! listed with their next fires, paused, resumed and triggered; a bad configuration file is
//! refused with the line of the bad schedule, and nothing is written.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Cli;

const PATIENCE: Duration = Duration::from_secs(120);

const CONFIG: &str = r#"
[[schedule]]
id = "nightly"
cron = "0 30 2 * * *"
zone = "Europe/Paris"
task = "exec"
args = { argv = ["true"] }
queue = "reports"

[[schedule]]
id = "hourly"
cron = "0 * * * *"
task = "exec"
args = { argv = ["true"] }
queue = "reports"
missed = "skip"
"#;

fn write(cli: &Cli, name: &str, text: &str) -> String {
    let path = cli.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A worker process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a worker with `config` and waits until its schedules are stored.
fn worker_with(cli: &Cli, config: &str) -> Running {
    worker_listing(cli, config, &["hourly", "nightly"])
}

/// The ids `tasque cron list` shows, by id.
fn listed_ids(cli: &Cli) -> Option<Vec<String>> {
    let output = cli.run(&["--json", "cron", "list"]);
    if !output.status.success() {
        return None;
    }
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    Some(
        listed["schedules"]
            .as_array()?
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_string())
            .collect(),
    )
}

/// Starts a worker with `config` and waits until the stored schedules are `ids`.
fn worker_listing(cli: &Cli, config: &str, ids: &[&str]) -> Running {
    let child = cli
        .command(&[
            "--auto-migrate",
            "work",
            "--config",
            config,
            "--queue",
            "other",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if listed_ids(cli).is_some_and(|listed| listed == ids) {
            return child;
        }
        assert!(Instant::now() < deadline, "schedules never became {ids:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cron_commands_list_next_pause_resume_and_trigger() {
    let cli = Cli::new();
    let config = write(&cli, "cron.toml", CONFIG);
    let worker = worker_with(&cli, &config);
    let listed = cli.json(&["cron", "list"]);
    let nightly = &listed["schedules"][1]; // by id: hourly, nightly
    assert_eq!(nightly["id"], "nightly");
    assert_eq!(nightly["expression"], "0 30 2 * * *");
    assert_eq!(nightly["zone"], "Europe/Paris");
    assert_eq!(nightly["paused"], false);
    let next = nightly["next"].as_array().unwrap();
    assert_eq!(next.len(), 3);
    assert!(
        next[0].as_str().unwrap().contains("T02:30:00+0"),
        "{next:?}"
    );

    let ten = cli.json(&["cron", "next", "hourly", "-n", "10"]);
    assert_eq!(ten["next"].as_array().unwrap().len(), 10);

    cli.ok(&["cron", "pause", "hourly"]);
    assert_eq!(cli.json(&["cron", "list"])["schedules"][0]["paused"], true);
    cli.ok(&["cron", "resume", "hourly"]);
    assert_eq!(cli.json(&["cron", "list"])["schedules"][0]["paused"], false);

    let first = cli.json(&["cron", "trigger", "nightly"]);
    assert_eq!(first["created"], true);
    let again = cli.json(&["cron", "trigger", "nightly"]);
    assert_eq!(
        again["created"], false,
        "the same tick lands on the same job"
    );
    assert_eq!(again["job"], first["job"]);
    let job = cli.job(first["job"].as_i64().unwrap());
    assert_eq!(job["headers"]["tasque.cron.id"], "nightly");

    let unknown = cli.run(&["cron", "pause", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    drop(worker);
}

#[test]
fn cron_delete_and_a_schedule_removed_from_the_config_stop_firing() {
    let cli = Cli::new();
    let config = write(&cli, "cron.toml", CONFIG);
    let worker = worker_with(&cli, &config);
    let deleted = cli.json(&["cron", "delete", "hourly"]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(listed_ids(&cli).unwrap(), ["nightly"]);
    let unknown = cli.run(&["cron", "delete", "hourly"]);
    assert_eq!(unknown.status.code(), Some(1));
    drop(worker);
    // The file is the namespace's list: a worker started with a file without `nightly`
    // deletes it (and registers the schedules the file has).
    let only_hourly = CONFIG[CONFIG.find("[[schedule]]\nid = \"hourly\"").unwrap()..].to_string();
    let config = write(&cli, "hourly.toml", &only_hourly);
    let worker = worker_listing(&cli, &config, &["hourly"]);
    drop(worker);
}

#[test]
fn a_bad_config_names_the_line_and_writes_nothing() {
    let cli = Cli::new();
    let bad_zone = CONFIG.replace("Europe/Paris", "Europe/Atlantis");
    let config = write(&cli, "bad.toml", &bad_zone);
    let output = cli.run(&["--auto-migrate", "work", "--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("unknown time zone"), "{stderr}");
    assert!(
        !cli.dir.path().join("jobs.db").exists(),
        "the database was touched"
    );

    let duplicate = CONFIG.replace("id = \"hourly\"", "id = \"nightly\"");
    let config = write(&cli, "dup.toml", &duplicate);
    let output = cli.run(&["--auto-migrate", "work", "--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 10: duplicate schedule id"),
        "{stderr}"
    );

    let typo = CONFIG.replace("queue = \"reports\"\nmissed", "queue = \"reports\"\nmised");
    let config = write(&cli, "typo.toml", &typo);
    let output = cli.run(&["--auto-migrate", "work", "--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 16"), "{stderr}");
    assert!(
        !cli.dir.path().join("jobs.db").exists(),
        "the database was touched"
    );
}
