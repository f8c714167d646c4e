//! Inspector filters and paging.

use super::{JobId, JobInfo, JobState};

/// Which jobs an inspector operation looks at. Empty lists match everything; the lists are
/// combined with AND, their items with OR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Jobs in any of these states.
    pub states: Vec<JobState>,
    /// Jobs with any of these task names.
    pub tasks: Vec<String>,
    /// Jobs in any of these queues.
    pub queues: Vec<String>,
}

impl JobFilter {
    /// A filter matching every job.
    pub fn all() -> Self {
        Self::default()
    }

    /// Restricts to these states.
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Restricts to these task names.
    pub fn tasks<S: Into<String>>(mut self, tasks: impl IntoIterator<Item = S>) -> Self {
        self.tasks = tasks.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts to these queues.
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }
}

/// Where a page starts. Pages are ordered by job id, ascending.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum PageStart {
    /// From the first job.
    #[default]
    First,
    /// After this job (keyset paging: stable while jobs are added or removed).
    After(JobId),
    /// Skipping this many jobs.
    Offset(u64),
}

/// A page request: where to start and how many jobs at most.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Where the page starts.
    pub start: PageStart,
    /// The most jobs returned (at least 1).
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` jobs.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            start: PageStart::First,
            limit,
        }
    }

    /// The page of `limit` jobs after `cursor`.
    pub fn after(cursor: JobId, limit: u32) -> Self {
        PageRequest {
            start: PageStart::After(cursor),
            limit,
        }
    }

    /// The page of `limit` jobs after skipping `offset`.
    pub fn offset(offset: u64, limit: u32) -> Self {
        PageRequest {
            start: PageStart::Offset(offset),
            limit,
        }
    }
}

/// One page of a scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The jobs, by id ascending.
    pub jobs: Vec<JobInfo>,
    /// The cursor of the next page, `None` when this page was the last.
    pub next: Option<JobId>,
}

impl Page {
    /// The page of up to `limit` jobs from a scan that asked for one job more than `limit`:
    /// when that extra job came back there is a next page, which starts after this page's last
    /// job.
    pub fn from_overfetched(mut jobs: Vec<JobInfo>, limit: u32) -> Page {
        let limit = limit as usize;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next = if more {
            jobs.last().map(|job| job.id)
        } else {
            None
        };
        Page { jobs, next }
    }
}
