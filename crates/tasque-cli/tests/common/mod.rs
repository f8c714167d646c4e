//! Shared support of the end-to-end tests: the built `tasque` binary run against a
//! temporary SQLite file.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A temporary directory holding the database the binary uses.
pub struct Cli {
    /// The temporary directory (the working directory of every run).
    pub dir: tempfile::TempDir,
}

impl Cli {
    /// A fresh directory and database.
    pub fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The database URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("jobs.db").display())
    }

    /// A command running the binary on this database.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tasque"));
        command
            .args(args)
            .env("TASQUE_DATABASE_URL", self.url())
            .env_remove("TASQUE_NAMESPACE")
            .current_dir(self.dir.path());
        command
    }

    /// Runs with stdin closed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tasque {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs with `--json` and parses the one JSON document printed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ok(&with_json)).expect("--json output is one JSON document")
    }

    /// Enqueues with `--json` and returns the job id.
    pub fn enqueue(&self, args: &[&str]) -> i64 {
        let mut full = vec!["enqueue"];
        full.extend_from_slice(args);
        self.json(&full)["job_id"].as_i64().unwrap()
    }

    /// `tasque jobs show ID --json`.
    pub fn job(&self, id: i64) -> Value {
        self.json(&["jobs", "show", &id.to_string()])
    }

    /// `tasque work --until-empty` with a short poll interval.
    pub fn work_until_empty(&self) {
        self.ok(&[
            "work",
            "--concurrency",
            "4",
            "--until-empty",
            "--poll-interval",
            "20ms",
        ]);
    }
}
