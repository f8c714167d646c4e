//! The per-task cell: where exactly one outcome is delivered.
//!
//! A [`TaskCell`] is shared by whoever may finish a task: the runner (value or
//! panic), the timeout timer, a cancel call, shutdown and restart. Delivery
//! *takes* the reply channel out of the cell under a lock, so the first
//! finisher delivers and every later one is a no-op: never two outcomes. If a
//! cell is dropped before anything was delivered (the runtime itself went
//! away), its `Drop` delivers [`ExitReason::Shutdown`]: never none.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;

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

/// Where the outcome goes.
pub(crate) enum Reply<T> {
    /// A [`TaskHandle`](crate::TaskHandle) awaits it.
    Handle(oneshot::Sender<Outcome<T>>),
    /// It is posted to a mailbox, tagged with the task's ref.
    Mailbox(mpsc::UnboundedSender<Delivery<T>>, TaskRef),
}

impl<T> Reply<T> {
    /// Sends the outcome. A caller that has gone away is ignored (row 1.10).
    fn send(self, outcome: Outcome<T>) {
        match self {
            Reply::Handle(sender) => {
                let _ = sender.send(outcome);
            }
            Reply::Mailbox(sender, task_ref) => {
                let _ = sender.send((task_ref, outcome));
            }
        }
    }
}

/// The type-erased face of a task cell that the queue machinery uses.
pub(crate) trait Control: Send + Sync + 'static {
    /// Delivers `Outcome::Exit(reason)` unless an outcome was already
    /// delivered, counting it in `counters` first; returns whether this call
    /// delivered.
    fn exit(&self, reason: ExitReason, counters: &Counters) -> bool;
    /// Asks the running task to stop (aborts async work at its next poll,
    /// raises the flag a blocking closure can check).
    fn signal_cancel(&self);
    /// Whether cancellation was requested.
    fn cancel_requested(&self) -> bool;
    /// The notification the runner selects on to abort async work.
    fn cancel_notify(&self) -> &Notify;
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

struct CellInner<T> {
    reply: Option<Reply<T>>,
    timer: Option<AbortHandle>,
}

/// The typed cell of one task.
pub(crate) struct TaskCell<T> {
    inner: Mutex<CellInner<T>>,
    cancelled: AtomicBool,
    notify: Notify,
    phase: AtomicU8,
}

impl<T: Send + 'static> TaskCell<T> {
    /// Creates a cell whose outcome is sent to a [`TaskHandle`](crate::TaskHandle).
    pub(crate) fn for_handle(
        id: u64,
        queue_id: u64,
        sender: oneshot::Sender<Outcome<T>>,
    ) -> (Arc<Self>, TaskRef) {
        Self::build(id, queue_id, |_| Reply::Handle(sender))
    }

    /// Creates a cell whose outcome is posted to a mailbox.
    pub(crate) fn for_mailbox(
        id: u64,
        queue_id: u64,
        sender: mpsc::UnboundedSender<Delivery<T>>,
    ) -> (Arc<Self>, TaskRef) {
        Self::build(id, queue_id, |task_ref| {
            Reply::Mailbox(sender, task_ref.clone())
        })
    }

    fn build(
        id: u64,
        queue_id: u64,
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
                    reply: Some(reply),
                    timer: None,
                }),
                cancelled: AtomicBool::new(false),
                notify: Notify::new(),
                phase: AtomicU8::new(Phase::Queued as u8),
            }
        });
        let task_ref = task_ref.expect("new_cyclic always runs its closure");
        (cell, task_ref)
    }

    /// Delivers `outcome` unless one was already delivered; returns whether
    /// this call delivered. The winning delivery is counted in `counters`
    /// before the caller can see it, so a caller holding an outcome always
    /// finds it in the queue's stats. Cancels the timer of a task that
    /// finished first.
    pub(crate) fn deliver(&self, outcome: Outcome<T>, counters: &Counters) -> bool {
        let (reply, timer) = {
            let mut inner = self.inner.lock();
            (inner.reply.take(), inner.timer.take())
        };
        let Some(reply) = reply else {
            return false;
        };
        counters.outcome(&outcome);
        if let Some(timer) = timer {
            if !matches!(outcome, Outcome::Exit(ExitReason::Timeout)) {
                timer.abort();
            }
        }
        reply.send(outcome);
        true
    }
}

impl<T: Send + 'static> Control for TaskCell<T> {
    fn exit(&self, reason: ExitReason, counters: &Counters) -> bool {
        self.deliver(Outcome::Exit(reason), counters)
    }

    fn signal_cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn cancel_requested(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn cancel_notify(&self) -> &Notify {
        &self.notify
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
        if inner.reply.is_some() {
            inner.timer = Some(timer);
        } else {
            timer.abort();
        }
    }

    fn discard(&self) {
        let mut inner = self.inner.lock();
        inner.reply = None;
        if let Some(timer) = inner.timer.take() {
            timer.abort();
        }
    }
}

impl<T> Drop for TaskCell<T> {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        if let Some(timer) = inner.timer.take() {
            timer.abort();
        }
        if let Some(reply) = inner.reply.take() {
            reply.send(Outcome::Exit(ExitReason::Shutdown));
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
