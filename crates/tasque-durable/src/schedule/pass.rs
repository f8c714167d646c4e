//! One scheduler pass: fire every due tick of every stored schedule, given the engine's clock.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::engine::{Fire, FireOutcome, ScheduleEngine};
use super::plan::{plan, Step};
use super::spec::Overlap;
use super::{CompiledSchedule, ScheduleError};
use crate::error::Result;

/// What one [`fire_due`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Jobs spawned (ticks fired whose job did not exist yet).
    pub created: u64,
    /// Ticks fired whose job existed already (a manual trigger of the same tick).
    pub existing: u64,
    /// Ticks passed over by the missed-tick policy.
    pub passed: u64,
    /// Ticks passed over because the previous job was still unfinished.
    pub skipped_running: u64,
    /// Ticks another process handled first.
    pub lost: u64,
    /// Stored schedules that no longer compile (e.g. a zone this build does not know), with
    /// the reason; they are left alone.
    pub invalid: Vec<ScheduleError>,
}

/// How many batches of fires one pass sends at once.
pub const FIRE_CONCURRENCY: usize = 4;

/// How many fires (of different schedules) one [`ScheduleEngine::fire_many`] call carries.
pub const FIRE_BATCH: usize = 50;

/// One schedule's steps in a pass, and the last tick it advanced to.
struct Chain {
    schedule: CompiledSchedule,
    steps: Vec<Step>,
    expected: Option<DateTime<Utc>>,
    lost: bool,
}

impl Chain {
    fn fire(&self, step: Step) -> Fire {
        let spawn = match step {
            Step::Fire(tick) => Some(self.schedule.spawn_for(tick)),
            Step::Pass(_) => None,
        };
        Fire {
            id: self.schedule.id().to_owned(),
            expected: self.expected,
            tick: step.tick(),
            spawn,
            skip_if_running: self.schedule.spec().overlap == Overlap::SkipIfRunning,
        }
    }
}

/// Fires every due tick of every unpaused stored schedule, as of `now` (the engine's clock; a
/// test may pass any instant). Each tick is one compare-and-swap from the last tick this pass
/// read (see [`ScheduleEngine::fire`]), so any number of processes may run passes at once and
/// each tick still fires once: a schedule whose swap is lost is left for this pass.
///
/// Rounds: the first due step of every schedule, then the second..., each round in batches of
/// [`FIRE_BATCH`] fires ([`ScheduleEngine::fire_many`]), [`FIRE_CONCURRENCY`] batches at once.
pub async fn fire_due(engine: &dyn ScheduleEngine, now: DateTime<Utc>) -> Result<PassReport> {
    let mut report = PassReport::default();
    let mut chains = Vec::new();
    for record in engine.list_schedules().await? {
        if record.paused {
            continue;
        }
        match record.schedule.compile() {
            Ok(schedule) => {
                let steps = plan(&schedule, record.last_tick, record.registered_at, now);
                if !steps.is_empty() {
                    chains.push(Chain {
                        schedule,
                        steps,
                        expected: record.last_tick,
                        lost: false,
                    });
                }
            }
            Err(error) => report.invalid.push(error),
        }
    }
    let rounds = chains.iter().map(|c| c.steps.len()).max().unwrap_or(0);
    for round in 0..rounds {
        let due: Vec<usize> = (0..chains.len())
            .filter(|&i| !chains[i].lost && round < chains[i].steps.len())
            .collect();
        let batches: Vec<Vec<usize>> = due.chunks(FIRE_BATCH).map(<[usize]>::to_vec).collect();
        let calls = batches.into_iter().map(|members| {
            let fires: Vec<Fire> = members
                .iter()
                .map(|&i| chains[i].fire(chains[i].steps[round]))
                .collect();
            async move { engine.fire_many(fires).await.map(|o| (members, o)) }
        });
        let mut calls = stream::iter(calls).buffer_unordered(FIRE_CONCURRENCY);
        let mut results = Vec::new();
        while let Some(result) = calls.next().await {
            results.push(result?);
        }
        drop(calls);
        for (members, outcomes) in results {
            for (i, outcome) in members.into_iter().zip(outcomes) {
                let chain = &mut chains[i];
                report.count(&outcome);
                if outcome == FireOutcome::Lost {
                    chain.lost = true;
                } else {
                    chain.expected = Some(chain.steps[round].tick());
                }
            }
        }
    }
    Ok(report)
}

impl PassReport {
    fn count(&mut self, outcome: &FireOutcome) {
        match outcome {
            FireOutcome::Fired(spawned) if spawned.created => self.created += 1,
            FireOutcome::Fired(_) => self.existing += 1,
            FireOutcome::Passed => self.passed += 1,
            FireOutcome::SkippedRunning => self.skipped_running += 1,
            FireOutcome::Lost => self.lost += 1,
        }
    }
}
