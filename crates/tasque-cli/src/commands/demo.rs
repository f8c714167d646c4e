//! `tasque demo`: the guided demonstration of the durable queue.
//!
//! It enqueues a mix of jobs that exercise the engine (successes, a failure
//! that succeeds on retry, a timeout, a panic, an unknown task that is
//! deferred, a command run by `exec`, a scheduled job, a priority job, an
//! idempotent duplicate, a cancelled job, and a durable workflow with a
//! checkpointed step, a sleep and an event wait that the demo satisfies with
//! `emit`), works them with a live progress
//! bar, and prints a summary by state. It uses its own namespace (`demo`), so
//! it never touches other jobs in the same database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tasque_durable::{JobFilter, JobId, JobState, RetryStrategy, Spawn, SpawnOptions, Store};
use tasque_worker::{EventOutcome, Handlers, JobContext, Worker};

use crate::args::DemoArgs;
use crate::exec;
use crate::fail::CliError;
use crate::output;

/// The namespace the demo works in.
pub const DEMO_NAMESPACE: &str = "demo";

struct Showcase {
    id: JobId,
    what: &'static str,
}

/// Runs the demonstration.
pub async fn run(store: Arc<dyn Store>, args: DemoArgs, json_output: bool) -> Result<(), CliError> {
    let started = Instant::now();
    store.purge(JobFilter::all()).await?;
    let showcase = enqueue_showcase(&*store).await?;
    let mut bulk = Vec::new();
    for i in 0..args.jobs {
        let params = json!({ "image": format!("photo-{i:04}.jpg"), "width": 320 });
        bulk.push(Spawn::new("media", "demo.resize", params));
    }
    store.spawn_many(bulk).await?;
    let total = store.count(JobFilter::all()).await?;
    if !json_output {
        println!(
            "enqueued {total} jobs in namespace {DEMO_NAMESPACE:?}; working them with 8 slots…"
        );
    }
    let worker = Worker::builder(store.clone())
        .handlers(handlers())
        .queues(["default", "media"])
        .concurrency(8)
        .poll_interval(Duration::from_millis(50))
        .lease(Duration::from_secs(5))
        .defer_unknown(Duration::from_secs(30))
        .build()?
        .start()?;
    let onboarding = showcase
        .iter()
        .find(|item| item.what == ONBOARD_WHAT)
        .map(|item| item.id);
    watch(&*store, total, onboarding, json_output).await?;
    let report = worker.shutdown(Duration::from_secs(5)).await;
    summarise(
        &*store,
        &showcase,
        started.elapsed(),
        report.released,
        json_output,
    )
    .await
}

fn handlers() -> Handlers {
    let handlers = Handlers::new();
    exec::register(&handlers);
    handlers.learn("demo.resize", |_ctx: JobContext, params: Value| async move {
        let pause = 5 + params["image"].as_str().map_or(0, |name| name.len() as u64 % 20);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        Ok::<_, String>(json!({ "thumbnail": format!("thumb-{}", params["image"].as_str().unwrap_or("?")) }))
    });
    handlers.learn("demo.flaky", |ctx: JobContext, _params: Value| async move {
        if ctx.attempt() == 1 {
            Err(
                "the payment gateway timed out (first attempt always does, in this demo)"
                    .to_owned(),
            )
        } else {
            Ok(json!({ "charged": true, "attempt": ctx.attempt() }))
        }
    });
    handlers.learn("demo.slow", |_ctx: JobContext, _params: Value| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, String>("never reached: the per-run timeout is 200 ms")
    });
    handlers.learn("demo.crash", |_ctx: JobContext, params: Value| async move {
        let items = params["items"].as_array().map_or(0, Vec::len);
        if items < 10 {
            panic!("index out of bounds: the demo reads item 10 of {items}");
        }
        Ok::<_, String>(items)
    });
    handlers.learn("demo.onboard", |ctx: JobContext, params: Value| async move {
        let user = params["user"].as_str().unwrap_or("someone").to_owned();
        let name = user.clone();
        // A checkpointed step: after the sleep below, the resumed run replays it
        // from its stored result instead of creating a second account.
        let account: Value = ctx
            .step("create_account", || async move {
                Ok::<_, tasque_worker::Error>(json!(format!("acct-{name}")))
            })
            .await
            .map_err(|e| e.to_string())?;
        // Suspends the job (its slot is freed) and resumes it 300 ms later.
        ctx.sleep_for("cool_off", Duration::from_millis(300))
            .await
            .map_err(|e| e.to_string())?;
        // Suspends until the demo emits the event (or 20 s pass).
        let verified = ctx
            .wait_for_event(&verified_event(&user), Duration::from_secs(20))
            .await
            .map_err(|e| e.to_string())?;
        let verified = match verified {
            EventOutcome::Received(payload) => payload,
            EventOutcome::TimedOut => json!("timed out"),
        };
        Ok::<_, String>(json!({ "account": account, "verified": verified, "runs_so_far": ctx.run_id().seq }))
    });
    handlers.learn(
        "demo.report",
        |_ctx: JobContext, params: Value| async move {
            Ok::<_, String>(json!({ "report": params["day"], "rows": 42 }))
        },
    );
    handlers
}

async fn enqueue_showcase(store: &dyn Store) -> Result<Vec<Showcase>, CliError> {
    let quick_retry = |attempts| {
        SpawnOptions::new()
            .with_max_attempts(attempts)
            .with_retry(RetryStrategy::Fixed {
                delay: Duration::from_millis(300),
            })
    };
    let jobs: Vec<(&'static str, Spawn)> = vec![
        (
            "priority -10: runs before the bulk",
            Spawn::new("media", "demo.resize", json!({"image": "urgent.jpg"}))
                .with_options(SpawnOptions::new().with_priority(-10)),
        ),
        (
            "fails on attempt 1, succeeds on retry",
            Spawn::new("default", "demo.flaky", json!({"order": 1001}))
                .with_options(quick_retry(3)),
        ),
        (
            "times out (200 ms) on both attempts",
            Spawn::new("default", "demo.slow", json!({}))
                .with_options(quick_retry(2).with_timeout(Duration::from_millis(200))),
        ),
        (
            "panics on both attempts",
            Spawn::new("default", "demo.crash", json!({"items": [1, 2, 3]}))
                .with_options(quick_retry(2)),
        ),
        (
            "no handler: deferred, no attempt used",
            Spawn::new("default", "demo.not_deployed_yet", json!({})),
        ),
        (
            "built-in exec: runs a command",
            Spawn::new(
                "default",
                exec::EXEC_TASK,
                json!({"argv": ["sh", "-c", "echo hello from exec"]}),
            ),
        ),
        (
            "scheduled to run 1 s later",
            Spawn::new("default", "demo.report", json!({"day": "yesterday"}))
                .with_options(SpawnOptions::new().with_delay(Duration::from_secs(1))),
        ),
        (
            "idempotency key: a second enqueue returned this job",
            Spawn::new("default", "demo.report", json!({"day": "today"}))
                .with_options(SpawnOptions::new().with_idempotency_key("report-today")),
        ),
    ];
    let mut jobs = jobs;
    jobs.push((
        ONBOARD_WHAT,
        Spawn::new("default", "demo.onboard", json!({"user": "ada"})),
    ));
    let mut showcase = Vec::new();
    for (what, spawn) in jobs {
        let result = store.spawn(spawn).await?;
        showcase.push(Showcase {
            id: result.job_id,
            what,
        });
    }
    let duplicate = Spawn::new("default", "demo.report", json!({"day": "today"}))
        .with_options(SpawnOptions::new().with_idempotency_key("report-today"));
    let again = store.spawn(duplicate).await?;
    debug_assert!(!again.created);
    let doomed = store
        .spawn(
            Spawn::new("default", "demo.report", json!({"day": "never"}))
                .with_options(SpawnOptions::new().with_delay(Duration::from_secs(60))),
        )
        .await?;
    store.cancel(doomed.job_id).await?;
    showcase.push(Showcase {
        id: doomed.job_id,
        what: "cancelled before it ran",
    });
    Ok(showcase)
}

/// What the workflow job shows, in the summary.
const ONBOARD_WHAT: &str = "workflow: step, 300 ms sleep, waits for an event";

/// The event the onboarding workflow of `user` waits for.
fn verified_event(user: &str) -> String {
    format!("demo.email_verified.{user}")
}

/// Shows progress until only the deferred job is left unfinished; emits the
/// onboarding workflow's event once that job is waiting for it.
async fn watch(
    store: &dyn Store,
    total: u64,
    onboarding: Option<JobId>,
    json_output: bool,
) -> Result<(), CliError> {
    let mut emitted = false;
    let bar = if json_output || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {pos}/{len} finished · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = |states: Vec<JobState>| store.count(JobFilter::all().states(states));
        let finished = count(JobState::FINISHED.to_vec()).await?;
        let available = count(vec![JobState::Available]).await?;
        let running = count(vec![JobState::Running]).await?;
        let scheduled = count(vec![JobState::Scheduled]).await?;
        if let (false, Some(job)) = (emitted, onboarding) {
            if store.get_job(job).await?.state == JobState::Waiting {
                let woke = store
                    .emit_event(&verified_event("ada"), json!({ "by": "tasque demo" }))
                    .await?;
                emitted = woke > 0;
            }
        }
        bar.set_position(finished);
        bar.set_message(format!(
            "{running} running · {available} ready · {scheduled} scheduled"
        ));
        // Everything but the deferred job (given back for 30 s) is finished.
        if finished + 1 >= total && available + running == 0 {
            break;
        }
        if Instant::now() > deadline {
            bar.abandon();
            return Err(CliError::Failed(
                "the demo did not finish within 2 minutes".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_and_clear();
    Ok(())
}

async fn summarise(
    store: &dyn Store,
    showcase: &[Showcase],
    took: Duration,
    released: usize,
    json_output: bool,
) -> Result<(), CliError> {
    let mut by_state = serde_json::Map::new();
    for state in JobState::ALL {
        let n = store.count(JobFilter::all().states([state])).await?;
        if n > 0 {
            by_state.insert(state.as_str().to_owned(), json!(n));
        }
    }
    let mut rows = Vec::new();
    let mut jobs = Vec::new();
    for item in showcase {
        let job = store.get_job(item.id).await?;
        let detail = output::short(&job.result.clone().or_else(|| job.failure.clone()), 48);
        let errors: Vec<String> = job
            .errors
            .iter()
            .map(|e| output::short(&Some(e.reason.clone()), 40))
            .collect();
        rows.push(vec![
            job.id.to_string(),
            job.task.clone(),
            output::state(job.state),
            format!("{}/{}", job.attempt, job.max_attempts),
            item.what.to_owned(),
            if errors.is_empty() {
                detail
            } else {
                format!("{detail} [{}]", errors.join("; "))
            },
        ]);
        jobs.push(json!({ "what": item.what, "job": output::job_json(&job) }));
    }
    if json_output {
        output::json(
            &json!({ "namespace": DEMO_NAMESPACE, "by_state": by_state, "showcase": jobs, "seconds": took.as_secs_f64(), "released": released }),
        );
        return Ok(());
    }
    println!("\nShowcase jobs:");
    output::table(
        &[
            "id",
            "task",
            "state",
            "attempt",
            "what it shows",
            "result / error [failed attempts]",
        ],
        &rows,
    );
    println!("\nAll jobs by state after {:.1} s:", took.as_secs_f64());
    for (state, n) in &by_state {
        println!("  {state:<10} {n}");
    }
    println!(
        "\nInspect them: tasque --namespace {DEMO_NAMESPACE} jobs --state failed   ·   tasque --namespace {DEMO_NAMESPACE} jobs show ID   ·   tasque --namespace {DEMO_NAMESPACE} stats"
    );
    Ok(())
}
