//! Batches that name a run more than once.
//!
//! The contract: a batch write ([`Store::complete_many`](crate::Store::complete_many)) behaves as
//! its items written one after another. A run listed twice is therefore applied once, by its
//! first occurrence (whose result and `delete_on_success` count); every later occurrence is
//! rejected as a second write of the same run would be: [`RunWrite::Stale`] after an applied or
//! stale write, [`RunWrite::Cancelled`] while the job is cancelled under that run. Engines only
//! ever see each run once.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::RunId;
use crate::store::{CompleteParams, RunWrite};

/// Where each input item's outcome comes from, after [`first_occurrences`].
#[derive(Clone, Debug, Default)]
pub struct Repeats {
    /// Per input item: the index of its run's first occurrence among the unique items, and
    /// whether the item is a repeat.
    slots: Vec<(usize, bool)>,
    /// The repeated items, which are never written (but still validated by the caller).
    dropped: Vec<CompleteParams>,
}

/// Keeps the first occurrence of each run, in input order, and remembers where the others were.
pub fn first_occurrences(items: Vec<CompleteParams>) -> (Vec<CompleteParams>, Repeats) {
    let mut index: HashMap<RunId, usize> = HashMap::with_capacity(items.len());
    let mut unique = Vec::with_capacity(items.len());
    let mut slots = Vec::with_capacity(items.len());
    let mut dropped = Vec::new();
    for item in items {
        match index.get(&item.run) {
            Some(&first) => {
                slots.push((first, true));
                dropped.push(item);
            }
            None => {
                index.insert(item.run, unique.len());
                slots.push((unique.len(), false));
                unique.push(item);
            }
        }
    }
    (unique, Repeats { slots, dropped })
}

impl Repeats {
    /// The repeated items that were taken out: bad input in them must still be refused.
    pub fn dropped(&self) -> &[CompleteParams] {
        &self.dropped
    }

    /// The outcome of every input item, given the outcomes of the unique items in their order.
    pub fn outcomes(&self, unique: &[RunWrite]) -> Result<Vec<RunWrite>> {
        self.slots
            .iter()
            .map(|&(first, repeat)| {
                let outcome = unique.get(first).copied().ok_or_else(|| {
                    Error::Corrupt(format!(
                        "a batch write reported {} outcomes for more runs",
                        unique.len()
                    ))
                })?;
                Ok(match (repeat, outcome) {
                    (true, RunWrite::Applied) => RunWrite::Stale,
                    (_, outcome) => outcome,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::JobId;

    #[test]
    fn repeats_of_an_applied_run_are_stale_and_cancelled_stays_cancelled() {
        let (a, b) = (RunId::new(JobId(1), 1), RunId::new(JobId(2), 1));
        let items = vec![
            CompleteParams::new(a, json!(1)),
            CompleteParams::new(b, json!(2)),
            CompleteParams::new(a, json!(3)),
            CompleteParams::new(b, json!(4)),
        ];
        let (unique, repeats) = first_occurrences(items);
        assert_eq!(unique.len(), 2);
        assert_eq!(unique[0].result, json!(1));
        assert_eq!(repeats.dropped().len(), 2);
        use RunWrite::*;
        assert_eq!(
            repeats.outcomes(&[Applied, Cancelled]).unwrap(),
            [Applied, Cancelled, Stale, Cancelled]
        );
        assert!(repeats.outcomes(&[Applied]).is_err());
    }
}
