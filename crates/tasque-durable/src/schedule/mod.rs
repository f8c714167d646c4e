//! Periodic jobs: [`Schedule`]s, their ticks, and the [`ScheduleEngine`] engines implement.
//!
//! # Contract
//!
//! - **Exactly one job per tick**, across any number of processes: each tick is handled by
//!   [`ScheduleEngine::fire`], one transaction that compare-and-swaps the schedule's last tick
//!   and inserts the job with the idempotency key `cron:<id>:<tick RFC 3339 UTC>` through the
//!   engine's ordinary spawn path. A process that lost the race writes nothing; a manual
//!   trigger of the same tick lands on the same job. The job's headers carry
//!   `tasque.cron.id` and `tasque.cron.tick`.
//! - **Ticks** are pure functions of an instant ([`CompiledSchedule::next_after`]): every
//!   process computes the same ones, and tests drive the clock by passing instants.
//!   `every` schedules tick on multiples of their interval since the Unix epoch; cron
//!   expressions (parsed by the `croner` crate, optional seconds field) are read in an IANA
//!   zone (`chrono-tz`), with defined daylight-saving behaviour (see
//!   [`CompiledSchedule::next_after`]).
//! - **Missed ticks** (downtime, a leader change) follow [`MissedTicks`]: `coalesce` (one
//!   job, the default), `catch_up(n)` or `skip`; see [`plan`]. A schedule registered for the
//!   first time never fires ticks before its registration.
//! - **Overlap**: [`Overlap::SkipIfRunning`] passes a tick over while the previous fire's job
//!   is unfinished.
//! - **Pause** stops fires (ticks during the pause are then missed ticks); a manual trigger
//!   still spawns.

mod compiled;
mod election;
mod engine;
mod pass;
mod plan;
mod spec;

pub use compiled::{
    compile_all, tick_key, CompiledSchedule, ScheduleError, HEADER_ID, HEADER_TICK,
};
pub use election::{seat, Election, LeaseElection, LockSession, SessionElection};
pub use engine::{Fire, FireOutcome, ScheduleEngine, ScheduleRecord};
pub use pass::{fire_due, PassReport, FIRE_BATCH, FIRE_CONCURRENCY};
pub use plan::{plan, Step, SKIP_GRACE};
pub use spec::{MissedTicks, Overlap, Schedule};

/// The name of the leader lease that maintenance services run under.
pub const LEADER_LEASE: &str = "leader";
