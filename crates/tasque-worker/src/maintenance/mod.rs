//! The worker's background services, one file per service, sharing one start/stop base.
//!
//! | service | runs on | does |
//! |---|---|---|
//! | [`heartbeat`] | every worker | renews the leases of the worker's own running jobs |
//! | [`leader`] | every worker | takes part in the leader election |
//! | [`scheduler`] | every worker registers its schedules; the leader fires them | periodic jobs |
//! | [`rescuer`] | the leader | makes jobs whose lease expired claimable again |
//! | [`cleaner`] | the leader, when configured | deletes old finished jobs |
//!
//! Sleepers and event waiters are woken by the engines' claims (a due sleeper becomes
//! claimable as part of claiming), not by a separate service, so they need no leader.
//!
//! The base: each service is a loop under a [`Supervisor`] (a panic restarts it) that ends when
//! the worker's maintenance stop signal is raised; leader-only services run their pass every
//! interval through [`while_leading`], which idles while this worker does not lead.

mod cleaner;
pub(crate) mod heartbeat;
mod leader;
mod rescuer;
mod scheduler;

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
    let stop = ctx.stop.clone();
    let until_stopped = move || {
        let stop = stop.clone();
        async move { stop.raised().await }
    };
    let supervised = |name: &str, make: Box<dyn FnMut() -> BoxFuture + Send>| {
        Supervisor::new(name)
            .count_restarts(ctx.restarts.clone())
            .spawn(make, until_stopped.clone())
    };
    let (store, inflight, queue, stop) = (
        ctx.store.clone(),
        ctx.inflight.clone(),
        ctx.queue.clone(),
        ctx.stop.clone(),
    );
    let (interval, lease) = (s.heartbeat_interval, s.lease);
    services.push(supervised(
        "heartbeat",
        Box::new(move || {
            Box::pin(heartbeat::heartbeat(
                store.clone(),
                inflight.clone(),
                queue.clone(),
                interval,
                lease,
                stop.clone(),
            ))
        }),
    ));
    let (store, stop, holder, ttl) = (
        ctx.store.clone(),
        ctx.stop.clone(),
        s.worker_id.clone(),
        s.leader_lease,
    );
    services.push(supervised(
        "leader election",
        Box::new(move || {
            Box::pin(leader::run(
                store.clone(),
                holder.clone(),
                ttl,
                leading.clone(),
                stop.clone(),
            ))
        }),
    ));
    let (store, stop, lead, interval) = (
        ctx.store.clone(),
        ctx.stop.clone(),
        leadership.clone(),
        s.rescue_interval,
    );
    services.push(supervised(
        "rescuer",
        Box::new(move || {
            Box::pin(rescuer::run(
                store.clone(),
                lead.clone(),
                interval,
                stop.clone(),
            ))
        }),
    ));
    if let Some(age) = s.clean_after {
        let (store, stop, lead) = (ctx.store.clone(), ctx.stop.clone(), leadership.clone());
        services.push(supervised(
            "cleaner",
            Box::new(move || {
                Box::pin(cleaner::run(store.clone(), lead.clone(), age, stop.clone()))
            }),
        ));
    }
    let (store, stop, lead, schedules, interval) = (
        ctx.store.clone(),
        ctx.stop.clone(),
        leadership.clone(),
        s.schedules.clone(),
        s.scheduler_interval,
    );
    services.push(supervised(
        "scheduler",
        Box::new(move || {
            Box::pin(scheduler::run(
                store.clone(),
                schedules.clone(),
                lead.clone(),
                interval,
                stop.clone(),
            ))
        }),
    ));
    (services, leadership)
}

type BoxFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

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
        while !*leadership.borrow_and_update() {
            tokio::select! {
                _ = stop.raised() => return,
                changed = leadership.changed() => {
                    if changed.is_err() {
                        return stop.raised().await;
                    }
                }
            }
        }
        if stop.sleep(interval).await {
            return;
        }
        if *leadership.borrow() {
            pass().await;
        }
    }
}
