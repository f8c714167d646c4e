//! `tasque jobs show` shows the progress a handler recorded (`JobContext::set_progress`).

use std::time::Duration;

use serde_json::json;
use tasque_durable::client::PROGRESS_CHECKPOINT;
use tasque_durable::{ClaimParams, PollOrder, SetCheckpoint, Store};
use tasque_sqlite::SqliteStore;

mod common;
use common::Cli;

#[tokio::test]
async fn jobs_show_prints_the_recorded_progress() {
    let cli = Cli::new();
    let id = cli.enqueue(&["report", "{}"]);
    let store = SqliteStore::open(cli.dir.path().join("jobs.db"))
        .await
        .unwrap();
    let claims = store
        .claim(ClaimParams {
            queues: vec!["default".into()],
            limit: 1,
            lease: Duration::from_secs(60),
            worker_id: "test".into(),
            order: PollOrder::default(),
        })
        .await
        .unwrap();
    store
        .set_checkpoint(SetCheckpoint {
            run: claims[0].run_id,
            name: PROGRESS_CHECKPOINT.into(),
            value: json!({"done": 2, "of": 5}),
            extend_lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    store.close().await;
    let shown = cli.json(&["jobs", "show", &id.to_string()]);
    assert_eq!(shown["progress"], json!({"done": 2, "of": 5}));
    let human = cli.ok(&["jobs", "show", &id.to_string()]);
    assert!(human.contains("progress"), "{human}");
}
