//! Queues whose claims are gated: a concurrency limit across all workers, blocking mode
//! (one job at a time, in creation order), or a rate limit (blocking queues honour it too).
//! Their claims run in one `BEGIN IMMEDIATE`
//! transaction, so counting what runs and claiming are atomic across processes.

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite, Transaction};
use tasque_durable::engine::{EngineGated, QueueBlocking, QueueLimit};
use tasque_durable::flow::{rate_key_binds, RateLimit};
use tasque_durable::{ClaimParams, JobId, Result};

use super::ms;
use crate::rows::Claimed;
use crate::{queries, rows, sql_err, SqliteStore};

/// A queue's gate.
struct Gate {
    name: String,
    limit: Option<i64>,
    blocking: bool,
    keys: i64,
    rate: Option<RateLimit>,
}

fn gate(row: &SqliteRow) -> Result<Gate> {
    let rate_key: String = row.try_get(6).map_err(sql_err)?;
    Ok(Gate {
        name: row.try_get(0).map_err(sql_err)?,
        limit: row.try_get(1).map_err(sql_err)?,
        blocking: row.try_get(2).map_err(sql_err)?,
        keys: row.try_get(3).map_err(sql_err)?,
        rate: RateLimit::from_stored(
            row.try_get(4).map_err(sql_err)?,
            row.try_get(5).map_err(sql_err)?,
            &rate_key,
        )?,
    })
}

/// What blocks a blocking queue's head, or which job may start.
enum Head {
    /// Nothing to run (empty, or the head is running).
    Idle,
    /// This job may start now.
    Ready(i64),
    /// This job holds the queue (failed and kept, or not ready).
    Blocked(i64),
}

impl SqliteStore {
    /// Claims up to `room` jobs from the gated queues among `params.queues`.
    pub(crate) async fn claim_gated(&self, params: &ClaimParams, room: u32) -> Result<Claimed> {
        let names = serde_json::Value::from(params.queues.clone()).to_string();
        let gates = sqlx::query(crate::clock::clocked(queries::GATED_QUEUES))
            .bind(&*self.ns)
            .bind(&names)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        if gates.is_empty() {
            return Ok(Claimed::default());
        }
        let mut tx = self.begin_write().await.map_err(sql_err)?;
        // Re-read inside the write lock: the settings may have changed meanwhile.
        let gates = sqlx::query(crate::clock::clocked(queries::GATED_QUEUES))
            .bind(&*self.ns)
            .bind(&names)
            .fetch_all(&mut *tx)
            .await
            .map_err(sql_err)?;
        let mut claimed = Claimed::default();
        for row in &gates {
            let left = room - (claimed.0.len() + claimed.1.len()) as u32;
            if left == 0 {
                break;
            }
            let gate = gate(row)?;
            let (found, undecodable) = if gate.blocking {
                self.claim_head(&mut tx, params, &gate).await?
            } else {
                self.claim_limited(&mut tx, params, &gate, left).await?
            };
            claimed.0.extend(found);
            claimed.1.extend(undecodable);
        }
        tx.commit().await.map_err(sql_err)?;
        Ok(claimed)
    }

    async fn claim_limited(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        params: &ClaimParams,
        gate: &Gate,
        left: u32,
    ) -> Result<Claimed> {
        let free = match gate.limit {
            Some(limit) => {
                let running: i64 =
                    sqlx::query_scalar(crate::clock::clocked(queries::RUNNING_IN_QUEUE))
                        .bind(&*self.ns)
                        .bind(&gate.name)
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(sql_err)?;
                limit.saturating_sub(running)
            }
            None => i64::MAX,
        };
        let n = free.min(i64::from(left));
        if n <= 0 {
            return Ok(Claimed::default());
        }
        let Some(rate) = &gate.rate else {
            let found = sqlx::query(&crate::clock::clocked_string(queries::claim_gated(
                params.order,
            )))
            .bind(&*self.ns)
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .bind(n)
            .bind(&gate.name)
            .bind(gate.keys.max(1))
            .fetch_all(&mut **tx)
            .await
            .map_err(sql_err)?;
            return rows::claims(&found);
        };
        let (kind, path) = rate_key_binds(&rate.key);
        let path = queries::json_path(&path);
        let found = sqlx::query(&crate::clock::clocked_string(queries::claim_rated(
            params.order,
        )))
        .bind(&*self.ns)
        .bind(&params.worker_id)
        .bind(ms(params.lease))
        .bind(n)
        .bind(&gate.name)
        .bind(gate.keys.max(1))
        .bind(i64::from(rate.limit))
        .bind(rate.window_ms())
        .bind(kind)
        .bind(&path)
        .fetch_all(&mut **tx)
        .await
        .map_err(sql_err)?;
        let claimed = rows::claims(&found)?;
        let ids: Vec<i64> = claimed
            .0
            .iter()
            .map(|(c, _)| c.job_id.0)
            .chain(claimed.1.iter().map(|(r, _)| r.job.0))
            .collect();
        if !ids.is_empty() {
            sqlx::query(&crate::clock::clocked_string(queries::count_starts()))
                .bind(&*self.ns)
                .bind(&gate.name)
                .bind(rate.window_ms())
                .bind(kind)
                .bind(&path)
                .bind(serde_json::json!(ids).to_string())
                .execute(&mut **tx)
                .await
                .map_err(sql_err)?;
        }
        Ok(claimed)
    }

    async fn claim_head(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        params: &ClaimParams,
        gate: &Gate,
    ) -> Result<Claimed> {
        let Head::Ready(id) = self.head(tx, &gate.name).await? else {
            return Ok(Claimed::default());
        };
        // A rate limit holds the head while its key's window is full.
        if let Some(rate) = &gate.rate {
            let (kind, path) = rate_key_binds(&rate.key);
            let r = sqlx::query(&crate::clock::clocked_string(queries::job_rate()))
                .bind(&*self.ns)
                .bind(id)
                .bind(rate.window_ms())
                .bind(kind)
                .bind(queries::json_path(&path))
                .fetch_one(&mut **tx)
                .await
                .map_err(sql_err)?;
            let used: i64 = r.try_get(1).map_err(sql_err)?;
            if used >= i64::from(rate.limit) {
                return Ok(Claimed::default());
            }
        }
        let found = sqlx::query(&crate::clock::clocked_string(queries::claim_head()))
            .bind(&*self.ns)
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .bind(id)
            .fetch_all(&mut **tx)
            .await
            .map_err(sql_err)?;
        let claimed = rows::claims(&found)?;
        if let (Some(rate), false) = (&gate.rate, found.is_empty()) {
            let (kind, path) = rate_key_binds(&rate.key);
            sqlx::query(&crate::clock::clocked_string(queries::count_starts()))
                .bind(&*self.ns)
                .bind(&gate.name)
                .bind(rate.window_ms())
                .bind(kind)
                .bind(queries::json_path(&path))
                .bind(serde_json::json!([id]).to_string())
                .execute(&mut **tx)
                .await
                .map_err(sql_err)?;
        }
        Ok(claimed)
    }

    /// The state of a blocking queue's head.
    async fn head(&self, conn: &mut SqliteConnection, queue: &str) -> Result<Head> {
        let held: Option<i64> = sqlx::query_scalar(crate::clock::clocked(queries::HOLDING_JOB))
            .bind(&*self.ns)
            .bind(queue)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_err)?;
        if let Some(id) = held {
            return Ok(Head::Blocked(id));
        }
        let head = sqlx::query(crate::clock::clocked(queries::QUEUE_HEAD))
            .bind(&*self.ns)
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
}

#[async_trait]
impl EngineGated for SqliteStore {
    async fn queue_set_limit(&self, params: QueueLimit) -> Result<()> {
        let QueueLimit { name, limit } = params;
        let name = name.as_str();
        sqlx::query(crate::clock::clocked(queries::SET_QUEUE_LIMIT))
            .bind(&*self.ns)
            .bind(name)
            .bind(limit.map(i64::from))
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.announce(name);
        Ok(())
    }

    async fn queue_set_blocking(&self, params: QueueBlocking) -> Result<()> {
        let name = params.name.as_str();
        sqlx::query(crate::clock::clocked(queries::SET_QUEUE_BLOCKING))
            .bind(&*self.ns)
            .bind(name)
            .bind(params.blocking)
            .bind(params.on_exhausted.as_str())
            .execute(&self.pool)
            .await
            .map_err(sql_err)?;
        self.announce(name);
        Ok(())
    }

    async fn queue_blocked_by(&self, name: &str) -> Result<Option<JobId>> {
        let mut conn = self.readers.acquire().await.map_err(sql_err)?;
        Ok(match self.head(&mut conn, name).await? {
            Head::Blocked(id) => Some(JobId(id)),
            _ => None,
        })
    }
}
