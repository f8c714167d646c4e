//! One scheduler pass: fire every due tick of every stored schedule, given the engine's clock.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::engine::{Fire, FireOutcome, ScheduleEngine, ScheduleRecord};
use super::plan::{plan, Step};
use super::spec::Overlap;
use super::ScheduleError;
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

/// How many schedules one pass fires at once (each schedule's ticks stay in order).
pub const FIRE_CONCURRENCY: usize = 4;

/// Fires every due tick of every unpaused stored schedule, as of `now` (the engine's clock; a
/// test may pass any instant), up to [`FIRE_CONCURRENCY`] schedules at once. Each tick is one
/// [`ScheduleEngine::fire`] whose compare-and-swap starts from the last tick this pass read,
/// so any number of processes may run passes at once and each tick still fires once: a
/// process that loses a race stops working on that schedule for this pass.
pub async fn fire_due(engine: &dyn ScheduleEngine, now: DateTime<Utc>) -> Result<PassReport> {
    let records = engine.list_schedules().await?;
    let passes: Vec<_> = records
        .iter()
        .filter(|r| !r.paused)
        .map(|record| fire_one(engine, record, now))
        .collect();
    let mut passes = stream::iter(passes).buffer_unordered(FIRE_CONCURRENCY);
    let mut total = PassReport::default();
    while let Some(report) = passes.next().await {
        total.merge(report?);
    }
    Ok(total)
}

/// Fires the due ticks of one schedule, reporting on its own.
async fn fire_one(
    engine: &dyn ScheduleEngine,
    record: &ScheduleRecord,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let mut report = PassReport::default();
    fire_record(engine, record, now, &mut report).await?;
    Ok(report)
}

impl PassReport {
    fn merge(&mut self, other: PassReport) {
        self.created += other.created;
        self.existing += other.existing;
        self.passed += other.passed;
        self.skipped_running += other.skipped_running;
        self.lost += other.lost;
        self.invalid.extend(other.invalid);
    }
}

/// Fires the due ticks of one schedule.
async fn fire_record(
    engine: &dyn ScheduleEngine,
    record: &ScheduleRecord,
    now: DateTime<Utc>,
    report: &mut PassReport,
) -> Result<()> {
    let compiled = match record.schedule.compile() {
        Ok(compiled) => compiled,
        Err(error) => {
            report.invalid.push(error);
            return Ok(());
        }
    };
    let mut expected = record.last_tick;
    for step in plan(&compiled, record.last_tick, record.registered_at, now) {
        let spawn = match step {
            Step::Fire(tick) => Some(compiled.spawn_for(tick)),
            Step::Pass(_) => None,
        };
        let outcome = engine
            .fire(Fire {
                id: compiled.id().to_owned(),
                expected,
                tick: step.tick(),
                spawn,
                skip_if_running: compiled.spec().overlap == Overlap::SkipIfRunning,
            })
            .await?;
        match outcome {
            FireOutcome::Fired(spawned) if spawned.created => report.created += 1,
            FireOutcome::Fired(_) => report.existing += 1,
            FireOutcome::Passed => report.passed += 1,
            FireOutcome::SkippedRunning => report.skipped_running += 1,
            FireOutcome::Lost => {
                report.lost += 1;
                return Ok(());
            }
        }
        expected = Some(step.tick());
    }
    Ok(())
}
