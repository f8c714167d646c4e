//! Durable workflows through a worker, engine-agnostic: memoised steps, sleeps that free their
//! slot, event waits (emitted before, after, never, to many waiters), stale runs.
//!
//! Every engine runs each case from its `tests/workflow.rs` with
//! [`workflow_cases!`](crate::workflow_cases), given a factory of fresh stores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::{
    JobFilter, JobId, JobInfo, JobState, RetryStrategy, Spawn, SpawnOptions, Store,
};
use tasque_worker::{EventOutcome, Handlers, JobContext, RunningWorker, Worker};
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATIENCE: Duration = Duration::from_secs(30);

fn start(store: &Arc<dyn Store>, handlers: Handlers, concurrency: usize) -> RunningWorker {
    Worker::builder(store.clone())
        .handlers(handlers)
        .concurrency(concurrency)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap()
}

async fn spawn(store: &Arc<dyn Store>, task: &str, params: Value, options: SpawnOptions) -> JobId {
    let spawn = Spawn::new("default", task, params).with_options(options);
    store.spawn(spawn).await.unwrap().job_id
}

/// Polls the store until `check` holds, or fails after [`PATIENCE`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_state(store: &Arc<dyn Store>, job: JobId, state: JobState) -> JobInfo {
    until(&format!("job {job} to be {state:?}"), || async {
        store.get_job(job).await.unwrap().state == state
    })
    .await;
    store.get_job(job).await.unwrap()
}

/// The worker's counts once every outcome is written (a job's state changes in the store
/// before the worker counts it).
async fn settled(worker: &RunningWorker) -> tasque_worker::WorkerStats {
    let empty = worker.wait_until_empty(false, PATIENCE).await;
    assert!(empty, "the worker did not settle");
    worker.stats()
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn bump(counter: &AtomicUsize) -> usize {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

/// A three-step handler failing after step two: the retry replays steps one and two from their
/// checkpoints and runs only step three.
pub async fn checkpoints_three_steps_failing_after_step_two_rerun_only_step_three(
    store: Arc<dyn Store>,
) {
    let counts = [counter(), counter(), counter()];
    let handlers = Handlers::new();
    let c = counts.clone();
    handlers.learn("three_steps", move |ctx: JobContext, _: Value| {
        let c = c.clone();
        async move {
            let one: i64 = ctx
                .step("one", || async {
                    Ok::<_, BoxError>(bump(&c[0]) as i64 * 10)
                })
                .await?;
            let two: String = ctx
                .step("two", || async {
                    Ok::<_, BoxError>(format!("two-{}", bump(&c[1])))
                })
                .await?;
            if ctx.attempt() == 1 {
                return Err("fails after step two on the first run".into());
            }
            let three: i64 = ctx
                .step("three", || async { Ok::<_, BoxError>(bump(&c[2]) as i64) })
                .await?;
            Ok::<_, BoxError>(json!({ "one": one, "two": two, "three": three }))
        }
    });
    let options = SpawnOptions::new()
        .with_max_attempts(3)
        .with_retry(RetryStrategy::Fixed {
            delay: Duration::from_millis(10),
        });
    let job = spawn(&store, "three_steps", json!({}), options).await;
    let worker = start(&store, handlers, 2);
    let info = wait_state(&store, job, JobState::Completed).await;
    let runs: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(runs, [1, 1, 1], "each step's body ran exactly once");
    assert_eq!(info.attempt, 2);
    assert_eq!(info.errors.len(), 1);
    // The replayed steps returned their stored values.
    assert_eq!(
        info.result,
        Some(json!({ "one": 10, "two": "two-1", "three": 1 }))
    );
    let stored = store.get_checkpoints(job).await.unwrap();
    let names: Vec<&str> = stored.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["one", "three", "two"]);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A sleeping job frees the worker's only slot for another job and resumes after its time,
/// without running its finished steps again.
pub async fn sleep_frees_the_only_slot_and_resumes_after_its_time_without_rerunning_steps(
    store: Arc<dyn Store>,
) {
    let (before, after) = (counter(), counter());
    let entered: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let handlers = Handlers::new();
    let (b, a, e) = (before.clone(), after.clone(), entered.clone());
    handlers.learn("sleeper", move |ctx: JobContext, _: Value| {
        let (b, a, e) = (b.clone(), a.clone(), e.clone());
        async move {
            e.lock().unwrap().push(Instant::now());
            ctx.step("before", || async { Ok::<_, BoxError>(bump(&b)) })
                .await?;
            ctx.sleep_for("nap", Duration::from_secs(1)).await?;
            let woke = Instant::now();
            ctx.step("after", || async { Ok::<_, BoxError>(bump(&a)) })
                .await?;
            let slept = woke.duration_since(e.lock().unwrap()[0]);
            Ok::<_, BoxError>(json!({ "slept_ms": slept.as_millis() as u64 }))
        }
    });
    let shared = store.clone();
    let sleeper_id: Arc<Mutex<Option<JobId>>> = Arc::default();
    let id = sleeper_id.clone();
    handlers.learn("other", move |_ctx: JobContext, _: Value| {
        let (store, id) = (shared.clone(), id.clone());
        async move {
            // Runs in the slot the sleeper freed: the sleeper is asleep right now.
            let sleeper = (*id.lock().unwrap()).expect("sleeper spawned first");
            let state = store.get_job(sleeper).await?.state;
            Ok::<_, BoxError>(json!({ "sleeper_asleep": state == JobState::Sleeping }))
        }
    });
    let sleeper = spawn(&store, "sleeper", json!({}), SpawnOptions::new()).await;
    *sleeper_id.lock().unwrap() = Some(sleeper);
    let other = spawn(&store, "other", json!({}), SpawnOptions::new()).await;
    let worker = start(&store, handlers, 1);
    let other = wait_state(&store, other, JobState::Completed).await;
    assert_eq!(other.result, Some(json!({ "sleeper_asleep": true })));
    let info = wait_state(&store, sleeper, JobState::Completed).await;
    assert_eq!(info.attempt, 1, "sleeping counts no attempt");
    assert!(info.errors.is_empty());
    let slept_ms = info.result.unwrap()["slept_ms"].as_u64().unwrap();
    assert!(
        (950..15_000).contains(&slept_ms),
        "resumed {slept_ms} ms after going to sleep"
    );
    assert_eq!(
        before.load(Ordering::SeqCst),
        1,
        "step before the sleep ran once"
    );
    assert_eq!(after.load(Ordering::SeqCst), 1);
    assert_eq!(
        entered.lock().unwrap().len(),
        2,
        "one run to sleep, one to finish"
    );
    let stats = settled(&worker).await;
    assert_eq!((stats.suspended, stats.completed), (1, 2));
    let names: Vec<String> = store
        .get_checkpoints(sleeper)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["after", "before", "tasque:sleep:nap"]);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A handler that waits for the event named in its params and returns what it got.
fn waiter(handlers: &Handlers, before: Arc<AtomicUsize>) {
    handlers.learn("waiter", move |ctx: JobContext, p: Value| {
        let before = before.clone();
        async move {
            ctx.step("before", || async { Ok::<_, BoxError>(bump(&before)) })
                .await?;
            let event = p["event"].as_str().unwrap_or("never");
            let timeout = p["timeout_ms"].as_u64().map(Duration::from_millis);
            let got = match ctx.wait_for_event(event, timeout).await? {
                EventOutcome::Received(payload) => json!({ "received": payload }),
                EventOutcome::TimedOut => json!("timed out"),
            };
            Ok::<_, BoxError>(got)
        }
    });
}

/// An event emitted before the wait is received at once: the job never suspends.
pub async fn event_emitted_before_the_wait_is_received_without_suspending(store: Arc<dyn Store>) {
    store
        .emit_event("paid", json!({"amount": 7}))
        .await
        .unwrap();
    let handlers = Handlers::new();
    waiter(&handlers, counter());
    let job = spawn(
        &store,
        "waiter",
        json!({"event": "paid"}),
        SpawnOptions::new(),
    )
    .await;
    let worker = start(&store, handlers, 2);
    let info = wait_state(&store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!({ "received": {"amount": 7} })));
    assert_eq!(settled(&worker).await.suspended, 0);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// An event emitted after the wait resumes the suspended job with its payload.
pub async fn event_emitted_after_the_wait_resumes_the_job_with_its_payload(store: Arc<dyn Store>) {
    let before = counter();
    let handlers = Handlers::new();
    waiter(&handlers, before.clone());
    let job = spawn(
        &store,
        "waiter",
        json!({"event": "shipped"}),
        SpawnOptions::new(),
    )
    .await;
    let worker = start(&store, handlers, 1);
    wait_state(&store, job, JobState::Waiting).await;
    until("the run to end", || async { worker.stats().running == 0 }).await;
    assert_eq!(
        store.emit_event("shipped", json!("box-7")).await.unwrap(),
        1
    );
    let info = wait_state(&store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!({ "received": "box-7" })));
    assert_eq!((info.attempt, before.load(Ordering::SeqCst)), (1, 1));
    // A later emit with another payload changes nothing for the finished job, and a replay
    // would read the stored outcome.
    let stored = store.get_checkpoints(job).await.unwrap();
    let marker = stored.iter().find(|c| c.name == "tasque:event:shipped");
    assert_eq!(marker.unwrap().value, json!({ "received": "box-7" }));
    assert_eq!(settled(&worker).await.suspended, 1);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A wait for an event never emitted times out, and the handler sees that it timed out.
pub async fn event_never_emitted_times_out_and_the_handler_sees_timed_out(store: Arc<dyn Store>) {
    let before = counter();
    let handlers = Handlers::new();
    waiter(&handlers, before.clone());
    let params = json!({"event": "never", "timeout_ms": 300});
    let job = spawn(&store, "waiter", params, SpawnOptions::new()).await;
    let worker = start(&store, handlers, 1);
    let info = wait_state(&store, job, JobState::Completed).await;
    assert_eq!(info.result, Some(json!("timed out")));
    assert_eq!((info.attempt, before.load(Ordering::SeqCst)), (1, 1));
    worker.shutdown(Duration::from_secs(5)).await;
}

/// One emit wakes every waiter; waiting jobs hold no worker slot meanwhile.
pub async fn one_emit_wakes_many_waiters_that_held_no_slot(store: Arc<dyn Store>) {
    const WAITERS: usize = 20;
    let before = counter();
    let handlers = Handlers::new();
    waiter(&handlers, before.clone());
    let spawns = (0..WAITERS)
        .map(|_| Spawn::new("default", "waiter", json!({"event": "go"})))
        .collect();
    let jobs: Vec<JobId> = store
        .spawn_many(spawns)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.job_id)
        .collect();
    // Four slots for twenty waiters: only possible because a waiting job holds no slot.
    let worker = start(&store, handlers, 4);
    let waiting = JobFilter::all().states([JobState::Waiting]);
    until("every job to wait", || async {
        store.count(waiting.clone()).await.unwrap() == WAITERS as u64
    })
    .await;
    assert_eq!(
        store.emit_event("go", json!(42)).await.unwrap(),
        WAITERS as u64
    );
    for job in jobs {
        let info = wait_state(&store, job, JobState::Completed).await;
        assert_eq!(info.result, Some(json!({ "received": 42 })));
    }
    assert_eq!(before.load(Ordering::SeqCst), WAITERS);
    assert_eq!(settled(&worker).await.suspended, WAITERS as u64);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A run that lost its job (rescued and claimed again) learns its lease is lost and writes
/// no outcome.
pub async fn a_run_that_lost_its_job_gets_lease_lost_and_writes_no_outcome(store: Arc<dyn Store>) {
    let (release, released) = (Arc::new(tokio::sync::Notify::new()), counter());
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let handlers = Handlers::new();
    let shared = store.clone();
    let (rel, rels, errs) = (release.clone(), released.clone(), errors.clone());
    handlers.learn("loses_its_lease", move |ctx: JobContext, _: Value| {
        let (store, rel, rels, errs) = (shared.clone(), rel.clone(), rels.clone(), errs.clone());
        async move {
            if bump(&rels) == 1 {
                // Another party takes the job away from this run (as a rescue would).
                store.release(vec![ctx.run_id()]).await?;
                rel.notify_one();
            }
            let step = ctx
                .step("write", || async { Ok::<_, BoxError>(ctx.run_id().seq) })
                .await;
            if let Err(error) = &step {
                errs.lock().unwrap().push(error.to_string());
            }
            let seq = step?;
            Ok::<_, BoxError>(json!({ "written_by_run": seq }))
        }
    });
    let job = spawn(&store, "loses_its_lease", json!({}), SpawnOptions::new()).await;
    let worker = start(&store, handlers, 1);
    release.notified().await;
    let info = wait_state(&store, job, JobState::Completed).await;
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("lost its lease"), "{errors:?}");
    assert!(
        info.errors.is_empty(),
        "the stale run's failure was written"
    );
    assert_eq!(info.attempt, 1);
    let written_by = info.result.unwrap()["written_by_run"].as_i64().unwrap();
    assert!(written_by > 1, "the second run wrote the checkpoint");
    let stats = settled(&worker).await;
    assert_eq!((stats.failed, stats.aborted), (0, 1));
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A step that fails stores no checkpoint and runs again on the retry.
pub async fn a_failing_step_stores_nothing_and_runs_again_on_the_retry(store: Arc<dyn Store>) {
    let tries = counter();
    let handlers = Handlers::new();
    let t = tries.clone();
    handlers.learn("flaky_step", move |ctx: JobContext, _: Value| {
        let t = t.clone();
        async move {
            let got: usize = ctx
                .step("call", || async {
                    let n = bump(&t);
                    if n == 1 {
                        return Err::<usize, BoxError>("upstream down".into());
                    }
                    Ok(n)
                })
                .await?;
            Ok::<_, BoxError>(got)
        }
    });
    let options = SpawnOptions::new()
        .with_max_attempts(3)
        .with_retry(RetryStrategy::Fixed {
            delay: Duration::from_millis(10),
        });
    let job = spawn(&store, "flaky_step", json!({}), options).await;
    let worker = start(&store, handlers, 1);
    let info = wait_state(&store, job, JobState::Completed).await;
    assert_eq!((info.result, info.attempt), (Some(json!(2)), 2));
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    let stored = store.get_checkpoints(job).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value, json!(2));
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A sleep replayed by a run that woke early keeps its original wake time.
pub async fn a_sleep_replayed_early_keeps_its_original_wake_time(store: Arc<dyn Store>) {
    let job = spawn(&store, "nap", json!({}), SpawnOptions::new()).await;
    // A run that recorded its sleep (waking 800 ms from now) and crashed before suspending:
    // simulated by writing the marker and giving the run back.
    let claim = store
        .claim(tasque_durable::ClaimParams {
            queues: vec!["default".into()],
            limit: 1,
            lease: Duration::from_secs(30),
            worker_id: "crashed".into(),
            order: tasque_durable::PollOrder::PriorityThenAge,
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    let wake = store.now().await.unwrap() + chrono::Duration::milliseconds(800);
    let marker = tasque_durable::SetCheckpoint {
        run: claim.run_id,
        name: "tasque:sleep:nap".into(),
        value: json!({ "until_ms": wake.timestamp_millis() }),
        extend_lease: Duration::from_secs(30),
    };
    store.set_checkpoint(marker).await.unwrap();
    store.release(vec![claim.run_id]).await.unwrap();
    let handlers = Handlers::new();
    let shared = store.clone();
    handlers.learn("nap", move |ctx: JobContext, _: Value| {
        let store = shared.clone();
        async move {
            // Asks for an hour, but the recorded wake time wins.
            ctx.sleep_for("nap", Duration::from_secs(3600)).await?;
            Ok::<_, BoxError>(store.now().await?.timestamp_millis())
        }
    });
    let worker = start(&store, handlers, 1);
    wait_state(&store, job, JobState::Sleeping).await;
    let info = wait_state(&store, job, JobState::Completed).await;
    let woke_ms = info.result.unwrap().as_i64().unwrap();
    assert!(
        woke_ms >= wake.timestamp_millis(),
        "woke before the recorded time"
    );
    assert_eq!(settled(&worker).await.suspended, 1);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// `sleep_until` with a time already past returns at once; with a future time it suspends
/// until then, and the re-run returns at once.
pub async fn sleep_until_a_past_time_returns_and_a_future_time_suspends(store: Arc<dyn Store>) {
    let handlers = Handlers::new();
    let shared = store.clone();
    handlers.learn("alarm", move |ctx: JobContext, _: Value| {
        let store = shared.clone();
        async move {
            let now = store.now().await?;
            ctx.sleep_until("past", now - chrono::Duration::seconds(1))
                .await?;
            let wake: i64 = ctx
                .step("wake-at", || async {
                    Ok::<_, BoxError>(
                        (now + chrono::Duration::milliseconds(300)).timestamp_millis(),
                    )
                })
                .await?;
            let at = chrono::DateTime::from_timestamp_millis(wake).expect("a time");
            ctx.sleep_until("alarm", at).await?;
            let woke = store.now().await?.timestamp_millis();
            Ok::<_, BoxError>(json!({ "late_ms": woke - wake }))
        }
    });
    let job = spawn(&store, "alarm", json!({}), SpawnOptions::new()).await;
    let worker = start(&store, handlers, 1);
    let info = wait_state(&store, job, JobState::Completed).await;
    let late = info.result.unwrap()["late_ms"].as_i64().unwrap();
    assert!(late >= 0, "woke {late} ms before its time");
    assert_eq!(info.attempt, 1);
    assert_eq!(
        settled(&worker).await.suspended,
        1,
        "only the future time suspended"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Generates one `#[tokio::test]` per case. `$fresh` is an async expression giving
/// `Option<(guard, Arc<dyn Store>)>`: a fresh migrated store, kept alive by the guard, or `None`
/// to skip (a server engine that is unreachable outside CI).
/// Generates one `#[tokio::test]` per workflow case, given an expression that evaluates to a
/// future of `Option<(guard, Arc<dyn Store>)>`: a fresh migrated store and whatever keeps its
/// database alive, or `None` to skip (a server unreachable outside CI).
#[macro_export]
macro_rules! workflow_cases {
    ($fresh:expr) => {
        $crate::workflow_cases!(@cases $fresh;
            checkpoints_three_steps_failing_after_step_two_rerun_only_step_three,
            sleep_frees_the_only_slot_and_resumes_after_its_time_without_rerunning_steps,
            event_emitted_before_the_wait_is_received_without_suspending,
            event_emitted_after_the_wait_resumes_the_job_with_its_payload,
            event_never_emitted_times_out_and_the_handler_sees_timed_out,
            one_emit_wakes_many_waiters_that_held_no_slot,
            a_run_that_lost_its_job_gets_lease_lost_and_writes_no_outcome,
            a_failing_step_stores_nothing_and_runs_again_on_the_retry,
            a_sleep_replayed_early_keeps_its_original_wake_time,
            sleep_until_a_past_time_returns_and_a_future_time_suspends
        );
    };
    (@cases $fresh:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some((_guard, store)) = $fresh.await {
                    $crate::workflow::$case(store).await;
                }
            }
        )*
    };
}
