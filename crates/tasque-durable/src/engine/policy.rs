//! The one [`Store`] implementation, over any [`Engine`]: every rule written once.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::params::{encode_headers, *};
use super::{reasons, Engine};
use crate::batch::first_occurrences;
use crate::error::{Error, Result};
use crate::model::{
    AwaitEvent, AwaitOutcome, BlockingParams, Checkpoint, Claim, JobFilter, JobId, JobInfo,
    JobResult, Page, PageRequest, QueueInfo, RunId, SetCheckpoint, SleepParams, Spawn, SpawnResult,
    StateCounts,
};
use crate::options::{RunAt, SpawnOptions};
use crate::store::{
    CancelOutcome, ClaimParams, CompleteParams, FailOutcome, LeaseStatus, MigrationReport,
    PollOrder, RescueReport, RunWrite, Store,
};
use crate::validate::{
    encode_payload, positive, validate_claim, validate_filter, validate_limit, validate_name,
    validate_options, validate_queue_limit, validate_run_at, validate_step_name,
};

/// How many read-then-write rounds `cancel` tries before reporting [`Error::Contended`]. A
/// round is lost only when the job finished between the engine's read and its write, so the
/// next round sees it finished: only a job finished and revived again and again keeps losing.
const CANCEL_ROUNDS: usize = 64;

/// Refuses a database whose schema is newer than this build's (`supported`).
pub fn check_schema_version(found: i64, supported: i64) -> Result<()> {
    if found > supported {
        return Err(Error::SchemaTooNew { found, supported });
    }
    Ok(())
}

/// The time until a wake-up due in `ms` milliseconds by the database clock (one already due
/// is due now), for [`WakeReport::next_in`](crate::WakeReport::next_in).
pub fn due_in_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A guarded single-run write's rejection as an error.
fn rejection(run: RunId, write: RunWrite) -> Error {
    match write {
        RunWrite::Cancelled => Error::RunCancelled(run),
        _ => Error::StaleRun(run),
    }
}

/// Sorts claims into poll order, across every queue they came from.
fn sort_claims(claims: &mut [(Claim, DateTime<Utc>)], order: PollOrder) {
    match order {
        PollOrder::PriorityThenAge => {
            claims.sort_by_key(|(c, ready_at)| (c.priority, *ready_at, c.job_id));
        }
        PollOrder::Age => claims.sort_by_key(|(c, ready_at)| (*ready_at, c.job_id)),
    }
}

/// Fails for good the runs a claim took but could not decode, each with its decoding error as
/// the reason. A run that cannot be failed now is left to its lease and the rescuer.
async fn fail_undecodable<E: Engine>(engine: &E, runs: Vec<(RunId, Error)>) {
    for (run, error) in runs {
        tracing::error!(ns = %engine.ns(), %run, %error, "a claimed job cannot be decoded; failing it for good");
        if let Err(failed) = fail_for_good(engine, run, &error).await {
            tracing::error!(%run, error = %failed, "could not fail an undecodable job; its lease will expire");
        }
    }
}

async fn fail_for_good<E: Engine>(engine: &E, run: RunId, error: &Error) -> Result<()> {
    let reason = encode_payload("reason", &reasons::undecodable_job(error), engine.limits())?;
    engine
        .job_fail_for_good(JobFailForGood { run, reason })
        .await
}

/// The rescuer's verdict on one expired run, added to `report`.
async fn rescue_one<E: Engine>(engine: &E, run: RunId, report: &mut RescueReport) -> Result<()> {
    let reason = encode_payload("reason", &reasons::lease_expired(), engine.limits())?;
    match engine
        .job_fail_expired(JobFailExpired { run, reason })
        .await
    {
        Ok(FailOutcome::Retrying { .. }) => report.retried += 1,
        Ok(FailOutcome::Failed) => report.failed += 1,
        // Its worker finished or heartbeat, or another rescuer got there first.
        Err(Error::StaleRun(_) | Error::RunCancelled(_)) => {}
        // Its row cannot be decoded (its retry strategy is corrupt): no retry can help.
        Err(error @ Error::Corrupt(_)) => {
            tracing::error!(%run, %error, "an expired job cannot be decoded; failing it for good");
            match fail_for_good(engine, run, &error).await {
                Ok(()) => report.failed += 1,
                Err(Error::StaleRun(_) | Error::RunCancelled(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Err(other) => return Err(other),
    }
    Ok(())
}

#[async_trait]
impl<E: Engine> Store for E {
    fn namespace(&self) -> &str {
        self.ns()
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        self.clock_now().await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.schema_migrate().await
    }

    async fn spawn(&self, spawn: Spawn) -> Result<SpawnResult> {
        self.job_insert(JobInsert::encode(spawn, self.limits())?)
            .await
    }

    async fn spawn_many(&self, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>> {
        let jobs = spawns
            .into_iter()
            .map(|s| JobInsert::encode(s, self.limits()))
            .collect::<Result<Vec<_>>>()?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.job_insert_many(jobs).await
    }

    async fn claim(&self, params: ClaimParams) -> Result<Vec<Claim>> {
        validate_claim(&params)?;
        let claimed = self.job_claim(&params).await?;
        fail_undecodable(self, claimed.undecodable).await;
        let mut claims = claimed.claims;
        sort_claims(&mut claims, params.order);
        Ok(claims.into_iter().map(|(c, _)| c).collect())
    }

    async fn extend_lease(&self, run: RunId, by: Duration) -> Result<DateTime<Utc>> {
        positive("lease", by)?;
        self.job_extend_lease(LeaseExtend { run, by }).await
    }

    async fn extend_leases(&self, runs: Vec<RunId>, by: Duration) -> Result<Vec<LeaseStatus>> {
        positive("lease", by)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        self.job_extend_leases(LeasesExtend { runs, by }).await
    }

    async fn complete(&self, params: CompleteParams) -> Result<()> {
        let run = params.run;
        match self.complete_many(vec![params]).await?.first() {
            Some(RunWrite::Applied) => Ok(()),
            Some(other) => Err(rejection(run, *other)),
            None => Err(Error::Corrupt("a completion reported no outcome".into())),
        }
    }

    async fn complete_many(&self, items: Vec<CompleteParams>) -> Result<Vec<RunWrite>> {
        let limits = *self.limits();
        let (unique, repeats) = first_occurrences(items);
        for repeat in repeats.dropped() {
            encode_payload("result", &repeat.result, &limits)?;
        }
        let writes = unique
            .into_iter()
            .map(|item| {
                Ok(JobComplete {
                    run: item.run,
                    result: encode_payload("result", &item.result, &limits)?,
                    delete_on_success: item.delete_on_success,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        repeats.outcomes(&self.job_complete_many(writes).await?)
    }

    async fn fail(&self, run: RunId, reason: Value) -> Result<FailOutcome> {
        let reason = encode_payload("reason", &reason, self.limits())?;
        self.job_fail(JobFail {
            run,
            reason,
            retry_at: None,
        })
        .await
    }

    async fn fail_with_retry_at(
        &self,
        run: RunId,
        reason: Value,
        at: RunAt,
    ) -> Result<FailOutcome> {
        validate_run_at("retry_at", at)?;
        let reason = encode_payload("reason", &reason, self.limits())?;
        self.job_fail(JobFail {
            run,
            reason,
            retry_at: Some(at),
        })
        .await
    }

    async fn rescue_expired(&self, limit: u32) -> Result<RescueReport> {
        validate_limit("limit", limit)?;
        let mut report = RescueReport {
            cancelled: self.job_cancel_by_policy().await?,
            ..RescueReport::default()
        };
        for run in self.job_expired_runs(JobExpired { limit }).await? {
            rescue_one(self, run, &mut report).await?;
        }
        if report != RescueReport::default() {
            tracing::info!(ns = %self.ns(), ?report, "tasque rescued jobs");
        }
        Ok(report)
    }

    async fn cancel(&self, job: JobId) -> Result<CancelOutcome> {
        for _ in 0..CANCEL_ROUNDS {
            match self.job_cancel(JobCancel { job }).await? {
                CancelWrite::Cancelled { was } => return Ok(CancelOutcome::Cancelled { was }),
                CancelWrite::Finished { state } => {
                    return Ok(CancelOutcome::AlreadyFinished { state })
                }
                CancelWrite::Raced => {}
            }
        }
        Err(Error::Contended {
            job,
            operation: "cancel",
        })
    }

    async fn retry(&self, job: JobId, options: Option<SpawnOptions>) -> Result<SpawnResult> {
        let options = options.unwrap_or_default();
        validate_options(&options)?;
        let info = self.job_get(job).await?;
        let refused = |state| Error::InvalidState {
            job,
            state,
            operation: "retry",
        };
        if !info.state.is_retryable() {
            return Err(refused(info.state));
        }
        let merged = options.or(&info.current_options());
        let headers = encode_headers(merged.headers.as_ref(), self.limits())?;
        let params = JobRetry {
            job,
            max_attempts: merged.max_attempts.unwrap_or(info.max_attempts),
            options: merged,
            headers,
        };
        match self.job_retry(params).await? {
            Some(run_id) => Ok(SpawnResult {
                job_id: job,
                run_id,
                attempt: 1,
                created: false,
            }),
            None => Err(refused(self.job_get(job).await?.state)),
        }
    }

    async fn schedule_run(&self, run: RunId, at: RunAt) -> Result<()> {
        validate_run_at("at", at)?;
        self.job_schedule(JobSchedule { run, at }).await
    }

    async fn release(&self, runs: Vec<RunId>) -> Result<u64> {
        if runs.is_empty() {
            return Ok(0);
        }
        self.job_release(JobRelease { runs }).await
    }

    async fn get_job(&self, job: JobId) -> Result<JobInfo> {
        self.job_get(job).await
    }

    async fn get_result(&self, job: JobId) -> Result<JobResult> {
        self.job_get_result(job).await
    }

    async fn count(&self, filter: JobFilter) -> Result<u64> {
        validate_filter(&filter)?;
        self.job_count(&filter).await
    }

    async fn scan(&self, filter: JobFilter, page: PageRequest) -> Result<Page> {
        validate_filter(&filter)?;
        validate_limit("limit", page.limit)?;
        self.job_scan(&filter, page).await
    }

    async fn delete(&self, job: JobId) -> Result<()> {
        if self.job_delete(job).await? {
            return Ok(());
        }
        Err(Error::InvalidState {
            job,
            state: self.job_get_result(job).await?.state,
            operation: "delete a running job (safe delete)",
        })
    }

    async fn purge(&self, filter: JobFilter) -> Result<u64> {
        validate_filter(&filter)?;
        self.job_purge(&filter).await
    }

    async fn clean(&self, older_than: Duration, batch_size: u32) -> Result<u64> {
        validate_limit("batch_size", batch_size)?;
        self.job_clean(JobClean {
            older_than,
            batch_size,
        })
        .await
    }

    async fn create_queue(&self, name: &str) -> Result<QueueInfo> {
        validate_name("queue", name)?;
        self.queue_ensure(name).await?;
        self.list_queues()
            .await?
            .into_iter()
            .find(|q| q.name == name)
            .ok_or_else(|| Error::Corrupt(format!("queue {name:?} vanished")))
    }

    async fn list_queues(&self) -> Result<Vec<QueueInfo>> {
        let mut counts: BTreeMap<String, StateCounts> = BTreeMap::new();
        for row in self.queue_counts().await? {
            counts
                .entry(row.queue)
                .or_default()
                .add(row.state, row.count);
        }
        let mut queues = Vec::new();
        for row in self.queue_list().await? {
            let blocked_by = if row.blocking {
                self.queue_blocked_by(&row.name).await?
            } else {
                None
            };
            queues.push(QueueInfo {
                counts: counts.get(&row.name).copied().unwrap_or_default(),
                paused: row.paused,
                concurrency_limit: row.concurrency_limit,
                blocking: row.blocking,
                on_exhausted: row.on_exhausted,
                blocked_by,
                created_at: row.created_at,
                name: row.name,
            });
        }
        Ok(queues)
    }

    async fn pause_queue(&self, name: &str) -> Result<()> {
        validate_name("queue", name)?;
        let params = QueuePause {
            name: name.to_string(),
            paused: true,
        };
        self.queue_set_paused(params).await
    }

    async fn resume_queue(&self, name: &str) -> Result<()> {
        validate_name("queue", name)?;
        let params = QueuePause {
            name: name.to_string(),
            paused: false,
        };
        self.queue_set_paused(params).await
    }

    async fn get_checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        self.checkpoint_list(job).await
    }

    async fn set_checkpoint(&self, params: SetCheckpoint) -> Result<DateTime<Utc>> {
        validate_step_name(&params.name)?;
        positive("extend_lease", params.extend_lease)?;
        let value = encode_payload("checkpoint", &params.value, self.limits())?;
        self.checkpoint_set(CheckpointSet {
            run: params.run,
            name: params.name,
            value,
            extend_lease: params.extend_lease,
        })
        .await
    }

    async fn wake_due(&self) -> Result<crate::WakeReport> {
        self.job_wake_due().await
    }

    async fn sleep_until(&self, params: SleepParams) -> Result<()> {
        validate_run_at("until", params.until)?;
        self.job_sleep(params).await
    }

    async fn await_event(&self, params: AwaitEvent) -> Result<AwaitOutcome> {
        validate_name("event", &params.name)?;
        if let Some(timeout) = params.timeout {
            positive("timeout", timeout)?;
        }
        self.event_await(params).await
    }

    async fn emit_event(&self, name: &str, payload: Value) -> Result<u64> {
        validate_name("event", name)?;
        let payload = encode_payload("payload", &payload, self.limits())?;
        self.event_emit(EventEmit {
            name: name.to_string(),
            payload,
        })
        .await
    }

    async fn set_queue_limit(&self, name: &str, limit: Option<u32>) -> Result<()> {
        validate_name("queue", name)?;
        validate_queue_limit(limit)?;
        let params = QueueLimit {
            name: name.to_string(),
            limit,
        };
        self.queue_set_limit(params).await
    }

    async fn set_queue_blocking(&self, name: &str, params: BlockingParams) -> Result<()> {
        validate_name("queue", name)?;
        self.queue_set_blocking(QueueBlocking {
            name: name.to_string(),
            blocking: params.blocking,
            on_exhausted: params.on_exhausted,
        })
        .await
    }

    fn subscribe_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.wakeups_subscribe()
    }

    async fn fail_for_good(&self, run: RunId, reason: Value) -> Result<()> {
        let reason = encode_payload("reason", &reason, self.limits())?;
        self.job_fail_for_good(JobFailForGood { run, reason }).await
    }

    async fn announce_finished(&self, jobs: &[JobId]) -> Result<()> {
        self.finished_announce(jobs).await
    }

    async fn watch_finished(&self, job: JobId) -> Result<Option<u64>> {
        self.finished_watch(job).await
    }

    async fn unwatch_finished(&self, job: JobId, token: u64) -> Result<()> {
        self.finished_unwatch(job, token).await
    }

    fn schedules(&self) -> Option<&dyn crate::schedule::ScheduleEngine> {
        self.schedule_engine()
    }

    fn insight(&self) -> Option<&dyn crate::Insight> {
        self.insight_engine()
    }

    fn registry(&self) -> Option<&dyn crate::registry::WorkerRegistry> {
        self.registry_engine()
    }

    fn flow(&self) -> Option<crate::flow::Flow<'_>> {
        self.flow_engine().map(crate::flow::Flow::new)
    }

    fn deps(&self) -> Option<crate::deps::Deps<'_>> {
        self.deps_engine().map(crate::deps::Deps::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused_and_older_or_equal_ones_pass() {
        assert!(check_schema_version(3, 3).is_ok());
        assert!(check_schema_version(0, 3).is_ok());
        assert!(matches!(
            check_schema_version(4, 3),
            Err(Error::SchemaTooNew {
                found: 4,
                supported: 3
            })
        ));
    }
}
