//! Writes by a running run: complete, fail, reschedule, release. Each locks the runs' rows,
//! judges them and writes only those that still own their job, in one transaction.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;
use tasque_durable::engine::{
    EngineRuns, JobComplete, JobFail, JobFailExpired, JobFailForGood, JobRelease, JobSchedule,
};
use tasque_durable::retry::{after_failure, NextStep};
use tasque_durable::{FailOutcome, Result, RunAt, RunId, RunWrite};

use super::{
    bind_ids, judge_all, refuse, rejection_error, retry_conflicts, run_at_binds, us, Locked,
};
use crate::queries::{self, Sql};
use crate::{rows, sql_err, MySqlStore};

/// What became of completions that did not all apply, judged from the rows: a run applied
/// if its job carries the write's `token` (exact, as `RETURNING` would tell), was cancelled if
/// its job is cancelled under that run, and is stale otherwise.
async fn completions_found(
    conn: &mut MySqlConnection,
    sql: &Sql,
    items: &[JobComplete],
    token: i64,
) -> Result<Vec<RunWrite>> {
    let ids: Vec<i64> = items.iter().map(|i| i.run.job.0).collect();
    let statement = sql.run_states(ids.len());
    let found = bind_ids(sqlx::query(&statement), &ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_err)?;
    let mut states: HashMap<i64, (String, i64, Option<i64>)> = HashMap::with_capacity(found.len());
    for row in &found {
        let state = (rows::text_at(row, 1)?, rows::at(row, 2)?, rows::at(row, 3)?);
        states.insert(rows::at(row, 0)?, state);
    }
    Ok(items
        .iter()
        .map(|item| match states.get(&item.run.job.0) {
            Some((state, _, mark)) if state == "completed" && *mark == Some(token) => {
                RunWrite::Applied
            }
            Some((state, seq, _)) if state == "cancelled" && *seq == item.run.seq => {
                RunWrite::Cancelled
            }
            _ => RunWrite::Stale,
        })
        .collect())
}

/// Where a failed run goes: forced time, or the retry policy.
#[derive(Copy, Clone)]
enum RetryTime {
    Policy,
    Forced(RunAt),
    /// The policy, only if the run's lease has run out (the rescuer: a heartbeat that landed
    /// since the expired run was found keeps the run alive).
    Expired,
}

/// A retry: the next attempt, its absolute run time (or NULL) and delay in µs.
type Retry = (u32, Option<DateTime<Utc>>, i64);

/// The next step of a failed run: `Some((attempt, run_at, delay µs))` to retry, `None` to fail.
fn next_step(locked: &Locked, time: RetryTime) -> Result<Option<Retry>> {
    let (attempt, max) = (locked.attempt, locked.max_attempts);
    Ok(match time {
        RetryTime::Policy | RetryTime::Expired => {
            match after_failure(&rows::retry(&locked.retry)?, attempt, max) {
                NextStep::Retry { attempt, delay } => Some((attempt, None, us(delay))),
                NextStep::GiveUp => None,
            }
        }
        RetryTime::Forced(_) if attempt >= max => None,
        RetryTime::Forced(at) => {
            let (run_at, delay) = run_at_binds(Some(at));
            Some((attempt + 1, run_at, delay))
        }
    })
}

impl MySqlStore {
    /// Resolves the dependents of one job that just ended (`outcome`) in `conn`'s transaction.
    pub(crate) async fn resolve_ended(
        &self,
        conn: &mut MySqlConnection,
        job: i64,
        outcome: super::deps::Outcome,
    ) -> Result<()> {
        let sql = &self.inner.sql;
        if super::deps::with_dependents(&mut *conn, sql, &[job])
            .await?
            .is_empty()
        {
            return Ok(());
        }
        super::deps::resolve(conn, sql, vec![(job, outcome)]).await
    }

    async fn complete_guarded(
        &self,
        items: &[JobComplete],
        results: &[String],
    ) -> Result<Vec<RunWrite>> {
        let token: i64 = rand::random();
        let writes: Vec<_> = items.iter().zip(results).collect();
        if items.iter().all(|i| !i.delete_on_success) {
            // The common case: one autocommitted statement, which leaves jobs with dependents
            // alone (they complete with their resolution in one transaction, below).
            let mut conn = self.inner.pool.acquire().await.map_err(sql_err)?;
            let done = self
                .write_completions(&mut conn, &writes, token, true)
                .await?;
            if done == items.len() as u64 {
                return Ok(vec![RunWrite::Applied; items.len()]);
            }
            let mut verdicts = completions_found(&mut conn, &self.inner.sql, items, token).await?;
            drop(conn);
            let (rest, rest_results): (Vec<JobComplete>, Vec<String>) = items
                .iter()
                .zip(results)
                .zip(&verdicts)
                .filter(|(_, v)| **v != RunWrite::Applied)
                .map(|((i, r), _)| (i.clone(), r.clone()))
                .unzip();
            let mut again = self
                .complete_locked(&rest, &rest_results)
                .await?
                .into_iter();
            for verdict in verdicts.iter_mut().filter(|v| **v != RunWrite::Applied) {
                *verdict = again.next().unwrap_or(RunWrite::Stale);
            }
            return Ok(verdicts);
        }
        let mut tx = self.begin().await?;
        let done = self
            .write_completions(&mut tx, &writes, token, false)
            .await?;
        let verdicts = if done == items.len() as u64 {
            vec![RunWrite::Applied; items.len()]
        } else {
            completions_found(&mut tx, &self.inner.sql, items, token).await?
        };
        let applied: Vec<i64> = items
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| **v == RunWrite::Applied)
            .map(|(i, _)| i.run.job.0)
            .collect();
        self.resolve_completed(&mut tx, &applied).await?;
        let deleted: Vec<i64> = items
            .iter()
            .zip(&verdicts)
            .filter(|(i, v)| i.delete_on_success && **v == RunWrite::Applied)
            .map(|(i, _)| i.run.job.0)
            .collect();
        self.delete_completed(&mut tx, &deleted, token).await?;
        tx.commit().await.map_err(sql_err)?;
        Ok(verdicts)
    }

    /// Resolves the dependents of jobs just completed in `conn`'s transaction.
    async fn resolve_completed(&self, conn: &mut MySqlConnection, ids: &[i64]) -> Result<()> {
        let sql = &self.inner.sql;
        let parents = super::deps::with_dependents(&mut *conn, sql, ids).await?;
        if parents.is_empty() {
            return Ok(());
        }
        let finished = parents.into_iter().map(|id| (id, "completed")).collect();
        super::deps::resolve(conn, sql, finished).await
    }

    /// Runs the guarded UPDATE completing `writes`, marking the rows it changes with `token`;
    /// returns how many it changed. With `skip_parents`, jobs with dependents are left alone.
    async fn write_completions(
        &self,
        conn: &mut MySqlConnection,
        writes: &[(&JobComplete, &String)],
        token: i64,
        skip_parents: bool,
    ) -> Result<u64> {
        let Some(last) = writes.last() else {
            return Ok(0);
        };
        // Filled up to the statement's shape with the last write, which changes nothing twice.
        let shape = queries::shape(writes.len());
        let padded = || writes.iter().chain(std::iter::repeat(last)).take(shape);
        let one_result = writes.iter().all(|(_, result)| *result == last.1);
        let mut statement = self.inner.sql.complete(writes.len(), one_result);
        if skip_parents {
            statement.push_str(" AND has_dependents = FALSE");
        }
        let mut query = sqlx::query(&statement).bind(token);
        if one_result {
            query = query.bind(last.1.as_str());
        } else {
            for (item, result) in padded() {
                query = query.bind(item.run.job.0).bind(result.as_str());
            }
        }
        for (item, _) in padded() {
            query = query.bind(item.run.job.0);
        }
        for (item, _) in padded() {
            query = query.bind(item.run.job.0).bind(item.run.seq);
        }
        let done = query.execute(&mut *conn).await.map_err(sql_err)?;
        Ok(done.rows_affected())
    }

    /// Deletes jobs just completed by the write marked `token` (delete on success).
    async fn delete_completed(
        &self,
        conn: &mut MySqlConnection,
        ids: &[i64],
        token: i64,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let statement = self.inner.sql.delete_completed(ids.len());
        bind_ids(sqlx::query(&statement).bind(token), ids)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn complete_locked(
        &self,
        items: &[JobComplete],
        results: &[String],
    ) -> Result<Vec<RunWrite>> {
        let runs: Vec<RunId> = items.iter().map(|i| i.run).collect();
        let mut tx = self.begin().await?;
        let locked = self.lock_runs(&mut tx, &runs, Duration::ZERO).await?;
        let (verdicts, _) = judge_all(&runs, &locked);
        let writes: Vec<_> = items
            .iter()
            .zip(results)
            .zip(&verdicts)
            .filter(|(_, verdict)| **verdict == RunWrite::Applied)
            .map(|(write, _)| write)
            .collect();
        let token: i64 = rand::random();
        self.write_completions(&mut tx, &writes, token, false)
            .await?;
        let applied: Vec<i64> = writes.iter().map(|(item, _)| item.run.job.0).collect();
        self.resolve_completed(&mut tx, &applied).await?;
        let deleted: Vec<i64> = writes
            .iter()
            .filter(|(item, _)| item.delete_on_success)
            .map(|(item, _)| item.run.job.0)
            .collect();
        self.delete_completed(&mut tx, &deleted, token).await?;
        tx.commit().await.map_err(sql_err)?;
        Ok(verdicts)
    }

    /// Applies the failure policy to a running run, guarded. `reason` is encoded JSON.
    async fn record_failure(
        &self,
        run: RunId,
        reason: &str,
        time: RetryTime,
    ) -> Result<FailOutcome> {
        let sql = &self.inner.sql;
        let mut tx = self.begin().await?;
        let locked = self.lock_runs(&mut tx, &[run], Duration::ZERO).await?;
        let (verdicts, _) = judge_all(&[run], &locked);
        let (RunWrite::Applied, Some(job)) = (verdicts[0], locked.get(&run.job.0)) else {
            return refuse(tx, rejection_error(run, verdicts[0])).await;
        };
        if matches!(time, RetryTime::Expired) && !job.expired {
            return refuse(tx, rejection_error(run, RunWrite::Stale)).await;
        }
        let outcome = match next_step(job, time)? {
            Some((attempt, run_at, delay)) => {
                sqlx::query(&sql.fail_retry)
                    .bind(reason)
                    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
                    .bind(run_at)
                    .bind(delay)
                    .bind(run.job.0)
                    .bind(run.seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                let at: DateTime<Utc> = sqlx::query_scalar(&sql.run_at)
                    .bind(run.job.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                FailOutcome::Retrying { attempt, at }
            }
            None => {
                sqlx::query(&sql.fail_final)
                    .bind(reason)
                    .bind(reason)
                    .bind(run.job.0)
                    .bind(run.seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_err)?;
                self.resolve_ended(&mut tx, run.job.0, "failed").await?;
                FailOutcome::Failed
            }
        };
        tx.commit().await.map_err(sql_err)?;
        Ok(outcome)
    }
}

#[async_trait]
impl EngineRuns for MySqlStore {
    async fn job_complete_many(&self, mut items: Vec<JobComplete>) -> Result<Vec<RunWrite>> {
        // The results travel apart from the runs (the statements bind them by position).
        let results: Vec<String> = items
            .iter_mut()
            .map(|i| std::mem::take(&mut i.result))
            .collect();
        let mut seen = HashSet::with_capacity(items.len());
        if items.iter().all(|i| seen.insert(i.run.job.0)) {
            retry_conflicts(|| self.complete_guarded(&items, &results)).await
        } else {
            retry_conflicts(|| self.complete_locked(&items, &results)).await
        }
    }

    async fn job_fail(&self, params: JobFail) -> Result<FailOutcome> {
        let time = params.retry_at.map_or(RetryTime::Policy, RetryTime::Forced);
        retry_conflicts(|| self.record_failure(params.run, &params.reason, time)).await
    }

    async fn job_fail_expired(&self, params: JobFailExpired) -> Result<FailOutcome> {
        let JobFailExpired { run, reason } = params;
        retry_conflicts(|| self.record_failure(run, &reason, RetryTime::Expired)).await
    }

    async fn job_fail_for_good(&self, params: JobFailForGood) -> Result<()> {
        let JobFailForGood { run, reason } = params;
        let done = retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let done = sqlx::query(&self.inner.sql.fail_final)
                .bind(&reason)
                .bind(&reason)
                .bind(run.job.0)
                .bind(run.seq)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            if done.rows_affected() == 1 {
                self.resolve_ended(&mut tx, run.job.0, "failed").await?;
            }
            tx.commit().await.map_err(sql_err)?;
            Ok(done)
        })
        .await?;
        if done.rows_affected() == 0 {
            let mut tx = self.begin().await?;
            let locked = self.lock_runs(&mut tx, &[run], Duration::ZERO).await?;
            let (verdicts, _) = judge_all(&[run], &locked);
            return refuse(tx, rejection_error(run, verdicts[0])).await;
        }
        Ok(())
    }

    async fn job_schedule(&self, params: JobSchedule) -> Result<()> {
        let JobSchedule { run, at } = params;
        let (run_at, delay) = run_at_binds(Some(at));
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let locked = self.lock_runs(&mut tx, &[run], Duration::ZERO).await?;
            let (verdicts, ids) = judge_all(&[run], &locked);
            if ids.is_empty() {
                return refuse(tx, rejection_error(run, verdicts[0])).await;
            }
            sqlx::query(&self.inner.sql.schedule_run)
                .bind(run_at)
                .bind(delay)
                .bind(run.job.0)
                .bind(run.seq)
                .execute(&mut *tx)
                .await
                .map_err(sql_err)?;
            tx.commit().await.map_err(sql_err)
        })
        .await
    }

    async fn job_release(&self, params: JobRelease) -> Result<u64> {
        let runs = params.runs;
        retry_conflicts(|| async {
            let mut tx = self.begin().await?;
            let locked = self.lock_runs(&mut tx, &runs, Duration::ZERO).await?;
            let (_, ids) = judge_all(&runs, &locked);
            if !ids.is_empty() {
                let statement = self.inner.sql.release(ids.len());
                bind_ids(sqlx::query(&statement), &ids)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_err)?;
            }
            tx.commit().await.map_err(sql_err)?;
            if !ids.is_empty() {
                self.announce([""]);
            }
            Ok(ids.len() as u64)
        })
        .await
    }
}
