//! Queues whose claims are gated: a concurrency limit across all workers, blocking mode
//! (one job at a time, in creation order, a failure holding the jobs behind it), or a rate
//! limit (which blocking queues honour too).
//!
//! A gated claim locks its queues' rows (`SELECT ... FOR UPDATE`, by name) for its
//! transaction, so counting what runs and claiming are atomic across every claimer on every
//! machine: the next claimer of that queue waits for the commit and then counts the jobs this
//! one took. Claims of ungated queues never touch these locks.

use async_trait::async_trait;
use sqlx::MySqlConnection;
use tasque_durable::engine::{EngineGated, QueueBlocking, QueueLimit};
use tasque_durable::flow::{rate_key_binds, RateLimit};
use tasque_durable::{ClaimParams, JobId, Result};

use super::claim::Picked;
use super::{retry_conflicts, us};
use crate::{queries, rows, sql_err, MySqlStore};

/// A JSON path (`$."a"."b"`) of validated argument path segments.
pub(crate) fn json_path(segments: &[String]) -> String {
    let mut path = String::from("$");
    for s in segments {
        path.push_str(&format!(".\"{s}\""));
    }
    path
}

/// A blocking queue's head.
enum Head {
    /// Nothing to run (empty, or the head is running).
    Idle,
    /// This job may start now.
    Ready(i64),
    /// This job holds the queue (failed and kept, or not ready).
    Blocked(i64),
}

/// A locked gate.
struct Gate {
    name: String,
    limit: Option<i32>,
    blocking: bool,
    keys: i64,
    rate: Option<RateLimit>,
}

fn gate(r: &sqlx::mysql::MySqlRow) -> Result<Gate> {
    let limit: Option<i64> = rows::at(r, 4)?;
    let window: Option<i64> = rows::at(r, 5)?;
    Ok(Gate {
        name: rows::text_at(r, 0)?,
        limit: rows::at(r, 1)?,
        blocking: rows::at(r, 2)?,
        keys: i64::from(rows::at::<i32>(r, 3)?),
        rate: RateLimit::from_stored(limit, window, &rows::text_at(r, 6)?)?,
    })
}

impl MySqlStore {
    /// Claims up to `room` jobs from the gated queues `gated` (names among the claim's
    /// queues), in one transaction holding their queue rows.
    pub(crate) async fn claim_gated(
        &self,
        params: &ClaimParams,
        gated: &[String],
        room: u32,
    ) -> Result<Picked> {
        if gated.is_empty() || room == 0 {
            return Ok(Picked::default());
        }
        retry_conflicts(|| self.claim_gated_once(params, gated, room)).await
    }

    async fn claim_gated_once(
        &self,
        params: &ClaimParams,
        gated: &[String],
        room: u32,
    ) -> Result<Picked> {
        let sql = &self.inner.sql;
        let mut tx = self.begin().await?;
        let statement = sql.lock_gated_queues(gated.len());
        let mut query = sqlx::query(&statement);
        for name in gated {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(sql_err)?;
        let gates = rows.iter().map(gate).collect::<Result<Vec<Gate>>>()?;
        let mut picked = Picked::default();
        let mut counts = Vec::new();
        for Gate {
            name,
            limit,
            blocking,
            keys,
            rate,
        } in &gates
        {
            let left = i64::from(room) - picked.len() as i64;
            if left <= 0 {
                break;
            }
            if *blocking {
                if let Head::Ready(id) = self.head(&mut tx, name).await? {
                    // A rate limit holds the head while its key's window is full.
                    let rated = match rate {
                        Some(rate) => {
                            let (kind, path) = rate_key_binds(&rate.key);
                            let path = json_path(&path);
                            let r = sqlx::query(&sql.job_rate)
                                .bind(rate.window_ms())
                                .bind(rate.window_ms())
                                .bind(kind)
                                .bind(&path)
                                .bind(id)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(sql_err)?;
                            if rows::at::<i64>(&r, 1)? >= i64::from(rate.limit) {
                                continue;
                            }
                            Some((rate, kind, path))
                        }
                        None => None,
                    };
                    let found = sqlx::query(&sql.lock_pending)
                        .bind(us(params.lease))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(sql_err)?;
                    if let Some(row) = found {
                        picked.extend(rows::claims(&[row])?);
                        if let Some((rate, kind, path)) = rated {
                            counts.push((name, rate, kind, path, vec![id]));
                        }
                    }
                }
                continue;
            }
            let free = match limit {
                Some(limit) => {
                    let running: i64 = sqlx::query_scalar(&sql.running_in_queue)
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(sql_err)?;
                    i64::from(*limit) - running
                }
                None => i64::MAX,
            };
            let n = free.min(left);
            if n <= 0 {
                continue;
            }
            let Some(rate) = rate else {
                let found = sqlx::query(queries::pick_keyed(sql, params.order))
                    .bind(us(params.lease))
                    .bind(name)
                    .bind(keys.max(&1) - 1)
                    .bind(n)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                picked.extend(rows::claims(&found)?);
                continue;
            };
            let (kind, path) = rate_key_binds(&rate.key);
            let path = json_path(&path);
            let ids: Vec<i64> = sqlx::query_scalar(queries::pick_rated(sql, params.order))
                .bind(rate.window_ms())
                .bind(rate.window_ms())
                .bind(kind)
                .bind(&path)
                .bind(name)
                .bind(keys.max(&1) - 1)
                .bind(i64::from(rate.limit))
                .bind(n)
                .fetch_all(&mut *tx)
                .await
                .map_err(sql_err)?;
            let mut taken = Vec::new();
            for id in ids {
                let found = sqlx::query(&sql.lock_pending)
                    .bind(us(params.lease))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                if let Some(row) = found {
                    picked.extend(rows::claims(&[row])?);
                    taken.push(id);
                }
            }
            if !taken.is_empty() {
                counts.push((name, rate, kind, path, taken));
            }
        }
        let claims = self.take_picked(&mut tx, params, picked).await?;
        for (name, rate, kind, path, taken) in counts {
            let ids: Vec<String> = taken.iter().map(i64::to_string).collect();
            sqlx::query(&sql.count_starts.replace("@ids@", &ids.join(", ")))
                .bind(name)
                .bind(kind)
                .bind(&path)
                .bind(rate.window_ms())
                .bind(rate.window_ms())
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        tx.commit().await.map_err(sql_err)?;
        Ok(claims)
    }

    /// The state of a blocking queue's head.
    async fn head(&self, conn: &mut MySqlConnection, queue: &str) -> Result<Head> {
        let sql = &self.inner.sql;
        let held: Option<i64> = sqlx::query_scalar(&sql.holding_job)
            .bind(queue)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        if let Some(id) = held {
            return Ok(Head::Blocked(id));
        }
        let head = sqlx::query(&sql.queue_head)
            .bind(queue)
            .bind(queue)
            .bind(queue)
            .bind(queue)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        let Some(head) = head else {
            return Ok(Head::Idle);
        };
        let id: i64 = rows::at(&head, 0)?;
        let state = rows::text_at(&head, 1)?;
        let ready: i64 = rows::at(&head, 2)?;
        Ok(match (state.as_str(), ready) {
            ("running", _) => Head::Idle,
            (_, 1) => Head::Ready(id),
            _ => Head::Blocked(id),
        })
    }

    /// Cancels a failed job that holds its blocking queue (in the caller's transaction);
    /// false when it holds none.
    pub(crate) async fn cancel_holding(
        &self,
        conn: &mut MySqlConnection,
        job: JobId,
    ) -> Result<bool> {
        let done = sqlx::query(&self.inner.sql.cancel_holding)
            .bind(job.0)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl EngineGated for MySqlStore {
    async fn queue_set_limit(&self, params: QueueLimit) -> Result<()> {
        let QueueLimit { name, limit } = params;
        let name = name.as_str();
        let limit = limit.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.set_queue_limit)
                .bind(name)
                .bind(limit)
                .bind(limit)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?;
        self.known_queues().insert(name.to_string());
        self.announce([name]);
        Ok(())
    }

    async fn queue_set_blocking(&self, params: QueueBlocking) -> Result<()> {
        let name = params.name.as_str();
        let policy = params.on_exhausted.as_str();
        retry_conflicts(|| async {
            sqlx::query(&self.inner.sql.set_queue_blocking)
                .bind(name)
                .bind(params.blocking)
                .bind(policy)
                .bind(params.blocking)
                .bind(policy)
                .execute(&self.inner.pool)
                .await
                .map_err(sql_err)
        })
        .await?;
        self.known_queues().insert(name.to_string());
        self.announce([name]);
        Ok(())
    }

    async fn queue_blocked_by(&self, name: &str) -> Result<Option<JobId>> {
        let mut conn = self.inner.pool.acquire().await.map_err(sql_err)?;
        Ok(match self.head(&mut conn, name).await? {
            Head::Blocked(id) => Some(JobId(id)),
            _ => None,
        })
    }
}
