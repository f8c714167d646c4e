//! claim and lease extension.
//!
//! A claim first makes due sleepers and timed-out waiters claimable, then takes ready jobs of
//! the ungated queues, then gives the room left, if any, to the gated queues (limits, blocking
//! mode; see `gated`). Each part is one short transaction: the pick (`SELECT ... FOR UPDATE
//! SKIP LOCKED`, which leaves out paused and gated queues itself) reads everything the claims
//! carry, with the lease end they take; one `UPDATE` takes them; `COMMIT`. A full claim costs
//! four round trips: `BEGIN`, pick, take, `COMMIT`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;
use tasque_durable::engine::{self, EngineClaim, LeaseExtend, LeasesExtend};
use tasque_durable::{Claim, ClaimParams, LeaseStatus, PollOrder, Result, RunId, RunWrite};

use super::{bind_ids, judge_all, rejection_error, retry_conflicts, us};
use crate::rows::Undecodable;
use crate::{queries, rows, sql_err, MySqlStore};

/// Claimed (or picked) jobs with their run times (for sorting).
pub type Found = Vec<(Claim, DateTime<Utc>)>;

/// Picked (or claimed) jobs, and the runs whose rows did not decode: those are taken with the
/// others, then failed for good.
#[derive(Debug, Default)]
pub struct Picked {
    /// The jobs, with their run times.
    pub found: Found,
    /// The runs whose rows did not decode.
    pub undecodable: Vec<Undecodable>,
}

impl Picked {
    /// Adds picked rows.
    pub fn extend(&mut self, (found, undecodable): rows::Claimed) {
        self.found.extend(found);
        self.undecodable.extend(undecodable);
    }

    /// Adds what another pick or claim found.
    pub fn append(&mut self, other: Picked) {
        self.extend((other.found, other.undecodable));
    }

    /// How many runs were picked.
    pub fn len(&self) -> usize {
        self.found.len() + self.undecodable.len()
    }

    /// Whether nothing was picked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps at most `limit` runs, in poll order (the undecodable first, so they do not stay
    /// pending to be picked again).
    pub fn truncate(&mut self, limit: usize, order: PollOrder) {
        sort_claims(&mut self.found, order);
        self.undecodable.truncate(limit);
        self.found.truncate(limit - self.undecodable.len());
    }
}

/// Sorts claims in poll order.
pub fn sort_claims(claims: &mut Found, order: PollOrder) {
    match order {
        PollOrder::PriorityThenAge => {
            claims.sort_by_key(|(c, run_at)| (c.priority, *run_at, c.job_id));
        }
        PollOrder::Age => claims.sort_by_key(|(c, run_at)| (*run_at, c.job_id)),
    }
}

impl MySqlStore {
    /// One claim from the queues among `queues` that are neither paused nor gated.
    async fn claim_once(&self, params: &ClaimParams, queues: &[&str]) -> Result<Picked> {
        let mut tx = self.begin().await?;
        let mut picked = Picked::default();
        for queue in queues {
            let found = sqlx::query(queries::pick_ungated(&self.inner.sql, params.order))
                .bind(us(params.lease))
                .bind(*queue)
                .bind(*queue)
                .bind(i64::from(params.limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(sql_err)?;
            picked.extend(rows::claims(&found)?);
        }
        if picked.is_empty() {
            // Nothing written: no commit to wait for.
            tx.rollback().await.map_err(sql_err)?;
            return Ok(picked);
        }
        picked.truncate(params.limit as usize, params.order);
        let claims = self.take_picked(&mut tx, params, picked).await?;
        tx.commit().await.map_err(sql_err)?;
        Ok(claims)
    }

    /// The unpaused gated queues among `queues`.
    async fn gated_among(&self, queues: &[&str]) -> Result<Vec<String>> {
        let statement = self.inner.sql.gated_among(queues.len());
        let mut query = sqlx::query(&statement);
        for queue in queues {
            query = query.bind(*queue);
        }
        let found = query.fetch_all(&self.inner.pool).await.map_err(sql_err)?;
        found.iter().map(|row| rows::text_at(row, 0)).collect()
    }

    /// Takes picked (and locked) jobs, the undecodable ones too, under one lease: the earliest
    /// lease end their picks computed, so every claim says exactly what the row holds.
    pub(crate) async fn take_picked(
        &self,
        conn: &mut MySqlConnection,
        params: &ClaimParams,
        mut picked: Picked,
    ) -> Result<Picked> {
        let ends = picked.found.iter().map(|(c, _)| c.lease_expires_at);
        let bad_ends = picked.undecodable.iter().map(|u| u.lease_end);
        let Some(lease_end) = ends.chain(bad_ends).min() else {
            return Ok(picked);
        };
        let ids: Vec<i64> = picked
            .found
            .iter()
            .map(|(c, _)| c.job_id.0)
            .chain(picked.undecodable.iter().map(|u| u.run.job.0))
            .collect();
        let take = self.inner.sql.take(ids.len());
        let query = sqlx::query(&take).bind(&params.worker_id).bind(lease_end);
        bind_ids(query, &ids)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
        for (claim, _) in &mut picked.found {
            claim.lease_expires_at = lease_end;
        }
        Ok(picked)
    }

    async fn extend_once(&self, runs: &[RunId], by: Duration) -> Result<Vec<LeaseStatus>> {
        let mut tx = self.begin().await?;
        let locked = self.lock_runs(&mut tx, runs, by).await?;
        let (verdicts, ids) = judge_all(runs, &locked);
        let lease_end = locked.values().map(|l| l.lease_end).next();
        if let (false, Some(end)) = (ids.is_empty(), lease_end) {
            let statement = self.inner.sql.extend(ids.len());
            bind_ids(sqlx::query(&statement).bind(end), &ids)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
        }
        tx.commit().await.map_err(sql_err)?;
        Ok(verdicts
            .into_iter()
            .map(|v| match (v, lease_end) {
                (RunWrite::Applied, Some(end)) => LeaseStatus::Extended(end),
                (RunWrite::Cancelled, _) => LeaseStatus::Cancelled,
                _ => LeaseStatus::Lost,
            })
            .collect())
    }
}

#[async_trait]
impl EngineClaim for MySqlStore {
    async fn job_claim(&self, params: &ClaimParams) -> Result<engine::Claimed> {
        let mut queues: Vec<&str> = params.queues.iter().map(String::as_str).collect();
        queues.sort_unstable();
        queues.dedup();
        let mut claims = retry_conflicts(|| self.claim_once(params, &queues)).await?;
        let room = params.limit.saturating_sub(claims.len() as u32);
        if room > 0 {
            let gated = self.gated_among(&queues).await?;
            claims.append(self.claim_gated(params, &gated, room).await?);
        }
        Ok(engine::Claimed {
            claims: claims.found,
            undecodable: claims
                .undecodable
                .into_iter()
                .map(|u| (u.run, u.error))
                .collect(),
        })
    }

    async fn job_extend_lease(&self, params: LeaseExtend) -> Result<DateTime<Utc>> {
        let LeaseExtend { run, by } = params;
        let runs = [run];
        let statuses = retry_conflicts(|| self.extend_once(&runs, by)).await?;
        match statuses.first().copied().unwrap_or(LeaseStatus::Lost) {
            LeaseStatus::Extended(at) => Ok(at),
            LeaseStatus::Cancelled => Err(rejection_error(run, RunWrite::Cancelled)),
            LeaseStatus::Lost => Err(rejection_error(run, RunWrite::Stale)),
        }
    }

    async fn job_extend_leases(&self, params: LeasesExtend) -> Result<Vec<LeaseStatus>> {
        let LeasesExtend { runs, by } = params;
        retry_conflicts(|| self.extend_once(&runs, by)).await
    }
}
