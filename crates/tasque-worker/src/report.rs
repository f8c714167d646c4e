//! The reporter: writes runs' outcomes to the store, batched.
//!
//! Finished runs arrive on a channel; the reporter takes everything already
//! waiting (up to the batch size) and writes it in as few round trips as the
//! store allows: one `complete_many` for every success, one `release` for
//! every run given back, and one call per failure or snooze. A write the store
//! refuses because the run is stale is logged and dropped: the job belongs to
//! someone else now. A write that fails because the database is unreachable is
//! retried a few times; after that the job's lease expires and the rescuer
//! makes it claimable again, so nothing is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tasque_durable::{CompleteParams, FailOutcome, JobId, RunAt, RunId, RunWrite, Store};
use tokio::sync::{mpsc, Mutex, Notify};

/// What to write for a finished run.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Completed with this result.
    Complete(Value),
    /// A failed attempt with this reason.
    Fail(Value),
    /// A final failure with this reason, whatever attempts remain.
    FailForGood(Value),
    /// Give the run back until later, no attempt counted (snooze, unknown task).
    Defer(Duration),
    /// Give the run back at once, no attempt counted (shutdown).
    Release,
    /// Nothing to write (the job was cancelled or the lease lost).
    Drop,
    /// Nothing to write: the run already ended by suspending its job (a sleep or an event
    /// wait), in the same store write that suspended it.
    Suspended,
}

/// One finished run.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) run: RunId,
    pub(crate) verdict: Verdict,
}

/// Counts of what the worker reported, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) deferred: AtomicU64,
    pub(crate) suspended: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    /// Reports sent but not yet written.
    pub(crate) pending: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// Sends reports to the reporter, counting them as pending.
#[derive(Clone)]
pub(crate) struct Reports {
    sender: mpsc::UnboundedSender<Report>,
    tally: Arc<Tally>,
}

impl Reports {
    pub(crate) fn send(&self, run: RunId, verdict: Verdict) {
        self.tally.pending.fetch_add(1, Ordering::SeqCst);
        if self.sender.send(Report { run, verdict }).is_err() {
            self.tally.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Creates the report channel.
pub(crate) fn channel(tally: Arc<Tally>) -> (Reports, mpsc::UnboundedReceiver<Report>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Reports { sender, tally }, receiver)
}

/// How the reporter writes.
#[derive(Clone)]
pub(crate) struct Options {
    /// The most outcomes written in one go.
    pub(crate) batch_size: usize,
    /// Delete completed jobs instead of keeping them.
    pub(crate) delete_on_success: bool,
    /// Notified after each batch: a written outcome can make another job claimable (the
    /// next job of a blocking queue, a queue under its limit again), so the claim loop
    /// should look at once instead of at its next poll.
    pub(crate) written: Arc<Notify>,
}

/// The reporter loop: runs until every sender is gone and the channel is drained. The channel
/// is shared so that an instance restarted after a panic goes on with it.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Report>>>,
    tally: Arc<Tally>,
    options: Options,
) {
    let mut receiver = receiver.lock().await;
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < options.batch_size {
            match receiver.try_recv() {
                Ok(report) => batch.push(report),
                Err(_) => break,
            }
        }
        // Counted as written even if the write panics: those runs' leases expire instead.
        let _written = Written {
            tally: &tally,
            count: batch.len(),
            notify: &options.written,
        };
        let finished = write_batch(&*store, batch, &tally, options.delete_on_success).await;
        announce(&store, finished);
    }
}

/// Ends a batch's pending count, and wakes the claim loop, when dropped.
struct Written<'a> {
    tally: &'a Tally,
    count: usize,
    notify: &'a Notify,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        self.tally
            .pending
            .fetch_sub(self.count as u64, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// Tells waiters (`Client::wait`) that `jobs` finished: this process's at once, other
/// processes' through the engine (PostgreSQL's NOTIFY) in a task of its own, so that the
/// announcement never delays the next batch of outcomes.
fn announce(store: &Arc<dyn Store>, jobs: Vec<JobId>) {
    if jobs.is_empty() {
        return;
    }
    tasque_durable::client::announce_finished_locally(store.namespace(), &jobs);
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.announce_finished(&jobs).await {
            tracing::debug!(%error, "could not announce finished jobs; waiters will poll");
        }
    });
}

/// Writes a batch of outcomes; returns the jobs it finished (completed or failed for good).
async fn write_batch(
    store: &dyn Store,
    batch: Vec<Report>,
    tally: &Tally,
    delete_on_success: bool,
) -> Vec<JobId> {
    let mut completes = Vec::new();
    let mut releases = Vec::new();
    // Jobs this batch finished, announced to waiters (`Client::wait`) at the end.
    let mut finished: Vec<JobId> = Vec::new();
    for Report { run, verdict } in batch {
        match verdict {
            Verdict::Complete(result) => completes.push(CompleteParams {
                run,
                result,
                delete_on_success,
            }),
            Verdict::Release => releases.push(run),
            Verdict::Drop => add(&tally.dropped, 1),
            Verdict::Suspended => add(&tally.suspended, 1),
            Verdict::Fail(reason) => {
                let written = with_retries(|| store.fail(run, reason.clone())).await;
                if matches!(written, Ok(FailOutcome::Failed)) {
                    finished.push(run.job);
                }
                count_single(tally, written.map(|_| ()), &tally.failed, run);
            }
            Verdict::FailForGood(reason) => {
                let written = with_retries(|| store.fail_for_good(run, reason.clone())).await;
                if written.is_ok() {
                    finished.push(run.job);
                }
                count_single(tally, written, &tally.failed, run);
            }
            Verdict::Defer(delay) => {
                let written = with_retries(|| store.schedule_run(run, RunAt::After(delay))).await;
                count_single(tally, written, &tally.deferred, run);
            }
        }
    }
    if !completes.is_empty() {
        match with_retries(|| store.complete_many(completes.clone())).await {
            Ok(writes) => {
                finished.extend(
                    completes
                        .iter()
                        .zip(&writes)
                        .filter(|(_, w)| **w == RunWrite::Applied)
                        .map(|(c, _)| c.run.job),
                );
                let applied = writes.iter().filter(|w| **w == RunWrite::Applied).count();
                add(&tally.completed, applied);
                add(&tally.stale, writes.len() - applied);
            }
            Err(error) => {
                add(&tally.store_errors, completes.len());
                tracing::error!(%error, runs = completes.len(), "could not record completions; leases will expire and the jobs run again");
            }
        }
    }
    if !releases.is_empty() {
        match with_retries(|| store.release(releases.clone())).await {
            Ok(released) => add(&tally.released, released as usize),
            Err(error) => {
                add(&tally.store_errors, releases.len());
                tracing::error!(%error, "could not release runs; their leases will expire instead");
            }
        }
    }
    finished
}

fn count_single(
    tally: &Tally,
    written: tasque_durable::Result<()>,
    counter: &AtomicU64,
    run: RunId,
) {
    match written {
        Ok(()) => add(counter, 1),
        Err(tasque_durable::Error::StaleRun(_) | tasque_durable::Error::RunCancelled(_)) => {
            tracing::debug!(%run, "run no longer owns its job; outcome dropped");
            add(&tally.stale, 1);
        }
        Err(error) => {
            add(&tally.store_errors, 1);
            tracing::error!(%run, %error, "could not record outcome; the lease will expire and the job run again");
        }
    }
}

/// Retries a store write that failed for a database reason (not for a
/// refusal) up to four times, backing off from 50 ms.
async fn with_retries<T, F, Fut>(mut write: F) -> tasque_durable::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = tasque_durable::Result<T>>,
{
    let mut delay = Duration::from_millis(50);
    for _ in 0..4 {
        match write().await {
            Err(tasque_durable::Error::Database(error)) => {
                tracing::warn!(%error, ?delay, "store write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    write().await
}
