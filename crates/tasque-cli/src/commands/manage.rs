//! `tasque retry`, `cancel`, `purge`, `clean`.

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::json;
use tasque_durable::{CancelOutcome, JobId, Store};

use crate::args::{CleanArgs, FilterArgs};
use crate::fail::CliError;
use crate::output;

/// Runs a failed or cancelled job again.
pub async fn retry(store: Arc<dyn Store>, id: i64, json_output: bool) -> Result<(), CliError> {
    let result = store.retry(JobId(id), None).await?;
    if json_output {
        output::json(
            &json!({ "job_id": result.job_id, "run": result.run_id.to_string(), "attempt": result.attempt }),
        );
    } else {
        println!(
            "job {} will run again (run {})",
            result.job_id, result.run_id
        );
    }
    Ok(())
}

/// Cancels a job; cancelling a finished job changes nothing and says so.
pub async fn cancel(store: Arc<dyn Store>, id: i64, json_output: bool) -> Result<(), CliError> {
    let outcome = store.cancel(JobId(id)).await?;
    let (cancelled, state) = match outcome {
        CancelOutcome::Cancelled { was } => (true, was),
        CancelOutcome::AlreadyFinished { state } => (false, state),
    };
    if json_output {
        output::json(&json!({ "job_id": id, "cancelled": cancelled, "state_before": state }));
    } else if cancelled {
        println!("cancelled job {id} (was {state})");
    } else {
        println!("job {id} had already finished ({state}); nothing changed");
    }
    Ok(())
}

/// Deletes the jobs a filter matches (never running ones).
pub async fn purge(
    store: Arc<dyn Store>,
    args: FilterArgs,
    json_output: bool,
) -> Result<(), CliError> {
    if args.states.is_empty() && args.queues.is_empty() && args.tasks.is_empty() {
        return Err(CliError::Usage(
            "purge needs a filter (--state, --queue or --task); e.g. tasque purge --state failed"
                .into(),
        ));
    }
    let spinner = spinner("purging");
    let deleted = store.purge(super::filter(&args)).await?;
    spinner.finish_and_clear();
    if json_output {
        output::json(&json!({ "deleted": deleted }));
    } else {
        println!("deleted {deleted} jobs");
    }
    Ok(())
}

/// Deletes finished jobs older than an age, batch by batch.
pub async fn clean(
    store: Arc<dyn Store>,
    args: CleanArgs,
    json_output: bool,
) -> Result<(), CliError> {
    let batch = args.batch.max(1);
    let spinner = spinner("cleaning");
    let mut deleted = 0;
    loop {
        let n = store.clean(args.older_than, batch).await?;
        deleted += n;
        spinner.set_message(format!("cleaning: {deleted} deleted"));
        if n < u64::from(batch) {
            break;
        }
    }
    spinner.finish_and_clear();
    if json_output {
        output::json(&json!({ "deleted": deleted }));
    } else {
        println!(
            "deleted {deleted} finished jobs older than {}",
            humantime::format_duration(args.older_than)
        );
    }
    Ok(())
}

fn spinner(message: &str) -> ProgressBar {
    let spinner = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
