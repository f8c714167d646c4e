//! What enqueue assertions read: the enqueued jobs of a test, or of a scope within it.

use std::time::Duration;

use tasque_durable::client::{Client, Job};
use tasque_durable::{JobFilter, JobInfo, JobState};

use super::expect::{list_jobs, Expect};
use super::{AssertionError, TestClock, TestingError};

/// How often a waiting assertion looks again.
const RECHECK: Duration = Duration::from_millis(10);

/// The jobs an assertion sees: those of the client's namespace, or of a scope (ids in a range).
#[derive(Clone, Debug)]
pub struct View {
    pub(super) client: Client,
    pub(super) clock: TestClock,
    /// Only jobs with an id above this.
    pub(super) after: i64,
    /// Only jobs with an id up to this.
    pub(super) upto: Option<i64>,
}

/// Something enqueue assertions look into: a [`TestEnv`](super::TestEnv) (every job of its
/// namespace) or a [`Scope`](super::Scope) (the jobs enqueued inside it).
pub trait Enqueues {
    /// The jobs it sees.
    fn view(&self) -> &View;
}

impl Enqueues for View {
    fn view(&self) -> &View {
        self
    }
}

impl View {
    /// Every job it sees in `states` (all states when empty), by id.
    pub(super) async fn jobs(&self, states: &[JobState]) -> Result<Vec<JobInfo>, TestingError> {
        let filter = JobFilter::all().states(states.iter().copied());
        let mut jobs = super::drain::jobs_after(self.client.store(), filter, self.after).await?;
        if let Some(upto) = self.upto {
            jobs.retain(|job| job.id.0 <= upto);
        }
        Ok(jobs)
    }

    /// The enqueued jobs (available or scheduled) it sees.
    pub(super) async fn enqueued(&self) -> Result<Vec<JobInfo>, TestingError> {
        self.jobs(&[JobState::Available, JobState::Scheduled]).await
    }

    /// The first enqueued job matching, waiting up to `expect.within`.
    pub async fn assert_enqueued(&self, expect: &Expect) -> Result<JobInfo, AssertionError> {
        let deadline = tokio::time::Instant::now() + expect.within.unwrap_or_default();
        loop {
            let jobs = self.enqueued().await.map_err(AssertionError::from_error)?;
            let now = self.clock.now();
            if let Some(job) = jobs.iter().find(|job| expect.matches(job, now)) {
                return Ok(job.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                let waited = match expect.within {
                    Some(limit) => format!(" (waited {limit:?})"),
                    None => String::new(),
                };
                return Err(AssertionError::new(format!(
                    "expected an enqueued job with {}{waited}, but found none; the {} enqueued \
                     job(s) were:\n{}",
                    expect.describe(now),
                    jobs.len(),
                    list_jobs(&jobs)
                )));
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Ok when no enqueued job matches, watching up to `expect.within`.
    pub async fn refute_enqueued(&self, expect: &Expect) -> Result<(), AssertionError> {
        let deadline = tokio::time::Instant::now() + expect.within.unwrap_or_default();
        loop {
            let jobs = self.enqueued().await.map_err(AssertionError::from_error)?;
            let now = self.clock.now();
            let matching: Vec<JobInfo> = jobs
                .into_iter()
                .filter(|job| expect.matches(job, now))
                .collect();
            if !matching.is_empty() {
                return Err(AssertionError::new(format!(
                    "expected no enqueued job with {}, but found {}:\n{}",
                    expect.describe(now),
                    matching.len(),
                    list_jobs(&matching)
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// The args of every enqueued job of kind `J`, by id.
    pub async fn all_enqueued<J: Job>(&self) -> Result<Vec<J>, TestingError> {
        self.enqueued()
            .await?
            .into_iter()
            .filter(|job| job.task == J::KIND)
            .map(|job| {
                serde_json::from_value(job.params).map_err(|source| TestingError::Decode {
                    job: job.id,
                    kind: J::KIND,
                    source,
                })
            })
            .collect()
    }

    /// The highest job id of the namespace now (0 when it has none).
    pub(super) async fn last_id(&self) -> Result<i64, TestingError> {
        let all = View {
            after: self.after,
            upto: None,
            ..self.clone()
        };
        Ok(all
            .jobs(&[])
            .await?
            .last()
            .map_or(self.after, |job| job.id.0))
    }
}
