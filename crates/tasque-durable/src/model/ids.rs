//! Identifiers of jobs and runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identity of a job, unique within a store's namespace and never reused by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

/// The identity of one run (attempt) of a job: the job and the run's sequence number.
///
/// A job gets a new run, with a higher `seq`, every time it becomes claimable again (spawn,
/// retry after a failure, rescue of an expired lease, release, reschedule, manual retry), so
/// every claim works on a run id that no earlier claim held. Writes from a worker (complete,
/// fail, extend the lease, reschedule) carry the run id and are applied only while that run
/// still owns the job; a stale owner is told [`Error::StaleRun`](crate::Error::StaleRun).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId {
    /// The job this run belongs to.
    pub job: JobId,
    /// The run's sequence number within the job, starting at 1.
    pub seq: i64,
}

impl RunId {
    /// Builds a run id.
    pub fn new(job: JobId, seq: i64) -> Self {
        RunId { job, seq }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.job, self.seq)
    }
}

/// The error of parsing a [`RunId`] from its `job/seq` text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run id {0:?}: expected JOB/SEQ, e.g. 42/3")]
pub struct ParseRunIdError(pub String);

impl FromStr for RunId {
    type Err = ParseRunIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseRunIdError(s.to_string());
        let (job, seq) = s.split_once('/').ok_or_else(err)?;
        Ok(RunId {
            job: job.parse().map_err(|_| err())?,
            seq: seq.parse().map_err(|_| err())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_round_trips_through_text() {
        let run = RunId::new(JobId(42), 3);
        assert_eq!(run.to_string(), "42/3");
        assert_eq!("42/3".parse::<RunId>().unwrap(), run);
        assert!("42".parse::<RunId>().is_err());
        assert!("a/b".parse::<RunId>().is_err());
    }
}
