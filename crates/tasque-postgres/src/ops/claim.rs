//! claim and lease extension.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tasque_durable::engine::{self, EngineClaim, LeaseExtend, LeasesExtend};
use tasque_durable::{ClaimParams, LeaseStatus, Result, RunId, RunWrite};

use super::{ms, rejection_error, run_arrays};
use crate::{rows, sql_err, PostgresStore};

#[async_trait]
impl EngineClaim for PostgresStore {
    /// Claims from the plain queues, then, when that took fewer jobs than asked, from the
    /// gated ones. The plain claim is the unkeyed statement unless the queues held an
    /// unfinished keyed job at the last probe (see [`KeyedQueueSets`](crate::keyed::KeyedQueueSets)).
    async fn job_claim(&self, params: &ClaimParams) -> Result<engine::Claimed> {
        let claim = &self.inner.sql.claim;
        let (n, order) = (params.queues.len(), params.order);
        let windowed = self.inner.keyed.contains(&params.queues);
        let sql = if windowed {
            claim.get(n, order)
        } else {
            claim.unkeyed(n, order)
        };
        let mut claimed = self.claim_plain(sql, params, params.limit).await?;
        let room = params.limit.saturating_sub(claimed.len() as u32);
        if room == 0 {
            return Ok(claimed);
        }
        let (gated, keyed): (bool, bool) = sqlx::query_as(&self.inner.sql.claim_probe)
            .bind(&params.queues)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        self.inner.keyed.set(&params.queues, keyed);
        if keyed && !windowed {
            // The unkeyed claim took nothing: a queue holds keyed jobs.
            claimed.append(self.claim_plain(claim.get(n, order), params, room).await?);
        }
        let room = params.limit.saturating_sub(claimed.len() as u32);
        if gated && room > 0 {
            claimed.append(self.claim_gated(params, room).await?);
        }
        Ok(claimed)
    }

    async fn job_extend_lease(&self, params: LeaseExtend) -> Result<DateTime<Utc>> {
        let LeaseExtend { run, by } = params;
        let row = sqlx::query(&self.inner.sql.extend_lease)
            .bind(run.job.0)
            .bind(run.seq)
            .bind(ms(by))
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        match row {
            Some(row) => rows::time_at(&row, 0),
            None => Err(rejection_error(run, self.diagnose(run).await?)),
        }
    }

    async fn job_extend_leases(&self, params: LeasesExtend) -> Result<Vec<LeaseStatus>> {
        let LeasesExtend { runs, by } = params;
        let (ids, seqs) = run_arrays(&runs);
        let rows = sqlx::query(&self.inner.sql.extend_leases)
            .bind(ids)
            .bind(seqs)
            .bind(ms(by))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut extended = HashMap::with_capacity(rows.len());
        for row in rows {
            let at = rows::time_at(&row, 2)?;
            extended.insert(rows::run_id(&row)?, at);
        }
        let rejected: Vec<RunId> = runs
            .iter()
            .filter(|r| !extended.contains_key(*r))
            .copied()
            .collect();
        let mut why: HashMap<RunId, RunWrite> = if rejected.is_empty() {
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

impl PostgresStore {
    /// Runs one plain claim statement (`sql`, of [`ClaimSql`](crate::queries::ClaimSql)) for
    /// at most `limit` jobs.
    async fn claim_plain(
        &self,
        sql: &str,
        params: &ClaimParams,
        limit: u32,
    ) -> Result<engine::Claimed> {
        let query = sqlx::query(sql);
        let query = if params.queues.len() == 1 {
            query.bind(&params.queues[0])
        } else {
            query.bind(&params.queues)
        };
        let rows = query
            .bind(i64::from(limit))
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let (claims, undecodable) = rows::claims(&rows)?;
        Ok(engine::Claimed {
            claims,
            undecodable,
        })
    }
}
