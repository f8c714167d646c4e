//! Caller refs: the identity of one enqueue call.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;

use crate::cell::Control;

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// Allocates a process-wide unique task id.
pub(crate) fn next_task_id() -> u64 {
    NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed)
}

/// The caller's reference to one enqueued task.
///
/// A ref is unique per enqueue call (even when the same function is enqueued
/// twice) and is decoupled from the running task: holding it never keeps the
/// task's machinery alive and gives no access to the task itself. Use it to
/// [`cancel`](crate::Queue::cancel) the task or to pick its outcome out of a
/// [`Mailbox`](crate::Mailbox). Refs compare and hash by identity.
#[derive(Clone)]
pub struct TaskRef {
    pub(crate) id: u64,
    pub(crate) queue_id: u64,
    pub(crate) control: Weak<dyn Control>,
}

impl TaskRef {
    /// The process-wide unique id of this enqueue call.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for TaskRef {}

impl Hash for TaskRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskRef(#{})", self.id)
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.id)
    }
}
