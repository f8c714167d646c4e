//! Jobs in every state the dashboard shows, made through the store's own operations.

use std::time::Duration;

use serde_json::json;
use tasque_durable::{
    AwaitEvent, ClaimParams, CompleteParams, JobId, PollOrder, Spawn, SpawnOptions, Store,
};

/// The ids the fixture made.
pub struct Fixture {
    pub completed: JobId,
    pub failed: JobId,
    pub waiting: JobId,
    pub running: JobId,
    pub scheduled: JobId,
    /// Three available jobs in queue `mail`; the last one's args contain `needle`.
    pub mail: Vec<JobId>,
}

async fn claim_one(store: &dyn Store, queue: &str, worker: &str) -> tasque_durable::Claim {
    let mut claims = store
        .claim(ClaimParams {
            queues: vec![queue.to_string()],
            limit: 1,
            lease: Duration::from_secs(300),
            worker_id: worker.to_string(),
            order: PollOrder::Age,
        })
        .await
        .expect("claim");
    assert_eq!(claims.len(), 1, "one job to claim in {queue}");
    claims.remove(0)
}

/// Builds the fixture: queue `work` holds one completed, one failed, one waiting (for event
/// `go`) and one running job (worker `w1`); `later` one scheduled job; `mail` three available.
pub async fn build(store: &dyn Store) -> Fixture {
    let once = SpawnOptions::new().with_max_attempts(1);
    let spawn = |task: &str, params| Spawn::new("work", task, params);

    let completed = store
        .spawn(spawn("report", json!({"n": 1})))
        .await
        .unwrap()
        .job_id;
    let claim = claim_one(store, "work", "w0").await;
    store
        .complete(CompleteParams::new(claim.run_id, json!({"rows": 3})))
        .await
        .unwrap();

    let failed = store
        .spawn(spawn("report", json!({"n": 2})).with_options(once.clone()))
        .await
        .unwrap()
        .job_id;
    let claim = claim_one(store, "work", "w0").await;
    store
        .fail(claim.run_id, json!({"error": "boom"}))
        .await
        .unwrap();

    let waiting = store
        .spawn(spawn("flow", json!({"n": 3})))
        .await
        .unwrap()
        .job_id;
    let claim = claim_one(store, "work", "w0").await;
    store
        .await_event(AwaitEvent {
            run: claim.run_id,
            name: "go".into(),
            timeout: None,
        })
        .await
        .unwrap();

    let running = store
        .spawn(spawn("report", json!({"n": 4})))
        .await
        .unwrap()
        .job_id;
    let claim = claim_one(store, "work", "w1").await;
    assert_eq!(claim.job_id, running);

    let scheduled = store
        .spawn(
            Spawn::new("later", "report", json!({"n": 5}))
                .with_options(SpawnOptions::new().with_delay(Duration::from_secs(3600))),
        )
        .await
        .unwrap()
        .job_id;

    let mut mail = Vec::new();
    for to in ["a@example.com", "b@example.com", "needle@example.com"] {
        mail.push(
            store
                .spawn(Spawn::new("mail", "send", json!({"to": to})))
                .await
                .unwrap()
                .job_id,
        );
    }
    Fixture {
        completed,
        failed,
        waiting,
        running,
        scheduled,
        mail,
    }
}
