//! What to write for a finished run: its verdict, from the in-process outcome, the worker's
//! abort reason and the handler's requests (snooze, fail for good).

use std::time::Duration;

use serde_json::Value;
use tasque_core::{ExitReason, Outcome};
use tasque_durable::{FailureKind, FailureReason};

use crate::context::{Interruption, JobContext};
use crate::handlers::RunOutput;
use crate::inflight::Abort;
use crate::report::Verdict;

/// Decides what to write for a finished run. A run its context interrupted (suspended by a
/// workflow call, or found stale by one) writes nothing, whatever else happened.
pub(crate) fn verdict(
    outcome: Outcome<RunOutput>,
    abort: Option<Abort>,
    context: &JobContext,
    timeout: Option<Duration>,
) -> Verdict {
    match context.interruption() {
        Some(Interruption::Suspended) => return Verdict::Suspended,
        Some(Interruption::Lost) => return Verdict::Drop,
        None => {}
    }
    match (abort, outcome) {
        (Some(Abort::Released), _) => Verdict::Release,
        (Some(Abort::Cancelled | Abort::LeaseLost), _) => Verdict::Drop,
        (None, Outcome::Ok(RunOutput::Interrupted)) => Verdict::Drop,
        (None, Outcome::Ok(RunOutput::Finished(Ok(result)))) => match context.snoozed() {
            Some(delay) => Verdict::Defer(delay),
            None => Verdict::Complete(result),
        },
        (None, Outcome::Ok(RunOutput::Finished(Err(reason)))) => failed(context, reason),
        (None, Outcome::Exit(ExitReason::Panicked(message))) => {
            tracing::debug!(run = %context.run_id(), error = %message, "job handler panicked; attempt failed");
            failed(
                context,
                FailureReason::new(FailureKind::Panicked, message).to_json(),
            )
        }
        (None, Outcome::Exit(ExitReason::Timeout)) => {
            let message = format!(
                "run exceeded its timeout of {:?}",
                timeout.unwrap_or_default()
            );
            failed(
                context,
                FailureReason::new(FailureKind::Timeout, message).to_json(),
            )
        }
        (None, Outcome::Exit(ExitReason::Cancelled)) => Verdict::Drop,
        (None, Outcome::Exit(reason)) => {
            tracing::warn!(%reason, "in-process queue stopped the run; releasing it");
            Verdict::Release
        }
    }
}

/// A failed attempt's verdict: the reason gets the attempt number (when it is a typed reason
/// without one), and the failure is final when the handler asked for it.
fn failed(context: &JobContext, mut reason: Value) -> Verdict {
    if let Some(object) = reason.as_object_mut() {
        if object.contains_key("kind") && !object.contains_key("attempt") {
            object.insert("attempt".into(), context.attempt().into());
        }
    }
    if context.failing_for_good() {
        Verdict::FailForGood(reason)
    } else {
        Verdict::Fail(reason)
    }
}
