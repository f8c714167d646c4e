//! A quick throughput probe of the store alone: spawn_many, then claim + complete_many in
//! batches, on a temporary WAL file. `cargo run --release -p tasque-sqlite --example throughput`.

use std::time::{Duration, Instant};

use serde_json::json;
use tasque_durable::{ClaimParams, CompleteParams, PollOrder, Spawn, Store};
use tasque_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let batch: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("bench.db")).await?;
    store.migrate().await?;
    let start = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(batch) {
        store
            .spawn_many(
                chunk
                    .iter()
                    .map(|n| Spawn::new("default", "noop", json!(n)))
                    .collect(),
            )
            .await?;
    }
    let spawn = start.elapsed();
    let start = Instant::now();
    let params = ClaimParams {
        queues: vec!["default".into()],
        limit: batch as u32,
        lease: Duration::from_secs(60),
        worker_id: "bench".into(),
        order: PollOrder::PriorityThenAge,
    };
    let mut done = 0;
    let mut phases = [Duration::ZERO; 3];
    loop {
        let t = Instant::now();
        let claims = store.claim(params.clone()).await?;
        phases[0] += t.elapsed();
        if claims.is_empty() {
            break;
        }
        let t = Instant::now();
        let runs = claims.iter().map(|c| c.run_id).collect();
        store.extend_leases(runs, Duration::from_secs(60)).await?;
        phases[1] += t.elapsed();
        let t = Instant::now();
        let items = claims
            .iter()
            .map(|c| CompleteParams::new(c.run_id, json!(null)))
            .collect();
        store.complete_many(items).await?;
        phases[2] += t.elapsed();
        done += claims.len();
    }
    println!(
        "time in claim {:?}, extend_leases {:?}, complete_many {:?}",
        phases[0], phases[1], phases[2]
    );
    let work = start.elapsed();
    println!(
        "spawn_many: {:.0} jobs/s",
        total as f64 / spawn.as_secs_f64()
    );
    println!(
        "claim+heartbeat+complete_many: {:.0} jobs/s ({done} jobs)",
        done as f64 / work.as_secs_f64()
    );
    Ok(())
}
