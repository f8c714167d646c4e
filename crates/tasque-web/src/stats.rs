//! The overview's numbers, computed from a [`Snapshot`]: totals by state, throughput and
//! failures per minute over the last hour, and queue wait / run time percentiles per queue.

use std::collections::BTreeMap;

use serde::Serialize;
use tasque_durable::{JobState, StateCounts};

use crate::cache::{Snapshot, WINDOW_MS};

/// One minute of the last hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// How many minutes ago it started (59 is the oldest, 0 the current one).
    pub minutes_ago: u32,
    /// Jobs completed in it.
    pub completed: u64,
    /// Jobs that failed for good in it.
    pub failed: u64,
    /// Jobs cancelled in it.
    pub cancelled: u64,
}

/// Queue wait and run time percentiles of one queue (milliseconds), over the sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// The queue.
    pub queue: String,
    /// How many finished jobs were measured.
    pub samples: usize,
    /// Median queue wait.
    pub wait_p50_ms: i64,
    /// 95th percentile queue wait.
    pub wait_p95_ms: i64,
    /// Median run time.
    pub run_p50_ms: i64,
    /// 95th percentile run time.
    pub run_p95_ms: i64,
}

/// A queue as the overview and the queues page show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueRow {
    /// Its name.
    pub name: String,
    /// Paused queues are not claimed from.
    pub paused: bool,
    /// Its concurrency limit across all workers.
    pub limit: Option<u32>,
    /// Blocking mode.
    pub blocking: bool,
    /// In blocking mode, the job holding the queue.
    pub blocked_by: Option<i64>,
    /// Jobs by state.
    pub counts: StateCounts,
    /// The age of its oldest ready job (milliseconds), when it has one.
    pub oldest_ready_ms: Option<i64>,
}

/// Everything the overview shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    /// Jobs by state over every queue.
    pub totals: StateCounts,
    /// Every queue.
    pub queues: Vec<QueueRow>,
    /// The last hour, minute by minute, oldest first.
    pub minutes: Vec<Minute>,
    /// Percentiles per queue.
    pub timings: Vec<Timing>,
    /// How many finished jobs the charts and percentiles were drawn from.
    pub sampled: usize,
}

/// The queues of a snapshot as rows.
pub fn queue_rows(snapshot: &Snapshot) -> Vec<QueueRow> {
    snapshot
        .queues
        .iter()
        .map(|q| QueueRow {
            name: q.name.clone(),
            paused: q.paused,
            limit: q.concurrency_limit,
            blocking: q.blocking,
            blocked_by: q.blocked_by.map(|j| j.0),
            counts: q.counts,
            oldest_ready_ms: snapshot.oldest_ready_ms.get(&q.name).copied(),
        })
        .collect()
}

/// The overview of a snapshot.
pub fn overview(snapshot: &Snapshot) -> Overview {
    let mut totals = StateCounts::default();
    for queue in &snapshot.queues {
        for state in JobState::ALL {
            totals.add(state, queue.counts.get(state));
        }
    }
    let minutes_in_window = (WINDOW_MS / 60_000) as u32;
    let mut minutes: Vec<Minute> = (0..minutes_in_window)
        .rev()
        .map(|m| Minute {
            minutes_ago: m,
            ..Minute::default()
        })
        .collect();
    let mut per_queue: BTreeMap<&str, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for job in &snapshot.finished {
        let ago = u32::try_from(job.finished_ago_ms.max(0) / 60_000).unwrap_or(u32::MAX);
        if let Some(index) = minutes_in_window.checked_sub(ago + 1) {
            let minute = &mut minutes[index as usize];
            match job.state {
                JobState::Completed => minute.completed += 1,
                JobState::Failed => minute.failed += 1,
                _ => minute.cancelled += 1,
            }
        }
        if let (Some(wait), Some(run)) = (job.wait_ms, job.run_ms) {
            let entry = per_queue.entry(&job.queue).or_default();
            entry.0.push(wait.max(0));
            entry.1.push(run.max(0));
        }
    }
    let timings = per_queue
        .into_iter()
        .map(|(queue, (mut waits, mut runs))| {
            waits.sort_unstable();
            runs.sort_unstable();
            Timing {
                queue: queue.to_string(),
                samples: waits.len(),
                wait_p50_ms: percentile(&waits, 50),
                wait_p95_ms: percentile(&waits, 95),
                run_p50_ms: percentile(&runs, 50),
                run_p95_ms: percentile(&runs, 95),
            }
        })
        .collect();
    Overview {
        totals,
        queues: queue_rows(snapshot),
        minutes,
        timings,
        sampled: snapshot.finished.len(),
    }
}

/// The `p`th percentile (nearest rank) of sorted values; 0 for none.
pub fn percentile(sorted: &[i64], p: usize) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 95), 95);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 50), 0);
    }
}
