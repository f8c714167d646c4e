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
    deps: Vec<Option<tasque_durable::deps::Dependencies>>,
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
            batch.deps.push(job.options.depends_on.clone());
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

    /// True when a job of the batch has dependencies (it must be inserted by
    /// [`insert_in_tx`](Self::insert_in_tx)).
    pub fn has_deps(&self) -> bool {
        self.deps.iter().any(Option::is_some)
    }

    /// Inserts the batch inside a transaction (on `conn`), checking and marking the parents of
    /// jobs with dependencies first and attaching each created child after.
    pub async fn insert_in_tx(
        mut self,
        conn: &mut sqlx::PgConnection,
        sql: &Sql,
        schema: &str,
    ) -> Result<Vec<SpawnResult>> {
        let deps = std::mem::take(&mut self.deps);
        let parents = super::deps::mark_parents(&mut *conn, schema, deps.iter().flatten()).await?;
        let results = self.insert(&mut *conn, sql).await?;
        for (result, deps) in results.iter().zip(&deps) {
            if let Some(deps) = deps {
                super::deps::attach(&mut *conn, schema, result, deps, &parents).await?;
            }
        }
        Ok(results)
    }

    /// Inserts the batch through `executor` (a pool, a connection or the caller's transaction):
    /// one job by `spawn`, more by `spawn_batch`. Dependencies are not handled here (see
    /// [`insert_in_tx`](Self::insert_in_tx)).
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

impl PostgresStore {
    /// Inserts a batch: in one transaction when a job has dependencies, else as one statement.
    async fn insert_batch(&self, batch: Batch) -> Result<Vec<SpawnResult>> {
        if !batch.has_deps() {
            return batch.insert(&self.inner.pool, &self.inner.sql).await;
        }
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        let results = batch
            .insert_in_tx(&mut tx, &self.inner.sql, &self.inner.schema)
            .await?;
        tx.commit().await.map_err(sql_err)?;
        Ok(results)
    }
}

#[async_trait]
impl EngineSpawn for PostgresStore {
    async fn job_insert(&self, job: JobInsert) -> Result<SpawnResult> {
        let mut results = self.insert_batch(Batch::of(vec![job])).await?;
        results.pop().ok_or_else(|| {
            tasque_durable::Error::Corrupt("a one-job insert returned no result".into())
        })
    }

    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<SpawnResult>> {
        self.insert_batch(Batch::of(jobs)).await
    }
}
