//! `tasque workers`: the worker processes recorded in the namespace (the worker registry).

use std::sync::Arc;

use serde_json::json;
use tasque_durable::Store;

use crate::fail::CliError;
use crate::output;

/// Runs `tasque workers`: id, host, pid, queues, started, last heartbeat, alive.
pub async fn run(store: Arc<dyn Store>, json_output: bool) -> Result<(), CliError> {
    let registry = store
        .registry()
        .ok_or_else(|| CliError::Failed("this database engine keeps no worker registry".into()))?;
    let now = store.now().await?;
    let workers = registry.worker_list().await?;
    if json_output {
        let rows: Vec<_> = workers
            .iter()
            .map(|w| {
                json!({
                    "id": w.id,
                    "host": w.host,
                    "pid": w.pid,
                    "queues": w.queues,
                    "started_at": w.started_at,
                    "heartbeat_at": w.heartbeat_at,
                    "alive": w.alive,
                })
            })
            .collect();
        output::json(&json!({ "workers": rows }));
        return Ok(());
    }
    if workers.is_empty() {
        println!("no worker has recorded itself");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let age = (now - w.heartbeat_at).num_milliseconds().max(0) as f64 / 1000.0;
            vec![
                w.id.clone(),
                w.host.clone(),
                w.pid.to_string(),
                w.queues.join(","),
                w.started_at.to_rfc3339(),
                format!("{age:.1}s ago"),
                if w.alive { "alive" } else { "gone" }.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "HOST",
            "PID",
            "QUEUES",
            "STARTED",
            "HEARTBEAT",
            "STATUS",
        ],
        &rows,
    );
    Ok(())
}
