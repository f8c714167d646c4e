//! spawn and spawn_many: validated in Rust (the engine-shared rules and payload limits), then
//! written by multi-row `INSERT`s. MySQL has no `INSERT ... RETURNING`: every row of a batch
//! carries the batch's random token and its position, so one range read tells which rows were
//! written and their ids; a row skipped for its idempotency key is then found by that key.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlArguments, MySqlQueryResult};
use sqlx::query::Query;
use sqlx::{MySql, MySqlConnection};
use tasque_durable::engine::{EngineSpawn, JobInsert};
use tasque_durable::{
    Error, JobId, Limits, Result, RetryStrategy, RunId, Spawn, SpawnResult, DEFAULT_MAX_ATTEMPTS,
};

use super::{ms, retry_conflicts, run_at_binds, us_of_ms};
use crate::queries::Sql;
use crate::{rows, sql_err, MySqlStore};

/// Rows per `INSERT` (22 binds each, under the protocol's 65,535).
const ROWS_PER_INSERT: usize = 1000;

/// One validated job, as the insert binds it.
#[derive(Debug)]
pub struct Encoded {
    queue: String,
    task: String,
    params: String,
    headers: Option<String>,
    priority: i32,
    max_attempts: i32,
    retry: String,
    timeout_ms: Option<i64>,
    max_duration_ms: Option<i64>,
    max_delay_ms: Option<i64>,
    key: Option<String>,
    run_at: Option<DateTime<Utc>>,
    delay_us: i64,
    ordering_key: Option<String>,
    unique_key: Option<String>,
    unique_period_ms: Option<i64>,
    unique_states: i64,
    deps: Option<tasque_durable::deps::Dependencies>,
}

impl Encoded {
    /// Binds the unique bucket of this job (see `unique_bucket!` in the queries).
    fn bind_bucket<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    ) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
        query
            .bind(self.unique_period_ms)
            .bind(self.run_at)
            .bind(self.delay_us)
            .bind(self.unique_period_ms)
    }

    /// True when the job has an idempotency key or a unique key (it may be skipped).
    fn is_keyed(&self) -> bool {
        self.key.is_some() || self.unique_key.is_some()
    }

    /// True when the job fits [`Sql::insert_plain_jobs`]: no key of any kind, ready at once,
    /// no max delay.
    fn is_plain(&self) -> bool {
        !self.is_keyed()
            && self.ordering_key.is_none()
            && self.run_at.is_none()
            && self.delay_us == 0
            && self.max_delay_ms.is_none()
    }
}

/// A validated job's binds.
pub fn encode(job: JobInsert) -> Encoded {
    let o = job.options;
    let (run_at, delay_us) = run_at_binds(o.run_at);
    let policy = o.cancellation.unwrap_or_default();
    Encoded {
        queue: job.queue,
        task: job.task,
        params: job.params,
        headers: job.headers,
        priority: o.priority.unwrap_or(0),
        max_attempts: i32::try_from(o.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS))
            .unwrap_or(i32::MAX),
        retry: encode_retry(&o.retry.unwrap_or_default()),
        timeout_ms: o.timeout.map(ms),
        max_duration_ms: policy.max_duration.map(ms),
        max_delay_ms: policy.max_delay.map(ms),
        key: o.idempotency_key,
        run_at,
        delay_us,
        ordering_key: o.ordering_key,
        unique_key: o.unique.as_ref().map(|u| u.key.clone()),
        unique_period_ms: o.unique.as_ref().and_then(|u| u.period_ms()),
        unique_states: o.unique.as_ref().map_or(0, |u| u.states.mask()),
        deps: o.depends_on,
    }
}

/// Validates and encodes a batch; nothing is written when one job fails.
pub fn encode_all(spawns: Vec<Spawn>, limits: &Limits) -> Result<Vec<Encoded>> {
    spawns
        .into_iter()
        .map(|s| JobInsert::encode(s, limits).map(encode))
        .collect()
}

/// A retry strategy as stored.
pub fn encode_retry(retry: &RetryStrategy) -> String {
    serde_json::to_string(retry).unwrap_or_else(|_| "{\"kind\":\"none\"}".to_string())
}

fn created(id: i64) -> SpawnResult {
    let job = JobId(id);
    SpawnResult {
        job_id: job,
        run_id: RunId::new(job, 1),
        attempt: 1,
        created: true,
    }
}

/// Inserts `jobs` through `conn` (a transaction, or a plain connection for one job without an
/// idempotency key or dependencies), results in input order. Their queues must exist. The
/// parents of jobs with dependencies are locked and checked first (an unknown one refuses the
/// batch before anything is inserted), then each created child is attached to them.
pub async fn insert(
    conn: &mut MySqlConnection,
    sql: &Sql,
    jobs: &[Encoded],
) -> Result<Vec<SpawnResult>> {
    let parents =
        super::deps::mark_parents(&mut *conn, sql, jobs.iter().filter_map(|j| j.deps.as_ref()))
            .await?;
    let mut results = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(ROWS_PER_INSERT) {
        let done = insert_chunk(conn, sql, chunk).await?;
        for (job, result) in chunk.iter().zip(&done) {
            if let Some(deps) = &job.deps {
                super::deps::attach(&mut *conn, sql, result, deps, &parents).await?;
            }
        }
        results.extend(done);
    }
    Ok(results)
}

async fn insert_chunk(
    conn: &mut MySqlConnection,
    sql: &Sql,
    jobs: &[Encoded],
) -> Result<Vec<SpawnResult>> {
    let mut ordered: Vec<&str> = jobs
        .iter()
        .filter(|j| j.ordering_key.is_some())
        .map(|j| j.queue.as_str())
        .collect();
    ordered.sort_unstable();
    ordered.dedup();
    for queue in ordered {
        // A queue with keyed jobs is claimed through the gated path (see `ops/gated.rs`).
        sqlx::query(&sql.mark_keyed)
            .bind(queue)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
    }
    let token: i64 = rand::random();
    let done = if jobs.iter().all(Encoded::is_plain) {
        insert_plain(conn, sql, jobs, token).await?
    } else {
        insert_general(conn, sql, jobs, token).await?
    };
    let first = i64::try_from(done.last_insert_id()).unwrap_or(0);
    // One job without a key: the id the server reports is its own.
    if jobs.len() == 1 && !jobs[0].is_keyed() && first > 0 {
        return Ok(vec![created(first)]);
    }
    let mut ids: HashMap<usize, i64> = HashMap::with_capacity(jobs.len());
    if first > 0 {
        let rows = sqlx::query(&sql.inserted)
            .bind(first)
            .bind(token)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_err)?;
        for row in &rows {
            let ord: i32 = rows::at(row, 1)?;
            ids.insert(
                usize::try_from(ord).unwrap_or(usize::MAX),
                rows::at(row, 0)?,
            );
        }
    }
    let existing = if ids.len() < jobs.len() {
        find_keys(conn, sql, jobs, &ids).await?
    } else {
        HashMap::new()
    };
    let mut results = Vec::with_capacity(jobs.len());
    for (ord, job) in jobs.iter().enumerate() {
        if let Some(id) = ids.get(&ord) {
            results.push(created(*id));
            continue;
        }
        let by_key = job
            .key
            .as_ref()
            .and_then(|key| existing.get(&(job.queue.clone(), key.clone())))
            .copied();
        let found = match (by_key, &job.unique_key) {
            (Some(found), _) => Some(found),
            (None, Some(unique_key)) => find_unique(conn, sql, job, unique_key).await?,
            (None, None) => None,
        };
        // A unique slot's holder left its states between the insert and the read: the caller
        // (retrying serialization conflicts) or the user tries again.
        results.push(
            found.ok_or_else(|| Error::Corrupt(format!("job {ord} of a spawn batch vanished")))?,
        );
    }
    Ok(results)
}

/// Binds the columns both insert statements start a job's row with: queue, task, params,
/// headers, priority, max attempts, retry, timeout and maximum duration.
fn bind_shared<'q>(
    query: Query<'q, MySql, MySqlArguments>,
    job: &'q Encoded,
) -> Query<'q, MySql, MySqlArguments> {
    query
        .bind(&job.queue)
        .bind(&job.task)
        .bind(&job.params)
        .bind(&job.headers)
        .bind(job.priority)
        .bind(job.max_attempts)
        .bind(&job.retry)
        .bind(job.timeout_ms)
        .bind(job.max_duration_ms)
}

/// Inserts plain jobs (see [`Encoded::is_plain`]) in one statement.
async fn insert_plain(
    conn: &mut MySqlConnection,
    sql: &Sql,
    jobs: &[Encoded],
    token: i64,
) -> Result<MySqlQueryResult> {
    let statement = sql.insert_plain_jobs(jobs.len());
    let mut query = sqlx::query(&statement);
    for (ord, job) in jobs.iter().enumerate() {
        query = bind_shared(query, job)
            .bind(token)
            .bind(i32::try_from(ord).unwrap_or(i32::MAX));
    }
    query.execute(&mut *conn).await.map_err(sql_err)
}

/// Inserts any jobs in one statement; a job whose idempotency key or unique slot is taken is
/// skipped.
async fn insert_general(
    conn: &mut MySqlConnection,
    sql: &Sql,
    jobs: &[Encoded],
    token: i64,
) -> Result<MySqlQueryResult> {
    let ordered = jobs.iter().any(|j| j.ordering_key.is_some());
    let statement = sql.insert_jobs(jobs.len(), ordered);
    let mut query = sqlx::query(&statement);
    for (ord, job) in jobs.iter().enumerate() {
        query = bind_shared(query, job)
            .bind(job.max_delay_ms)
            .bind(&job.key)
            .bind(job.run_at)
            .bind(job.delay_us)
            .bind(us_of_ms(job.max_delay_ms))
            .bind(token)
            .bind(i32::try_from(ord).unwrap_or(i32::MAX))
            .bind(&job.unique_key)
            .bind(job.unique_states);
        query = job.bind_bucket(query);
        if ordered {
            query = query.bind(&job.ordering_key);
        }
    }
    query.execute(&mut *conn).await.map_err(sql_err)
}

/// The job holding the unique slot of `job`, not inserted.
async fn find_unique(
    conn: &mut MySqlConnection,
    sql: &Sql,
    job: &Encoded,
    unique_key: &str,
) -> Result<Option<SpawnResult>> {
    let statement = sql.find_unique();
    let query = job.bind_bucket(sqlx::query(&statement).bind(unique_key));
    let row = query.fetch_optional(&mut *conn).await.map_err(sql_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let job = JobId(rows::at(&row, 0)?);
    let attempt: i32 = rows::at(&row, 2)?;
    Ok(Some(SpawnResult {
        job_id: job,
        run_id: RunId::new(job, rows::at(&row, 1)?),
        attempt: u32::try_from(attempt).unwrap_or(1),
        created: false,
    }))
}

/// The jobs holding the keys of the jobs not inserted, by (queue, key).
async fn find_keys(
    conn: &mut MySqlConnection,
    sql: &Sql,
    jobs: &[Encoded],
    inserted: &HashMap<usize, i64>,
) -> Result<HashMap<(String, String), SpawnResult>> {
    let wanted: Vec<(&str, &str)> = jobs
        .iter()
        .enumerate()
        .filter(|(ord, _)| !inserted.contains_key(ord))
        .filter_map(|(_, j)| j.key.as_deref().map(|k| (j.queue.as_str(), k)))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = sql.find_keys(wanted.len());
    let mut query = sqlx::query(&statement);
    for (queue, key) in &wanted {
        query = query.bind(*queue).bind(*key);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(sql_err)?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let job = JobId(rows::at(row, 0)?);
        let attempt: i32 = rows::at(row, 2)?;
        let result = SpawnResult {
            job_id: job,
            run_id: RunId::new(job, rows::at(row, 1)?),
            attempt: u32::try_from(attempt).unwrap_or(1),
            created: false,
        };
        found.insert((rows::text_at(row, 3)?, rows::text_at(row, 4)?), result);
    }
    Ok(found)
}

impl MySqlStore {
    /// Creates the queues of `jobs` this store does not know yet, outside any transaction
    /// (so a caller's transaction never holds a queue row locked).
    pub(crate) async fn ensure_queues_of(&self, jobs: &[Encoded]) -> Result<()> {
        let missing: Vec<String> = {
            let known = self.known_queues();
            let mut missing: Vec<String> = jobs
                .iter()
                .filter(|j| !known.contains(&j.queue))
                .map(|j| j.queue.clone())
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if missing.is_empty() {
            return Ok(());
        }
        let statement = self.inner.sql.ensure_queues(missing.len());
        retry_conflicts(|| async {
            let mut query = sqlx::query(&statement);
            for queue in &missing {
                query = query.bind(queue);
            }
            query.execute(&self.inner.pool).await.map_err(sql_err)
        })
        .await?;
        self.known_queues().extend(missing);
        Ok(())
    }

    /// Spawns validated jobs: one job without a key in one autocommitted statement, anything
    /// else in one transaction.
    pub(crate) async fn spawn_encoded(&self, jobs: Vec<Encoded>) -> Result<Vec<SpawnResult>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_queues_of(&jobs).await?;
        let sql = &self.inner.sql;
        let results = if jobs.len() == 1 && !jobs[0].is_keyed() && jobs[0].deps.is_none() {
            let mut conn = self.inner.pool.acquire().await.map_err(sql_err)?;
            insert(&mut conn, sql, &jobs).await?
        } else {
            retry_conflicts(|| async {
                let mut tx = self.begin().await?;
                let results = insert(&mut tx, sql, &jobs).await?;
                tx.commit().await.map_err(sql_err)?;
                Ok(results)
            })
            .await?
        };
        let ready = jobs
            .iter()
            .filter(|j| j.run_at.is_none() && j.delay_us == 0);
        self.announce(ready.map(|j| j.queue.as_str()));
        Ok(results)
    }
}

#[async_trait]
impl EngineSpawn for MySqlStore {
    async fn job_insert(&self, job: JobInsert) -> Result<SpawnResult> {
        self.spawn_encoded(vec![encode(job)])
            .await?
            .pop()
            .ok_or_else(|| Error::Corrupt("a one-job insert returned no result".into()))
    }

    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<SpawnResult>> {
        self.spawn_encoded(jobs.into_iter().map(encode).collect())
            .await
    }
}
