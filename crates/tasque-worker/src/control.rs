//! Handler control from the [`JobContext`]: fail for good, record progress.
//!
//! Snoozing is [`JobContext::snooze`]: run again after a delay, no attempt counted.

use std::sync::atomic::Ordering;

use serde_json::Value;
use tasque_durable::client::PROGRESS_CHECKPOINT;

use crate::{Error, JobContext};

impl JobContext {
    /// Makes a failure of this run final: when the handler then returns `Err` (or panics, or
    /// times out), the job fails for good at once, whatever attempts remain (Oban's discard,
    /// River's `JobCancel`). Has no effect on a run that succeeds.
    ///
    /// ```no_run
    /// # fn example(ctx: tasque_worker::JobContext, address: &str) -> Result<(), String> {
    /// if !address.contains('@') {
    ///     ctx.fail_for_good();
    ///     return Err(format!("{address:?} is not an e-mail address"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fail_for_good(&self) {
        self.run.fail_for_good.store(true, Ordering::SeqCst);
    }

    /// Whether [`fail_for_good`](JobContext::fail_for_good) was called in this run.
    pub fn failing_for_good(&self) -> bool {
        self.run.fail_for_good.load(Ordering::SeqCst)
    }

    /// Records the job's progress (any JSON), readable at once by `Client::get` and shown by
    /// `tasque jobs show`; the last value wins and stays after the job finishes. Stored as the
    /// checkpoint [`PROGRESS_CHECKPOINT`] in the same guarded write that extends the run's
    /// lease, so it also counts as a heartbeat. A run that lost its job gets
    /// [`Error::LeaseLost`] (or [`Error::Cancelled`]) and writes nothing.
    pub async fn set_progress(&self, progress: Value) -> Result<(), Error> {
        self.save(PROGRESS_CHECKPOINT, progress).await
    }
}
