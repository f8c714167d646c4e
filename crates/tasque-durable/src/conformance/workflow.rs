//! Cases: checkpoints, sleeps and events.

use std::time::Duration;

use serde_json::json;

use super::{
    assert_nothing_claimable, claim_leased, claim_of, claim_one, eventually, job, Backend, LONG,
    SHORT,
};
use crate::{
    AwaitEvent, AwaitOutcome, Error, JobFilter, JobState, RetryStrategy, RunAt, SetCheckpoint,
    SleepParams, SpawnOptions, Wake,
};

fn checkpoint(run: crate::RunId, name: &str, value: serde_json::Value) -> SetCheckpoint {
    SetCheckpoint {
        run,
        name: name.to_string(),
        value,
        extend_lease: LONG,
    }
}

fn wait(run: crate::RunId, name: &str, timeout: Option<Duration>) -> AwaitEvent {
    AwaitEvent {
        run,
        name: name.to_string(),
        timeout,
    }
}

/// A checkpoint is stored with its job, replaced by a later write of the same name, and
/// extends the run's lease.
pub async fn checkpoint_is_stored_and_extends_the_lease(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_leased(&*store, "default", Duration::from_secs(2)).await;
    let lease = store
        .set_checkpoint(checkpoint(claim.run_id, "fetch", json!({"rows": 3})))
        .await
        .unwrap();
    assert!(lease > claim.lease_expires_at + chrono::Duration::seconds(60));
    store
        .set_checkpoint(checkpoint(claim.run_id, "fetch", json!({"rows": 4})))
        .await
        .unwrap();
    store
        .set_checkpoint(checkpoint(claim.run_id, "send", json!(null)))
        .await
        .unwrap();
    let stored = store.get_checkpoints(spawned.job_id).await.unwrap();
    let names: Vec<_> = stored.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["fetch", "send"]);
    assert_eq!(stored[0].value, json!({"rows": 4}));
    assert_eq!(stored[0].run_seq, claim.run_id.seq);
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert!(info.lease_expires_at.unwrap() >= lease);
}

/// A run that lost its lease cannot write a checkpoint; checkpoints survive a retry.
pub async fn stale_run_cannot_write_a_checkpoint(b: &dyn Backend) {
    let store = b.open("main").await;
    let options = SpawnOptions::new()
        .with_retry(RetryStrategy::None)
        .with_max_attempts(1);
    let spawned = store
        .spawn(job("default", "work", 1).with_options(options))
        .await
        .unwrap();
    let first = claim_one(&*store, "default").await;
    store
        .set_checkpoint(checkpoint(first.run_id, "one", json!(1)))
        .await
        .unwrap();
    store.fail(first.run_id, json!("boom")).await.unwrap();
    let err = store
        .set_checkpoint(checkpoint(first.run_id, "two", json!(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleRun(_)), "{err:?}");
    store.retry(spawned.job_id, None).await.unwrap();
    let second = claim_one(&*store, "default").await;
    let stored = store.get_checkpoints(second.job_id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value, json!(1));
    let bad = checkpoint(second.run_id, "", json!(1));
    assert!(store.set_checkpoint(bad).await.unwrap_err().is_validation());
}

/// Sleeping ends the run without counting an attempt; the job is claimable at the wake time
/// as a new run of the same attempt.
pub async fn sleep_frees_the_run_and_wakes_at_its_time(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    // Long enough that the checks below always run before the wake time, even on a loaded
    // machine.
    let params = SleepParams {
        run: claim.run_id,
        until: RunAt::After(Duration::from_secs(1)),
    };
    store.sleep_until(params).await.unwrap();
    let info = store.get_job(spawned.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Sleeping);
    assert!(info.lease_expires_at.is_none());
    assert_nothing_claimable(&*store, "default").await;
    let err = store.complete(crate::CompleteParams::new(claim.run_id, json!(1)));
    assert!(matches!(err.await, Err(Error::StaleRun(_))));
    let sleeping = JobFilter::all().states([JobState::Sleeping]);
    assert_eq!(store.count(sleeping).await.unwrap(), 1);
    let woken = eventually("the sleeper wakes", || async {
        store.wake_due().await.unwrap();
        store.claim(claim_of("default", 1)).await.unwrap().pop()
    })
    .await;
    assert_eq!(woken.job_id, spawned.job_id);
    assert_eq!(woken.attempt, 1, "sleeping counts no attempt");
    assert!(woken.run_id.seq > claim.run_id.seq);
    assert_eq!(woken.wake(), None);
    let woke_at = store.now().await.unwrap();
    assert!(woke_at >= info.run_at, "woke before its time");
}

/// Claims do not wake sleepers: the leader's wake-up does, waking only the due ones and
/// telling how long until the next.
pub async fn the_wake_up_wakes_due_sleepers_and_tells_the_next(b: &dyn Backend) {
    let store = b.open("main").await;
    assert_eq!(
        store.wake_due().await.unwrap(),
        crate::WakeReport::default()
    );
    let soon = store.spawn(job("default", "work", 1)).await.unwrap();
    let late = store.spawn(job("default", "work", 2)).await.unwrap();
    let claims = store.claim(claim_of("default", 2)).await.unwrap();
    assert_eq!(claims.len(), 2);
    for claim in &claims {
        let until = if claim.job_id == soon.job_id {
            RunAt::After(SHORT)
        } else {
            RunAt::After(LONG)
        };
        let params = SleepParams {
            run: claim.run_id,
            until,
        };
        store.sleep_until(params).await.unwrap();
    }
    let due_at = store.get_job(soon.job_id).await.unwrap().run_at;
    eventually("the first sleeper is due", || async {
        (store.now().await.unwrap() > due_at).then_some(())
    })
    .await;
    // Due, but a claim alone leaves it asleep.
    assert_nothing_claimable(&*store, "default").await;
    let report = store.wake_due().await.unwrap();
    assert_eq!(report.woken, 1);
    let next = report.next_in.expect("the other one still sleeps");
    assert!(next > LONG - Duration::from_secs(600), "{next:?}");
    let woken = claim_one(&*store, "default").await;
    assert_eq!(woken.job_id, soon.job_id);
    let info = store.get_job(late.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Sleeping);
    assert_eq!(store.wake_due().await.unwrap().woken, 0);
}

/// An event emitted before the wait satisfies it at once; the run keeps running.
pub async fn event_emitted_before_the_wait_returns_at_once(b: &dyn Backend) {
    let store = b.open("main").await;
    assert_eq!(
        store
            .emit_event("paid", json!({"amount": 5}))
            .await
            .unwrap(),
        0
    );
    store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    let got = store.await_event(wait(claim.run_id, "paid", None)).await;
    assert_eq!(got.unwrap(), AwaitOutcome::Received(json!({"amount": 5})));
    let info = store.get_job(claim.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Running);
    store
        .complete(crate::CompleteParams::new(claim.run_id, json!(1)))
        .await
        .unwrap();
}

/// A job waiting for an event holds no run; the emit wakes it and its claim carries the event.
pub async fn event_emitted_after_the_wait_wakes_the_job(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    let got = store.await_event(wait(claim.run_id, "shipped", None)).await;
    assert_eq!(got.unwrap(), AwaitOutcome::Suspended);
    let info = store.get_job(claim.job_id).await.unwrap();
    assert_eq!(info.state, JobState::Waiting);
    assert_nothing_claimable(&*store, "default").await;
    assert_eq!(
        store.emit_event("shipped", json!("box-7")).await.unwrap(),
        1
    );
    let woken = claim_one(&*store, "default").await;
    assert_eq!(woken.job_id, claim.job_id);
    assert_eq!(woken.attempt, 1);
    let expected = Wake::Event {
        name: "shipped".into(),
        payload: json!("box-7"),
    };
    assert_eq!(woken.wake(), Some(expected));
}

/// A wait whose timeout passes first resumes the job with a claim that says it timed out.
pub async fn event_wait_times_out(b: &dyn Backend) {
    let store = b.open("main").await;
    store.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*store, "default").await;
    let got = store
        .await_event(wait(claim.run_id, "never", Some(SHORT)))
        .await;
    assert_eq!(got.unwrap(), AwaitOutcome::Suspended);
    let woken = eventually("the wait times out", || async {
        store.wake_due().await.unwrap();
        store.claim(claim_of("default", 1)).await.unwrap().pop()
    })
    .await;
    assert_eq!(woken.job_id, claim.job_id);
    assert_eq!(
        woken.wake(),
        Some(Wake::TimedOut {
            name: "never".into()
        })
    );
}

/// One emit wakes every job waiting for that event, and only those.
pub async fn emit_wakes_every_waiter(b: &dyn Backend) {
    let store = b.open("main").await;
    store
        .spawn_many((0..6).map(|n| job("default", "work", n)).collect())
        .await
        .unwrap();
    let claims = store.claim(claim_of("default", 6)).await.unwrap();
    for (i, claim) in claims.iter().enumerate() {
        let name = if i < 5 { "go" } else { "other" };
        let got = store.await_event(wait(claim.run_id, name, None)).await;
        assert_eq!(got.unwrap(), AwaitOutcome::Suspended);
    }
    assert_eq!(store.emit_event("go", json!(null)).await.unwrap(), 5);
    let woken = store.claim(claim_of("default", 10)).await.unwrap();
    assert_eq!(woken.len(), 5);
    for claim in &woken {
        let payload = Wake::Event {
            name: "go".into(),
            payload: json!(null),
        };
        assert_eq!(claim.wake(), Some(payload));
    }
    let waiting = JobFilter::all().states([JobState::Waiting]);
    assert_eq!(store.count(waiting).await.unwrap(), 1);
}

/// Events are stored per namespace: an emit in one never satisfies a wait in another.
pub async fn events_are_scoped_to_their_namespace(b: &dyn Backend) {
    let a = b.open("alpha").await;
    let other = b.open("beta").await;
    other.emit_event("ready", json!(1)).await.unwrap();
    a.spawn(job("default", "work", 1)).await.unwrap();
    let claim = claim_one(&*a, "default").await;
    let got = a.await_event(wait(claim.run_id, "ready", None)).await;
    assert_eq!(got.unwrap(), AwaitOutcome::Suspended);
    assert_eq!(other.emit_event("ready", json!(2)).await.unwrap(), 0);
    assert_nothing_claimable(&*a, "default").await;
    assert_eq!(a.emit_event("ready", json!(3)).await.unwrap(), 1);
    let bad = a.emit_event("no spaces", json!(1)).await.unwrap_err();
    assert!(bad.is_validation());
}
