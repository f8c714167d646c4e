//! The job list: filters, search in args, cursor pages, and the bulk actions over a selection or
//! over everything a filter matches.
//!
//! # Contract
//!
//! - Pages follow the store's keyset order (job id ascending); the cursor is the last job id
//!   shown, so a page costs the same at any depth and never skips or repeats a job while jobs
//!   are added or removed.
//! - A search in args reads at most [`SEARCH_BUDGET`] jobs per page: a page may come back
//!   short, with a cursor to go on from where the search stopped.
//! - A bulk action over a filter acts on exactly the jobs the preview counted that are still
//!   there and still eligible; jobs not eligible (retrying a completed job, deleting a running
//!   one) are counted as skipped, never changed.

use serde::{Deserialize, Serialize};
use tasque_durable::{Error, JobFilter, JobId, JobInfo, JobState, PageRequest, Store};

use crate::error::WebError;

/// Jobs per page of the list.
pub const PAGE_SIZE: u32 = 50;
/// The most jobs one page of a search in args reads.
pub const SEARCH_BUDGET: u64 = 5_000;
/// Jobs read per store round trip while searching or acting in bulk.
const BATCH: u32 = 500;

/// The list's filter, as query parameters (empty means any).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsQuery {
    /// A state name.
    pub state: String,
    /// A queue.
    pub queue: String,
    /// A task name (kind).
    pub kind: String,
    /// Text searched for in the JSON args.
    pub q: String,
    /// The cursor: list jobs after this id.
    pub after: Option<i64>,
}

impl JobsQuery {
    /// The store filter (without the search text), refusing an unknown state.
    pub fn filter(&self) -> Result<JobFilter, WebError> {
        let mut filter = JobFilter::all();
        if !self.state.is_empty() {
            let state: JobState =
                self.state
                    .parse()
                    .map_err(|e: tasque_durable::model::ParseStateError| {
                        WebError::BadRequest(e.to_string())
                    })?;
            filter = filter.states([state]);
        }
        if !self.queue.is_empty() {
            filter = filter.queues([self.queue.clone()]);
        }
        if !self.kind.is_empty() {
            filter = filter.tasks([self.kind.clone()]);
        }
        Ok(filter)
    }

    /// True when `job` matches the search text.
    pub fn matches(&self, job: &JobInfo) -> bool {
        self.q.is_empty() || job.params.to_string().contains(&self.q)
    }

    /// The query string of this filter (without the cursor), URL-encoded.
    pub fn to_query(&self) -> String {
        let pairs = [
            ("state", &self.state),
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("q", &self.q),
        ];
        let kept: Vec<(&str, &String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// A job as the list shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    /// Its id.
    pub id: i64,
    /// Its queue.
    pub queue: String,
    /// Its task name.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Its current attempt.
    pub attempt: u32,
    /// Its attempt budget.
    pub max_attempts: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Its args, shortened.
    pub args: String,
}

impl From<&JobInfo> for JobRow {
    fn from(job: &JobInfo) -> Self {
        let mut args = job.params.to_string();
        if args.len() > 120 {
            let cut = (0..=117)
                .rev()
                .find(|i| args.is_char_boundary(*i))
                .unwrap_or(0);
            args.truncate(cut);
            args.push('…');
        }
        JobRow {
            id: job.id.0,
            queue: job.queue.clone(),
            kind: job.task.clone(),
            state: job.state,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            created_at: job
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            args,
        }
    }
}

/// One page of the list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobList {
    /// The jobs.
    pub jobs: Vec<JobRow>,
    /// The cursor of the next page.
    pub next: Option<i64>,
}

/// One page of jobs matching `query`.
pub async fn list(store: &dyn Store, query: &JobsQuery) -> Result<JobList, WebError> {
    let filter = query.filter()?;
    let mut cursor = query.after.map(JobId);
    if query.q.is_empty() {
        let page = match cursor {
            Some(after) => PageRequest::after(after, PAGE_SIZE),
            None => PageRequest::first(PAGE_SIZE),
        };
        let page = store.scan(filter, page).await?;
        return Ok(JobList {
            jobs: page.jobs.iter().map(JobRow::from).collect(),
            next: page.next.map(|j| j.0),
        });
    }
    let mut jobs = Vec::new();
    let mut read = 0u64;
    loop {
        let request = match cursor {
            Some(after) => PageRequest::after(after, BATCH),
            None => PageRequest::first(BATCH),
        };
        let page = store.scan(filter.clone(), request).await?;
        for job in &page.jobs {
            read += 1;
            cursor = Some(job.id);
            if query.matches(job) {
                jobs.push(JobRow::from(job));
                if jobs.len() == PAGE_SIZE as usize {
                    let more = page.next.is_some() || page.jobs.last().map(|j| j.id) != cursor;
                    return Ok(JobList {
                        jobs,
                        next: if more { cursor.map(|j| j.0) } else { None },
                    });
                }
            }
        }
        if page.next.is_none() {
            return Ok(JobList { jobs, next: None });
        }
        if read >= SEARCH_BUDGET {
            return Ok(JobList {
                jobs,
                next: cursor.map(|j| j.0),
            });
        }
    }
}

/// A bulk action.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Retry failed and cancelled jobs.
    Retry,
    /// Cancel unfinished jobs.
    Cancel,
    /// Delete jobs that are not running.
    Delete,
}

impl BulkAction {
    /// The verb, for pages.
    pub fn verb(self) -> &'static str {
        match self {
            BulkAction::Retry => "retry",
            BulkAction::Cancel => "cancel",
            BulkAction::Delete => "delete",
        }
    }

    /// Applies the action to one job: true when it changed, false when the job was not
    /// eligible (or is gone).
    pub async fn apply(self, store: &dyn Store, job: JobId) -> Result<bool, WebError> {
        let done = match self {
            BulkAction::Retry => store.retry(job, None).await.map(|_| true),
            BulkAction::Cancel => store
                .cancel(job)
                .await
                .map(|outcome| matches!(outcome, tasque_durable::CancelOutcome::Cancelled { .. })),
            BulkAction::Delete => store.delete(job).await.map(|()| true),
        };
        match done {
            Ok(changed) => Ok(changed),
            Err(Error::InvalidState { .. } | Error::NotFound(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }
}

/// What a bulk action did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BulkReport {
    /// Jobs changed.
    pub done: u64,
    /// Jobs left alone (not eligible, or gone).
    pub skipped: u64,
}

/// How many jobs match `query` (the count a bulk action's confirmation shows).
pub async fn count(store: &dyn Store, query: &JobsQuery) -> Result<u64, WebError> {
    let filter = query.filter()?;
    if query.q.is_empty() {
        return Ok(store.count(filter).await?);
    }
    let mut n = 0;
    for_each_match(store, query, |_| {
        n += 1;
    })
    .await?;
    Ok(n)
}

/// Applies `action` to everything matching `query`.
pub async fn apply_to_filter(
    store: &dyn Store,
    query: &JobsQuery,
    action: BulkAction,
) -> Result<BulkReport, WebError> {
    let mut ids = Vec::new();
    for_each_match(store, query, |job| ids.push(job.id)).await?;
    apply_to_ids(store, &ids, action).await
}

/// Applies `action` to each of `ids`.
pub async fn apply_to_ids(
    store: &dyn Store,
    ids: &[JobId],
    action: BulkAction,
) -> Result<BulkReport, WebError> {
    let mut report = BulkReport::default();
    for id in ids {
        if action.apply(store, *id).await? {
            report.done += 1;
        } else {
            report.skipped += 1;
        }
    }
    Ok(report)
}

/// Calls `each` with every job matching `query`, in id order.
async fn for_each_match(
    store: &dyn Store,
    query: &JobsQuery,
    mut each: impl FnMut(&JobInfo),
) -> Result<(), WebError> {
    let filter = query.filter()?;
    let mut cursor = None;
    loop {
        let request = match cursor {
            Some(after) => PageRequest::after(after, BATCH),
            None => PageRequest::first(BATCH),
        };
        let page = store.scan(filter.clone(), request).await?;
        for job in page.jobs.iter().filter(|job| query.matches(job)) {
            each(job);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
