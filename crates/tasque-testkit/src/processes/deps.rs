//! Job dependencies with real worker processes: a fan-in of 100 parents into one job, worked
//! by three worker processes (see the parent module for the processes).

use std::time::Duration;

use serde_json::{json, Value};
use tasque_durable::{JobId, JobState, Spawn, SpawnOptions};
use tokio::process::Child;

use super::{all_jobs, kill, ChildSpec, Harness};

/// Fan-in across three worker processes: 100 parents (completed by whichever worker claims
/// them, many at the same moment) and one child depending on all of them. The child runs
/// exactly once, as attempt 1 of run 1, and starts only after the last parent finished (by
/// the database's times, and by the start and end times each run logged).
pub async fn fan_in_of_100_parents_across_worker_processes(h: &Harness) {
    const PARENTS: usize = 100;
    let parents = (0..PARENTS).map(|i| Spawn::new("fanin", "timed", json!({"ms": 5, "i": i})));
    let parents: Vec<JobId> = h
        .store
        .spawn_many(parents.collect())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.job_id)
        .collect();
    let child = h
        .store
        .spawn(
            Spawn::new("fanin", "timed", json!({"ms": 1, "child": true}))
                .with_options(SpawnOptions::new().with_depends_on(parents.iter().copied())),
        )
        .await
        .unwrap()
        .job_id;
    let held = h.store.get_job(child).await.unwrap();
    assert_eq!(held.state, JobState::OnHold);
    let spec = ChildSpec {
        queues: "fanin",
        concurrency: 8,
        lease_ms: 30_000,
        stall: false,
    };
    let children: Vec<Child> = (0..3).map(|i| h.start(i, &spec)).collect();
    h.until_completed_within((PARENTS + 1) as u64, Duration::from_secs(120))
        .await;
    kill(children).await;

    let runs: Vec<Value> = h.logs(3);
    assert_eq!(runs.len(), PARENTS + 1, "each job ran once");
    let child_runs: Vec<&Value> = runs
        .iter()
        .filter(|r| r["job"].as_i64() == Some(child.0))
        .collect();
    assert_eq!(child_runs.len(), 1, "the child ran exactly once");
    let last_parent_end = runs
        .iter()
        .filter(|r| r["job"].as_i64() != Some(child.0))
        .filter_map(|r| r["end_us"].as_i64())
        .max()
        .unwrap();
    assert!(
        child_runs[0]["start_us"].as_i64().unwrap() >= last_parent_end,
        "the child started before its last parent ended: {}",
        child_runs[0]
    );
    let jobs = all_jobs(&*h.store).await;
    let done = jobs.iter().find(|j| j.id == child).expect("the child");
    assert_eq!(done.state, JobState::Completed);
    assert_eq!((done.attempt, done.run_id.seq), (1, 1));
    let last_finish = jobs
        .iter()
        .filter(|j| j.id != child)
        .map(|j| j.finished_at.expect("a finished parent"))
        .max()
        .unwrap();
    assert!(
        done.attempted_at.expect("a start") >= last_finish,
        "by the database clock, the child started before its last parent finished"
    );
    let facts = h.store.deps().expect("deps").job(child).await.unwrap();
    assert_eq!(facts.parents.len(), PARENTS);
    assert!(facts.parents.iter().all(|p| p.resolved));
}
