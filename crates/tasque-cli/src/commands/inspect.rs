//! `tasque jobs`, `tasque jobs show`, `tasque stats`.

use std::sync::Arc;

use serde_json::json;
use tasque_durable::deps::{JobDeps, Parent};
use tasque_durable::flow::JobFlow;
use tasque_durable::{Checkpoint, JobId, JobInfo, PageRequest, StateCounts, Store};

use super::listing::Listing;
use crate::args::JobsArgs;
use crate::fail::CliError;
use crate::output;

/// Lists jobs, or shows one.
pub async fn jobs(
    store: Arc<dyn Store>,
    args: JobsArgs,
    json_output: bool,
) -> Result<(), CliError> {
    if let Some(crate::args::JobsShow::Show { id }) = args.show {
        let job = store.get_job(JobId(id)).await?;
        let checkpoints = store.get_checkpoints(JobId(id)).await?;
        let flow = match store.flow() {
            Some(flow) => Some(flow.job(JobId(id)).await?),
            None => None,
        };
        let deps = match store.deps() {
            Some(deps) => Some(deps.job(JobId(id)).await?),
            None => None,
        };
        // A held job waits on its parents.
        let held = deps
            .as_ref()
            .filter(|_| job.state == tasque_durable::JobState::OnHold)
            .and_then(JobDeps::wait_reason);
        if json_output {
            let mut document = output::job_json(&job);
            document["checkpoints"] = checkpoints.iter().map(checkpoint_json).collect();
            document["progress"] = progress(&checkpoints).cloned().unwrap_or_default();
            if let Some(flow) = &flow {
                document["ordering_key"] = json!(flow.ordering_key);
                document["waits"] = json!(flow.waits.as_ref().map(ToString::to_string));
            }
            if let Some(deps) = &deps {
                document["parents"] = deps.parents.iter().map(parent_json).collect();
                document["dependents"] = json!(deps.dependents);
                if !deps.parents.is_empty() {
                    document["on_parent_failure"] = json!(deps.on_parent_failure.as_str());
                }
            }
            if let Some(reason) = &held {
                document["waits"] = json!(reason);
            }
            output::json(&document);
        } else {
            show(&job, &checkpoints);
            if let Some(flow) = &flow {
                show_flow(flow);
            }
            if let Some(deps) = &deps {
                show_deps(deps, held.as_deref());
            }
        }
        return Ok(());
    }
    list(store.as_ref(), &args, json_output).await
}

/// Lists one page (`--limit` jobs, after `--after`), or every page with `--all`, writing
/// each page as it arrives.
async fn list(store: &dyn Store, args: &JobsArgs, json_output: bool) -> Result<(), CliError> {
    let filter = super::filter(&args.filter);
    let size = args.page_size();
    let mut request = match args.after {
        Some(cursor) => PageRequest::after(JobId(cursor), size),
        None => PageRequest::first(size),
    };
    let mut listing = Listing::new(json_output);
    loop {
        let page = store.scan(filter.clone(), request).await?;
        listing.page(&page.jobs)?;
        match page.next {
            Some(next) if args.all && !listing.closed() => {
                request = PageRequest::after(next, size);
            }
            next => return listing.finish(next),
        }
    }
}

/// One checkpoint (a stored step result) as a JSON object.
fn checkpoint_json(checkpoint: &Checkpoint) -> serde_json::Value {
    json!({
        "name": checkpoint.name,
        "value": checkpoint.value,
        "run_seq": checkpoint.run_seq,
        "updated_at": checkpoint.updated_at,
    })
}

/// The progress a handler last recorded (`JobContext::set_progress`), if any.
fn progress(checkpoints: &[Checkpoint]) -> Option<&serde_json::Value> {
    checkpoints
        .iter()
        .find(|c| c.name == tasque_durable::client::PROGRESS_CHECKPOINT)
        .map(|c| &c.value)
}

/// One parent as a JSON object (`state` null once deleted).
fn parent_json(parent: &Parent) -> serde_json::Value {
    json!({
        "id": parent.id.0,
        "state": parent.state.map(|s| s.as_str()),
        "resolved": parent.resolved,
    })
}

/// A job's parents (with their states), its policy, why it is held and its dependents count.
fn show_deps(deps: &JobDeps, held: Option<&str>) {
    if !deps.parents.is_empty() {
        println!(
            "  parents    {} (on parent failure: {})",
            deps.parents.len(),
            deps.on_parent_failure
        );
        for parent in &deps.parents {
            let state = parent
                .state
                .map_or_else(|| "deleted".to_string(), output::state);
            let resolved = if parent.resolved { "" } else { "  (awaited)" };
            println!("    job {:<10} {state}{resolved}", parent.id);
        }
    }
    if let Some(reason) = held {
        println!("  waits      {reason}");
    }
    println!("  dependents {}", deps.dependents);
}

/// A job's ordering key and why it waits, if a flow rule holds it.
fn show_flow(flow: &JobFlow) {
    if let Some(key) = &flow.ordering_key {
        println!("  ordering key {key}");
    }
    if let Some(wait) = &flow.waits {
        println!("  waits      {wait}");
    }
}

fn show(job: &JobInfo, checkpoints: &[Checkpoint]) {
    let pretty =
        |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    println!("job {}  ({})", job.id, output::state(job.state));
    println!("  queue      {}", job.queue);
    println!("  task       {}", job.task);
    println!("  run        {}", job.run_id);
    println!("  attempt    {} of {}", job.attempt, job.max_attempts);
    println!("  priority   {}", job.priority);
    println!("  created    {}", job.created_at);
    println!("  run at     {}", job.run_at);
    if let Some(finished) = job.finished_at {
        println!("  finished   {finished}");
    }
    if let Some(worker) = &job.worker_id {
        println!("  worker     {worker}");
    }
    if let Some(key) = &job.idempotency_key {
        println!("  idempotency key {key}");
    }
    if let Some(key) = &job.unique_key {
        println!("  unique key {key}");
    }
    println!("  params     {}", pretty(&job.params));
    if !job.headers.is_null() {
        println!("  headers    {}", pretty(&job.headers));
    }
    if let Some(result) = &job.result {
        println!("  result     {}", pretty(result));
    }
    if let Some(failure) = &job.failure {
        println!("  failure    {}", pretty(failure));
    }
    for error in &job.errors {
        println!("  attempt {} failed: {}", error.attempt, error.reason);
    }
    if let Some(progress) = progress(checkpoints) {
        println!(
            "  progress   {}",
            output::short(&Some(progress.clone()), 60)
        );
    }
    if checkpoints.is_empty() {
        return;
    }
    println!("  checkpoints ({}):", checkpoints.len());
    for checkpoint in checkpoints {
        println!(
            "    {:<20} {}  (run {}, {})",
            checkpoint.name,
            output::short(&Some(checkpoint.value.clone()), 60),
            checkpoint.run_seq,
            checkpoint.updated_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
}

/// Prints counts by state per queue.
pub async fn stats(store: Arc<dyn Store>, json_output: bool) -> Result<(), CliError> {
    let queues = store.list_queues().await?;
    let mut total = StateCounts::default();
    for queue in &queues {
        for state in tasque_durable::JobState::ALL {
            total.add(state, queue.counts.get(state));
        }
    }
    if json_output {
        let per_queue: serde_json::Map<String, serde_json::Value> = queues
            .iter()
            .map(|q| (q.name.clone(), json!(q.counts)))
            .collect();
        output::json(&json!({ "total": total, "queues": per_queue }));
        return Ok(());
    }
    let row = |name: String, counts: &StateCounts| {
        vec![
            name,
            counts.available.to_string(),
            counts.scheduled.to_string(),
            counts.running.to_string(),
            counts.sleeping.to_string(),
            counts.waiting.to_string(),
            counts.completed.to_string(),
            counts.failed.to_string(),
            counts.cancelled.to_string(),
            counts.on_hold.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| row(q.name.clone(), &q.counts))
        .collect();
    rows.push(row("(all)".into(), &total));
    output::table(
        &[
            "queue",
            "available",
            "scheduled",
            "running",
            "sleeping",
            "waiting",
            "completed",
            "failed",
            "cancelled",
            "on_hold",
        ],
        &rows,
    );
    Ok(())
}
