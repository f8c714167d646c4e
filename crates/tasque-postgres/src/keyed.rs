//! Which queue sets a store claims from with the windowed statement.
//!
//! A claim walks the claim index in order only when its pick tests no per-key window (see
//! `NO_KEYED_JOBS` in `queries.rs`), so a store claims with the unkeyed statement, which
//! takes nothing when one of the claimed queues holds an unfinished keyed job, and runs the
//! windowed statement after it when the probe that follows a short claim finds keyed jobs. A queue set found
//! keyed is claimed with the windowed statement at once from then on, until a probe finds its
//! keyed jobs gone: a busy keyed queue costs one statement per claim, as before.
//!
//! What is remembered only chooses between two correct statements: the windowed one is
//! correct for every queue, and the unkeyed one takes nothing from a keyed queue.

use std::collections::HashSet;
use std::sync::Mutex;

/// The queue sets (as claimed: the same names in the same order) that held an unfinished
/// keyed job at their last probe.
#[derive(Debug, Default)]
pub(crate) struct KeyedQueueSets {
    sets: Mutex<HashSet<Vec<String>>>,
}

impl KeyedQueueSets {
    /// Whether `queues` held a keyed job at their last probe.
    pub(crate) fn contains(&self, queues: &[String]) -> bool {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        !sets.is_empty() && sets.contains(queues)
    }

    /// Records what the last probe of `queues` found.
    pub(crate) fn set(&self, queues: &[String], keyed: bool) {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if keyed {
            if !sets.contains(queues) {
                sets.insert(queues.to_vec());
            }
        } else {
            sets.remove(queues);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_sets_and_clears_one_queue_set() {
        let sets = KeyedQueueSets::default();
        let a = vec!["a".to_owned()];
        let ab = vec!["a".to_owned(), "b".to_owned()];
        assert!(!sets.contains(&a));
        sets.set(&ab, true);
        assert!(sets.contains(&ab));
        assert!(!sets.contains(&a));
        sets.set(&ab, true);
        sets.set(&ab, false);
        assert!(!sets.contains(&ab));
    }
}
