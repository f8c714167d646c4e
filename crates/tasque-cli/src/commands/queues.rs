//! `tasque queues`: list queues and why they may not be moving; pause, resume, set a
//! concurrency limit, turn blocking mode on or off.

use std::sync::Arc;

use serde_json::json;
use tasque_durable::{BlockingParams, QueueInfo, Store};

use crate::args::{QueueAction, QueueLimit, Switch};
use crate::fail::CliError;
use crate::output;

/// Runs `tasque queues [ACTION]`.
pub async fn run(
    store: Arc<dyn Store>,
    action: Option<QueueAction>,
    json_output: bool,
) -> Result<(), CliError> {
    match action {
        None | Some(QueueAction::List) => list(store, json_output).await,
        Some(QueueAction::Pause { queue }) => {
            store.pause_queue(&queue).await?;
            let text = format!("paused queue {queue}");
            say(json_output, json!({ "queue": queue, "paused": true }), text);
            Ok(())
        }
        Some(QueueAction::Resume { queue }) => {
            store.resume_queue(&queue).await?;
            let text = format!("resumed queue {queue}");
            say(
                json_output,
                json!({ "queue": queue, "paused": false }),
                text,
            );
            Ok(())
        }
        Some(QueueAction::Limit {
            queue,
            limit: QueueLimit(limit),
        }) => {
            store.set_queue_limit(&queue, limit).await?;
            let text = match limit {
                Some(n) => format!("queue {queue}: at most {n} jobs run at once"),
                None => format!("queue {queue}: no concurrency limit"),
            };
            say(
                json_output,
                json!({ "queue": queue, "concurrency_limit": limit }),
                text,
            );
            Ok(())
        }
        Some(QueueAction::Blocking {
            queue,
            mode: Switch(blocking),
            on_exhausted,
        }) => {
            let on_exhausted = match on_exhausted {
                Some(policy) => policy,
                None => current(&*store, &queue)
                    .await?
                    .map(|info| info.on_exhausted)
                    .unwrap_or_default(),
            };
            let params = BlockingParams {
                blocking,
                on_exhausted,
            };
            store.set_queue_blocking(&queue, params).await?;
            let text = if blocking {
                format!("queue {queue} is blocking (one job at a time, in order; when a job exhausts its attempts: {on_exhausted})")
            } else {
                format!("queue {queue} is not blocking")
            };
            say(
                json_output,
                json!({ "queue": queue, "blocking": blocking, "on_exhausted": on_exhausted }),
                text,
            );
            Ok(())
        }
    }
}

/// The queue named `name`, if it exists.
async fn current(store: &dyn Store, name: &str) -> Result<Option<QueueInfo>, CliError> {
    Ok(store
        .list_queues()
        .await?
        .into_iter()
        .find(|info| info.name == name))
}

/// One queue as a JSON object.
fn queue_json(q: &QueueInfo) -> serde_json::Value {
    json!({
        "name": q.name,
        "paused": q.paused,
        "concurrency_limit": q.concurrency_limit,
        "blocking": q.blocking,
        "on_exhausted": q.on_exhausted,
        "blocked": q.blocked_by.is_some(),
        "blocked_by": q.blocked_by,
        "counts": q.counts,
        "created_at": q.created_at,
    })
}

/// The status column: why a queue is not moving, if it is not.
fn status(q: &QueueInfo) -> String {
    let mut parts = Vec::new();
    if q.paused {
        parts.push("paused".to_owned());
    }
    if let Some(job) = q.blocked_by {
        parts.push(format!("blocked by job {job}"));
    }
    if parts.is_empty() {
        "active".to_owned()
    } else {
        let text = parts.join(", ");
        if output::colours() {
            format!("\x1b[33m{text}\x1b[0m")
        } else {
            text
        }
    }
}

async fn list(store: Arc<dyn Store>, json_output: bool) -> Result<(), CliError> {
    let queues = store.list_queues().await?;
    if json_output {
        let list: Vec<_> = queues.iter().map(queue_json).collect();
        output::json(&json!({ "queues": list }));
        return Ok(());
    }
    if queues.is_empty() {
        println!("no queues yet (a queue is created by its first job)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            let counts = &q.counts;
            vec![
                q.name.clone(),
                status(q),
                q.concurrency_limit
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                if q.blocking {
                    format!("blocking ({})", q.on_exhausted)
                } else {
                    "-".to_owned()
                },
                (counts.available + counts.scheduled).to_string(),
                counts.running.to_string(),
                (counts.sleeping + counts.waiting).to_string(),
                counts.completed.to_string(),
                counts.failed.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "queue",
            "status",
            "limit",
            "mode",
            "pending",
            "running",
            "suspended",
            "completed",
            "failed",
        ],
        &rows,
    );
    Ok(())
}

fn say(json_output: bool, value: serde_json::Value, text: String) {
    if json_output {
        output::json(&value);
    } else {
        println!("{text}");
    }
}
