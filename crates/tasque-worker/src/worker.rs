//! The worker: claims jobs, runs them through the in-process queue, reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tasque_core::{Queue, Supervisor, TaskHandle, TaskOptions, Timeout};
use tasque_durable::{Claim, ClaimParams, FailureKind, FailureReason, JobFilter, JobState, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Settings;
use crate::context::JobContext;
use crate::handlers::{HandlerWork, RunOutput};
use crate::inflight::{Abort, InFlight};
use crate::report::{self, Reports, Tally, Verdict};
use crate::stop::Stop;
use crate::{maintenance, Error, Handlers, WorkerBuilder, WorkerStats};

/// A durable worker, built by [`Worker::builder`] and started by [`Worker::start`].
pub struct Worker {
    store: Arc<dyn Store>,
    handlers: Handlers,
    settings: Settings,
}

impl Worker {
    /// Starts configuring a worker on `store`.
    pub fn builder(store: Arc<dyn Store>) -> WorkerBuilder {
        WorkerBuilder::new(store)
    }

    pub(crate) fn new(store: Arc<dyn Store>, handlers: Handlers, settings: Settings) -> Self {
        Worker {
            store,
            handlers,
            settings,
        }
    }

    /// The handler set; learn and forget handlers through it at any time.
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// Starts claiming and running jobs in the background (inside a tokio
    /// runtime). Stop it with [`RunningWorker::shutdown`].
    pub fn start(self) -> Result<RunningWorker, Error> {
        let settings = Arc::new(self.settings);
        let queue = Queue::builder(format!("tasque-worker:{}", settings.worker_id))
            .max_concurrency(settings.concurrency)
            .build()?;
        let tally = Arc::new(Tally::default());
        let (reports, receiver) = report::channel(tally.clone());
        let restarts = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            store: self.store,
            handlers: self.handlers,
            settings: settings.clone(),
            queue,
            inflight: Arc::new(InFlight::default()),
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            stop_claiming: Stop::default(),
            wake: Arc::new(Notify::new()),
            idle: Notify::new(),
            tally: tally.clone(),
            restarts,
        });
        let maintenance_stop = Arc::new(Stop::default());
        let restarts = shared.restarts.clone();
        let supervisor = |name: &str| Supervisor::new(name).count_restarts(restarts.clone());
        let until_maintenance_stops = {
            let stop = maintenance_stop.clone();
            move || {
                let stop = stop.clone();
                async move { stop.raised().await }
            }
        };
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let options = report::Options {
            batch_size: settings.completion_batch,
            delete_on_success: settings.delete_on_success,
            written: shared.wake.clone(),
        };
        let reporter = {
            let (store, tally) = (shared.store.clone(), tally.clone());
            // Ends when every sender is gone and the channel is drained; a panic restarts it
            // on the same channel, stopping or not, so no outcome is left unwritten.
            supervisor("reporter").finishes_by_returning().spawn(
                move || {
                    report::run(
                        store.clone(),
                        receiver.clone(),
                        tally.clone(),
                        options.clone(),
                    )
                },
                std::future::pending::<()>,
            )
        };
        let (mut services, leadership) = maintenance::start(maintenance::Context {
            store: shared.store.clone(),
            settings: settings.clone(),
            inflight: shared.inflight.clone(),
            queue: shared.queue.clone(),
            restarts: restarts.clone(),
            stop: maintenance_stop.clone(),
        });
        if shared.store.subscribe_wakeups().is_some() {
            let (shared, stop) = (shared.clone(), maintenance_stop.clone());
            services.push(supervisor("wake-up forwarder").spawn(
                move || forward_wakeups(shared.clone(), stop.clone()),
                until_maintenance_stops.clone(),
            ));
        }
        let claimer = {
            let (looping, stopping) = (shared.clone(), shared.clone());
            // Every instance works on the same slots, in-flight table and report channel.
            supervisor("claim loop").spawn(
                move || claim_loop(looping.clone(), reports.clone()),
                move || {
                    let shared = stopping.clone();
                    async move { shared.stop_claiming.raised().await }
                },
            )
        };
        Ok(RunningWorker {
            leadership,
            shared,
            claimer,
            reporter,
            services,
            maintenance_stop,
        })
    }
}

/// What a worker's loops share.
struct Shared {
    store: Arc<dyn Store>,
    handlers: Handlers,
    settings: Arc<Settings>,
    queue: Queue,
    inflight: Arc<InFlight>,
    slots: Arc<Semaphore>,
    stop_claiming: Stop,
    /// Wakes an idle claim loop early (a slot freed, an outcome written, a job
    /// announced).
    wake: Arc<Notify>,
    /// Signalled when a claim found nothing and nothing is in flight.
    idle: Notify,
    tally: Arc<Tally>,
    /// Restarts of the worker's supervised loops.
    restarts: Arc<AtomicU64>,
}

/// A started worker.
pub struct RunningWorker {
    shared: Arc<Shared>,
    claimer: JoinHandle<()>,
    reporter: JoinHandle<()>,
    services: Vec<JoinHandle<()>>,
    maintenance_stop: Arc<Stop>,
    leadership: maintenance::Leadership,
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Runs still going at the deadline, aborted and given back (claimable at once).
    pub released: usize,
}

impl RunningWorker {
    /// The worker's id, as recorded on the jobs it claims.
    pub fn worker_id(&self) -> &str {
        &self.shared.settings.worker_id
    }

    /// The handler set; learn and forget handlers through it at any time.
    pub fn handlers(&self) -> &Handlers {
        &self.shared.handlers
    }

    /// Whether this worker is the elected leader now (it runs the scheduler, the rescuer and
    /// the cleaner). On a store without a schedule engine every worker leads itself.
    pub fn is_leader(&self) -> bool {
        *self.leadership.borrow()
    }

    /// Counts of what this worker did so far.
    pub fn stats(&self) -> WorkerStats {
        let tally = &self.shared.tally;
        let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        WorkerStats {
            running: self.shared.inflight.len(),
            busy_slots: self
                .shared
                .settings
                .concurrency
                .saturating_sub(self.shared.slots.available_permits()),
            completed: read(&tally.completed),
            failed: read(&tally.failed),
            deferred: read(&tally.deferred),
            suspended: read(&tally.suspended),
            released: read(&tally.released),
            aborted: read(&tally.dropped),
            stale: read(&tally.stale),
            store_errors: read(&tally.store_errors),
            restarts: read(&self.shared.restarts),
        }
    }

    /// Wakes the worker if it is waiting for its next poll (e.g. after a
    /// local enqueue, or a notification from the database).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Waits until no job in the worker's queues is ready or running and every
    /// outcome is written, or `limit` passes; true if it became empty. With
    /// `include_scheduled`, jobs scheduled for later (e.g. retries waiting out
    /// their backoff) and sleeping jobs (which wake at a known time) count as
    /// work still to do. Jobs waiting for an event never do: nothing says when
    /// (or whether) it will be emitted.
    pub async fn wait_until_empty(&self, include_scheduled: bool, limit: Duration) -> bool {
        let deadline = deadline_after(limit);
        let mut states = vec![JobState::Available, JobState::Running];
        if include_scheduled {
            states.extend([JobState::Scheduled, JobState::Sleeping]);
        }
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let written = self.shared.tally.pending.load(Ordering::SeqCst) == 0;
            if written && self.shared.inflight.len() == 0 && self.nothing_to_do(&states).await {
                return true;
            }
            let wait = self.shared.settings.poll_interval;
            let woken = tokio::time::timeout_at(deadline.min(Instant::now() + wait), idle).await;
            if woken.is_err() && Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Waits until no run is in flight and every outcome is written (whatever jobs are still
    /// ready), or `limit` passes; true if it became idle. Counts in [`stats`](Self::stats)
    /// then include every run that ended.
    pub async fn wait_until_idle(&self, limit: Duration) -> bool {
        let deadline = deadline_after(limit);
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let written = self.shared.tally.pending.load(Ordering::SeqCst) == 0;
            if written && self.shared.inflight.len() == 0 {
                return true;
            }
            let wait = self.shared.settings.poll_interval;
            let woken = tokio::time::timeout_at(deadline.min(Instant::now() + wait), idle).await;
            if woken.is_err() && Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Whether no job in the worker's unpaused queues is in `states` (jobs
    /// of a paused queue cannot be worked, so they do not count).
    async fn nothing_to_do(&self, states: &[JobState]) -> bool {
        let Ok(queues) = self.shared.store.list_queues().await else {
            return false;
        };
        let active: Vec<String> = self
            .shared
            .settings
            .queues
            .iter()
            .filter(|name| !queues.iter().any(|q| &q.name == *name && q.paused))
            .cloned()
            .collect();
        if active.is_empty() {
            return true;
        }
        let filter = JobFilter::all().states(states.to_vec()).queues(active);
        matches!(self.shared.store.count(filter).await, Ok(0))
    }

    /// Stops gracefully: no more claims; running jobs may finish within
    /// `grace`; those still running then are aborted and released (claimable
    /// at once, no attempt counted). Every outcome is written before this
    /// returns.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared.stop_claiming.raise();
        let _ = self.claimer.await;
        let deadline = deadline_after(grace);
        let mut released = 0;
        if !shared.inflight.wait_empty(deadline).await {
            let tasks = shared.inflight.abort_all(Abort::Released);
            released = tasks.len();
            for task in &tasks {
                shared.queue.cancel(task);
            }
            shared
                .inflight
                .wait_empty(Instant::now() + Duration::from_secs(5))
                .await;
        }
        self.maintenance_stop.raise();
        for service in self.services {
            let _ = service.await;
        }
        let _ = self.reporter.await;
        shared.queue.shutdown(Duration::ZERO).await;
        ShutdownReport { released }
    }
}

/// `limit` from now, saturating far in the future (`Duration::MAX` = no limit).
fn deadline_after(limit: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    let now = Instant::now();
    now.checked_add(limit).unwrap_or_else(|| now + FAR)
}

/// Claims while there are free slots; waits for the poll interval when idle.
async fn claim_loop(shared: Arc<Shared>, reports: Reports) {
    let settings = shared.settings.clone();
    while !shared.stop_claiming.is_raised() {
        let free = shared.slots.available_permits();
        if free == 0 {
            tokio::select! {
                _ = shared.stop_claiming.raised() => break,
                permit = shared.slots.acquire() => drop(permit),
            }
            continue;
        }
        let batch = settings.poll_limit.min(settings.concurrency);
        if free < batch && shared.inflight.len() > 0 {
            // Some slots are busy: give them up to CLAIM_LINGER to free up too,
            // so a busy worker claims full batches instead of one job at a time
            // (each claim is a round trip; on SQLite, a turn of the one writer).
            linger(&shared, batch).await;
        }
        let free = shared.slots.available_permits();
        let limit = free.min(settings.poll_limit);
        let params = ClaimParams {
            queues: settings.queues.clone(),
            limit: limit as u32,
            lease: settings.lease,
            worker_id: settings.worker_id.clone(),
            order: settings.order,
        };
        let claims = match shared.store.claim(params).await {
            Ok(claims) => claims,
            Err(error @ tasque_durable::Error::Database(_)) => {
                tracing::warn!(%error, "claim failed; retrying after the poll interval");
                if shared.stop_claiming.sleep(settings.poll_interval).await {
                    break;
                }
                continue;
            }
            Err(error) => {
                // Not a passing database fault: a bug or bad data that the store could not
                // handle. Keep claiming, but say it loudly.
                tracing::error!(%error, "claim failed; retrying after the poll interval");
                if shared.stop_claiming.sleep(settings.poll_interval).await {
                    break;
                }
                continue;
            }
        };
        let got = claims.len();
        for claim in claims {
            dispatch(&shared, &reports, claim);
        }
        if got < limit {
            if got == 0 && shared.inflight.len() == 0 {
                shared.idle.notify_waiters();
            }
            tokio::select! {
                _ = shared.stop_claiming.raised() => break,
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(settings.poll_interval) => {}
            }
        }
    }
}

/// Wakes the idle claim loop when the store announces a ready job in one of
/// the worker's queues (an empty name, or a lagging receiver, means any
/// queue). `Notify` keeps one wake-up for a loop that is busy claiming, so an
/// announcement is never lost between two waits; polling stays the fallback
/// (and the only way once the store's announcements end).
async fn forward_wakeups(shared: Arc<Shared>, stop: Arc<Stop>) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(mut wakeups) = shared.store.subscribe_wakeups() else {
        return stop.raised().await;
    };
    // Announcements may have been missed while (re)subscribing.
    shared.wake.notify_one();
    loop {
        let announced = tokio::select! {
            _ = stop.raised() => return,
            announced = wakeups.recv() => announced,
        };
        match announced {
            Ok(queue) if !queue.is_empty() && !shared.settings.queues.contains(&queue) => {}
            Ok(_) | Err(RecvError::Lagged(_)) => shared.wake.notify_one(),
            Err(RecvError::Closed) => {
                tracing::warn!("the store stopped announcing ready jobs; polling only");
                return stop.raised().await;
            }
        }
    }
}

/// Waits up to [`CLAIM_LINGER`] for at least `wanted` slots to be free (or for
/// nothing to be in flight any more).
async fn linger(shared: &Shared, wanted: usize) {
    let deadline = Instant::now() + CLAIM_LINGER;
    while shared.slots.available_permits() < wanted
        && shared.inflight.len() > 0
        && Instant::now() < deadline
    {
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// How long a busy worker waits for more free slots before claiming.
const CLAIM_LINGER: Duration = Duration::from_millis(5);

/// Starts one claimed run: defers unknown tasks, fails undecodable params,
/// otherwise runs the handler in the in-process queue.
fn dispatch(shared: &Arc<Shared>, reports: &Reports, claim: Claim) {
    let run = claim.run_id;
    let context = JobContext::new(&claim, shared.store.clone(), shared.settings.lease);
    let span = crate::span::job_span(&claim);
    let started = match shared.handlers.start(context.clone(), claim.params) {
        None => {
            tracing::warn!(%run, task = %claim.task, "no handler for this task; deferring");
            reports.send(run, Verdict::Defer(shared.settings.defer_unknown));
            return;
        }
        Some(Err(error)) => {
            let reason = FailureReason::new(
                FailureKind::Undecodable,
                format!(
                    "params do not decode into the `{}` handler's type: {error}",
                    claim.task
                ),
            )
            .attempt(claim.attempt);
            tracing::warn!(%run, task = %claim.task, %error, "params do not decode; failing the job for good");
            reports.send(run, Verdict::FailForGood(reason.to_json()));
            return;
        }
        Some(Ok(future)) => future,
    };
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        // Cannot happen: only this loop takes slots, and it claimed no more
        // than were free. Give the run back rather than overrun the budget.
        reports.send(run, Verdict::Release);
        return;
    };
    let timeout = claim.timeout.map_or(Timeout::Infinity, Timeout::After);
    let options = TaskOptions::new().timeout(timeout);
    // The work itself holds the slot: it is freed when the work is gone, which for a
    // blocking handler that ignores its cancel token is when its thread returns.
    let slot = Slot::new(permit, shared.wake.clone());
    let enqueued = shared.inflight.insert_with(run, || {
        let handle = match started {
            HandlerWork::Async(future) => shared.queue.enqueue_with(
                options,
                tracing::Instrument::instrument(
                    async move {
                        let _slot = slot;
                        future.await
                    },
                    span,
                ),
            ),
            HandlerWork::Blocking(work) => shared.queue.enqueue_blocking(options, move |cancel| {
                let _slot = slot;
                let _entered = span.enter();
                work(cancel)
            }),
        };
        handle.map(|handle| (handle.task_ref().clone(), handle))
    });
    match enqueued {
        Ok(handle) => {
            let (shared, reports) = (shared.clone(), reports.clone());
            tokio::spawn(await_outcome(
                shared,
                reports,
                run,
                handle,
                context,
                claim.timeout,
            ));
        }
        Err(error) => {
            tracing::error!(%run, %error, "in-process queue refused the job; releasing it");
            reports.send(run, Verdict::Release);
        }
    }
}

/// A worker slot held by a run's work; freeing it wakes the claim loop.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    wake: Arc<Notify>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, wake: Arc<Notify>) -> Self {
        Slot {
            permit: Some(permit),
            wake,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.wake.notify_one();
    }
}

/// Waits for a run's outcome and reports it. (Its slot is freed by its work, see [`Slot`].)
async fn await_outcome(
    shared: Arc<Shared>,
    reports: Reports,
    run: tasque_durable::RunId,
    handle: TaskHandle<RunOutput>,
    context: JobContext,
    timeout: Option<Duration>,
) {
    let outcome = handle.await;
    let abort = shared.inflight.remove(run);
    shared.wake.notify_one();
    reports.send(
        run,
        crate::verdict::verdict(outcome, abort, &context, timeout),
    );
}
