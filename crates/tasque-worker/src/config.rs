//! Worker settings: a validated builder with documented defaults.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::schedule::{compile_all, Schedule};
use tasque_durable::{PollOrder, Store};

use crate::{Error, Handlers, Worker};

/// Default number of jobs a worker runs at once.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// Default pause between claims when no job was ready.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Default lease: how long a claim lasts without a heartbeat.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default delay before a job with an unknown task name is offered again.
pub const DEFAULT_DEFER_UNKNOWN: Duration = Duration::from_secs(60);
/// Default time to live of the leader lease: a dead leader is replaced within about this long.
pub const DEFAULT_LEADER_LEASE: Duration = Duration::from_secs(5);
/// Default pause between the leader's scheduler passes.
pub const DEFAULT_SCHEDULER_INTERVAL: Duration = Duration::from_millis(200);
/// Default longest pause between the leader's sleeper wake-up passes.
pub const DEFAULT_WAKE_INTERVAL: Duration = Duration::from_millis(200);

/// Everything a running worker needs to know, validated.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) worker_id: String,
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) poll_limit: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) order: PollOrder,
    pub(crate) lease: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) rescue_interval: Duration,
    pub(crate) defer_unknown: Duration,
    pub(crate) delete_on_success: bool,
    pub(crate) completion_batch: usize,
    pub(crate) clean_after: Option<Duration>,
    pub(crate) leader_lease: Duration,
    pub(crate) scheduler_interval: Duration,
    pub(crate) wake_interval: Duration,
    pub(crate) schedules: Arc<Vec<Schedule>>,
}

/// Configures a [`Worker`]. Every value is checked by [`build`](WorkerBuilder::build).
///
/// | setting | default |
/// |---|---|
/// | queues | `["default"]` |
/// | concurrency | 10 |
/// | poll interval | 200 ms (idle workers look for jobs this often) |
/// | poll limit | the free slots (a claim never takes more jobs than free slots) |
/// | poll order | priority, then age |
/// | lease | 30 s; heartbeats every third of it |
/// | rescue interval | half the lease, between 50 ms and 30 s |
/// | unknown task names | deferred 60 s, no attempt counted |
/// | delete on success | off |
/// | cleaner | off (see [`clean_after`](WorkerBuilder::clean_after)) |
/// | leader lease | 5 s; every worker tries to take or renew it every fifth of that |
/// | scheduler interval | 200 ms (how often the leader looks for due ticks) |
/// | wake interval | 200 ms (the leader wakes sleepers when due, and looks at least this often) |
/// | schedules | none (see [`schedule`](WorkerBuilder::schedule)) |
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerBuilder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) handlers: Handlers,
    worker_id: Option<String>,
    queues: Vec<String>,
    concurrency: usize,
    poll_limit: Option<usize>,
    poll_interval: Duration,
    order: PollOrder,
    lease: Duration,
    heartbeat_interval: Option<Duration>,
    rescue_interval: Option<Duration>,
    defer_unknown: Duration,
    delete_on_success: bool,
    completion_batch: usize,
    clean_after: Option<Duration>,
    leader_lease: Duration,
    scheduler_interval: Duration,
    wake_interval: Duration,
    schedules: Vec<Schedule>,
}

impl WorkerBuilder {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        WorkerBuilder {
            store,
            handlers: Handlers::new(),
            worker_id: None,
            queues: vec!["default".to_owned()],
            concurrency: DEFAULT_CONCURRENCY,
            poll_limit: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            order: PollOrder::PriorityThenAge,
            lease: DEFAULT_LEASE,
            heartbeat_interval: None,
            rescue_interval: None,
            defer_unknown: DEFAULT_DEFER_UNKNOWN,
            delete_on_success: false,
            completion_batch: 1000,
            clean_after: None,
            leader_lease: DEFAULT_LEADER_LEASE,
            scheduler_interval: DEFAULT_SCHEDULER_INTERVAL,
            wake_interval: DEFAULT_WAKE_INTERVAL,
            schedules: Vec::new(),
        }
    }

    /// The handlers to run (see [`Handlers::learn`]); they can still be
    /// changed through [`Worker::handlers`] while the worker runs.
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        self.handlers = handlers;
        self
    }

    /// The queues to claim from (at least one).
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// How many jobs run at once (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// The most jobs one claim takes (at least 1); never more than the free slots.
    pub fn poll_limit(mut self, limit: usize) -> Self {
        self.poll_limit = Some(limit);
        self
    }

    /// How long an idle worker waits between claims (positive).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Claim by priority then age (the default), or by age alone.
    pub fn poll_order(mut self, order: PollOrder) -> Self {
        self.order = order;
        self
    }

    /// The lease of each claim (positive); heartbeats renew it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often running jobs' leases are renewed (positive, below the lease).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// How often this worker rescues jobs whose lease expired (positive).
    pub fn rescue_interval(mut self, interval: Duration) -> Self {
        self.rescue_interval = Some(interval);
        self
    }

    /// How long a job with an unknown task name is deferred (positive).
    pub fn defer_unknown(mut self, delay: Duration) -> Self {
        self.defer_unknown = delay;
        self
    }

    /// Delete jobs when they complete instead of keeping them.
    pub fn delete_on_success(mut self, delete: bool) -> Self {
        self.delete_on_success = delete;
        self
    }

    /// Also run the cleaner: delete finished jobs older than `age`, in batches.
    pub fn clean_after(mut self, age: Duration) -> Self {
        self.clean_after = Some(age);
        self
    }

    /// Registers a periodic job. Schedules are checked by [`build`](WorkerBuilder::build)
    /// (expression, zone, task, duplicate ids: [`Error::Schedule`], nothing written) and
    /// stored when the worker starts (an id already stored gets the new definition and keeps
    /// its firing state); the elected leader fires them, exactly once per tick across all
    /// workers. The store must support schedules ([`Store::schedules`]).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    /// Registers several periodic jobs (see [`schedule`](WorkerBuilder::schedule)).
    pub fn schedules(mut self, schedules: impl IntoIterator<Item = Schedule>) -> Self {
        self.schedules.extend(schedules);
        self
    }

    /// The time to live of the leader lease (at least 50 ms): a dead leader is replaced
    /// within about this long; workers try to take or renew it every fifth of it.
    pub fn leader_lease(mut self, ttl: Duration) -> Self {
        self.leader_lease = ttl;
        self
    }

    /// How often the leader looks for due ticks (positive).
    pub fn scheduler_interval(mut self, interval: Duration) -> Self {
        self.scheduler_interval = interval;
        self
    }

    /// The longest pause between the leader's sleeper wake-up passes (positive): it wakes each
    /// sleeper when due, and sees one that started sleeping in another process within this.
    pub fn wake_interval(mut self, interval: Duration) -> Self {
        self.wake_interval = interval;
        self
    }

    /// The id recorded on claimed jobs; default `worker-<pid>-<random>`.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Validates the settings and builds the worker (not started yet).
    pub fn build(self) -> Result<Worker, Error> {
        let settings = self.settings()?;
        Ok(Worker::new(self.store, self.handlers, settings))
    }

    fn settings(&self) -> Result<Settings, Error> {
        positive("poll_interval", self.poll_interval)?;
        positive("lease", self.lease)?;
        positive("defer_unknown", self.defer_unknown)?;
        if self.concurrency == 0 {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if self.queues.is_empty() {
            return Err(Error::invalid("queues", "name at least one queue"));
        }
        for queue in &self.queues {
            tasque_durable::validate::validate_name("queue", queue)?;
        }
        let poll_limit = self.poll_limit.unwrap_or(self.concurrency);
        if poll_limit == 0 {
            return Err(Error::invalid("poll_limit", "must be at least 1"));
        }
        let heartbeat_interval = self.heartbeat_interval.unwrap_or(self.lease / 3);
        positive("heartbeat_interval", heartbeat_interval)?;
        if heartbeat_interval >= self.lease {
            return Err(Error::invalid(
                "heartbeat_interval",
                "must be shorter than the lease",
            ));
        }
        let rescue_interval = self.rescue_interval.unwrap_or_else(|| {
            (self.lease / 2).clamp(Duration::from_millis(50), Duration::from_secs(30))
        });
        positive("rescue_interval", rescue_interval)?;
        if let Some(age) = self.clean_after {
            positive("clean_after", age)?;
        }
        let worker_id = match &self.worker_id {
            Some(id) => id.clone(),
            None => default_worker_id(),
        };
        tasque_durable::validate::validate_name("worker", &worker_id)?;
        positive("scheduler_interval", self.scheduler_interval)?;
        positive("wake_interval", self.wake_interval)?;
        if self.leader_lease < Duration::from_millis(50) {
            return Err(Error::invalid("leader_lease", "must be at least 50 ms"));
        }
        compile_all(&self.schedules)?;
        if !self.schedules.is_empty() && self.store.schedules().is_none() {
            return Err(Error::invalid(
                "schedule",
                "this store does not support schedules",
            ));
        }
        Ok(Settings {
            worker_id,
            queues: self.queues.clone(),
            concurrency: self.concurrency,
            poll_limit,
            poll_interval: self.poll_interval,
            order: self.order,
            lease: self.lease,
            heartbeat_interval,
            rescue_interval,
            defer_unknown: self.defer_unknown,
            delete_on_success: self.delete_on_success,
            completion_batch: self.completion_batch,
            clean_after: self.clean_after,
            leader_lease: self.leader_lease,
            scheduler_interval: self.scheduler_interval,
            wake_interval: self.wake_interval,
            schedules: Arc::new(self.schedules.clone()),
        })
    }
}

fn positive(option: &'static str, value: Duration) -> Result<(), Error> {
    if value.is_zero() {
        return Err(Error::invalid(option, "must be positive"));
    }
    Ok(())
}

fn default_worker_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("worker-{}-{:08x}", std::process::id(), nanos)
}
