//! The runs this worker is working on, and why any of them was aborted.

use std::collections::HashMap;

use parking_lot::Mutex;
use tasque_core::TaskRef;
use tasque_durable::RunId;
use tokio::sync::Notify;

/// Why the worker stopped a run before its handler finished.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    /// The store says the job was cancelled: report nothing.
    Cancelled,
    /// The store says the lease was lost: report nothing (the run is stale).
    LeaseLost,
    /// Graceful shutdown ran out of time: give the job back.
    Released,
}

struct Entry {
    task: TaskRef,
    abort: Option<Abort>,
}

/// The in-flight table: run → its task in the in-process queue.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashMap<RunId, Entry>>,
    emptied: Notify,
}

impl InFlight {
    /// Records a run while `start` puts it in the in-process queue, so that
    /// the run is in the table before its outcome can possibly be reported.
    pub(crate) fn insert_with<T, E>(
        &self,
        run: RunId,
        start: impl FnOnce() -> Result<(TaskRef, T), E>,
    ) -> Result<T, E> {
        let mut runs = self.runs.lock();
        let (task, value) = start()?;
        runs.insert(run, Entry { task, abort: None });
        Ok(value)
    }

    /// Removes a finished run, returning why it was aborted, if it was.
    pub(crate) fn remove(&self, run: RunId) -> Option<Abort> {
        let mut runs = self.runs.lock();
        let abort = runs.remove(&run).and_then(|entry| entry.abort);
        if runs.is_empty() {
            self.emptied.notify_waiters();
        }
        abort
    }

    /// The runs whose leases should be renewed (not aborted).
    pub(crate) fn live_runs(&self) -> Vec<RunId> {
        let runs = self.runs.lock();
        runs.iter()
            .filter(|(_, e)| e.abort.is_none())
            .map(|(run, _)| *run)
            .collect()
    }

    /// Marks a run aborted and returns its task so the caller can cancel it.
    pub(crate) fn abort(&self, run: RunId, why: Abort) -> Option<TaskRef> {
        let mut runs = self.runs.lock();
        let entry = runs.get_mut(&run)?;
        if entry.abort.is_some() {
            return None;
        }
        entry.abort = Some(why);
        Some(entry.task.clone())
    }

    /// Marks every live run aborted with `why`; returns their tasks.
    pub(crate) fn abort_all(&self, why: Abort) -> Vec<TaskRef> {
        let mut runs = self.runs.lock();
        runs.values_mut()
            .filter(|entry| entry.abort.is_none())
            .map(|entry| {
                entry.abort = Some(why);
                entry.task.clone()
            })
            .collect()
    }

    /// How many runs are in flight.
    pub(crate) fn len(&self) -> usize {
        self.runs.lock().len()
    }

    /// Waits until the table is empty or `deadline` passes; true if empty.
    pub(crate) async fn wait_empty(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.len() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, emptied).await.is_err() {
                return self.len() == 0;
            }
        }
    }
}
