//! spawn and spawn_many: validated in Rust (the engine-shared rules and payload limits), then
//! written by the schema's SQL functions, the ones other languages call: `spawn` for one job,
//! `spawn_batch` for more.

use async_trait::async_trait;
use sqlx::{PgExecutor, Row};
use tasque_durable::engine::{EngineSpawn, JobInsert};
use tasque_durable::validate::options_document;
use tasque_durable::{JobId, Limits, Result, RunId, Spawn, SpawnResult};

use crate::queries::Sql;
use crate::{sql_err, PostgresStore};

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
        let jobs = spawns
            .into_iter()
            .map(|spawn| JobInsert::encode(spawn, limits))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch::of(jobs))
    }

    /// The arrays of validated jobs.
    pub fn of(jobs: Vec<JobInsert>) -> Batch {
        let mut batch = Batch::default();
        for job in jobs {
            batch.params.push(job.params);
            // Only set fields appear, so the SQL functions' defaults apply, exactly as for
            // callers from other languages.
            batch
                .options
                .push(options_document(&job.options).to_string());
            batch.queues.push(job.queue);
            batch.tasks.push(job.task);
        }
        batch
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

#[async_trait]
impl EngineSpawn for PostgresStore {
    async fn job_insert(&self, job: JobInsert) -> Result<SpawnResult> {
        let mut results = Batch::of(vec![job])
            .insert(&self.inner.pool, &self.inner.sql)
            .await?;
        results.pop().ok_or_else(|| {
            tasque_durable::Error::Corrupt("a one-job insert returned no result".into())
        })
    }

    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<SpawnResult>> {
        Batch::of(jobs)
            .insert(&self.inner.pool, &self.inner.sql)
            .await
    }
}
