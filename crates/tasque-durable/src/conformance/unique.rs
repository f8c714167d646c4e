//! Cases: unique jobs (key, period bucket, states, concurrent enqueuers, the typed client).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{claim_one, job, Backend};
use crate::client::{Client, Job, JobOptions};
use crate::unique::{Unique, UniqueStates, Uniqueness};
use crate::{CompleteParams, Error, JobState, SpawnOptions};

fn unique(key: &str) -> SpawnOptions {
    SpawnOptions::new().with_unique(Uniqueness::key(key))
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a timestamp")
}

/// A conflicting spawn returns the job holding the slot with `created: false`, in a batch too;
/// another key makes another job; the job shows its key; bad constraints are refused.
pub async fn unique_conflict_returns_the_existing_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let first = store
        .spawn(job("default", "work", 1).with_options(unique("report:7")))
        .await
        .unwrap();
    assert!(first.created);
    let again = store
        .spawn(job("other", "work", 2).with_options(unique("report:7")))
        .await
        .unwrap();
    assert!(!again.created, "a key is shared by every queue");
    assert_eq!((again.job_id, again.run_id), (first.job_id, first.run_id));
    let other = store
        .spawn(job("default", "work", 3).with_options(unique("report:8")))
        .await
        .unwrap();
    assert!(other.created && other.job_id != first.job_id);
    let batch = store
        .spawn_many(vec![
            job("default", "work", 4).with_options(unique("report:9")),
            job("default", "work", 5).with_options(unique("report:7")),
            job("default", "work", 6).with_options(unique("report:9")),
            job("default", "work", 7),
        ])
        .await
        .unwrap();
    assert!(batch[0].created && batch[3].created);
    assert_eq!((batch[1].created, batch[1].job_id), (false, first.job_id));
    assert_eq!(
        (batch[2].created, batch[2].job_id),
        (false, batch[0].job_id)
    );
    let info = store.get_job(first.job_id).await.unwrap();
    assert_eq!(info.unique_key.as_deref(), Some("report:7"));
    assert_eq!(
        store.get_job(batch[3].job_id).await.unwrap().unique_key,
        None
    );
    for bad in [
        Uniqueness::key(""),
        Uniqueness::key("k").period(Duration::ZERO),
    ] {
        let refused = store
            .spawn(job("default", "work", 8).with_options(SpawnOptions::new().with_unique(bad)))
            .await;
        assert!(
            matches!(refused, Err(Error::InvalidOption { .. })),
            "{refused:?}"
        );
    }
    assert!(UniqueStates::of([JobState::Available, JobState::Running]).is_err());
}

/// With a period, jobs are bucketed by their scheduled time: one per key per period, and the
/// next period is a new slot.
pub async fn unique_period_buckets_by_scheduled_time(b: &dyn Backend) {
    let store = b.open("main").await;
    let hourly = |run_at: &str| {
        let options = SpawnOptions::new()
            .with_run_at(at(run_at))
            .with_unique(Uniqueness::key("digest").period(Duration::from_secs(3600)));
        job("default", "work", 1).with_options(options)
    };
    let ten = store.spawn(hourly("2100-01-01T10:00:00Z")).await.unwrap();
    let late_ten = store
        .spawn(hourly("2100-01-01T10:59:59.999Z"))
        .await
        .unwrap();
    let eleven = store.spawn(hourly("2100-01-01T11:00:00Z")).await.unwrap();
    let nine = store
        .spawn(hourly("2100-01-01T09:59:59.999Z"))
        .await
        .unwrap();
    assert!(ten.created);
    assert_eq!((late_ten.created, late_ten.job_id), (false, ten.job_id));
    assert!(eleven.created && eleven.job_id != ten.job_id);
    assert!(nine.created && nine.job_id != ten.job_id && nine.job_id != eleven.job_id);
    // Jobs due now share the current bucket.
    let now_options = || {
        let unique = Uniqueness::key("now").period(Duration::from_secs(366 * 24 * 3600));
        job("default", "work", 2).with_options(SpawnOptions::new().with_unique(unique))
    };
    let a = store.spawn(now_options()).await.unwrap();
    let b2 = store.spawn(now_options()).await.unwrap();
    let same = b2.job_id == a.job_id && !b2.created;
    // (Only a year boundary between the two spawns could split them.)
    let c = store.spawn(now_options()).await.unwrap();
    assert!(same || (c.job_id == b2.job_id && !c.created));
}

/// A job holds its slot only in its unique states: by default every state but failed and
/// cancelled; with the unfinished states only, a completed job frees the slot.
pub async fn unique_states_decide_which_jobs_hold_the_slot(b: &dyn Backend) {
    let store = b.open("main").await;
    // Default states: a completed job still holds the slot, a cancelled one does not.
    let first = store
        .spawn(job("q", "work", 1).with_options(unique("k-default")))
        .await
        .unwrap();
    let claim = claim_one(store.as_ref(), "q").await;
    let dup_running = store
        .spawn(job("q", "work", 2).with_options(unique("k-default")))
        .await
        .unwrap();
    assert_eq!(
        (dup_running.created, dup_running.job_id),
        (false, first.job_id)
    );
    store
        .complete(CompleteParams::new(claim.run_id, json!(null)))
        .await
        .unwrap();
    let dup_done = store
        .spawn(job("q", "work", 3).with_options(unique("k-default")))
        .await
        .unwrap();
    assert_eq!((dup_done.created, dup_done.job_id), (false, first.job_id));

    let cancelled = store
        .spawn(job("q2", "work", 1).with_options(unique("k-cancel")))
        .await
        .unwrap();
    store.cancel(cancelled.job_id).await.unwrap();
    let after_cancel = store
        .spawn(job("q2", "work", 2).with_options(unique("k-cancel")))
        .await
        .unwrap();
    assert!(after_cancel.created && after_cancel.job_id != cancelled.job_id);

    // Only while unfinished: completion frees the slot.
    let active = UniqueStates::of(JobState::ALL.into_iter().filter(|s| !s.is_finished())).unwrap();
    let while_active = || {
        let unique = Uniqueness::key("k-active").states(active);
        job("q3", "work", 1).with_options(SpawnOptions::new().with_unique(unique))
    };
    let one = store.spawn(while_active()).await.unwrap();
    assert!(!store.spawn(while_active()).await.unwrap().created);
    let claim = claim_one(store.as_ref(), "q3").await;
    assert_eq!(claim.job_id, one.job_id);
    store
        .complete(CompleteParams::new(claim.run_id, json!(null)))
        .await
        .unwrap();
    let two = store.spawn(while_active()).await.unwrap();
    assert!(two.created && two.job_id != one.job_id);
}

/// Many concurrent enqueuers of one key create exactly one job, and all get its id.
pub async fn concurrent_unique_enqueuers_create_one_job(b: &dyn Backend) {
    let store = b.open("main").await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .spawn(job("default", "work", n).with_options(unique("race")))
                .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task").expect("spawn"));
    }
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    assert!(results.iter().all(|r| r.job_id == results[0].job_id));
    let count = store.count(crate::JobFilter::default()).await.unwrap();
    assert_eq!(count, 1);
}

#[derive(Serialize, Deserialize)]
struct Digest {
    user_id: u64,
    note: String,
}

impl Job for Digest {
    const KIND: &'static str = "digest";
    type Output = ();

    fn options(&self) -> JobOptions {
        JobOptions::new().unique(Unique::by_args(["user_id"]).period(Duration::from_secs(3600)))
    }
}

/// The typed client derives the key from the kind and the chosen args and says when an
/// enqueue was a duplicate.
pub async fn client_unique_by_args_reports_duplicates(b: &dyn Backend) {
    let client = Client::new(b.open("main").await);
    let digest = |user_id, note: &str| Digest {
        user_id,
        note: note.to_string(),
    };
    let first = client.enqueue(digest(1, "a")).await.unwrap();
    let same_user = client.enqueue(digest(1, "b")).await.unwrap();
    let other_user = client.enqueue(digest(2, "a")).await.unwrap();
    assert!(!first.is_duplicate());
    assert!(same_user.is_duplicate() && same_user.job_id == first.job_id);
    assert!(!other_user.is_duplicate() && other_user.job_id != first.job_id);
    let info = client.store().get_job(first.job_id).await.unwrap();
    assert_eq!(info.unique_key.as_deref(), Some(r#"digest|{"user_id":1}"#));
}

/// Retrying a cancelled unique job whose slot a newer job now holds is refused with a typed
/// error naming the holder, and changes nothing; once the holder leaves the slot, the retry
/// goes through.
pub async fn retrying_a_unique_job_whose_slot_is_taken_names_the_holder(b: &dyn Backend) {
    let store = b.open("main").await;
    let old = store
        .spawn(job("uq-retry", "work", 1).with_options(unique("k-retry")))
        .await
        .unwrap();
    store.cancel(old.job_id).await.unwrap();
    let newer = store
        .spawn(job("uq-retry", "work", 2).with_options(unique("k-retry")))
        .await
        .unwrap();
    assert!(newer.created && newer.job_id != old.job_id);
    match store.retry(old.job_id, None).await {
        Err(Error::UniqueSlotTaken { job, holder }) => {
            assert_eq!((job, holder), (old.job_id, newer.job_id));
        }
        other => panic!("expected UniqueSlotTaken, got {other:?}"),
    }
    let info = store.get_job(old.job_id).await.unwrap();
    assert_eq!(
        info.state,
        JobState::Cancelled,
        "the refused retry changed nothing"
    );
    store.cancel(newer.job_id).await.unwrap();
    store.retry(old.job_id, None).await.unwrap();
    assert_eq!(
        store.get_job(old.job_id).await.unwrap().state,
        JobState::Available
    );
}
