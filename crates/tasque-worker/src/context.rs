//! The context a handler gets: what it knows about its run, and the per-run state its workflow
//! calls share (the job's checkpoints, and whether the run was interrupted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tasque_durable::{Claim, JobId, RunId, Store, Wake};
use tokio::sync::{Notify, OnceCell};

/// What a handler knows about the run it is working on, and its door to durable workflows:
/// [`step`](JobContext::step), [`sleep_for`](JobContext::sleep_for),
/// [`sleep_until`](JobContext::sleep_until) and
/// [`wait_for_event`](JobContext::wait_for_event).
///
/// Cheap to clone; clones share the run.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) claim: Arc<ClaimInfo>,
    pub(crate) store: Arc<dyn Store>,
    /// The worker's lease, renewed by every checkpoint write.
    pub(crate) lease: Duration,
    pub(crate) run: Arc<RunState>,
}

#[derive(Debug)]
pub(crate) struct ClaimInfo {
    pub(crate) job_id: JobId,
    pub(crate) run_id: RunId,
    queue: String,
    task: String,
    attempt: u32,
    max_attempts: u32,
    headers: Value,
    pub(crate) wake: Option<Wake>,
}

/// Why a run stopped before its handler returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// The run suspended its job (a sleep or an event wait); the store already ended the run.
    Suspended,
    /// The run no longer owns its job (lease lost, or cancelled): nothing may be written.
    Lost,
}

/// The state the calls of one run share.
#[derive(Default)]
pub(crate) struct RunState {
    snooze: Mutex<Option<Duration>>,
    /// Set by [`JobContext::fail_for_good`]: a failure of this run is final.
    pub(crate) fail_for_good: std::sync::atomic::AtomicBool,
    /// The job's checkpoints, loaded once per run at the first workflow call, and kept up to
    /// date with this run's own writes.
    pub(crate) checkpoints: OnceCell<Mutex<HashMap<String, Value>>>,
    /// 0: running; 1: suspended; 2: lost.
    interruption: AtomicU8,
    interrupted: Notify,
}

impl RunState {
    /// Records that the run stopped (the first reason wins) and wakes the task running it.
    pub(crate) fn interrupt(&self, why: Interruption) {
        let code = match why {
            Interruption::Suspended => 1,
            Interruption::Lost => 2,
        };
        let _ = self
            .interruption
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.interrupted.notify_waiters();
    }

    /// Why the run stopped, if it did.
    pub(crate) fn interruption(&self) -> Option<Interruption> {
        match self.interruption.load(Ordering::SeqCst) {
            1 => Some(Interruption::Suspended),
            2 => Some(Interruption::Lost),
            _ => None,
        }
    }

    /// Resolves once the run is interrupted.
    pub(crate) async fn interrupted(&self) {
        loop {
            let notified = self.interrupted.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.interruption().is_some() {
                return;
            }
            notified.await;
        }
    }
}

impl JobContext {
    pub(crate) fn new(claim: &Claim, store: Arc<dyn Store>, lease: Duration) -> Self {
        JobContext {
            claim: Arc::new(ClaimInfo {
                job_id: claim.job_id,
                run_id: claim.run_id,
                queue: claim.queue.clone(),
                task: claim.task.clone(),
                attempt: claim.attempt,
                max_attempts: claim.max_attempts,
                headers: claim.headers.clone(),
                wake: claim.wake(),
            }),
            store,
            lease,
            run: Arc::default(),
        }
    }

    pub(crate) fn run_state(&self) -> Arc<RunState> {
        self.run.clone()
    }

    /// The job.
    pub fn job_id(&self) -> JobId {
        self.claim.job_id
    }

    /// This run.
    pub fn run_id(&self) -> RunId {
        self.claim.run_id
    }

    /// The job's queue.
    pub fn queue(&self) -> &str {
        &self.claim.queue
    }

    /// The job's task name.
    pub fn task(&self) -> &str {
        &self.claim.task
    }

    /// This run's attempt number, from 1. Sleeps and event waits do not count attempts: a job
    /// resumed after one runs the same attempt again.
    pub fn attempt(&self) -> u32 {
        self.claim.attempt
    }

    /// The job's attempt budget.
    pub fn max_attempts(&self) -> u32 {
        self.claim.max_attempts
    }

    /// The job's headers (`Value::Null` when none).
    pub fn headers(&self) -> &Value {
        &self.claim.headers
    }

    /// The event that woke this run, with its payload (`None` when the wait timed out), if the
    /// job was resumed from an event wait. [`wait_for_event`](JobContext::wait_for_event) reads
    /// this for you.
    pub fn wake_event(&self) -> Option<(&str, Option<&Value>)> {
        match self.claim.wake.as_ref()? {
            Wake::Event { name, payload } => Some((name, Some(payload))),
            Wake::TimedOut { name } => Some((name, None)),
        }
    }

    /// Asks for this run to be given back and retried after `delay` instead of
    /// completing, without counting an attempt (Oban's snooze). Takes effect
    /// when the handler returns `Ok`; a failing handler fails as usual.
    pub fn snooze(&self, delay: Duration) {
        *self.run.snooze.lock() = Some(delay);
    }

    /// A client on the store this job runs on, to enqueue follow-up jobs from the handler (or
    /// read jobs): what it enqueues is written where the job is (under
    /// `tasque::testing`'s test worker, in the transaction that is rolled back afterwards).
    ///
    /// ```no_run
    /// # use tasque_durable::client::Job;
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Receipt { order: u64 }
    /// # impl Job for Receipt { const KIND: &'static str = "receipt"; type Output = (); }
    /// # async fn example(ctx: tasque_worker::JobContext) -> Result<(), Box<dyn std::error::Error>> {
    /// ctx.client().enqueue(Receipt { order: 7 }).await?;
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> tasque_durable::client::Client {
        tasque_durable::client::Client::new(self.store.clone())
    }

    pub(crate) fn snoozed(&self) -> Option<Duration> {
        *self.run.snooze.lock()
    }

    /// Why the run stopped before its handler returned, if it did.
    pub(crate) fn interruption(&self) -> Option<Interruption> {
        self.run.interruption()
    }
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("claim", &self.claim)
            .field("lease", &self.lease)
            .field("interruption", &self.run.interruption())
            .finish_non_exhaustive()
    }
}
