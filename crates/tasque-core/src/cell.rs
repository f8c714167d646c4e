//! The per-task cell: where exactly one outcome is delivered.
//!
//! A [`TaskCell`] is shared by whoever may finish a task: the runner (value or
//! panic), the timeout timer, a cancel call, shutdown and restart; and by the
//! caller's [`TaskHandle`](crate::TaskHandle), which reads the outcome from
//! it. Delivery *takes* the reply out of the cell under a lock, so the first
//! finisher delivers and every later one is a no-op: never two outcomes. If
//! the queue drops a task's entry before anything was delivered (the runtime
//! itself went away), the entry's `Drop` delivers [`ExitReason::Shutdown`]:
//! never none.
//!
//! The cell is the one allocation a waiting task costs: it holds the task's
//! work unboxed until the task gets a slot, and serves as the handle's
//! outcome channel. What running needs (the boxed future, the span) is
//! allocated when the task starts.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::entry::{deliver_to, Work};
use crate::stats::Counters;
use crate::{ExitReason, Outcome, TaskRef};

/// Where a task is in the queue. Only changed under the queue's state lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Queued = 0,
    Running = 1,
    Done = 2,
}

/// One delivery to a [`Mailbox`](crate::Mailbox): which task, and how it ended.
pub type Delivery<T> = (TaskRef, Outcome<T>);

/// Where the outcome goes, and whether it went.
pub(crate) enum Reply<T> {
    /// A [`TaskHandle`](crate::TaskHandle) will take it; the waker of the
    /// handle waiting for it, if one waits.
    Awaited(Option<Waker>),
    /// Delivered, not yet taken by the handle.
    Ready(Outcome<T>),
    /// It is posted to a mailbox, tagged with the task's ref (boxed: the
    /// handle case, the common one, keeps a small cell).
    Mailbox(Box<(mpsc::UnboundedSender<Delivery<T>>, TaskRef)>),
    /// Delivered and taken, posted, or discarded.
    Spent,
}

/// The work of a waiting task, unboxed; turned into a runnable [`Work`] (and
/// allocated) only when the task gets a slot.
pub(crate) trait Launch<T>: Send + 'static {
    /// The runnable work, delivering its outcome to `sink`.
    fn launch(
        self,
        sink: Arc<dyn Sink<T>>,
        control: Arc<dyn Control>,
        counters: Arc<Counters>,
    ) -> Work;
}

/// An async task's work: a future producing its outcome.
pub(crate) struct AsyncWork<F>(pub(crate) F);

impl<T, F> Launch<T> for AsyncWork<F>
where
    T: Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    fn launch(
        self,
        sink: Arc<dyn Sink<T>>,
        _control: Arc<dyn Control>,
        counters: Arc<Counters>,
    ) -> Work {
        let future = self.0;
        Work::Async(Box::pin(async move {
            let outcome = future.await;
            deliver_to(&*sink, outcome, &counters)
        }))
    }
}

/// A blocking task's work: a closure producing its outcome.
pub(crate) struct BlockingWork<F>(pub(crate) F);

impl<T, F> Launch<T> for BlockingWork<F>
where
    T: Send + 'static,
    F: FnOnce(CancelToken) -> Outcome<T> + Send + 'static,
{
    fn launch(
        self,
        sink: Arc<dyn Sink<T>>,
        control: Arc<dyn Control>,
        counters: Arc<Counters>,
    ) -> Work {
        let work = self.0;
        let cancel = CancelToken { control };
        Work::Blocking(Box::new(move || {
            let outcome = work(cancel);
            deliver_to(&*sink, outcome, &counters)
        }))
    }
}

/// The typed face of a cell that running work delivers to.
pub(crate) trait Sink<T>: Send + Sync + 'static {
    /// Delivers `outcome` unless one was already delivered; see
    /// [`TaskCell::deliver`].
    fn deliver(&self, outcome: Outcome<T>, counters: &Counters) -> bool;
}

/// The typed face of a cell that a [`TaskHandle`](crate::TaskHandle) reads.
pub(crate) trait Outbox<T>: Send + Sync {
    /// The outcome once delivered (taking it); otherwise registers the
    /// waker. A cell whose outcome was discarded yields `Exit(Shutdown)`.
    fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Outcome<T>>;
    /// The outcome if already delivered (taking it), without waiting.
    fn try_outcome(&self) -> Option<Outcome<T>>;
}

/// The type-erased face of a task cell that the queue machinery uses.
pub(crate) trait Control: Send + Sync + 'static {
    /// The task's process-wide unique id.
    fn id(&self) -> u64;
    /// When the task times out, if it has a timeout.
    fn deadline(&self) -> Option<Instant>;
    /// Takes the task's work out of the cell, ready to run; `None` when it
    /// was already taken or dropped (the task ended).
    fn launch(self: Arc<Self>, counters: Arc<Counters>) -> Option<Work>;
    /// Delivers `Outcome::Exit(reason)` unless an outcome was already
    /// delivered, counting it in `counters` first; returns whether this call
    /// delivered.
    fn exit(&self, reason: ExitReason, counters: &Counters) -> bool;
    /// Delivers `Exit(Shutdown)`, uncounted, unless an outcome was already
    /// delivered: the queue dropped the task (its runtime went away).
    fn abandon(&self);
    /// Asks the running task to stop (aborts async work at its next poll,
    /// raises the flag a blocking closure can check).
    fn signal_cancel(&self);
    /// Whether cancellation was requested.
    fn cancel_requested(&self) -> bool;
    /// Ready once cancellation was requested (the runner selects on it to
    /// abort async work).
    fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// The task's phase (read and written under the queue's state lock).
    fn phase(&self) -> Phase;
    /// Sets the phase (under the queue's state lock).
    fn set_phase(&self, phase: Phase);
    /// Remembers the timer task so that finishing cancels it.
    fn set_timer(&self, timer: AbortHandle);
    /// Drops the reply without delivering: used only when an enqueue is
    /// refused, so a refused task leaves no trace (not even in a mailbox).
    fn discard(&self);
}

struct CellInner<T, W> {
    reply: Reply<T>,
    timer: Option<AbortHandle>,
    /// The work until the task starts (or ends without starting).
    work: Option<W>,
    /// The runner waiting for a cancellation.
    cancel_waker: Option<Waker>,
}

/// The typed cell of one task.
pub(crate) struct TaskCell<T, W> {
    inner: Mutex<CellInner<T, W>>,
    id: u64,
    deadline: Option<Instant>,
    cancelled: AtomicBool,
    phase: AtomicU8,
}

/// What a delivery hands over once the cell's lock is released.
enum Handover<T> {
    Wake(Option<Waker>),
    Post(
        Box<(mpsc::UnboundedSender<Delivery<T>>, TaskRef)>,
        Outcome<T>,
    ),
}

impl<T: Send + 'static, W: Launch<T>> TaskCell<T, W> {
    /// Creates a cell whose outcome a [`TaskHandle`](crate::TaskHandle) takes.
    pub(crate) fn for_handle(
        id: u64,
        queue_id: u64,
        deadline: Option<Instant>,
        work: W,
    ) -> (Arc<Self>, TaskRef) {
        Self::build(id, queue_id, deadline, work, |_| Reply::Awaited(None))
    }

    /// Creates a cell whose outcome is posted to a mailbox.
    pub(crate) fn for_mailbox(
        id: u64,
        queue_id: u64,
        deadline: Option<Instant>,
        work: W,
        sender: mpsc::UnboundedSender<Delivery<T>>,
    ) -> (Arc<Self>, TaskRef) {
        Self::build(id, queue_id, deadline, work, |task_ref| {
            Reply::Mailbox(Box::new((sender, task_ref.clone())))
        })
    }

    fn build(
        id: u64,
        queue_id: u64,
        deadline: Option<Instant>,
        work: W,
        reply: impl FnOnce(&TaskRef) -> Reply<T>,
    ) -> (Arc<Self>, TaskRef) {
        let mut task_ref = None;
        let cell = Arc::new_cyclic(|weak: &Weak<Self>| {
            let control: Weak<dyn Control> = weak.clone();
            let this_ref = TaskRef {
                id,
                queue_id,
                control,
            };
            let reply = reply(&this_ref);
            task_ref = Some(this_ref);
            TaskCell {
                inner: Mutex::new(CellInner {
                    reply,
                    timer: None,
                    work: Some(work),
                    cancel_waker: None,
                }),
                id,
                deadline,
                cancelled: AtomicBool::new(false),
                phase: AtomicU8::new(Phase::Queued as u8),
            }
        });
        let task_ref = task_ref.expect("new_cyclic always runs its closure");
        (cell, task_ref)
    }
}

impl<T: Send + 'static, W: Launch<T>> TaskCell<T, W> {
    /// Delivers `outcome` unless one was already delivered; returns whether
    /// this call delivered. The winning delivery is counted in `counters`
    /// before the caller can see it, so a caller holding an outcome always
    /// finds it in the queue's stats. Cancels the timer of a task that
    /// finished first, and drops the work of a task that never started.
    pub(crate) fn deliver(&self, outcome: Outcome<T>, counters: &Counters) -> bool {
        let timed_out = matches!(outcome, Outcome::Exit(ExitReason::Timeout));
        let (handover, timer, work) = {
            let mut inner = self.inner.lock();
            let handover = match std::mem::replace(&mut inner.reply, Reply::Spent) {
                Reply::Awaited(waker) => {
                    counters.outcome(&outcome);
                    inner.reply = Reply::Ready(outcome);
                    Handover::Wake(waker)
                }
                Reply::Mailbox(mailbox) => {
                    counters.outcome(&outcome);
                    Handover::Post(mailbox, outcome)
                }
                other => {
                    inner.reply = other;
                    return false;
                }
            };
            (handover, inner.timer.take(), inner.work.take())
        };
        if let Some(timer) = timer {
            if !timed_out {
                timer.abort();
            }
        }
        drop(work);
        handover.send();
        true
    }
}

impl<T> Handover<T> {
    /// Wakes the waiting handle, or posts to the mailbox. A caller that has
    /// gone away is ignored (row 1.10).
    fn send(self) {
        match self {
            Handover::Wake(waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Handover::Post(mailbox, outcome) => {
                let (sender, task_ref) = *mailbox;
                let _ = sender.send((task_ref, outcome));
            }
        }
    }
}

impl<T: Send + 'static, W: Launch<T>> Sink<T> for TaskCell<T, W> {
    fn deliver(&self, outcome: Outcome<T>, counters: &Counters) -> bool {
        TaskCell::deliver(self, outcome, counters)
    }
}

impl<T: Send + 'static, W: Launch<T>> Outbox<T> for TaskCell<T, W> {
    fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut inner = self.inner.lock();
        match std::mem::replace(&mut inner.reply, Reply::Spent) {
            Reply::Ready(outcome) => Poll::Ready(outcome),
            Reply::Awaited(_) => {
                inner.reply = Reply::Awaited(Some(cx.waker().clone()));
                Poll::Pending
            }
            other => {
                inner.reply = other;
                Poll::Ready(Outcome::Exit(ExitReason::Shutdown))
            }
        }
    }

    fn try_outcome(&self) -> Option<Outcome<T>> {
        let mut inner = self.inner.lock();
        match std::mem::replace(&mut inner.reply, Reply::Spent) {
            Reply::Ready(outcome) => Some(outcome),
            awaited @ Reply::Awaited(_) => {
                inner.reply = awaited;
                None
            }
            other => {
                inner.reply = other;
                Some(Outcome::Exit(ExitReason::Shutdown))
            }
        }
    }
}

impl<T: Send + 'static, W: Launch<T>> Control for TaskCell<T, W> {
    fn id(&self) -> u64 {
        self.id
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn launch(self: Arc<Self>, counters: Arc<Counters>) -> Option<Work> {
        let work = self.inner.lock().work.take()?;
        let sink: Arc<dyn Sink<T>> = self.clone();
        Some(work.launch(sink, self, counters))
    }

    fn exit(&self, reason: ExitReason, counters: &Counters) -> bool {
        self.deliver(Outcome::Exit(reason), counters)
    }

    fn abandon(&self) {
        self.deliver(Outcome::Exit(ExitReason::Shutdown), &Counters::default());
    }

    fn signal_cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let waker = self.inner.lock().cancel_waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn cancel_requested(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.cancel_requested() {
            return Poll::Ready(());
        }
        let mut inner = self.inner.lock();
        // Checked again under the lock: `signal_cancel` raises the flag before
        // it takes the waker under this lock, so no signal is missed.
        if self.cancel_requested() {
            return Poll::Ready(());
        }
        inner.cancel_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Queued,
            1 => Phase::Running,
            _ => Phase::Done,
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn set_timer(&self, timer: AbortHandle) {
        let mut inner = self.inner.lock();
        if matches!(inner.reply, Reply::Awaited(_) | Reply::Mailbox(_)) {
            inner.timer = Some(timer);
        } else {
            timer.abort();
        }
    }

    fn discard(&self) {
        let (timer, work) = {
            let mut inner = self.inner.lock();
            inner.reply = Reply::Spent;
            (inner.timer.take(), inner.work.take())
        };
        if let Some(timer) = timer {
            timer.abort();
        }
        drop(work);
    }
}

impl<T, W> Drop for TaskCell<T, W> {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        if let Some(timer) = inner.timer.take() {
            timer.abort();
        }
        if let Reply::Mailbox(mailbox) = std::mem::replace(&mut inner.reply, Reply::Spent) {
            let (sender, task_ref) = *mailbox;
            let _ = sender.send((task_ref, Outcome::Exit(ExitReason::Shutdown)));
        }
    }
}

/// Handed to a blocking closure so it can notice that its task timed out or
/// was cancelled. A blocking closure cannot be killed; it should check
/// [`is_cancelled`](CancelToken::is_cancelled) at convenient points and return
/// early. Its concurrency slot stays taken until it really returns.
#[derive(Clone)]
pub struct CancelToken {
    pub(crate) control: Arc<dyn Control>,
}

impl CancelToken {
    /// `true` once the task's timeout fired, it was cancelled, or the queue is
    /// shutting down past its deadline. The caller already has its outcome.
    pub fn is_cancelled(&self) -> bool {
        self.control.cancel_requested()
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
