//! Settling a delivery: turning a task's outcome into ack, nack, retry or
//! dead-letter on the broker.
//!
//! Every settlement goes through the delivery's own acker, which belongs to
//! the channel the delivery came on. If that channel has died, lapin refuses
//! the ack (`Ok(false)` or an error): the settlement is *dropped* and counted,
//! never retried on another channel, because the broker has already put the
//! message back and will deliver it again.

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions, BasicRejectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel};
use tasque_core::{ExitReason, Outcome, Timeout};

use crate::consumer::Shared;
use crate::headers;
use crate::stats::Counters;
use crate::RetryMode;

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The handler succeeded.
    Ack,
    /// The attempt failed (error, panic, timeout): retry or dead-letter.
    Fail(String),
    /// Not the message's fault (shutdown, lost engine): put it back uncounted.
    Requeue(String),
    /// Retrying cannot help (unknown task, undecodable payload).
    DeadLetter(String),
}

impl Verdict {
    /// The verdict for a handler task's outcome.
    pub(crate) fn from_outcome(outcome: Outcome<Result<(), String>>, timeout: Timeout) -> Self {
        match outcome {
            Outcome::Ok(Ok(())) => Verdict::Ack,
            Outcome::Ok(Err(error)) => Verdict::Fail(format!("handler failed: {error}")),
            Outcome::Exit(ExitReason::Panicked(message)) => {
                Verdict::Fail(format!("handler panicked: {message}"))
            }
            Outcome::Exit(ExitReason::Timeout) => match timeout {
                Timeout::After(limit) => {
                    Verdict::Fail(format!("handler timed out after {limit:?}"))
                }
                Timeout::Infinity => Verdict::Fail("handler timed out".to_owned()),
            },
            Outcome::Exit(
                reason
                @ (ExitReason::Shutdown | ExitReason::Cancelled | ExitReason::QueueRestarted),
            ) => Verdict::Requeue(reason.to_string()),
            Outcome::Exit(reason) => Verdict::Fail(reason.to_string()),
        }
    }
}

/// Where a delivery came from and what it was taken for.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The consumed queue.
    pub(crate) queue: String,
    /// The resolved task name.
    pub(crate) task: String,
    /// This attempt, from 1.
    pub(crate) attempt: u32,
}

/// Settles one delivery according to `verdict`.
pub(crate) async fn settle(
    shared: &Shared,
    publish: &Channel,
    delivery: &Delivery,
    origin: &Origin,
    verdict: Verdict,
) {
    let counters = &shared.counters;
    match verdict {
        Verdict::Ack => {
            let acked = delivery.ack(BasicAckOptions::default()).await;
            count(counters, acked, &counters.acked);
            tracing::debug!("acked");
        }
        Verdict::Requeue(reason) => {
            tracing::debug!(%reason, "requeueing");
            requeue(counters, delivery).await;
        }
        Verdict::DeadLetter(reason) => {
            dead_letter(shared, publish, delivery, origin, &reason).await
        }
        Verdict::Fail(reason) => {
            let config = &shared.config;
            match config.retry {
                RetryMode::Requeue => {
                    tracing::warn!(%reason, attempt = origin.attempt, "attempt failed; requeueing");
                    requeue(counters, delivery).await;
                }
                RetryMode::Republish if origin.attempt >= config.max_attempts => {
                    let reason = format!(
                        "gave up after {} attempts; last error: {reason}",
                        origin.attempt
                    );
                    dead_letter(shared, publish, delivery, origin, &reason).await;
                }
                RetryMode::Republish => {
                    tracing::warn!(%reason, attempt = origin.attempt, "attempt failed; retrying");
                    retry(shared, publish, delivery, origin, &reason).await;
                }
            }
        }
    }
}

/// Republishes a copy with the attempt counted, then acks the original.
async fn retry(
    shared: &Shared,
    publish: &Channel,
    delivery: &Delivery,
    origin: &Origin,
    reason: &str,
) {
    let properties = headers::with(
        &delivery.properties,
        vec![
            (headers::ATTEMPTS, headers::number(origin.attempt)),
            (headers::TASK, headers::text(&origin.task)),
            (headers::LAST_ERROR, headers::text(reason)),
        ],
    );
    let counters = &shared.counters;
    match publish_confirmed(publish, "", &origin.queue, &delivery.data, properties).await {
        Ok(()) => {
            let acked = delivery.ack(BasicAckOptions::default()).await;
            count(counters, acked, &counters.retried);
        }
        Err(error) => {
            tracing::error!(%error, "could not republish for a retry; requeueing the original");
            requeue(counters, delivery).await;
        }
    }
}

/// Sends the message to the dead-letter target with the reason in a header,
/// then acks the original; without a target, rejects it without requeue.
async fn dead_letter(
    shared: &Shared,
    publish: &Channel,
    delivery: &Delivery,
    origin: &Origin,
    reason: &str,
) {
    let counters = &shared.counters;
    let Some(target) = &shared.config.dead_letter else {
        tracing::warn!(%reason, "rejecting without requeue (no dead-letter target configured)");
        let rejected = delivery.reject(BasicRejectOptions { requeue: false }).await;
        count(counters, rejected, &counters.dead_lettered);
        return;
    };
    tracing::warn!(%reason, "dead-lettering");
    let properties = headers::with(
        &delivery.properties,
        vec![
            (headers::DEAD_LETTER_REASON, headers::text(reason)),
            (headers::ATTEMPTS, headers::number(origin.attempt)),
            (headers::TASK, headers::text(&origin.task)),
            (headers::SOURCE_QUEUE, headers::text(&origin.queue)),
        ],
    );
    let (exchange, routing_key) = target.target(delivery.routing_key.as_str());
    match publish_confirmed(publish, exchange, routing_key, &delivery.data, properties).await {
        Ok(()) => {
            let acked = delivery.ack(BasicAckOptions::default()).await;
            count(counters, acked, &counters.dead_lettered);
        }
        Err(error) => {
            tracing::error!(%error, "could not dead-letter; requeueing the original");
            requeue(counters, delivery).await;
        }
    }
}

/// `basic.nack` with requeue.
async fn requeue(counters: &Counters, delivery: &Delivery) {
    let nacked = delivery
        .nack(BasicNackOptions {
            multiple: false,
            requeue: true,
        })
        .await;
    count(counters, nacked, &counters.nacked);
}

/// Counts a settlement as done, or as dropped when its channel was gone.
fn count(counters: &Counters, result: lapin::Result<bool>, done: &std::sync::atomic::AtomicU64) {
    match result {
        Ok(true) => Counters::bump(done),
        Ok(false) => {
            tracing::debug!("channel gone; settlement dropped, the broker redelivers");
            Counters::bump(&counters.settlements_dropped);
        }
        Err(error) => {
            tracing::debug!(%error, "settlement failed; the broker redelivers");
            Counters::bump(&counters.settlements_dropped);
        }
    }
}

/// Publishes with `mandatory` and waits for the broker's confirm; a nack or
/// an unroutable return is an error.
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), crate::Error> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish(exchange, routing_key, options, payload, properties)
        .await?;
    match confirm.await? {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            Err(crate::Error::NotConfirmed(format!(
                "returned as unroutable ({} {}) by exchange {:?} with routing key {:?}",
                returned.reply_code, returned.reply_text, exchange, routing_key
            )))
        }
        Confirmation::Nack(None) => Err(crate::Error::NotConfirmed(format!(
            "negatively confirmed by exchange {exchange:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn engine_exits_map_to_counted_failures_or_uncounted_requeues() {
        let timeout = Timeout::After(Duration::from_secs(2));
        let verdict = |outcome| Verdict::from_outcome(outcome, timeout);
        assert_eq!(verdict(Outcome::Ok(Ok(()))), Verdict::Ack);
        assert!(matches!(
            verdict(Outcome::Ok(Err("x".into()))),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            verdict(Outcome::Exit(ExitReason::Panicked("boom".into()))),
            Verdict::Fail(reason) if reason.contains("boom")
        ));
        assert!(matches!(
            verdict(Outcome::Exit(ExitReason::Timeout)),
            Verdict::Fail(reason) if reason.contains("timed out")
        ));
        for reason in [
            ExitReason::Shutdown,
            ExitReason::Cancelled,
            ExitReason::QueueRestarted,
        ] {
            assert!(matches!(
                verdict(Outcome::Exit(reason)),
                Verdict::Requeue(_)
            ));
        }
    }
}
