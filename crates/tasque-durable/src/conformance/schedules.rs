//! The schedule cases: [`ScheduleEngine`] on any engine, generated per engine by
//! [`conformance_tests!`](crate::conformance_tests) with the rest of the suite.
//!
//! Each case drives the scheduler's clock by passing instants to
//! [`fire_due`](crate::schedule::fire_due); none waits for real ticks.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{claim_one, eventually, Backend};
use crate::schedule::{
    fire_due, seat, Election, Fire, FireOutcome, MissedTicks, Overlap, Schedule, ScheduleEngine,
    HEADER_ID, HEADER_TICK,
};
use crate::{CompleteParams, JobFilter, Store};

fn engine(store: &Arc<dyn Store>) -> &dyn ScheduleEngine {
    store
        .schedules()
        .expect("this engine implements ScheduleEngine")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}

/// The base instant of the cases' virtual clock.
const T0: &str = "2030-01-01T00:00:00Z";

fn secs(n: i64) -> DateTime<Utc> {
    at(T0) + chrono::Duration::seconds(n)
}

fn every(id: &str, period: u64, policy: MissedTicks) -> Schedule {
    Schedule::every(id, Duration::from_secs(period))
        .task("tick", json!({ "schedule": id }))
        .queue("cron")
        .missed(policy)
}

/// Registers `schedule` and sets its last tick to `last` (as if it last ran then).
async fn registered(store: &Arc<dyn Store>, schedule: Schedule, last: DateTime<Utc>) {
    let engine = engine(store);
    engine
        .upsert_schedules(std::slice::from_ref(&schedule))
        .await
        .expect("upsert");
    let outcome = engine
        .fire(Fire {
            id: schedule.id.clone(),
            expected: None,
            tick: last,
            spawn: None,
            skip_if_running: false,
        })
        .await
        .expect("pass");
    assert_eq!(outcome, FireOutcome::Passed);
}

async fn jobs_of(store: &Arc<dyn Store>) -> u64 {
    store
        .count(JobFilter::all().queues(["cron"]))
        .await
        .expect("count")
}

/// Ticks fired by concurrent firers land once each: one job per tick, never two.
pub async fn concurrent_passes_fire_each_tick_once(b: &dyn Backend) {
    let stores = [
        b.open("cron").await,
        b.open("cron").await,
        b.open("cron").await,
    ];
    registered(
        &stores[0],
        every("s", 1, MissedTicks::CatchUp(100)),
        secs(0),
    )
    .await;
    for n in 1..=10 {
        let passes = stores.iter().map(|store| {
            let store = store.clone();
            async move { fire_due(engine(&store), secs(n)).await.expect("pass") }
        });
        let reports = futures_join(passes).await;
        let created: u64 = reports.iter().map(|r| r.created).sum();
        assert_eq!(created, 1, "tick {n}: {reports:?}");
    }
    assert_eq!(jobs_of(&stores[0]).await, 10);
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// A fire whose expected last tick is stale writes nothing.
pub async fn a_lost_compare_and_swap_writes_nothing(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 1, MissedTicks::Coalesce), secs(0)).await;
    let schedule = every("s", 1, MissedTicks::Coalesce)
        .compile()
        .expect("valid");
    let outcome = engine(&store)
        .fire(Fire {
            id: "s".into(),
            expected: Some(secs(-5)),
            tick: secs(1),
            spawn: Some(schedule.spawn_for(secs(1))),
            skip_if_running: false,
        })
        .await
        .expect("fire");
    assert_eq!(outcome, FireOutcome::Lost);
    assert_eq!(jobs_of(&store).await, 0);
    let record = &engine(&store).list_schedules().await.expect("list")[0];
    assert_eq!(record.last_tick, Some(secs(0)));
}

/// The job of a tick carries the schedule id and tick in its headers and its key.
pub async fn a_fired_job_records_its_schedule_and_tick(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 1, MissedTicks::Coalesce), secs(0)).await;
    let report = fire_due(engine(&store), secs(1)).await.expect("pass");
    assert_eq!(report.created, 1);
    let claim = claim_one(&*store, "cron").await;
    assert_eq!(claim.params, json!({ "schedule": "s" }));
    let info = store.get_job(claim.run_id.job).await.expect("job");
    let headers = info.headers;
    assert_eq!(headers[HEADER_ID], json!("s"));
    assert_eq!(headers[HEADER_TICK], json!("2030-01-01T00:00:01Z"));
    assert_eq!(
        info.idempotency_key.as_deref(),
        Some("cron:s:2030-01-01T00:00:01Z")
    );
    let record = &engine(&store).list_schedules().await.expect("list")[0];
    assert_eq!(record.last_job, Some(claim.run_id.job));
    assert!(record.last_fired_at.is_some());
}

/// After downtime, `coalesce` fires one job for every missed tick.
pub async fn downtime_with_coalesce_fires_one_job(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 1, MissedTicks::Coalesce), secs(0)).await;
    let report = fire_due(engine(&store), secs(30)).await.expect("pass");
    assert_eq!(report.created, 1);
    assert_eq!(jobs_of(&store).await, 1);
    let record = &engine(&store).list_schedules().await.expect("list")[0];
    assert_eq!(record.last_tick, Some(secs(30)));
}

/// After downtime, `catch_up(n)` fires the latest n missed ticks, one job each.
pub async fn downtime_with_catch_up_fires_the_latest_n_ticks(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 1, MissedTicks::CatchUp(5)), secs(0)).await;
    let report = fire_due(engine(&store), secs(30)).await.expect("pass");
    assert_eq!(report.created, 5);
    let keys: Vec<String> = store
        .scan(
            JobFilter::all().queues(["cron"]),
            crate::PageRequest::first(100),
        )
        .await
        .expect("scan")
        .jobs
        .into_iter()
        .filter_map(|j| j.idempotency_key)
        .collect();
    let expected: Vec<String> = (26..=30)
        .map(|n| crate::schedule::tick_key("s", secs(n)))
        .collect();
    assert_eq!(keys, expected);
}

/// After downtime, `skip` fires nothing for a tick that is too late.
pub async fn downtime_with_skip_fires_nothing_late(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 60, MissedTicks::Skip), secs(0)).await;
    // The latest tick (10 min) is 30 s late: passed over, no job.
    let report = fire_due(engine(&store), secs(630)).await.expect("pass");
    assert_eq!((report.created, report.passed), (0, 1));
    assert_eq!(jobs_of(&store).await, 0);
    // The next one, on time, fires.
    let report = fire_due(engine(&store), secs(661)).await.expect("pass");
    assert_eq!(report.created, 1);
}

/// `skip_if_running` passes ticks over while the previous job is unfinished.
pub async fn skip_if_running_waits_for_the_previous_job(b: &dyn Backend) {
    let store = b.open("cron").await;
    let schedule = every("s", 1, MissedTicks::Coalesce).overlap(Overlap::SkipIfRunning);
    registered(&store, schedule, secs(0)).await;
    assert_eq!(
        fire_due(engine(&store), secs(1))
            .await
            .expect("pass")
            .created,
        1
    );
    let claim = claim_one(&*store, "cron").await;
    let report = fire_due(engine(&store), secs(2)).await.expect("pass");
    assert_eq!((report.created, report.skipped_running), (0, 1));
    store
        .complete(CompleteParams::new(claim.run_id, json!(null)))
        .await
        .expect("complete");
    assert_eq!(
        fire_due(engine(&store), secs(3))
            .await
            .expect("pass")
            .created,
        1
    );
    assert_eq!(jobs_of(&store).await, 2);
}

/// A paused schedule does not fire; resumed, its missed ticks follow its policy.
pub async fn paused_schedules_do_not_fire(b: &dyn Backend) {
    let store = b.open("cron").await;
    registered(&store, every("s", 1, MissedTicks::Coalesce), secs(0)).await;
    assert!(engine(&store)
        .set_schedule_paused("s", true)
        .await
        .expect("pause"));
    assert!(!engine(&store)
        .set_schedule_paused("nope", true)
        .await
        .expect("pause"));
    let report = fire_due(engine(&store), secs(5)).await.expect("pass");
    assert_eq!(report, crate::schedule::PassReport::default());
    assert!(engine(&store).list_schedules().await.expect("list")[0].paused);
    assert!(engine(&store)
        .set_schedule_paused("s", false)
        .await
        .expect("resume"));
    assert_eq!(
        fire_due(engine(&store), secs(6))
            .await
            .expect("pass")
            .created,
        1
    );
}

/// A manual trigger of a tick (an ordinary spawn of its job) and the scheduler's fire of the
/// same tick land on one job.
pub async fn a_manual_trigger_and_the_fire_share_the_tick(b: &dyn Backend) {
    let store = b.open("cron").await;
    let schedule = every("s", 1, MissedTicks::Coalesce);
    registered(&store, schedule.clone(), secs(0)).await;
    let compiled = schedule.compile().expect("valid");
    let triggered = store
        .spawn(compiled.spawn_for(secs(1)))
        .await
        .expect("spawn");
    assert!(triggered.created);
    let report = fire_due(engine(&store), secs(1)).await.expect("pass");
    assert_eq!((report.created, report.existing), (0, 1));
    assert_eq!(jobs_of(&store).await, 1);
}

/// Registering again replaces the definition and keeps the firing state; namespaces never
/// see each other's schedules.
pub async fn upsert_keeps_the_firing_state_and_namespaces_are_isolated(b: &dyn Backend) {
    let store = b.open("cron").await;
    let other = b.open("cron-other").await;
    registered(&store, every("s", 1, MissedTicks::Coalesce), secs(0)).await;
    let changed = every("s", 2, MissedTicks::Skip);
    engine(&store)
        .upsert_schedules(std::slice::from_ref(&changed))
        .await
        .expect("upsert");
    let records = engine(&store).list_schedules().await.expect("list");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].schedule, changed);
    assert_eq!(records[0].last_tick, Some(secs(0)));
    assert!(engine(&other)
        .list_schedules()
        .await
        .expect("list")
        .is_empty());
}

/// One holder at a time has the leader lease; it can renew and release it, and an expired
/// lease is taken over.
pub async fn the_leader_lease_has_one_holder_at_a_time(b: &dyn Backend) {
    let store = b.open("cron").await;
    let e = engine(&store);
    let long = Duration::from_secs(60);
    assert_eq!(e.lease_holder("leader").await.expect("holder"), None);
    assert!(e.acquire_lease("leader", "a", long).await.expect("acquire"));
    assert!(!e.acquire_lease("leader", "b", long).await.expect("acquire"));
    assert_eq!(
        e.lease_holder("leader").await.expect("holder").as_deref(),
        Some("a")
    );
    assert!(e.acquire_lease("leader", "a", long).await.expect("renew"));
    e.release_lease("leader", "b")
        .await
        .expect("release by a non-holder");
    assert!(!e.acquire_lease("leader", "b", long).await.expect("acquire"));
    e.release_lease("leader", "a").await.expect("release");
    assert!(e
        .acquire_lease("leader", "b", Duration::from_millis(50))
        .await
        .expect("acquire"));
    eventually("the expired lease is taken over", || async {
        e.acquire_lease("leader", "a", long)
            .await
            .expect("acquire")
            .then_some(())
    })
    .await;
}

/// The election of a leader (a server lock on PostgreSQL and MySQL, the lease row on SQLite):
/// one seat leads at a time and is named by the lease row; a resignation, or a seat dropped
/// without one, hands leadership over.
pub async fn one_seat_leads_and_hands_over_when_it_resigns_or_goes(b: &dyn Backend) {
    let store = b.open("cron").await;
    let e = engine(&store);
    let ttl = Duration::from_millis(500);
    let mut a = seat(e, "elect", "a", ttl);
    let mut b2 = seat(e, "elect", "b", ttl);
    assert!(a.lead().await.expect("a takes"));
    assert!(!b2.lead().await.expect("b loses"));
    assert!(a.lead().await.expect("a confirms"));
    assert_eq!(
        e.lease_holder("elect").await.expect("holder").as_deref(),
        Some("a")
    );
    a.resign().await.expect("a resigns");
    lead_eventually(&mut *b2, "b takes over after the resignation").await;
    assert_eq!(
        e.lease_holder("elect").await.expect("holder").as_deref(),
        Some("b")
    );
    assert!(!a.lead().await.expect("a loses now"));
    // A leader that goes without resigning (its session ends; SQLite: its lease expires).
    drop(b2);
    lead_eventually(&mut *a, "a takes over from the leader that went").await;
    assert_eq!(
        e.lease_holder("elect").await.expect("holder").as_deref(),
        Some("a")
    );
    a.resign().await.expect("a resigns");
}

/// Tries to lead every few milliseconds until the seat leads, failing after the deadline.
async fn lead_eventually(seat: &mut (dyn Election + '_), what: &str) {
    let deadline = tokio::time::Instant::now() + super::DEADLINE;
    while !seat.lead().await.expect("a try to lead") {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
