//! `tasque enqueue`.

use std::io::Read;
use std::sync::Arc;

use serde_json::{json, Value};
use tasque_durable::{JobId, Spawn, SpawnOptions, Store};

use crate::args::{EnqueueArgs, JobArgs};
use crate::exec::{ExecParams, EXEC_TASK};
use crate::fail::CliError;
use crate::output;

/// Builds the job from the arguments (reading stdin if needed) without
/// touching the database, so bad input writes nothing.
pub fn build(args: &EnqueueArgs) -> Result<Spawn, CliError> {
    let params = params(&args.job)?;
    let mut options = SpawnOptions::new().with_priority(args.priority);
    if let Some(delay) = args.delay {
        options = options.with_delay(delay);
    }
    if let Some(attempts) = args.max_attempts {
        options = options.with_max_attempts(attempts);
    }
    if let Some(key) = &args.idempotency_key {
        options = options.with_idempotency_key(key.clone());
    }
    if let Some(key) = &args.ordering_key {
        options = options.with_ordering_key(key.clone());
    }
    if let Some(key) = &args.unique_key {
        let mut unique = tasque_durable::unique::Uniqueness::key(key.clone());
        unique.period = args.unique_period;
        options = options.with_unique(unique);
    }
    if let Some(timeout) = args.timeout {
        options = options.with_timeout(timeout);
    }
    if !args.depends_on.is_empty() {
        options = options.with_depends_on(args.depends_on.iter().copied().map(JobId));
        if let Some(policy) = args.on_parent_failure {
            options = options.with_on_parent_failure(policy);
        }
    }
    let spawn = Spawn::new(args.queue.clone(), args.job.task.clone(), params).with_options(options);
    tasque_durable::validate::validate_spawn(&spawn).map_err(CliError::from_store)?;
    Ok(spawn)
}

/// The job's JSON params: for `exec`, built from the command after `--` and the exec
/// flags; otherwise the argument, or stdin when it is absent or `-`.
pub fn params(args: &JobArgs) -> Result<Value, CliError> {
    if args.task == EXEC_TASK {
        exec_params(args)
    } else {
        if !args.command.is_empty() {
            return Err(CliError::Usage(format!(
                "only exec takes a command after `--`; {} takes JSON params",
                args.task
            )));
        }
        json_params(args.params.as_deref())
    }
}

/// Enqueues and reports.
pub async fn run(store: Arc<dyn Store>, spawn: Spawn, json_output: bool) -> Result<(), CliError> {
    let result = store.spawn(spawn).await?;
    if json_output {
        output::json(&json!({
            "job_id": result.job_id,
            "run": result.run_id.to_string(),
            "attempt": result.attempt,
            "created": result.created,
        }));
    } else if result.created {
        println!("enqueued job {} (run {})", result.job_id, result.run_id);
    } else {
        println!(
            "job {} already exists with this idempotency or unique key; nothing enqueued",
            result.job_id
        );
    }
    Ok(())
}

fn json_params(params: Option<&str>) -> Result<Value, CliError> {
    match params {
        None | Some("-") => json_from_stdin("params"),
        Some(text) => serde_json::from_str(text)
            .map_err(|error| CliError::Usage(format!("params are not valid JSON: {error}"))),
    }
}

/// Reads one JSON document from stdin; `what` names it in errors.
pub fn json_from_stdin(what: &str) -> Result<Value, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|error| CliError::Usage(format!("could not read {what} from stdin: {error}")))?;
    if text.trim().is_empty() {
        return Err(CliError::Usage(format!(
            "no {what} given (argument or stdin)"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|error| CliError::Usage(format!("{what} from stdin: not valid JSON: {error}")))
}

fn exec_params(args: &JobArgs) -> Result<Value, CliError> {
    let mut env = std::collections::BTreeMap::new();
    for pair in &args.envs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--env {pair:?}: expected KEY=VALUE")))?;
        env.insert(key.to_owned(), value.to_owned());
    }
    if args.params.is_some() {
        return Err(CliError::Usage(
            "exec takes its command after `--`: tasque enqueue exec [OPTIONS] -- CMD ARGS..."
                .into(),
        ));
    }
    let params = ExecParams {
        argv: args.command.clone(),
        cwd: args.cwd.as_ref().map(|dir| dir.display().to_string()),
        env,
        timeout_secs: args.exec_timeout.map(|timeout| timeout.as_secs_f64()),
    };
    params.validate().map_err(|error| {
        CliError::Usage(format!(
            "{error} (usage: tasque enqueue exec -- CMD ARGS...)"
        ))
    })?;
    serde_json::to_value(params).map_err(|error| CliError::Usage(error.to_string()))
}
