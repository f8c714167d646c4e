//! `tasque work`: run a worker with the built-in `exec` task.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tasque_durable::{JobFilter, JobId, JobState, Store};
use tasque_worker::{Handlers, RunningWorker, Worker};

use crate::args::WorkArgs;
use crate::exec;
use crate::fail::CliError;
use crate::output;
use crate::signal::Signals;

/// Starts a worker with `handlers` as the command line configures it.
pub fn start(
    store: Arc<dyn Store>,
    args: &WorkArgs,
    handlers: Handlers,
) -> Result<RunningWorker, CliError> {
    let queues = worked_queues(&args.queues);
    let mut builder = Worker::builder(store).handlers(handlers);
    if let Some(id) = &args.worker_id {
        builder = builder.worker_id(id.clone());
    }
    let worker = builder
        .queues(queues)
        .concurrency(args.concurrency)
        .poll_interval(args.poll_interval)
        .lease(args.lease)
        .schedules(args.schedules.clone())
        .prune_schedules(args.config.is_some())
        .build()?;
    Ok(worker.start()?)
}

/// Runs `tasque work`.
pub async fn run(store: Arc<dyn Store>, args: WorkArgs, json_output: bool) -> Result<(), CliError> {
    let handlers = Handlers::new();
    exec::register(&handlers);
    let queues = worked_queues(&args.queues);
    let mut signals = Signals::install()
        .map_err(|error| CliError::Failed(format!("could not install signal handlers: {error}")))?;
    let store = super::dashboard::metered_for_work(store, &args, &queues).await?;
    let worker = start(store.clone(), &args, handlers)?;
    let mut stuck = Vec::new();
    if args.until_empty {
        let progress = Progress::start(store.clone(), &queues).await?;
        let tick = async {
            loop {
                progress.update().await;
                if let Ok(Some(blocked)) =
                    only_stuck_queues_left(&*store, &queues, args.wait_scheduled).await
                {
                    return blocked;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = worker.wait_until_empty(args.wait_scheduled, Duration::MAX) => {}
            blocked = tick => stuck = blocked,
            why = signals.recv() => eprintln!("{why}; shutting down"),
        }
        progress.update().await;
        progress.finish();
    } else {
        eprintln!(
            "worker {} running (concurrency {}); Ctrl-C to stop",
            worker.worker_id(),
            args.concurrency
        );
        let why = signals.recv().await;
        eprintln!("{why}; shutting down (grace {:?})", args.shutdown_grace);
    }
    let stats = worker.stats();
    let report = worker.shutdown(args.shutdown_grace).await;
    if json_output {
        let blocked: Vec<_> = stuck
            .iter()
            .map(|(queue, job)| json!({ "queue": queue, "blocked_by": job }))
            .collect();
        output::json(&json!({
            "completed": stats.completed,
            "failed_attempts": stats.failed,
            "deferred": stats.deferred,
            "released": report.released,
            "aborted": stats.aborted,
            "blocked_queues": blocked,
        }));
    } else {
        println!(
            "worked: {} completed, {} failed attempts, {} deferred, {} released",
            stats.completed, stats.failed, stats.deferred, report.released
        );
        for (queue, job) in &stuck {
            println!(
                "queue {queue} is blocked by job {job}: retry or cancel it (tasque jobs show {job})"
            );
        }
    }
    Ok(())
}

fn worked_queues(queues: &[String]) -> Vec<String> {
    if queues.is_empty() {
        vec!["default".to_owned()]
    } else {
        queues.to_vec()
    }
}

/// For `--until-empty`: a blocking queue whose head job cannot move (failed and kept
/// blocking, waiting for an event, or scheduled or sleeping when those are not waited for)
/// holds ready jobs that no worker can take. When nothing runs and only such queues have
/// work left, returns them with their blocking job; `None` otherwise (including when no
/// queue is stuck: the worker's own emptiness check decides then).
async fn only_stuck_queues_left(
    store: &dyn Store,
    queues: &[String],
    wait_scheduled: bool,
) -> Result<Option<Vec<(String, JobId)>>, CliError> {
    let mut counted = vec![JobState::Available, JobState::Running];
    if wait_scheduled {
        // As the worker's own check: scheduled and sleeping jobs will become ready.
        counted.extend([JobState::Scheduled, JobState::Sleeping]);
    }
    let mut stuck = Vec::new();
    let mut movable = Vec::new();
    for info in store.list_queues().await? {
        if !queues.contains(&info.name) || info.paused {
            continue;
        }
        match info.blocked_by {
            Some(head) if !counted.contains(&store.get_job(head).await?.state) => {
                stuck.push((info.name, head));
            }
            _ => movable.push(info.name),
        }
    }
    if stuck.is_empty() {
        return Ok(None);
    }
    let running = JobFilter::all()
        .queues(queues.to_vec())
        .states([JobState::Running]);
    if store.count(running).await? > 0 {
        return Ok(None);
    }
    if !movable.is_empty()
        && store
            .count(JobFilter::all().queues(movable).states(counted))
            .await?
            > 0
    {
        return Ok(None);
    }
    Ok(Some(stuck))
}

/// A progress bar over the jobs that were pending when the worker started.
struct Progress {
    store: Arc<dyn Store>,
    bar: ProgressBar,
    filter: JobFilter,
    finished_before: u64,
}

impl Progress {
    async fn start(store: Arc<dyn Store>, queues: &[String]) -> Result<Self, CliError> {
        let filter = JobFilter::all().queues(queues.to_vec());
        let pending = store
            .count(filter.clone().states([
                JobState::Available,
                JobState::Scheduled,
                JobState::Running,
            ]))
            .await?;
        let finished_before = store
            .count(filter.clone().states(JobState::FINISHED))
            .await?;
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressBar::new(pending)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} finished · {msg} · {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Ok(Progress {
            store,
            bar,
            filter,
            finished_before,
        })
    }

    async fn update(&self) {
        let count = |states: Vec<JobState>| self.store.count(self.filter.clone().states(states));
        let (Ok(finished), Ok(running), Ok(failed)) = (
            count(JobState::FINISHED.to_vec()).await,
            count(vec![JobState::Running]).await,
            count(vec![JobState::Failed]).await,
        ) else {
            return;
        };
        let done = finished.saturating_sub(self.finished_before);
        if done > self.bar.length().unwrap_or(0) {
            self.bar.set_length(done);
        }
        self.bar.set_position(done);
        self.bar
            .set_message(format!("{running} running · {failed} failed in all"));
    }

    fn finish(&self) {
        self.bar.finish();
    }
}
