//! [`ScheduleEngine`]: what an engine stores for periodic jobs and leader election.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::election::Election;
use super::spec::Schedule;
use crate::error::Result;
use crate::model::{JobId, Spawn, SpawnResult};

/// A schedule as stored, with its firing state.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRecord {
    /// The definition last registered under this id.
    pub schedule: Schedule,
    /// When the id was first registered (engine clock): ticks before it never fire.
    pub registered_at: DateTime<Utc>,
    /// The last tick handled (fired or passed over by a policy); `None` before the first.
    pub last_tick: Option<DateTime<Utc>>,
    /// When the last job was fired (engine clock).
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The job of the last fire.
    pub last_job: Option<JobId>,
    /// Paused schedules are not fired (a manual trigger still works).
    pub paused: bool,
}

/// One tick to handle: the parameters of [`ScheduleEngine::fire`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fire {
    /// The schedule.
    pub id: String,
    /// The last tick the caller saw (compare-and-swap): if the stored one differs, someone
    /// else handled it and nothing is written.
    pub expected: Option<DateTime<Utc>>,
    /// The tick to advance to.
    pub tick: DateTime<Utc>,
    /// The job to spawn (through the engine's ordinary spawn path, so its idempotency key
    /// applies); `None` to pass the tick over without a job.
    pub spawn: Option<Spawn>,
    /// Pass the tick over (no job) if the previous fire's job is still unfinished.
    pub skip_if_running: bool,
}

/// What [`ScheduleEngine::fire`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FireOutcome {
    /// The job was spawned (or, `created: false`, its idempotency key already named one: a
    /// manual trigger of the same tick) and the last tick advanced.
    Fired(SpawnResult),
    /// The last tick advanced without a job, as asked (`spawn: None`).
    Passed,
    /// The last tick advanced without a job: the previous fire's job is still unfinished.
    SkippedRunning,
    /// Nothing was written: the stored last tick was not `expected` (another process handled
    /// it), the schedule is paused, or it does not exist.
    Lost,
}

/// The storage of periodic jobs and of the leader lease, implemented by each engine and
/// reached through [`Store::schedules`](crate::Store::schedules).
///
/// Exactly once per tick: [`fire`](ScheduleEngine::fire) is one transaction that
/// compare-and-swaps the schedule's last tick and inserts the job, whose idempotency key
/// `cron:<id>:<tick>` also makes a manual trigger of the same tick land on the same job.
#[async_trait]
pub trait ScheduleEngine: Send + Sync {
    /// Registers schedules: inserts new ids (registered now, never fired, unpaused) and
    /// replaces the definition of known ones, keeping their last tick and pause flag.
    async fn upsert_schedules(&self, schedules: &[Schedule]) -> Result<()>;

    /// Every schedule of the namespace, by id.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>>;

    /// Handles one tick in one transaction (see [`Fire`] and [`FireOutcome`]).
    async fn fire(&self, fire: Fire) -> Result<FireOutcome>;

    /// Handles ticks of different schedules, outcomes in input order; each as
    /// [`fire`](ScheduleEngine::fire) would. The default fires them one by one; an engine may
    /// apply them in one transaction (one commit for many fires) as long as each fire's
    /// compare-and-swap and job still stand or fall together.
    async fn fire_many(&self, fires: Vec<Fire>) -> Result<Vec<FireOutcome>> {
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in fires {
            outcomes.push(self.fire(fire).await?);
        }
        Ok(outcomes)
    }

    /// Pauses or resumes a schedule. Returns false if no schedule has this id.
    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool>;

    /// Takes or renews the lease `name` for `holder` until `ttl` from now (engine clock).
    /// Returns false, changing nothing, while another holder's lease has not expired.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool>;

    /// Gives the lease up if `holder` has it, so another process can take it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Who holds the lease `name` now (`None` when nobody does or it expired). For the
    /// election `name`, the leader (every [`Election`] records its leader in the lease row).
    async fn lease_holder(&self, name: &str) -> Result<Option<String>>;

    /// A seat for `holder` in the election of the leader `name` held by a lock of the
    /// database server (PostgreSQL, MySQL); `None`, the default, to elect by lease row
    /// ([`LeaseElection`]). Callers use [`seat`](super::seat), which picks.
    fn server_election(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: Duration,
    ) -> Option<Box<dyn Election>> {
        None
    }
}
