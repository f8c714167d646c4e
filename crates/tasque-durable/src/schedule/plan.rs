//! The missed-tick policies as a pure function: which ticks to fire (and which to pass over)
//! given the last tick handled and the engine's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::compiled::CompiledSchedule;
use super::spec::MissedTicks;

/// Under [`MissedTicks::Skip`], how late a tick may be and still fire.
pub const SKIP_GRACE: Duration = Duration::from_secs(5);

/// One step of a plan, applied in order, each a compare-and-swap of the schedule's last tick.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Spawn the tick's job and advance the last tick to it.
    Fire(DateTime<Utc>),
    /// Advance the last tick to it without a job (ticks the policy drops).
    Pass(DateTime<Utc>),
}

impl Step {
    /// The tick the step advances to.
    pub fn tick(&self) -> DateTime<Utc> {
        match *self {
            Step::Fire(t) | Step::Pass(t) => t,
        }
    }
}

/// What to do now for a schedule whose last handled tick is `last` (or that was registered at
/// `registered`, if it never fired), at engine time `now`:
///
/// - no tick in `(last, now]`: nothing;
/// - [`MissedTicks::Coalesce`]: fire the latest due tick (the older ones are passed over by it);
/// - [`MissedTicks::CatchUp`]`(n)`: fire the latest `n` due ticks, oldest first;
/// - [`MissedTicks::Skip`]: fire the latest due tick if it is at most [`SKIP_GRACE`] late,
///   otherwise pass over it.
pub fn plan(
    schedule: &CompiledSchedule,
    last: Option<DateTime<Utc>>,
    registered: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Step> {
    let after = last.unwrap_or(registered);
    let policy = schedule.spec().missed;
    let keep = match policy {
        MissedTicks::CatchUp(n) => usize::try_from(n.max(1)).unwrap_or(usize::MAX),
        MissedTicks::Coalesce | MissedTicks::Skip => 1,
    };
    let due = schedule.ticks_between(after, now, keep);
    match policy {
        MissedTicks::Coalesce | MissedTicks::CatchUp(_) => {
            due.into_iter().map(Step::Fire).collect()
        }
        MissedTicks::Skip => due
            .into_iter()
            .map(|tick| {
                let late = (now - tick).to_std().unwrap_or_default();
                if late <= SKIP_GRACE {
                    Step::Fire(tick)
                } else {
                    Step::Pass(tick)
                }
            })
            .collect(),
    }
}
