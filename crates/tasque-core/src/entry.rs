//! What the queue stores per task: its control, its work and its deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::Instant;

use crate::cell::{Control, TaskCell};
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

/// Delivers `outcome` to `cell` (counted in `counters`) and says what happened.
pub(crate) fn deliver_to<T: Send + 'static>(
    cell: &TaskCell<T>,
    outcome: Outcome<T>,
    counters: &Counters,
) -> Delivered {
    let is_value = outcome.is_ok();
    match (cell.deliver(outcome, counters), is_value) {
        (false, _) => Delivered::Nothing,
        (true, true) => Delivered::Value,
        (true, false) => Delivered::Exit,
    }
}

/// The type-erased work of one task; it delivers its own value.
pub(crate) enum Work {
    /// Async work, polled by a runner on the async workers.
    Async(Pin<Box<dyn Future<Output = Delivered> + Send>>),
    /// Blocking work, run on tokio's blocking pool.
    Blocking(Box<dyn FnOnce() -> Delivered + Send>),
}

/// One task as the queue holds it.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) priority: i32,
    pub(crate) deadline: Option<Instant>,
    pub(crate) control: Arc<dyn Control>,
    pub(crate) work: Work,
}
