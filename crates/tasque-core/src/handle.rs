//! Awaiting one task's outcome.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::{AwaitError, ExitReason, Outcome, TaskRef, DEFAULT_AWAIT_LIMIT};

/// The caller's side of one enqueued task: its [`TaskRef`] plus the channel its
/// outcome arrives on.
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
    receiver: Option<oneshot::Receiver<Outcome<T>>>,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(task_ref: TaskRef, receiver: oneshot::Receiver<Outcome<T>>) -> Self {
        Self {
            task_ref,
            receiver: Some(receiver),
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
        let receiver = self.receiver.as_mut().ok_or(AwaitError::AlreadyReceived)?;
        match tokio::time::timeout(limit, receiver).await {
            Err(_) => Err(AwaitError::TimedOut(limit)),
            Ok(received) => {
                self.receiver = None;
                Ok(received.unwrap_or(Outcome::Exit(ExitReason::Shutdown)))
            }
        }
    }

    /// Returns the outcome if it has already arrived, without waiting.
    pub fn try_outcome(&mut self) -> Option<Outcome<T>> {
        let receiver = self.receiver.as_mut()?;
        let outcome = match receiver.try_recv() {
            Ok(outcome) => outcome,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => Outcome::Exit(ExitReason::Shutdown),
        };
        self.receiver = None;
        Some(outcome)
    }
}

impl<T: Send + 'static> IntoFuture for TaskHandle<T> {
    type Output = Outcome<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Outcome<T>> + Send>>;

    /// Waits for the outcome without a limit.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.receiver {
                None => Outcome::Exit(ExitReason::Shutdown),
                Some(receiver) => receiver
                    .await
                    .unwrap_or(Outcome::Exit(ExitReason::Shutdown)),
            }
        })
    }
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task_ref", &self.task_ref)
            .field("received", &self.receiver.is_none())
            .finish()
    }
}
