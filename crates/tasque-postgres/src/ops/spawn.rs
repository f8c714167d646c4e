//! spawn and spawn_many: validated in Rust (the engine-shared rules and payload limits), then
//! written by the schema's SQL functions, the ones other languages call: `spawn` for one job,
//! `spawn_batch` for more.

use sqlx::{PgExecutor, Row};
use tasque_durable::validate::{encode_payload, options_document, validate_spawn};
use tasque_durable::{JobId, Limits, Result, RunId, Spawn, SpawnOptions, SpawnResult};

use crate::queries::Sql;
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

    /// Inserts the batch through `executor` (a pool, a connection or the caller's transaction):
    /// one job by `spawn`, more by `spawn_batch`.
    pub async fn insert<'e>(
        mut self,
        executor: impl PgExecutor<'e>,
        sql: &Sql,
    ) -> Result<Vec<SpawnResult>> {
        let rows = match self.len() {
            0 => return Ok(Vec::new()),
            1 => {
                let (Some(queue), Some(task), Some(params), Some(options)) = (
                    self.queues.pop(),
                    self.tasks.pop(),
                    self.params.pop(),
                    self.options.pop(),
                ) else {
                    return Ok(Vec::new());
                };
                sqlx::query(&sql.spawn_one)
                    .bind(queue)
                    .bind(task)
                    .bind(params)
                    .bind(options)
                    .fetch_all(executor)
                    .await
            }
            _ => {
                sqlx::query(&sql.spawn)
                    .bind(self.queues)
                    .bind(self.tasks)
                    .bind(self.params)
                    .bind(self.options)
                    .fetch_all(executor)
                    .await
            }
        }
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

/// Spawn options as the option document the SQL functions read (only set fields appear, so
/// the functions' defaults apply, exactly as for callers from other languages), with the
/// headers' size checked.
pub fn encode_options(o: &SpawnOptions, limits: &Limits) -> Result<String> {
    if let Some(headers) = o.headers.as_ref().filter(|h| !h.is_null()) {
        encode_payload("headers", headers, limits)?;
    }
    Ok(options_document(o).to_string())
}
