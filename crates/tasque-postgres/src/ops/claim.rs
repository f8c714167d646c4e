//! claim and lease extension.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tasque_durable::validate::{positive, validate_claim};
use tasque_durable::{Claim, ClaimParams, LeaseStatus, PollOrder, Result, RunId, RunWrite};

use super::{ms, rejection_error, run_arrays};
use crate::{rows, sql_err, PostgresStore};

impl PostgresStore {
    /// Claims up to `limit` ready jobs: due sleepers and waiters become claimable, one
    /// statement claims from the ungated queues, then gated queues take the room left.
    pub(crate) async fn claim_jobs(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        validate_claim(&params)?;
        self.wake_due().await?;
        let sql = self.inner.sql.claim.get(params.queues.len(), params.order);
        let query = sqlx::query(sql);
        let query = if params.queues.len() == 1 {
            query.bind(&params.queues[0])
        } else {
            query.bind(&params.queues)
        };
        let rows = query
            .bind(i64::from(params.limit))
            .bind(&params.worker_id)
            .bind(ms(params.lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let (mut claims, undecodable) = rows::claims(&rows)?;
        let taken = (claims.len() + undecodable.len()) as u32;
        self.fail_undecodable(undecodable).await;
        let room = params.limit.saturating_sub(taken);
        if room > 0 {
            claims.extend(self.claim_gated(&params, room).await?);
        }
        match params.order {
            PollOrder::PriorityThenAge => {
                claims.sort_by_key(|(c, run_at)| (c.priority, *run_at, c.job_id));
            }
            PollOrder::Age => claims.sort_by_key(|(c, run_at)| (*run_at, c.job_id)),
        }
        Ok(claims.into_iter().map(|(c, _)| c).collect())
    }

    /// Extends one lease.
    pub(crate) async fn extend_one(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>> {
        positive("lease", by)?;
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

    /// Extends many leases in one statement, reporting per run.
    pub(crate) async fn extend_many(
        &self,
        runs: Vec<RunId>,
        by: Duration,
    ) -> Result<Vec<LeaseStatus>> {
        positive("lease", by)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
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
