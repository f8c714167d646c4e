//! Support of the Python producer tests: the virtual environment `scripts/python-env` makes,
//! running an example program from `examples/producers/`, recording what a worker ran, and
//! the README's Python blocks.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tasque_testkit::in_ci;

use serde_json::Value;
use tasque_worker::{Handlers, JobContext};

/// Generous: the machine is shared and may be loaded.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An example producer program.
pub fn example(script: &str) -> PathBuf {
    root().join("examples/producers").join(script)
}

/// The virtual environment's python, made (or found up to date) by `scripts/python-env` once
/// per test process. When that fails the test fails under `CI=true`; elsewhere it is skipped
/// with a loud message (`None`).
pub fn python(test: &str) -> Option<PathBuf> {
    static MADE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = MADE.get_or_init(|| {
        let output = Command::new(root().join("scripts/python-env"))
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run scripts/python-env: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "scripts/python-env failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let path = stdout.lines().last().unwrap_or_default().trim().to_owned();
        Ok(PathBuf::from(path))
    });
    match made {
        Ok(path) => Some(path.clone()),
        Err(why) if in_ci() => panic!("{test} needs the Python environment and CI=true: {why}"),
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: no Python environment ({why})\n\
                 !!!!!!!! run scripts/python-env (under CI=true this test fails instead)\n"
            );
            None
        }
    }
}

/// Runs `python examples/producers/SCRIPT ARGS...`, expects success, and parses the one JSON
/// document it prints.
pub async fn produce(python: &Path, script: &str, args: &[&str]) -> Value {
    let mut command = tokio::process::Command::new(python);
    command
        .arg(example(script))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} {args:?} did not finish within {PATIENCE:?}"))
        .expect("run python");
    assert!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{script} printed no JSON document ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Runs the built `tasque` binary with `args` and expects success; returns stdout.
pub async fn tasque(args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasque"));
    command
        .args(args)
        .env_remove("TASQUE_DATABASE_URL")
        .env_remove("TASQUE_NAMESPACE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("tasque {args:?} did not finish within {PATIENCE:?}"))
        .expect("run tasque");
    assert!(
        output.status.success(),
        "tasque {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What handlers ran: job id → the params of each run.
#[derive(Clone, Default)]
pub struct Ran(Arc<Mutex<BTreeMap<i64, Vec<Value>>>>);

impl Ran {
    /// Registers a handler for `task` that records each run's job id and params.
    pub fn record(&self, handlers: &Handlers, task: &str) {
        let ran = self.clone();
        handlers.learn(task, move |ctx: JobContext, params: Value| {
            let ran = ran.clone();
            async move {
                ran.0
                    .lock()
                    .unwrap()
                    .entry(ctx.job_id().0)
                    .or_default()
                    .push(params);
                Ok::<_, std::convert::Infallible>(())
            }
        });
    }

    /// Every job that ran, with its params, checking that none ran twice.
    pub fn once_each(&self) -> BTreeMap<i64, Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(id, runs)| {
                assert_eq!(runs.len(), 1, "job {id} ran {} times: {runs:?}", runs.len());
                (*id, runs[0].clone())
            })
            .collect()
    }
}

/// The README's fenced Python blocks.
pub fn readme_python_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == "```python" => current = Some(Vec::new()),
            Some(lines) if line.trim_end() == "```" => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}
