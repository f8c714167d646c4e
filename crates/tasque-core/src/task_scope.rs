//! Which code a thread is running: a queued task, or something else.
//!
//! A panic hook runs on the panicking thread before anything catches the panic, and cannot see
//! who will. [`in_queued_task`] tells it: true while a runner polls (or, for blocking work,
//! calls) a task of a [`Queue`](crate::Queue), whose panic the queue catches and reports as the
//! task's `Exit(Panicked)`. Any other panic (a service loop, the caller's own code) is not a
//! task's, and a hook should say so.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running a task of a [`Queue`](crate::Queue) right now: inside a
/// panic hook, true means the panic is a task's (a job handler's), caught and reported by the
/// queue as the task's outcome.
///
/// ```
/// assert!(!tasque_core::in_queued_task());
/// ```
pub fn in_queued_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// Marks the thread as running a task until dropped (also when a panic unwinds through it).
pub(crate) struct Scope {
    before: bool,
}

impl Scope {
    /// Enters a task's scope.
    pub(crate) fn enter() -> Self {
        Scope {
            before: IN_TASK.with(|flag| flag.replace(true)),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let before = self.before;
        IN_TASK.with(|flag| flag.set(before));
    }
}

/// A task's future, polled inside a [`Scope`].
pub(crate) struct Scoped<F>(pub(crate) F);

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = Scope::enter();
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_marks_the_thread_and_restores_it_even_on_panic() {
        assert!(!in_queued_task());
        {
            let _outer = Scope::enter();
            assert!(in_queued_task());
            let caught = std::panic::catch_unwind(|| {
                let _inner = Scope::enter();
                panic!("boom");
            });
            assert!(caught.is_err());
            assert!(in_queued_task(), "the outer scope holds");
        }
        assert!(!in_queued_task());
    }

    #[tokio::test]
    async fn queued_async_and_blocking_tasks_run_in_scope_and_other_code_does_not() {
        let queue = crate::Queue::builder("scope-test").build().expect("queue");
        let in_async = queue.enqueue(async { in_queued_task() }).expect("enqueue");
        let in_blocking = queue
            .enqueue_blocking(crate::TaskOptions::new(), |_| in_queued_task())
            .expect("enqueue");
        assert_eq!(in_async.await, crate::Outcome::Ok(true));
        assert_eq!(in_blocking.await, crate::Outcome::Ok(true));
        let spawned = tokio::spawn(async { in_queued_task() })
            .await
            .expect("join");
        assert!(!spawned, "a plain tokio task is not a queued task");
        queue.shutdown(std::time::Duration::ZERO).await;
    }
}
