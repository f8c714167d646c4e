//! `tasque queues`: list queues and why they may not be moving; pause, resume, set a
//! concurrency limit, turn blocking mode on or off.

use std::sync::Arc;

use serde_json::json;
use tasque_durable::flow::{Flow, KeyPolicy, QueueFlow, RateKey, RateLimit};
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
        Some(QueueAction::Keys {
            queue,
            concurrency,
            on_exhausted,
        }) => {
            let policy = KeyPolicy {
                concurrency,
                on_exhausted,
            };
            flow(&*store)?.set_key_policy(&queue, policy).await?;
            let text = format!(
                "queue {queue}: at most {concurrency} jobs of one ordering key at a time, in \
                 enqueue order; when a keyed job exhausts its attempts: {on_exhausted}"
            );
            say(
                json_output,
                json!({ "queue": queue, "key_concurrency": concurrency, "key_on_exhausted": on_exhausted }),
                text,
            );
            Ok(())
        }
        Some(QueueAction::Rate {
            queue,
            limit: QueueLimit(limit),
            per_window,
            key,
        }) => {
            let rate = limit.map(|n| RateLimit::new(n, per_window).per(key));
            flow(&*store)?.set_rate_limit(&queue, rate.clone()).await?;
            let text = match &rate {
                Some(rate) => format!("queue {queue}: {}", rate_text(rate)),
                None => format!("queue {queue}: no rate limit"),
            };
            say(
                json_output,
                json!({ "queue": queue, "rate_limit": rate.as_ref().map(rate_json) }),
                text,
            );
            Ok(())
        }
    }
}

/// The store's flow control, or an error naming its absence.
fn flow(store: &dyn Store) -> Result<Flow<'_>, CliError> {
    store.flow().ok_or_else(|| {
        CliError::from(tasque_durable::Error::invalid_option(
            "queue",
            "this database engine has no flow control",
        ))
    })
}

/// A rate limit in words.
pub fn rate_text(rate: &RateLimit) -> String {
    let per = match &rate.key {
        RateKey::Queue => String::new(),
        key => format!(" per {key}"),
    };
    format!(
        "at most {} starts per {}{per}",
        rate.limit,
        humantime_ms(rate.window_ms())
    )
}

fn humantime_ms(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// A rate limit as a JSON object.
pub fn rate_json(rate: &RateLimit) -> serde_json::Value {
    json!({ "limit": rate.limit, "window_ms": rate.window_ms(), "key": rate.key.as_stored() })
}

/// A queue's flow settings as a JSON object.
fn flow_json(flow: &QueueFlow) -> serde_json::Value {
    json!({
        "key_concurrency": flow.keys.concurrency,
        "key_on_exhausted": flow.keys.on_exhausted,
        "rate_limit": flow.rate.as_ref().map(rate_json),
    })
}

/// Every queue's flow settings, by position (defaults when the store has no flow control).
async fn flows(store: &dyn Store, queues: &[QueueInfo]) -> Result<Vec<QueueFlow>, CliError> {
    let mut out = Vec::with_capacity(queues.len());
    for q in queues {
        out.push(match store.flow() {
            Some(flow) => flow.queue(&q.name).await?,
            None => QueueFlow::default(),
        });
    }
    Ok(out)
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
    let flows = flows(&*store, &queues).await?;
    if json_output {
        let list: Vec<_> = queues
            .iter()
            .zip(&flows)
            .map(|(q, f)| {
                let mut doc = queue_json(q);
                doc["flow"] = flow_json(f);
                doc
            })
            .collect();
        output::json(&json!({ "queues": list }));
        return Ok(());
    }
    if queues.is_empty() {
        println!("no queues yet (a queue is created by its first job)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = queues
        .iter()
        .zip(&flows)
        .map(|(q, f)| {
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
                flow_text(f),
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
            "flow",
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

/// The flow column: key concurrency when not the default, and the rate limit.
fn flow_text(f: &QueueFlow) -> String {
    let mut parts = Vec::new();
    if f.keys != KeyPolicy::default() {
        parts.push(format!(
            "{} per key ({})",
            f.keys.concurrency, f.keys.on_exhausted
        ));
    }
    if let Some(rate) = &f.rate {
        parts.push(format!(
            "{}/{}{}",
            rate.limit,
            humantime_ms(rate.window_ms()),
            match &rate.key {
                RateKey::Queue => String::new(),
                key => format!(" per {key}"),
            }
        ));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

fn say(json_output: bool, value: serde_json::Value, text: String) {
    if json_output {
        output::json(&value);
    } else {
        println!("{text}");
    }
}
