//! Tasque's test kit: the worker-level tests every engine runs from its own `tests/`, written
//! once against [`Store`](tasque_durable::Store) (not published).
//!
//! # What it guarantees
//!
//! Each case takes a fresh, migrated store from the engine's test (or a [`processes::Harness`]
//! for cases with processes) and fails the calling test, with a message naming what went wrong,
//! when the engine breaks the contract; a case never passes by asserting nothing. Waits use
//! generous deadlines on the event itself, never a bare sleep.
//!
//! - [`workflow`]: durable workflows through a real [`Worker`](tasque_worker::Worker):
//!   memoised steps, sleeps that free their slot, event waits, stale runs. An engine runs them
//!   all with [`workflow_cases!`](crate::workflow_cases).
//! - [`processes`]: real worker processes on one database: a worker killed (SIGKILL) between
//!   steps resumes from its checkpoints, a queue limit and a blocking queue hold across
//!   processes. The child workers are the calling test binary itself, started again (see the
//!   module), so engines need no extra binary target and no dependency on the worker.
//!
//! - [`fleet`]: several worker processes share thousands of jobs, each runs exactly once; one
//!   of them killed (SIGKILL) mid-run has its jobs run again only once their leases expired.
//!
//! - [`upgrade`]: a database made by the current release (a dump each engine keeps) upgrades
//!   to this build's schema without losing a job.
//!
//! Engines depend on this crate as a dev-dependency only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fleet;
pub mod processes;
pub mod upgrade;
pub mod workflow;

/// Whether the tests run under CI (`CI=true` or `CI=1`). There a server a test needs that
/// cannot be reached fails the test; elsewhere the test skips it loudly.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
