//! Runners: the tokio tasks that run queued work, one slot each.
//!
//! A runner is spawned when a task gets a free slot. After its task ends, the
//! runner frees the slot and, if work is waiting, takes the next task itself
//! instead of spawning a new runner: a busy queue pays for one spawn per
//! slot, not per task. Each task runs isolated: panics are caught and become
//! `Exit(Panicked)`, and a cancellation (timeout, cancel, shutdown) aborts
//! async work at once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tracing::Instrument;

use crate::entry::{Delivered, Entry, Work};
use crate::shared::Shared;
use crate::supervise::panic_message;
use crate::task_scope::{Scope, Scoped};
use crate::ExitReason;

/// Frees the runner's slot if the runner stops abnormally: on a panic in the
/// machinery it restarts the queue clean (row 1.12); if the runner is
/// dropped (the runtime shuts down) it just frees the slot.
struct SlotGuard<'a> {
    shared: &'a Shared,
    key: Option<usize>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        if std::thread::panicking() {
            self.shared.restart(Some(key));
        } else {
            self.shared.abandon(key);
        }
    }
}

/// Runs `entry` in slot `key`, then whatever the queue hands over next.
pub(crate) async fn run(shared: Arc<Shared>, mut entry: Entry, mut key: usize) {
    let mut guard = SlotGuard {
        shared: &shared,
        key: Some(key),
    };
    loop {
        run_one(&shared, entry).await;
        if shared.take_fault() {
            panic!(
                "tasque: injected machinery fault in queue {:?}",
                shared.name
            );
        }
        // Let other tasks on this worker thread run between queued tasks. This
        // happens before taking the next task, so a task taken from the line
        // is always polled at once (dispatch order is start order).
        tokio::task::coop::consume_budget().await;
        match shared.finish_and_next(key) {
            Some((next, next_key)) => {
                entry = next;
                key = next_key;
                guard.key = Some(key);
            }
            None => {
                guard.key = None;
                return;
            }
        }
    }
}

/// Runs one task to its end and counts how it ended. The task's work is
/// taken out of its cell (and boxed) here, when it starts; a task that ended
/// before its runner got to it has none left, and nothing runs.
async fn run_one(shared: &Shared, entry: Entry) {
    let control = &entry.control;
    let Some(work) = Arc::clone(control).launch(Arc::clone(&shared.counters)) else {
        return;
    };
    let span = tracing::debug_span!("tasque.task", queue = %shared.name, task.id = control.id());
    let result = match work {
        Work::Async(future) => {
            let cancelled = std::future::poll_fn(|cx| control.poll_cancelled(cx));
            tokio::select! {
                biased;
                _ = cancelled => return,
                result = AssertUnwindSafe(Scoped(future)).catch_unwind().instrument(span) => {
                    result.map_err(panic_message)
                }
            }
        }
        Work::Blocking(work) => {
            let joined = shared
                .runtime
                .spawn_blocking(move || {
                    let _scope = Scope::enter();
                    span.in_scope(work)
                })
                .await;
            joined.map_err(|error| match error.try_into_panic() {
                Ok(payload) => panic_message(payload),
                Err(_) => "blocking task was aborted".to_owned(),
            })
        }
    };
    match result {
        // The work counted its own delivery.
        Ok(Delivered::Value | Delivered::Exit | Delivered::Nothing) => {}
        Err(message) => {
            shared.exit(&**control, ExitReason::Panicked(message));
        }
    }
}
