//! spawn and spawn_many: validated in Rust (the engine-shared rules and payload limits), then
//! written by the schema's `spawn_batch` SQL function, the same one other languages call.

use chrono::SecondsFormat;
use serde_json::{Map, Value};
use sqlx::{PgExecutor, Row};
use tasque_durable::validate::{encode_payload, validate_spawn};
use tasque_durable::{JobId, Limits, Result, RunAt, RunId, Spawn, SpawnOptions, SpawnResult};

use super::ms;
use crate::sql_err;

/// A validated batch, as the parallel arrays `spawn_batch` takes.
#[derive(Debug, Default)]
pub struct Batch {
    queues: Vec<String>,
    tasks: Vec<String>,
    params: Vec<String>,
    options: Vec<String>,
}

impl Batch {
    /// Validates and encodes every spawn; nothing is written when one fails.
    pub fn encode(spawns: Vec<Spawn>, limits: &Limits) -> Result<Batch> {
        let mut batch = Batch::default();
        for spawn in spawns {
            validate_spawn(&spawn)?;
            batch
                .params
                .push(encode_payload("params", &spawn.params, limits)?);
            batch.options.push(encode_options(&spawn.options, limits)?);
            batch.queues.push(spawn.queue);
            batch.tasks.push(spawn.task);
        }
        Ok(batch)
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Inserts the batch through `executor` (a pool, a connection or the caller's transaction).
    pub async fn insert<'e>(
        self,
        executor: impl PgExecutor<'e>,
        sql: &str,
    ) -> Result<Vec<SpawnResult>> {
        if self.len() == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql)
            .bind(self.queues)
            .bind(self.tasks)
            .bind(self.params)
            .bind(self.options)
            .fetch_all(executor)
            .await
            .map_err(sql_err)?;
        rows.iter().map(spawn_result).collect()
    }
}

fn spawn_result(row: &sqlx::postgres::PgRow) -> Result<SpawnResult> {
    let job = JobId(row.try_get(0).map_err(sql_err)?);
    let seq: i64 = row.try_get(1).map_err(sql_err)?;
    let attempt: i32 = row.try_get(2).map_err(sql_err)?;
    Ok(SpawnResult {
        job_id: job,
        run_id: RunId::new(job, seq),
        attempt: u32::try_from(attempt).unwrap_or(1),
        created: row.try_get(3).map_err(sql_err)?,
    })
}

/// Spawn options as the JSON object the SQL function reads (only set fields appear, so the
/// function's defaults apply, exactly as for callers from other languages).
pub fn encode_options(o: &SpawnOptions, limits: &Limits) -> Result<String> {
    let mut m = Map::new();
    if let Some(n) = o.max_attempts {
        m.insert("max_attempts".into(), n.into());
    }
    if let Some(p) = o.priority {
        m.insert("priority".into(), p.into());
    }
    match o.run_at {
        None | Some(RunAt::Now) => {}
        Some(RunAt::At(at)) => {
            let text = at.to_rfc3339_opts(SecondsFormat::Micros, true);
            m.insert("run_at".into(), text.into());
        }
        // A positive delay under a millisecond still delays.
        Some(RunAt::After(d)) => {
            m.insert("delay_ms".into(), ms(d).max(1).into());
        }
    }
    if let Some(t) = o.timeout {
        m.insert("timeout_ms".into(), ms(t).into());
    }
    if let Some(retry) = &o.retry {
        let value = serde_json::to_value(retry)
            .map_err(|e| tasque_durable::Error::Corrupt(e.to_string()))?;
        m.insert("retry".into(), value);
    }
    if let Some(policy) = o.cancellation {
        if let Some(d) = policy.max_duration {
            m.insert("max_duration_ms".into(), ms(d).into());
        }
        if let Some(d) = policy.max_delay {
            m.insert("max_delay_ms".into(), ms(d).into());
        }
    }
    if let Some(headers) = o.headers.as_ref().filter(|h| !h.is_null()) {
        encode_payload("headers", headers, limits)?;
        m.insert("headers".into(), headers.clone());
    }
    if let Some(key) = &o.idempotency_key {
        m.insert("idempotency_key".into(), key.clone().into());
    }
    Ok(Value::Object(m).to_string())
}
