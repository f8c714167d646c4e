//! claim and lease extension.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tasque_durable::engine::{self, EngineClaim, LeaseExtend, LeasesExtend};
use tasque_durable::{ClaimParams, Error, JobId, LeaseStatus, Result, RunId, RunWrite};

use super::{ms, rejection_error, runs_json};
use crate::rows::Claimed;
use crate::{queries, rows, sql_err, SqliteStore};

impl SqliteStore {
    /// Claims from the ungated queues in one round trip to SQLite's thread: one UPDATE stamps
    /// the jobs it takes with a fresh claim token, and a SELECT sent with it reads them back as
    /// a single JSON row (both on the write connection, so the read sees the write). When that
    /// read fails (a stored JSON column is not JSON, so SQLite cannot embed it), the jobs the
    /// UPDATE took are read back again as plain rows and decoded one by one.
    async fn claim_ungated(&self, params: &ClaimParams) -> Result<Claimed> {
        let token = self.claim_tokens.fetch_add(1, Ordering::Relaxed);
        let sql = crate::clock::clocked_string(queries::claim_with_token(
            params.queues.len(),
            params.order,
        ));
        let mut query = sqlx::query_scalar(&sql)
            .bind(&*self.ns)
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .bind(i64::from(params.limit));
        for queue in &params.queues {
            query = query.bind(queue);
        }
        let claimed: Option<String> = match query.bind(token).fetch_optional(&self.pool).await {
            Ok(claimed) => claimed,
            Err(error) => return self.claimed_rows(params, token, sql_err(error)).await,
        };
        match claimed.as_deref().map(rows::json).transpose()? {
            None => Ok(Claimed::default()),
            Some(serde_json::Value::Array(jobs)) => Ok(rows::claims_from_json(&jobs)),
            Some(other) => Err(Error::Corrupt(format!("claimed jobs: {other}"))),
        }
    }

    /// The jobs a claim stamped with `token`, as plain rows decoded one by one; `failed` when
    /// there are none (the claim itself failed).
    async fn claimed_rows(
        &self,
        params: &ClaimParams,
        token: i64,
        failed: Error,
    ) -> Result<Claimed> {
        let found = sqlx::query(crate::clock::clocked(queries::CLAIMED_ROWS_BY_TOKEN))
            .bind(&*self.ns)
            .bind(&params.worker_id)
            .bind(token)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        if found.is_empty() {
            return Err(failed);
        }
        tracing::warn!(error = %failed, "claimed jobs could not be read back in one go; decoding them one by one");
        rows::claims(&found)
    }
}

#[async_trait]
impl EngineClaim for SqliteStore {
    /// One statement claims from the ungated queues, then the gated ones take what room is
    /// left. Due sleepers and waiters are made claimable by the leader's wake-up service.
    async fn job_claim(&self, params: &ClaimParams) -> Result<engine::Claimed> {
        let (mut claims, mut undecodable) = self.claim_ungated(params).await?;
        let taken = (claims.len() + undecodable.len()) as u32;
        let room = params.limit.saturating_sub(taken);
        if room > 0 {
            let (found, bad) = self.claim_gated(params, room).await?;
            claims.extend(found);
            undecodable.extend(bad);
        }
        Ok(engine::Claimed {
            claims: claims
                .into_iter()
                .map(|(claim, ms)| (claim, rows::ready_at(ms)))
                .collect(),
            undecodable,
        })
    }

    async fn job_extend_lease(&self, params: LeaseExtend) -> Result<DateTime<Utc>> {
        let LeaseExtend { run, by } = params;
        let row = sqlx::query(crate::clock::clocked(queries::EXTEND_LEASE))
            .bind(&*self.ns)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(ms(by))
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_err)?;
        match row {
            Some(row) => rows::time(row.try_get(0).map_err(sql_err)?),
            None => Err(rejection_error(run, self.diagnose(run).await?)),
        }
    }

    async fn job_extend_leases(&self, params: LeasesExtend) -> Result<Vec<LeaseStatus>> {
        let LeasesExtend { runs, by } = params;
        let rows = sqlx::query(crate::clock::clocked(queries::EXTEND_LEASES))
            .bind(&*self.ns)
            .bind(runs_json(&runs))
            .bind(ms(by))
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err)?;
        let mut extended = HashMap::with_capacity(rows.len());
        for row in rows {
            let run = RunId::new(
                JobId(row.try_get(0).map_err(sql_err)?),
                row.try_get(1).map_err(sql_err)?,
            );
            extended.insert(run, rows::time(row.try_get(2).map_err(sql_err)?)?);
        }
        let rejected: Vec<RunId> = runs
            .iter()
            .filter(|r| !extended.contains_key(*r))
            .copied()
            .collect();
        let mut why = if rejected.is_empty() {
            HashMap::new()
        } else {
            let outcomes = self.diagnose_many(&rejected).await?;
            rejected.iter().copied().zip(outcomes).collect()
        };
        Ok(runs
            .iter()
            .map(|r| match extended.get(r) {
                Some(at) => LeaseStatus::Extended(*at),
                None => match why.remove(r) {
                    Some(RunWrite::Cancelled) => LeaseStatus::Cancelled,
                    _ => LeaseStatus::Lost,
                },
            })
            .collect())
    }
}
