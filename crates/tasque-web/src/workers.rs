//! The workers page's data: the worker registry ([`tasque_durable::registry`]) as rows, read
//! on demand (one small table).

use serde::Serialize;
use tasque_durable::Store;

use crate::error::WebError;

/// One worker, as the page and `/api/workers` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkerRow {
    /// The worker's id.
    pub id: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Milliseconds since its last heartbeat (engine clock).
    pub heartbeat_age_ms: i64,
    /// Whether it is alive (its last heartbeat has not expired).
    pub alive: bool,
}

/// Every recorded worker, live ones first; `None` when the engine keeps no registry.
pub async fn load(store: &dyn Store) -> Result<Option<Vec<WorkerRow>>, WebError> {
    let Some(registry) = store.registry() else {
        return Ok(None);
    };
    let now = store.now().await?;
    let mut rows: Vec<WorkerRow> = registry
        .worker_list()
        .await?
        .into_iter()
        .map(|w| WorkerRow {
            heartbeat_age_ms: (now - w.heartbeat_at).num_milliseconds().max(0),
            started_at: rfc(w.started_at),
            heartbeat_at: rfc(w.heartbeat_at),
            id: w.id,
            host: w.host,
            pid: w.pid,
            queues: w.queues,
            alive: w.alive,
        })
        .collect();
    rows.sort_by(|a, b| b.alive.cmp(&a.alive).then_with(|| a.id.cmp(&b.id)));
    Ok(Some(rows))
}

fn rfc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
