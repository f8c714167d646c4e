//! Queues whose claims are gated: a concurrency limit across all workers, blocking mode
//! (one job at a time, in creation order) or a rate limit (also on blocking queues). A claim
//! locks their queue rows (`FOR UPDATE`) for its transaction, so counting what runs (or
//! starts) and claiming are atomic across every machine.

use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use tasque_durable::engine::{Claimed, EngineGated, QueueBlocking, QueueLimit};
use tasque_durable::flow::{rate_key_binds, RateLimit};
use tasque_durable::{ClaimParams, JobId, Result};

use super::ms;
use crate::{rows, sql_err, PostgresStore};

/// A blocking queue's head.
enum Head {
    /// Nothing to run (empty, or the head is running).
    Idle,
    /// This job may start now.
    Ready(i64),
    /// This job holds the queue (failed and kept, or not ready).
    Blocked(i64),
}

/// A gate row's rate limit (columns 4 limit, 5 window ms, 6 key).
fn rate_of(gate: &sqlx::postgres::PgRow) -> Result<Option<RateLimit>> {
    let limit: Option<i32> = gate.try_get(4).map_err(sql_err)?;
    let window_ms: Option<i64> = gate.try_get(5).map_err(sql_err)?;
    let key: String = gate.try_get(6).map_err(sql_err)?;
    RateLimit::from_stored(limit.map(i64::from), window_ms, &key)
}

/// Binds a rate limit as the rated claim's 6 limit, 7 window ms, 8 key kind, 9 path.
pub(crate) fn rate_binds<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    rate: &RateLimit,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let (kind, path) = rate_key_binds(&rate.key);
    query
        .bind(i64::from(rate.limit))
        .bind(rate.window_ms())
        .bind(kind)
        .bind(path)
}

impl PostgresStore {
    /// Claims up to `room` jobs from the gated queues among `params.queues`.
    pub(crate) async fn claim_gated(&self, params: &ClaimParams, room: u32) -> Result<Claimed> {
        let sql = &self.inner.sql;
        let mut tx = self.inner.pool.begin().await.map_err(sql_err)?;
        let gates = sqlx::query(&sql.lock_gated_queues)
            .bind(&params.queues)
            .fetch_all(&mut *tx)
            .await
            .map_err(sql_err)?;
        let mut claims = Vec::new();
        let mut undecodable = Vec::new();
        for gate in &gates {
            let left = room - (claims.len() + undecodable.len()) as u32;
            if left == 0 {
                break;
            }
            let name: String = gate.try_get(0).map_err(sql_err)?;
            let limit: Option<i32> = gate.try_get(1).map_err(sql_err)?;
            let blocking: bool = gate.try_get(2).map_err(sql_err)?;
            let keys: i32 = gate.try_get(3).map_err(sql_err)?;
            let rate = rate_of(gate)?;
            let n = if blocking {
                match self.head(&mut tx, &name).await? {
                    Head::Ready(id) => {
                        if let Some(rate) = &rate {
                            if !self.count_head_start(&mut tx, id, rate).await? {
                                continue;
                            }
                        }
                        let (found, bad) = self.claim_head(&mut tx, params, id).await?;
                        claims.extend(found);
                        undecodable.extend(bad);
                        continue;
                    }
                    _ => 0,
                }
            } else if let Some(limit) = limit {
                let running: i64 = sqlx::query_scalar(&sql.running_in_queue)
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                (i64::from(limit) - running).min(i64::from(left))
            } else {
                i64::from(left)
            };
            if n > 0 {
                let query = match &rate {
                    None => sqlx::query(sql.claim.gated(params.order)),
                    Some(_) => sqlx::query(sql.claim.rated(params.order)),
                };
                let query = query
                    .bind(&name)
                    .bind(n)
                    .bind(&params.worker_id)
                    .bind(ms(params.lease))
                    .bind(keys.max(1));
                let query = match &rate {
                    None => query,
                    Some(rate) => rate_binds(query, rate),
                };
                let found = query.fetch_all(&mut *tx).await.map_err(sql_err)?;
                let (found, bad) = rows::claims(&found)?;
                claims.extend(found);
                undecodable.extend(bad);
            }
        }
        tx.commit().await.map_err(sql_err)?;
        Ok(Claimed {
            claims,
            undecodable,
        })
    }

    async fn claim_head(
        &self,
        conn: &mut PgConnection,
        params: &ClaimParams,
        id: i64,
    ) -> Result<rows::Claimed> {
        let found = sqlx::query(&self.inner.sql.claim_head)
            .bind(id)
            .bind(1_i64)
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_err)?;
        rows::claims(&found)
    }

    /// Counts the start of a blocking queue's head in its rate window; false (nothing
    /// counted) when the window is full. Runs under the queue row's lock.
    async fn count_head_start(
        &self,
        conn: &mut PgConnection,
        id: i64,
        rate: &RateLimit,
    ) -> Result<bool> {
        let (kind, path) = rate_key_binds(&rate.key);
        let counted = sqlx::query(&self.inner.sql.count_head_start)
            .bind(id)
            .bind(i64::from(rate.limit))
            .bind(rate.window_ms())
            .bind(kind)
            .bind(path)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        Ok(counted.is_some())
    }

    /// The state of a blocking queue's head.
    async fn head(&self, conn: &mut PgConnection, queue: &str) -> Result<Head> {
        let held: Option<i64> = sqlx::query_scalar(&self.inner.sql.holding_job)
            .bind(queue)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        if let Some(id) = held {
            return Ok(Head::Blocked(id));
        }
        let head = sqlx::query(&self.inner.sql.queue_head)
            .bind(queue)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        let Some(head) = head else {
            return Ok(Head::Idle);
        };
        let id: i64 = head.try_get(0).map_err(sql_err)?;
        let running: bool = head.try_get(1).map_err(sql_err)?;
        let ready: bool = head.try_get(2).map_err(sql_err)?;
        Ok(match (running, ready) {
            (true, _) => Head::Idle,
            (false, true) => Head::Ready(id),
            (false, false) => Head::Blocked(id),
        })
    }

    /// Cancels a failed job that holds its blocking queue; false when it holds none.
    pub(crate) async fn cancel_holding(&self, job: JobId) -> Result<bool> {
        let done = sqlx::query(&self.inner.sql.cancel_holding)
            .bind(job.0)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl EngineGated for PostgresStore {
    async fn queue_set_limit(&self, params: QueueLimit) -> Result<()> {
        let QueueLimit { name, limit } = params;
        let name = name.as_str();
        let limit = limit.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        sqlx::query(&self.inner.sql.set_queue_limit)
            .bind(name)
            .bind(limit)
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn queue_set_blocking(&self, params: QueueBlocking) -> Result<()> {
        let name = params.name.as_str();
        sqlx::query(&self.inner.sql.set_queue_blocking)
            .bind(name)
            .bind(params.blocking)
            .bind(params.on_exhausted.as_str())
            .execute(&self.inner.pool)
            .await
            .map_err(sql_err)?;
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
