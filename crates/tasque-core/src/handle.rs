//! Awaiting one task's outcome.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use crate::cell::Outbox;
use crate::{AwaitError, ExitReason, Outcome, TaskRef, DEFAULT_AWAIT_LIMIT};

/// The caller's side of one enqueued task: its [`TaskRef`] plus the task's
/// cell, where its outcome arrives.
///
/// Wait with a limit ([`wait`](TaskHandle::wait), [`wait_for`](TaskHandle::wait_for)):
/// the limit only bounds *your* wait. When it passes you get
/// [`AwaitError::TimedOut`], nothing is cancelled, and waiting again later still
/// yields the outcome. Or `.await` the handle itself to wait without limit.
/// Dropping the handle discards the outcome; the task still runs (row 1.10).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tasque_core::{AwaitError, Outcome, Queue};
///
/// let queue = Queue::builder("docs-handle").build()?;
/// let (release, gate) = tokio::sync::oneshot::channel::<()>();
/// let mut handle = queue.enqueue(async move {
///     let _ = gate.await;
///     42
/// })?;
/// // A short wait gives up without cancelling anything...
/// assert_eq!(
///     handle.wait_for(Duration::from_millis(10)).await,
///     Err(AwaitError::TimedOut(Duration::from_millis(10)))
/// );
/// release.send(()).unwrap();
/// // ...and waiting again still yields the real outcome.
/// assert_eq!(handle.wait().await, Ok(Outcome::Ok(42)));
/// # Ok(()) }
/// ```
pub struct TaskHandle<T> {
    task_ref: TaskRef,
    outbox: Option<Arc<dyn Outbox<T>>>,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(task_ref: TaskRef, outbox: Arc<dyn Outbox<T>>) -> Self {
        Self {
            task_ref,
            outbox: Some(outbox),
        }
    }

    /// The task's ref, for [`Queue::cancel`](crate::Queue::cancel) or logging.
    pub fn task_ref(&self) -> &TaskRef {
        &self.task_ref
    }

    /// Waits up to [`DEFAULT_AWAIT_LIMIT`] (5 s) for the outcome.
    pub async fn wait(&mut self) -> Result<Outcome<T>, AwaitError> {
        self.wait_for(DEFAULT_AWAIT_LIMIT).await
    }

    /// Waits up to `limit` for the outcome. On [`AwaitError::TimedOut`] the task
    /// is untouched and a later wait still returns its outcome.
    pub async fn wait_for(&mut self, limit: Duration) -> Result<Outcome<T>, AwaitError> {
        let outbox = self.outbox.as_ref().ok_or(AwaitError::AlreadyReceived)?;
        let received = std::future::poll_fn(|cx| outbox.poll_outcome(cx));
        match tokio::time::timeout(limit, received).await {
            Err(_) => Err(AwaitError::TimedOut(limit)),
            Ok(outcome) => {
                self.outbox = None;
                Ok(outcome)
            }
        }
    }

    /// Returns the outcome if it has already arrived, without waiting.
    pub fn try_outcome(&mut self) -> Option<Outcome<T>> {
        let outcome = self.outbox.as_ref()?.try_outcome()?;
        self.outbox = None;
        Some(outcome)
    }
}

impl<T: Send + 'static> IntoFuture for TaskHandle<T> {
    type Output = Outcome<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Outcome<T>> + Send>>;

    /// Waits for the outcome without a limit.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.outbox {
                None => Outcome::Exit(ExitReason::Shutdown),
                Some(outbox) => std::future::poll_fn(|cx| outbox.poll_outcome(cx)).await,
            }
        })
    }
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task_ref", &self.task_ref)
            .field("received", &self.outbox.is_none())
            .finish()
    }
}
