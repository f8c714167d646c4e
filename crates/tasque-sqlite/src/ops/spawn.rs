//! spawn and spawn_many.

use async_trait::async_trait;
use serde_json::{json, Value};
use sqlx::{Row, SqliteConnection};
use tasque_durable::engine::{EngineSpawn, JobInsert};
use tasque_durable::{
    Error, JobId, Result, RetryStrategy, RunId, SpawnResult, DEFAULT_MAX_ATTEMPTS,
};

use super::{ms, run_at_binds};
use crate::{queries, sql_err, SqliteStore};

/// A validated spawn, encoded for binding.
pub struct Encoded {
    queue: String,
    task: String,
    params: String,
    headers: Option<String>,
    priority: i32,
    max_attempts: i64,
    retry: String,
    timeout_ms: Option<i64>,
    max_duration_ms: Option<i64>,
    max_delay_ms: Option<i64>,
    key: Option<String>,
    run_at: Option<i64>,
    delay_ms: i64,
    ordering_key: Option<String>,
}

/// A validated job's binds.
pub fn encode(job: JobInsert) -> Encoded {
    let o = job.options;
    let retry = o.retry.unwrap_or_default();
    let (run_at, delay_ms) = run_at_binds(o.run_at);
    let policy = o.cancellation.unwrap_or_default();
    Encoded {
        queue: job.queue,
        task: job.task,
        params: job.params,
        headers: job.headers,
        priority: o.priority.unwrap_or(0),
        max_attempts: i64::from(o.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)),
        retry: encode_retry(&retry),
        timeout_ms: o.timeout.map(ms),
        max_duration_ms: policy.max_duration.map(ms),
        max_delay_ms: policy.max_delay.map(ms),
        key: o.idempotency_key,
        run_at,
        delay_ms,
        ordering_key: o.ordering_key,
    }
}

impl Encoded {
    /// The job's queue.
    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }
}

/// A retry strategy as stored.
pub fn encode_retry(retry: &RetryStrategy) -> String {
    serde_json::to_string(retry).unwrap_or_else(|_| "{\"kind\":\"none\"}".to_string())
}

fn spawn_result(row: &sqlx::sqlite::SqliteRow, created: bool) -> Result<SpawnResult> {
    let job = JobId(row.try_get(0).map_err(sql_err)?);
    let seq: i64 = row.try_get(1).map_err(sql_err)?;
    let attempt: i64 = row.try_get(2).map_err(sql_err)?;
    Ok(SpawnResult {
        job_id: job,
        run_id: RunId::new(job, seq),
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        created,
    })
}

/// The one result of a one-job batch.
fn only(mut results: Vec<SpawnResult>) -> Result<SpawnResult> {
    results
        .pop()
        .ok_or_else(|| Error::Corrupt("a one-job insert returned no result".into()))
}

/// Jobs per multi-row insert statement.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// A job as one element of [`queries::INSERT_JOBS`]'s array.
fn as_row(job: &Encoded) -> Value {
    json!([
        job.queue,
        job.task,
        job.params,
        job.headers,
        job.priority,
        job.max_attempts,
        job.retry,
        job.timeout_ms,
        job.max_duration_ms,
        job.max_delay_ms,
        job.key,
        job.run_at,
        job.delay_ms,
        job.ordering_key
    ])
}

/// One row [`queries::INSERT_JOBS`] returned.
struct Inserted {
    result: SpawnResult,
    queue: String,
    key: Option<String>,
}

/// Inserts a chunk of jobs with one statement and returns their results in input order. A job
/// whose idempotency key was taken (by an earlier job, or earlier in the same batch) gets the
/// job holding the key, with `created` false.
pub(crate) async fn insert_chunk(
    conn: &mut SqliteConnection,
    ns: &str,
    jobs: &[Encoded],
) -> Result<Vec<SpawnResult>> {
    let mut keyed: Vec<&str> = jobs
        .iter()
        .filter(|j| j.ordering_key.is_some())
        .map(|j| j.queue.as_str())
        .collect();
    if !keyed.is_empty() {
        // A queue with keyed jobs is claimed through the gated path (see `ops/gated.rs`).
        keyed.sort_unstable();
        keyed.dedup();
        sqlx::query(queries::MARK_KEYED)
            .bind(ns)
            .bind(serde_json::json!(keyed).to_string())
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
    }
    let rows: Vec<Value> = jobs.iter().map(as_row).collect();
    let returned = sqlx::query(queries::INSERT_JOBS)
        .bind(ns)
        .bind(Value::Array(rows).to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_err)?;
    let mut inserted = Vec::with_capacity(returned.len());
    for row in &returned {
        inserted.push(Inserted {
            result: spawn_result(row, true)?,
            queue: row.try_get(3).map_err(sql_err)?,
            key: row.try_get(4).map_err(sql_err)?,
        });
    }
    // Ids rise in insertion order (AUTOINCREMENT), which is the array's order.
    inserted.sort_unstable_by_key(|i| i.result.job_id.0);
    let mut inserted = inserted.into_iter().peekable();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let next_is_this_job = inserted
            .peek()
            .is_some_and(|i| i.queue == job.queue && i.key == job.key);
        if next_is_this_job {
            if let Some(row) = inserted.next() {
                results.push(row.result);
            }
            continue;
        }
        // Only a job with an idempotency key can have been skipped.
        let row = sqlx::query(queries::FIND_BY_IDEMPOTENCY_KEY)
            .bind(ns)
            .bind(&job.queue)
            .bind(&job.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_err)?;
        results.push(spawn_result(&row, false)?);
    }
    Ok(results)
}

impl SqliteStore {
    fn unknown_queues<'a>(&self, jobs: &'a [Encoded]) -> Vec<&'a str> {
        let known = self.known_queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut missing: Vec<&str> = jobs
            .iter()
            .map(|j| j.queue.as_str())
            .filter(|q| !known.contains(*q))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    pub(crate) fn remember_queues(&self, queues: &[&str]) {
        let mut known = self.known_queues.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(queues.iter().map(|q| q.to_string()));
    }

    async fn insert_batch(&self, jobs: &[Encoded]) -> Result<Vec<SpawnResult>> {
        let missing = self.unknown_queues(jobs);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_err)?;
        for queue in &missing {
            sqlx::query(queries::ENSURE_QUEUE)
                .bind(&*self.ns)
                .bind(*queue)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        let mut results = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(INSERT_CHUNK) {
            results.extend(insert_chunk(&mut tx, &self.ns, chunk).await?);
        }
        tx.commit().await.map_err(sql_err)?;
        self.remember_queues(&missing);
        if let Some(job) = jobs.first() {
            // One hint is enough: a woken worker claims from all its queues.
            self.announce(&job.queue);
        }
        Ok(results)
    }
}

#[async_trait]
impl EngineSpawn for SqliteStore {
    async fn job_insert(&self, job: JobInsert) -> Result<SpawnResult> {
        let job = encode(job);
        let batch = std::slice::from_ref(&job);
        if self.unknown_queues(batch).is_empty() {
            let mut conn = self.pool.acquire().await.map_err(sql_err)?;
            let spawned = only(insert_chunk(&mut conn, &self.ns, batch).await?)?;
            self.announce(&job.queue);
            return Ok(spawned);
        }
        only(self.insert_batch(batch).await?)
    }

    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<SpawnResult>> {
        let jobs: Vec<Encoded> = jobs.into_iter().map(encode).collect();
        self.insert_batch(&jobs).await
    }
}
