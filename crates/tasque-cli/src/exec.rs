//! The built-in `exec` task type: run a command line with a timeout and
//! record its exit status and the tail of its output.
//!
//! A zero exit status is a successful run whose result is an [`ExecReport`];
//! a non-zero status, a signal, a timeout or a command that cannot start is a
//! failed attempt whose reason is the same report (or the start error), so
//! the job's retry options decide what happens next.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The task name under which `exec` is registered.
pub const EXEC_TASK: &str = "exec";

/// How many bytes of stdout and of stderr a report keeps (the tail).
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// Parameters of an `exec` job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// The program and its arguments; must not be empty.
    pub argv: Vec<String>,
    /// The working directory; the worker's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Kill the command after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
}

/// What a finished (or killed) command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecReport {
    /// The exit code, when the command exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended it (Unix), when one did.
    pub signal: Option<i32>,
    /// Whether the command was killed because its timeout passed.
    pub timed_out: bool,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// The last bytes of its standard output (lossy UTF-8).
    pub stdout_tail: String,
    /// The last bytes of its standard error (lossy UTF-8).
    pub stderr_tail: String,
}

impl ExecReport {
    /// Whether the command succeeded (exit code 0, not timed out).
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Why an `exec` job failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The parameters are unusable.
    #[error("invalid exec parameters: {0}")]
    InvalidParams(String),
    /// The command could not be started.
    #[error("could not start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The command ran and did not succeed.
    #[error("{}", describe_failure(.0))]
    Failed(ExecReport),
}

impl ExecError {
    /// The failure as the JSON reason recorded on the attempt: a message, and
    /// the report when the command ran.
    pub fn to_reason(&self) -> serde_json::Value {
        let mut reason = serde_json::json!({ "kind": "exec", "error": self.to_string() });
        if let ExecError::Failed(report) = self {
            reason["report"] = serde_json::to_value(report).unwrap_or_default();
        }
        reason
    }
}

/// Registers the `exec` task on a worker's handlers.
pub fn register(handlers: &tasque_worker::Handlers) {
    handlers.learn_json(EXEC_TASK, |_ctx, params: ExecParams| async move {
        run(params).await.map_err(|error| error.to_reason())
    });
}

fn describe_failure(report: &ExecReport) -> String {
    let how = if report.timed_out {
        "timed out".to_owned()
    } else if let Some(code) = report.exit_code {
        format!("exited with status {code}")
    } else {
        format!("was killed by signal {}", report.signal.unwrap_or(0))
    };
    let tail = report.stderr_tail.trim_end();
    let last_line = tail.lines().last().unwrap_or("");
    format!("command {how}: {last_line}")
}

impl ExecParams {
    /// Checks the parameters before anything runs.
    pub fn validate(&self) -> Result<(), ExecError> {
        if self.argv.first().is_none_or(|program| program.is_empty()) {
            return Err(ExecError::InvalidParams("argv must name a program".into()));
        }
        if let Some(timeout) = self.timeout_secs {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(ExecError::InvalidParams(
                    "timeout_secs must be a positive number".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Runs the command and reports; a non-success is an [`ExecError::Failed`].
pub async fn run(params: ExecParams) -> Result<ExecReport, ExecError> {
    params.validate()?;
    let mut command = Command::new(&params.argv[0]);
    command
        .args(&params.argv[1..])
        .envs(&params.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &params.cwd {
        command.current_dir(cwd);
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| ExecError::Spawn {
        program: params.argv[0].clone(),
        source,
    })?;
    let stdout = tokio::spawn(read_tail(child.stdout.take()));
    let stderr = tokio::spawn(read_tail(child.stderr.take()));
    let limit = params.timeout_secs.map(Duration::from_secs_f64);
    let (status, timed_out) = match limit {
        Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => (status, false),
            Err(_) => {
                let _ = child.start_kill();
                (child.wait().await, true)
            }
        },
        None => (child.wait().await, false),
    };
    let status = status.map_err(|source| ExecError::Spawn {
        program: params.argv[0].clone(),
        source,
    })?;
    let report = ExecReport {
        exit_code: status.code(),
        signal: exit_signal(&status),
        timed_out,
        duration_ms: started.elapsed().as_millis() as u64,
        stdout_tail: stdout.await.unwrap_or_default(),
        stderr_tail: stderr.await.unwrap_or_default(),
    };
    if report.succeeded() {
        Ok(report)
    } else {
        Err(ExecError::Failed(report))
    }
}

#[cfg(unix)]
fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn exit_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Reads a stream to its end, keeping only its last [`OUTPUT_TAIL_BYTES`].
async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                tail.extend_from_slice(&buffer[..read]);
                if tail.len() > 2 * OUTPUT_TAIL_BYTES {
                    tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
                }
            }
        }
    }
    if tail.len() > OUTPUT_TAIL_BYTES {
        tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(argv: &[&str]) -> ExecParams {
        ExecParams {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..ExecParams::default()
        }
    }

    #[tokio::test]
    async fn exec_success_records_status_and_output_tail() {
        let report = run(params(&["sh", "-c", "echo hello; echo oops >&2"]))
            .await
            .unwrap();
        assert_eq!(report.exit_code, Some(0));
        assert_eq!(report.stdout_tail, "hello\n");
        assert_eq!(report.stderr_tail, "oops\n");
    }

    #[tokio::test]
    async fn exec_non_zero_exit_is_a_failure_with_the_report() {
        let error = run(params(&["sh", "-c", "echo bad input >&2; exit 3"]))
            .await
            .unwrap_err();
        let ExecError::Failed(report) = &error else {
            panic!("{error}")
        };
        assert_eq!(report.exit_code, Some(3));
        assert_eq!(error.to_string(), "command exited with status 3: bad input");
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_command() {
        let mut slow = params(&["sleep", "30"]);
        slow.timeout_secs = Some(0.1);
        let error = run(slow).await.unwrap_err();
        let ExecError::Failed(report) = error else {
            panic!("expected a failure")
        };
        assert!(report.timed_out);
        assert!(report.duration_ms < 10_000);
    }

    #[tokio::test]
    async fn exec_keeps_only_the_tail_of_long_output() {
        let report = run(params(&["sh", "-c", "seq 1 100000"])).await.unwrap();
        assert!(report.stdout_tail.len() <= OUTPUT_TAIL_BYTES);
        assert!(report.stdout_tail.ends_with("100000\n"));
    }

    #[tokio::test]
    async fn exec_refuses_empty_argv_and_bad_timeouts_and_missing_programs() {
        assert!(matches!(
            run(params(&[])).await,
            Err(ExecError::InvalidParams(_))
        ));
        let mut negative = params(&["true"]);
        negative.timeout_secs = Some(-1.0);
        assert!(matches!(
            run(negative).await,
            Err(ExecError::InvalidParams(_))
        ));
        assert!(matches!(
            run(params(&["/definitely/not/a/program"])).await,
            Err(ExecError::Spawn { .. })
        ));
    }

    #[tokio::test]
    async fn exec_uses_cwd_and_env() {
        let mut p = params(&["sh", "-c", "pwd; echo $GREETING"]);
        p.cwd = Some("/tmp".into());
        p.env.insert("GREETING".into(), "hi".into());
        let report = run(p).await.unwrap();
        assert_eq!(report.stdout_tail, "/tmp\nhi\n");
    }
}
