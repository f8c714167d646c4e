//! spawn and spawn_many.

use async_trait::async_trait;
use sqlx::sqlite::SqliteArguments;
use sqlx::{query::Query, Row, Sqlite, SqliteConnection};
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
    unique_key: Option<String>,
    unique_period_ms: Option<i64>,
    unique_states: Option<i64>,
    deps: Option<tasque_durable::deps::Dependencies>,
}

/// A validated job's binds.
pub fn encode(job: JobInsert) -> Encoded {
    let o = job.options;
    let (run_at, delay_ms) = run_at_binds(o.run_at);
    let policy = o.cancellation.unwrap_or_default();
    Encoded {
        queue: job.queue,
        task: job.task,
        params: job.params,
        headers: job.headers,
        priority: o.priority.unwrap_or(0),
        max_attempts: i64::from(o.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)),
        retry: match &o.retry {
            Some(retry) => encode_retry(retry),
            None => default_retry().to_owned(),
        },
        timeout_ms: o.timeout.map(ms),
        max_duration_ms: policy.max_duration.map(ms),
        max_delay_ms: policy.max_delay.map(ms),
        key: o.idempotency_key,
        run_at,
        delay_ms,
        ordering_key: o.ordering_key,
        unique_key: o.unique.as_ref().map(|u| u.key.clone()),
        unique_period_ms: o.unique.as_ref().and_then(|u| u.period_ms()),
        unique_states: o.unique.as_ref().map(|u| u.states.mask()),
        deps: o.depends_on,
    }
}

impl Encoded {
    /// True when the job sets none of the options a plain row leaves at their defaults (see
    /// [`queries::insert_plain_jobs`]).
    fn is_plain(&self) -> bool {
        self.headers.is_none()
            && self.timeout_ms.is_none()
            && self.max_duration_ms.is_none()
            && self.max_delay_ms.is_none()
            && self.key.is_none()
            && self.run_at.is_none()
            && self.unique_key.is_none()
            && self.ordering_key.is_none()
    }

    /// The job's queue.
    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }

    /// The job's unique bucket for a spawn at `now_ms` (as the insert computes it).
    fn unique_bucket(&self, now_ms: i64) -> i64 {
        match self.unique_period_ms {
            None => 0,
            Some(period) => self.run_at.unwrap_or(now_ms + self.delay_ms) / period.max(1),
        }
    }
}

/// The default retry strategy as stored, encoded once per process.
fn default_retry() -> &'static str {
    static ENCODED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENCODED.get_or_init(|| encode_retry(&RetryStrategy::default()))
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

/// Inserts jobs in chunks inside the caller's write transaction, results in input order; the
/// parents of jobs with dependencies are checked first (an unknown one refuses the batch
/// before anything is inserted), then each created child is attached to them.
pub(crate) async fn insert_all(
    conn: &mut SqliteConnection,
    ns: &str,
    jobs: &[Encoded],
) -> Result<Vec<SpawnResult>> {
    let parents =
        super::deps::mark_parents(&mut *conn, ns, jobs.iter().filter_map(|j| j.deps.as_ref()))
            .await?;
    let mut results = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(INSERT_CHUNK) {
        let done = insert_chunk(&mut *conn, ns, chunk).await?;
        for (job, result) in chunk.iter().zip(&done) {
            if let Some(deps) = &job.deps {
                super::deps::attach(&mut *conn, ns, result, deps, &parents).await?;
            }
        }
        results.extend(done);
    }
    Ok(results)
}

/// Jobs per multi-row insert statement.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// Row counts of the insert statements: a chunk goes in as pieces of these sizes, largest
/// first, so that a few statements, each prepared once and kept in the connection's statement
/// cache, insert any number of jobs.
const PIECES: [usize; 4] = [INSERT_CHUNK, 100, 10, 1];

/// The form of an insert statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Plain jobs (see [`Encoded::is_plain`]), none skipped: [`queries::insert_plain_jobs`].
    Plain,
    /// Any jobs without idempotency or unique keys: [`queries::insert_jobs`], counted.
    Counted,
    /// Any jobs: [`queries::insert_jobs`], returning the rows inserted.
    Returning,
}

/// The insert statement of `rows` jobs (a size of [`PIECES`]) in a form, built once per
/// process.
fn insert_statement(rows: usize, form: Form) -> &'static str {
    use std::sync::OnceLock;
    static BUILT: [[OnceLock<String>; 3]; PIECES.len()] =
        [const { [const { OnceLock::new() }; 3] }; PIECES.len()];
    let build = || match form {
        Form::Plain => queries::insert_plain_jobs(rows),
        Form::Counted => queries::insert_jobs(rows, false),
        Form::Returning => queries::insert_jobs(rows, true),
    };
    match PIECES.iter().position(|p| *p == rows) {
        Some(i) => BUILT[i][form as usize].get_or_init(build).as_str(),
        // Not a piece size (never the case): built and kept like one.
        None => Box::leak(build().into_boxed_str()),
    }
}

/// An insert statement with its binds.
type InsertQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// The insert statement of `jobs` in a form, with their binds.
fn insert_query<'q>(ns: &'q str, jobs: &'q [Encoded], form: Form) -> InsertQuery<'q> {
    // In the order of the statement's placeholders.
    let mut query = sqlx::query(crate::clock::clocked(insert_statement(jobs.len(), form))).bind(ns);
    for job in jobs {
        query = query
            .bind(job.queue.as_str())
            .bind(job.task.as_str())
            .bind(job.params.as_str());
        if form == Form::Plain {
            query = query
                .bind(job.priority)
                .bind(job.max_attempts)
                .bind(job.retry.as_str())
                .bind(job.delay_ms);
            continue;
        }
        query = query
            .bind(job.headers.as_deref())
            .bind(job.priority)
            .bind(job.max_attempts)
            .bind(job.retry.as_str())
            .bind(job.timeout_ms)
            .bind(job.max_duration_ms)
            .bind(job.max_delay_ms)
            .bind(job.key.as_deref())
            .bind(job.run_at)
            .bind(job.delay_ms)
            .bind(job.unique_key.as_deref())
            .bind(job.unique_period_ms)
            .bind(job.unique_states.unwrap_or(0))
            .bind(job.ordering_key.as_deref());
    }
    query
}

/// One row [`queries::insert_jobs`] returned.
struct Inserted {
    result: SpawnResult,
    queue: String,
    key: Option<String>,
    unique_key: Option<String>,
    unique_bucket: i64,
}

impl Inserted {
    /// True when this row is `job`'s, the statement's clock reading `now_ms`.
    fn is(&self, job: &Encoded, now_ms: i64) -> bool {
        self.queue == job.queue
            && self.key == job.key
            && self.unique_key == job.unique_key
            && (job.unique_key.is_none() || self.unique_bucket == job.unique_bucket(now_ms))
    }
}

/// How many times a skipped unique job whose holder left its slot meanwhile is inserted again.
const UNIQUE_ROUNDS: usize = 16;

/// Inserts a chunk of jobs and returns their results in input order (a statement per piece,
/// see [`PIECES`]). A job whose idempotency key or unique slot was taken (by an earlier job, or
/// earlier in the same batch) gets the job holding it, with `created` false.
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
        sqlx::query(crate::clock::clocked(queries::MARK_KEYED))
            .bind(ns)
            .bind(serde_json::json!(keyed).to_string())
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    let mut rest = jobs;
    while let Some(first) = rest.first() {
        // A run of plain jobs, or of others, cut into pieces.
        let plain = first.is_plain();
        let run = rest.iter().take_while(|j| j.is_plain() == plain).count();
        let size = PIECES.iter().copied().find(|p| *p <= run).unwrap_or(1);
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        if plain {
            results.extend(insert_unkeyed(&mut *conn, ns, piece, Form::Plain).await?);
        } else if piece
            .iter()
            .all(|j| j.key.is_none() && j.unique_key.is_none())
        {
            results.extend(insert_unkeyed(&mut *conn, ns, piece, Form::Counted).await?);
        } else {
            results.extend(insert_keyed(&mut *conn, ns, piece).await?);
        }
    }
    Ok(results)
}

/// Inserts a piece of jobs some of which have an idempotency or unique key: the rows inserted
/// come back, and each job skipped gets the job holding its key.
async fn insert_keyed(
    conn: &mut SqliteConnection,
    ns: &str,
    jobs: &[Encoded],
) -> Result<Vec<SpawnResult>> {
    let returned = insert_query(ns, jobs, Form::Returning)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_err)?;
    let mut inserted = Vec::with_capacity(returned.len());
    let mut now_ms = None;
    for row in &returned {
        now_ms = Some(row.try_get::<i64, _>(7).map_err(sql_err)?);
        inserted.push(Inserted {
            result: spawn_result(row, true)?,
            queue: row.try_get(3).map_err(sql_err)?,
            key: row.try_get(4).map_err(sql_err)?,
            unique_key: row.try_get(5).map_err(sql_err)?,
            unique_bucket: row.try_get(6).map_err(sql_err)?,
        });
    }
    let now_ms = match now_ms {
        Some(now) => now,
        None if jobs.iter().any(|j| j.unique_period_ms.is_some()) => {
            sqlx::query_scalar(crate::clock::clocked(queries::SELECT_NOW))
                .fetch_one(&mut *conn)
                .await
                .map_err(sql_err)?
        }
        None => 0,
    };
    // Ids rise in insertion order (AUTOINCREMENT), which is the binds' order.
    inserted.sort_unstable_by_key(|i| i.result.job_id.0);
    let mut inserted = inserted.into_iter().peekable();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        if inserted.peek().is_some_and(|i| i.is(job, now_ms)) {
            if let Some(row) = inserted.next() {
                results.push(row.result);
            }
            continue;
        }
        results.push(holder(conn, ns, job, now_ms).await?);
    }
    Ok(results)
}

/// Inserts jobs none of which has an idempotency or unique key, so none is skipped: one row
/// comes back (the last id and the count) instead of one per job; the ids are the consecutive
/// run ending at the last one, in the jobs' order.
async fn insert_unkeyed(
    conn: &mut SqliteConnection,
    ns: &str,
    jobs: &[Encoded],
    form: Form,
) -> Result<Vec<SpawnResult>> {
    let row = insert_query(ns, jobs, form)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_err)?;
    let last: i64 = row.try_get(0).map_err(sql_err)?;
    let inserted: i64 = row.try_get(1).map_err(sql_err)?;
    let count = jobs.len();
    if usize::try_from(inserted).ok() != Some(count) {
        return Err(Error::Corrupt(format!(
            "{inserted} of {count} jobs without keys were inserted"
        )));
    }
    let first = last - inserted + 1;
    Ok((first..=last)
        .map(|id| SpawnResult {
            job_id: JobId(id),
            run_id: RunId::new(JobId(id), 1),
            attempt: 1,
            created: true,
        })
        .collect())
}

/// The job holding a skipped job's idempotency key or unique slot. A unique slot's holder may
/// leave its states (or the period turn) before it is read: the job is then inserted again.
async fn holder(
    conn: &mut SqliteConnection,
    ns: &str,
    job: &Encoded,
    now_ms: i64,
) -> Result<SpawnResult> {
    if job.key.is_some() {
        let row = sqlx::query(crate::clock::clocked(queries::FIND_BY_IDEMPOTENCY_KEY))
            .bind(ns)
            .bind(&job.queue)
            .bind(&job.key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        if let Some(row) = row {
            return spawn_result(&row, false);
        }
    }
    let Some(unique_key) = &job.unique_key else {
        return Err(Error::Corrupt("a job without keys was not inserted".into()));
    };
    let mut bucket = job.unique_bucket(now_ms);
    for _ in 0..UNIQUE_ROUNDS {
        let row = sqlx::query(crate::clock::clocked(queries::FIND_BY_UNIQUE_KEY))
            .bind(ns)
            .bind(unique_key)
            .bind(bucket)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        if let Some(row) = row {
            return spawn_result(&row, false);
        }
        let returned = insert_query(ns, std::slice::from_ref(job), Form::Returning)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        match returned {
            Some(row) => return spawn_result(&row, true),
            None => {
                let now: i64 = sqlx::query_scalar(crate::clock::clocked(queries::SELECT_NOW))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sql_err)?;
                bucket = job.unique_bucket(now);
            }
        }
    }
    Err(Error::Corrupt(format!(
        "unique key {unique_key:?}: its slot kept changing hands"
    )))
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
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        for queue in &missing {
            sqlx::query(crate::clock::clocked(queries::ENSURE_QUEUE))
                .bind(&*self.ns)
                .bind(*queue)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        let results = insert_all(&mut tx, &self.ns, jobs).await?;
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
        // A job with dependencies checks and marks its parents: one transaction.
        if job.deps.is_none() && self.unknown_queues(batch).is_empty() {
            let mut lease = self.pool.lease().await.map_err(sql_err)?;
            let inserted = insert_chunk(lease.conn(), &self.ns, batch).await;
            lease.finish(inserted.is_ok());
            let spawned = only(inserted?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_size_has_one_statement_per_form_with_its_binds() {
        for rows in PIECES {
            for (form, binds) in [
                (Form::Plain, queries::INSERT_PLAIN_JOB_BINDS),
                (Form::Counted, queries::INSERT_JOB_BINDS),
                (Form::Returning, queries::INSERT_JOB_BINDS),
            ] {
                let sql = insert_statement(rows, form);
                assert!(std::ptr::eq(sql, insert_statement(rows, form)));
                assert_eq!(sql.matches('?').count(), 1 + rows * binds, "{form:?}");
            }
        }
    }

    #[test]
    fn the_default_retry_is_stored_as_encoded() {
        assert_eq!(default_retry(), encode_retry(&RetryStrategy::default()));
    }
}
