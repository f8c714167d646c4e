//! What the queue stores per task: a handle on its cell, whose work runs when
//! the task gets a slot.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::cell::{Control, Sink};
use crate::stats::Counters;
use crate::Outcome;

/// What running a task's work delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The task's value reached the caller.
    Value,
    /// The task produced an exit of its own (an unserialisable named result).
    Exit,
    /// Someone else (timeout, cancel) had already delivered an outcome.
    Nothing,
}

/// Delivers `outcome` to `sink` (counted in `counters`) and says what happened.
pub(crate) fn deliver_to<T: Send + 'static>(
    sink: &dyn Sink<T>,
    outcome: Outcome<T>,
    counters: &Counters,
) -> Delivered {
    let is_value = outcome.is_ok();
    match (sink.deliver(outcome, counters), is_value) {
        (false, _) => Delivered::Nothing,
        (true, true) => Delivered::Value,
        (true, false) => Delivered::Exit,
    }
}

/// The type-erased work of one started task; it delivers its own value.
pub(crate) enum Work {
    /// Async work, polled by a runner on the async workers.
    Async(Pin<Box<dyn Future<Output = Delivered> + Send>>),
    /// Blocking work, run on tokio's blocking pool.
    Blocking(Box<dyn FnOnce() -> Delivered + Send>),
}

/// One task as the queue holds it: its cell (id, deadline and work live
/// there, so a waiting task costs one pointer in the line). Dropping an entry
/// whose task has no outcome yet (the queue itself went away) delivers
/// `Exit(Shutdown)`, so every caller gets an outcome.
pub(crate) struct Entry {
    pub(crate) control: Arc<dyn Control>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.control.abandon();
    }
}
