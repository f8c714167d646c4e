//! Naming queues: a process-wide registry and pluggable custom ones.
//!
//! A queue built with [`QueueBuilder::register`](crate::QueueBuilder::register)
//! is entered in the process-wide [`global_names`] registry and can be found
//! again with [`Queue::lookup`](crate::Queue::lookup). Any other
//! [`NameRegistry`] can be plugged in with
//! [`QueueBuilder::register_in`](crate::QueueBuilder::register_in) (the
//! analogue of `{:via, module, term}`). Cluster-wide names are the durable
//! queues of the durable layer. A queue leaves its registry when it shuts down.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::{Error, Queue};

/// Somewhere queues can be registered by name and looked up.
///
/// Implementations must refuse a name that is already taken with
/// [`Error::NameTaken`].
pub trait NameRegistry: Send + Sync + 'static {
    /// Registers `queue` under `name`, or fails with [`Error::NameTaken`].
    fn register(&self, name: &str, queue: Queue) -> Result<(), Error>;
    /// Finds the queue registered under `name`.
    fn lookup(&self, name: &str) -> Option<Queue>;
    /// Removes `name`, if it is registered.
    fn unregister(&self, name: &str);
}

/// A simple in-memory [`NameRegistry`]; the process-wide one is of this type,
/// and you can create private ones (for tests, or one per subsystem).
#[derive(Default)]
pub struct LocalNames {
    queues: Mutex<HashMap<String, Queue>>,
}

impl LocalNames {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.queues.lock().keys().cloned().collect();
        names.sort();
        names
    }
}

impl NameRegistry for LocalNames {
    fn register(&self, name: &str, queue: Queue) -> Result<(), Error> {
        let mut queues = self.queues.lock();
        if queues.contains_key(name) {
            return Err(Error::NameTaken {
                name: name.to_owned(),
            });
        }
        queues.insert(name.to_owned(), queue);
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<Queue> {
        self.queues.lock().get(name).cloned()
    }

    fn unregister(&self, name: &str) {
        self.queues.lock().remove(name);
    }
}

/// The process-wide registry of queue names.
pub fn global_names() -> Arc<LocalNames> {
    static GLOBAL: OnceLock<Arc<LocalNames>> = OnceLock::new();
    Arc::clone(GLOBAL.get_or_init(|| Arc::new(LocalNames::new())))
}
