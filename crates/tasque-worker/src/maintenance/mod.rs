//! The worker's background services, one file per service, sharing one start/stop base.
//!
//! | service | runs on | does |
//! |---|---|---|
//! | [`heartbeat`] | every worker | renews the leases of the worker's own running jobs |
//! | [`leader`] | every worker | takes part in the leader election |
//! | [`scheduler`] | every worker registers its schedules; the leader fires them | periodic jobs |
//! | [`rescuer`] | the leader | makes jobs whose lease expired claimable again |
//! | [`sleepers`] | the leader | makes due sleepers and timed-out event waiters claimable |
//! | [`cleaner`] | the leader, when configured | deletes old finished jobs |
//!
//! The base: each service is a loop under a [`Supervisor`] (a panic restarts it) that ends when
//! the worker's maintenance stop signal is raised; leader-only services run their pass every
//! interval through [`while_leading`], which idles while this worker does not lead.

mod cleaner;
pub(crate) mod heartbeat;
mod leader;
mod rescuer;
mod scheduler;
mod sleepers;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tasque_core::{Queue, Supervisor};
use tasque_durable::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::inflight::InFlight;
use crate::stop::Stop;

/// Whether this worker leads now (published by the election).
pub(crate) type Leadership = watch::Receiver<bool>;

/// What the services need from their worker.
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) inflight: Arc<InFlight>,
    pub(crate) queue: Queue,
    pub(crate) restarts: Arc<AtomicU64>,
    pub(crate) stop: Arc<Stop>,
}

/// Starts every service; each ends once `ctx.stop` is raised. Returns them and the
/// election's verdict.
pub(crate) fn start(ctx: Context) -> (Vec<JoinHandle<()>>, Leadership) {
    let (leading, leadership) = watch::channel(false);
    let leading = Arc::new(leading);
    let s = ctx.settings.clone();
    let mut services = Vec::new();
    let (inflight, queue) = (ctx.inflight.clone(), ctx.queue.clone());
    services.push(ctx.supervise("heartbeat", move |store, stop| {
        heartbeat::heartbeat(
            store,
            inflight.clone(),
            queue.clone(),
            s.heartbeat_interval,
            s.lease,
            stop,
        )
    }));
    let (holder, ttl) = (ctx.settings.worker_id.clone(), ctx.settings.leader_lease);
    services.push(ctx.supervise("leader election", move |store, stop| {
        leader::run(store, holder.clone(), ttl, leading.clone(), stop)
    }));
    let (lead, interval) = (leadership.clone(), ctx.settings.rescue_interval);
    services.push(ctx.supervise("rescuer", move |store, stop| {
        rescuer::run(store, lead.clone(), interval, stop)
    }));
    let (lead, interval) = (leadership.clone(), ctx.settings.wake_interval);
    services.push(ctx.supervise("sleeper wake-up", move |store, stop| {
        sleepers::run(store, lead.clone(), interval, stop)
    }));
    if let Some(age) = ctx.settings.clean_after {
        let lead = leadership.clone();
        services.push(ctx.supervise("cleaner", move |store, stop| {
            cleaner::run(store, lead.clone(), age, stop)
        }));
    }
    let (lead, schedules) = (leadership.clone(), ctx.settings.schedules.clone());
    let interval = ctx.settings.scheduler_interval;
    services.push(ctx.supervise("scheduler", move |store, stop| {
        scheduler::run(store, schedules.clone(), lead.clone(), interval, stop)
    }));
    (services, leadership)
}

impl Context {
    /// Spawns one service under a supervisor: `make` builds each instance (a restart after a
    /// panic builds a new one) from the store and the stop signal.
    fn supervise<M, Fut>(&self, name: &str, mut make: M) -> JoinHandle<()>
    where
        M: FnMut(Arc<dyn Store>, Arc<Stop>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (store, stop) = (self.store.clone(), self.stop.clone());
        let until = self.stop.clone();
        Supervisor::new(name)
            .count_restarts(self.restarts.clone())
            .spawn(
                move || make(store.clone(), stop.clone()),
                move || {
                    let stop = until.clone();
                    async move { stop.raised().await }
                },
            )
    }
}

/// Waits until this worker leads: true once it does, false once `stop` is raised first.
pub(crate) async fn until_leading(leadership: &mut Leadership, stop: &Stop) -> bool {
    while !*leadership.borrow_and_update() {
        tokio::select! {
            _ = stop.raised() => return false,
            changed = leadership.changed() => {
                if changed.is_err() {
                    stop.raised().await;
                    return false;
                }
            }
        }
    }
    true
}

/// Runs `pass` every `interval` while this worker leads, until `stop` is raised.
pub(crate) async fn while_leading<F, Fut>(
    mut leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if !until_leading(&mut leadership, &stop).await {
            return;
        }
        if stop.sleep(interval).await {
            return;
        }
        if *leadership.borrow() {
            pass().await;
        }
    }
}
