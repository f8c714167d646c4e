//! The waiting line: FIFO within a priority, lower priority values first.

use std::collections::{BTreeMap, VecDeque};

use crate::entry::Entry;

/// The priority used when none is given; its line is kept allocated.
const DEFAULT_PRIORITY: i32 = 0;

/// Tasks waiting for a slot. May hold tombstones (tasks that timed out or were
/// cancelled while waiting); the dispatcher skips them.
#[derive(Default)]
pub(crate) struct Waiting {
    levels: BTreeMap<i32, VecDeque<Entry>>,
}

impl Waiting {
    /// Appends `entry` to the line of `priority`.
    pub(crate) fn push(&mut self, priority: i32, entry: Entry) {
        self.levels.entry(priority).or_default().push_back(entry);
    }

    /// Takes the oldest entry of the most urgent (lowest) priority.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        loop {
            let mut level = self.levels.first_entry()?;
            if let Some(entry) = level.get_mut().pop_front() {
                if level.get().is_empty() && *level.key() != DEFAULT_PRIORITY {
                    level.remove();
                }
                return Some(entry);
            }
            level.remove();
        }
    }

    /// Whether no entry (live or tombstone) is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.levels.values().all(VecDeque::is_empty)
    }

    /// Removes every entry, in dispatch order.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        let levels = std::mem::take(&mut self.levels);
        levels.into_values().flatten().collect()
    }
}
