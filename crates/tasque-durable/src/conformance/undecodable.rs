//! Cases: rows that cannot be decoded (issue 12). A job whose stored row holds what no model
//! value can (a run time no time type holds, a retry strategy that is not one), written by
//! raw SQL as a foreign producer, a manual edit or an older build could, is failed for good by
//! the claim that takes it, with a clear reason, while the claim returns the other jobs; the
//! rescuer does the same for an expired one. Nothing panics.

use std::collections::HashSet;

use super::{assert_nothing_claimable, claim_leased, claim_of, eventually, job, Backend, SHORT};
use crate::{Error, JobFilter, JobId, JobState, Store};

/// How [`Backend::corrupt`] makes a stored job undecodable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The stored retry strategy is not one: text that is not JSON where the engine stores
    /// text, JSON of the wrong shape where it stores JSON.
    RetryStrategy,
    /// The run time is one the engine can store but no time value can hold, and still due:
    /// PostgreSQL `-infinity`, a MySQL zero date, an out-of-range number in SQLite.
    RunAt,
}

impl Corruption {
    /// Both kinds.
    pub const ALL: [Corruption; 2] = [Corruption::RetryStrategy, Corruption::RunAt];

    /// The column the decoding error names.
    pub fn column(self) -> &'static str {
        match self {
            Corruption::RetryStrategy => "retry",
            Corruption::RunAt => "run_at",
        }
    }
}

/// Asserts that `job` failed for good with an `undecodable_job` reason naming `what`'s column,
/// read through `get_result` (which decodes only what it returns).
pub async fn assert_failed_as_undecodable(store: &dyn Store, job: JobId, what: Corruption) {
    let result = store
        .get_result(job)
        .await
        .expect("get_result of a corrupt job");
    assert_eq!(result.state, JobState::Failed, "{what:?}: {result:?}");
    let failure = result.failure.expect("a failure reason");
    assert_eq!(failure["kind"], "undecodable_job", "{failure}");
    let error = failure["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(what.column()), "{what:?}: {failure}");
}

/// A claim that takes an undecodable job fails it for good and returns the others.
pub async fn claim_fails_an_undecodable_job_for_good_and_returns_the_others(b: &dyn Backend) {
    for what in Corruption::ALL {
        let namespace = format!("corrupt_{}", what.column());
        let store = b.open(&namespace).await;
        let spawned = store
            .spawn_many((0..5).map(|n| job("default", "work", n)).collect())
            .await
            .expect("spawn");
        let ids: Vec<JobId> = spawned.iter().map(|s| s.job_id).collect();
        let bad = ids[2];
        b.corrupt(&namespace, bad, what).await;
        let claims = store.claim(claim_of("default", 10)).await.expect("claim");
        let claimed: HashSet<JobId> = claims.iter().map(|c| c.job_id).collect();
        let good: HashSet<JobId> = ids.iter().copied().filter(|id| *id != bad).collect();
        assert_eq!(claimed, good, "{what:?}: the other jobs are claimed");
        assert_failed_as_undecodable(&*store, bad, what).await;
        assert_nothing_claimable(&*store, "default").await;
        let failed = JobFilter::all().states(vec![JobState::Failed]);
        assert_eq!(store.count(failed).await.expect("count"), 1);
        // The full record cannot be built: a typed error naming the job, not a panic.
        match store.get_job(bad).await {
            Err(Error::Corrupt(detail)) => {
                assert!(detail.contains(&bad.to_string()), "{detail}");
            }
            other => panic!("{what:?}: expected a corrupt-row error, got {other:?}"),
        }
        for claim in claims {
            store
                .complete(crate::CompleteParams::new(
                    claim.run_id,
                    serde_json::json!(1),
                ))
                .await
                .expect("complete");
        }
    }
}

/// The rescuer fails an expired job whose retry strategy cannot be decoded for good, instead
/// of stopping at it.
pub async fn rescuer_fails_an_expired_undecodable_job_for_good(b: &dyn Backend) {
    let store = b.open("main").await;
    let spawned = store.spawn(job("default", "work", 1)).await.expect("spawn");
    let claim = claim_leased(&*store, "default", SHORT).await;
    b.corrupt("main", spawned.job_id, Corruption::RetryStrategy)
        .await;
    let rescued = eventually("the expired run to be rescued", || async {
        let report = store.rescue_expired(10).await.expect("rescue");
        (report.failed == 1).then_some(report)
    })
    .await;
    assert_eq!(rescued.retried, 0);
    assert_failed_as_undecodable(&*store, spawned.job_id, Corruption::RetryStrategy).await;
    assert!(matches!(
        store
            .complete(crate::CompleteParams::new(
                claim.run_id,
                serde_json::json!(1)
            ))
            .await,
        Err(Error::StaleRun(_))
    ));
}
