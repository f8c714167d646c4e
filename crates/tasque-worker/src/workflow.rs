//! Durable workflows inside a handler: memoised steps, sleeps and event waits.
//!
//! # The contract
//!
//! A job's handler may be run many times: after a failed attempt, after its worker crashed,
//! and after every sleep or event wait (each of which *ends* the run and resumes the job later
//! as a new run). Workflow calls make those re-runs converge:
//!
//! * [`JobContext::step`] runs a closure once per job. Its result is stored as a checkpoint
//!   under the step's name; every later run gets the stored result back without running the
//!   closure. Writing the checkpoint also extends the run's lease.
//! * [`JobContext::sleep_for`] / [`JobContext::sleep_until`] suspend the job until a time.
//!   The run ends at once (its worker slot is freed, no attempt is counted); a new run starts
//!   at the wake time, replays the earlier steps, and the same sleep call then returns.
//! * [`JobContext::wait_for_event`] waits for an event by name. An event already emitted
//!   returns at once; otherwise the run ends and the job resumes when the event is emitted or
//!   the timeout passes, and the same call then returns [`EventOutcome`].
//!
//! # How replay works
//!
//! Every call is identified by its name, which must be unique within the job (use distinct
//! names for a step called in a loop, e.g. `format!("page-{n}")`). The job's checkpoints are
//! loaded once per run, at the first workflow call. Sleeps and waits record their own
//! checkpoints, named `tasque:sleep:NAME` and `tasque:event:EVENT` (user step names may not
//! start with `tasque:`):
//!
//! * a sleep stores its wake time (engine clock) before suspending. On a later run the call
//!   finds that marker: if the wake time has passed it returns at once; if not (the run was
//!   retried early, e.g. after a crash between the two writes) it suspends again until the
//!   *same* wake time. A sleep therefore never restarts its clock.
//! * a wait stores what it got (the payload, or "timed out") as soon as it knows it: at once
//!   when the event was already emitted, or in the first run after the wake-up (whose claim
//!   carries the event, see [`Claim::wake`](tasque_durable::Claim::wake)). Later runs replay
//!   that stored outcome, even if the event is emitted again with another payload. A job waits
//!   for a given event name at most once; a wait interrupted by a crash before the job
//!   suspended starts its timeout again.
//!
//! Code between workflow calls runs again on every re-run: put side effects inside steps.
//!
//! # How a suspending call ends the run
//!
//! The store ends the run in the same write that suspends the job. The call then interrupts
//! the run: the worker drops the handler's future at once (the call never returns in that
//! run), frees the slot and writes nothing more for the run. Call workflow methods from the
//! handler's own future, not from tasks it spawned (those would be left waiting forever).
//!
//! A run whose lease was lost (or whose job was cancelled) gets
//! [`Error::LeaseLost`] (or [`Error::Cancelled`]) from its next workflow write, and the worker
//! drops its outcome whatever the handler returns.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tasque_durable::{AwaitEvent, AwaitOutcome, RunAt, SetCheckpoint, SleepParams, Wake};

use crate::context::Interruption;
use crate::{Error, JobContext};

/// The prefix of the checkpoints sleeps and event waits write for themselves.
pub const RESERVED_PREFIX: &str = "tasque:";

/// What [`JobContext::wait_for_event`] got.
#[derive(Clone, Debug, PartialEq)]
pub enum EventOutcome {
    /// The event was emitted with this payload (`Value::Null` when it had none).
    Received(Value),
    /// The wait's timeout passed before the event was emitted.
    TimedOut,
}

impl EventOutcome {
    /// The payload, if the event was received.
    pub fn payload(&self) -> Option<&Value> {
        match self {
            EventOutcome::Received(payload) => Some(payload),
            EventOutcome::TimedOut => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            EventOutcome::Received(payload) => json!({ "received": payload }),
            EventOutcome::TimedOut => json!({ "timed_out": true }),
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        if let Some(payload) = value.get("received") {
            return Some(EventOutcome::Received(payload.clone()));
        }
        value
            .get("timed_out")
            .is_some()
            .then_some(EventOutcome::TimedOut)
    }
}

impl JobContext {
    /// Runs `step` once per job: returns the result stored under `name` by an earlier run of
    /// this job, or runs `step`, stores its `Ok` result (extending the run's lease) and
    /// returns it. An `Err` from `step` is returned as is and stores nothing, so the next run
    /// tries the step again.
    ///
    /// Names are unique within a job (1 to 255 bytes, no control characters, not starting with
    /// `tasque:`); calling `step` twice with one name in a job returns the first result.
    ///
    /// Workflow failures ([`Error::LeaseLost`], a database error, a stored value that no longer
    /// decodes into `T`...) come back through `E`'s `From<Error>`.
    ///
    /// ```no_run
    /// # async fn example(ctx: tasque_worker::JobContext) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let user_id: u64 = ctx.step("create-user", || async {
    ///     // ... call a service; runs once per job even if the handler is retried
    ///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(42)
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn step<T, E, F, Fut>(&self, name: &str, step: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        check_step_name(name)?;
        if let Some(stored) = self.checkpoint(name).await? {
            return serde_json::from_value(stored).map_err(|source| {
                E::from(Error::Decode {
                    step: name.to_owned(),
                    source,
                })
            });
        }
        let value = step().await?;
        let encoded = serde_json::to_value(&value).map_err(|source| Error::Encode {
            step: name.to_owned(),
            source,
        })?;
        self.save(name, encoded).await?;
        Ok(value)
    }

    /// Suspends the job for `duration` (measured on the engine's clock from the first time
    /// this call runs), under the replay name `name`. See [`sleep_until`](JobContext::sleep_until).
    pub async fn sleep_for(&self, name: &str, duration: Duration) -> Result<(), Error> {
        let key = marker("sleep", name)?;
        let until = match self.checkpoint(&key).await? {
            Some(stored) => decode_wake_time(&key, &stored)?,
            None => {
                let now = self.store.now().await.map_err(|e| self.write_error(e))?;
                let delta = chrono::Duration::from_std(duration)
                    .unwrap_or_else(|_| chrono::Duration::days(365 * 100));
                now + delta
            }
        };
        self.sleep_marked(&key, until).await
    }

    /// Suspends the job until `until`, under the replay name `name` (unique within the job).
    ///
    /// The first time a job reaches this call it records the wake time, ends the run (the
    /// worker slot is freed at once; no attempt is counted) and never returns in that run. At
    /// the wake time the job is claimed again as a new run; when that run reaches this call,
    /// it returns `Ok(())` at once. A time already past returns at once.
    pub async fn sleep_until(&self, name: &str, until: DateTime<Utc>) -> Result<(), Error> {
        let key = marker("sleep", name)?;
        let until = match self.checkpoint(&key).await? {
            Some(stored) => decode_wake_time(&key, &stored)?,
            None => until,
        };
        self.sleep_marked(&key, until).await
    }

    /// Waits for the event `name`, for at most `timeout` (`None`: until it is emitted).
    ///
    /// An event already emitted (events are stored per namespace) is returned at once and the
    /// run goes on. Otherwise the run ends (the worker slot is freed at once; no attempt is
    /// counted) and the call never returns in that run; the job resumes as a new run when the
    /// event is emitted or the timeout passes, and this call then returns
    /// [`EventOutcome::Received`] or [`EventOutcome::TimedOut`]. The outcome is stored, so
    /// later runs of the job get the same answer. A job waits for a given event name at most
    /// once.
    pub async fn wait_for_event(
        &self,
        name: &str,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<EventOutcome, Error> {
        let key = marker("event", name)?;
        if let Some(stored) = self.checkpoint(&key).await? {
            return EventOutcome::from_json(&stored).ok_or_else(|| Error::Decode {
                step: key.clone(),
                source: serde::de::Error::custom("not an event outcome"),
            });
        }
        let outcome = match self.claim.wake.as_ref() {
            Some(Wake::Event {
                name: woke,
                payload,
            }) if woke == name => EventOutcome::Received(payload.clone()),
            Some(Wake::TimedOut { name: woke }) if woke == name => EventOutcome::TimedOut,
            _ => {
                let wait = AwaitEvent {
                    run: self.claim.run_id,
                    name: name.to_owned(),
                    timeout: timeout.into(),
                };
                match self.store.await_event(wait).await {
                    Ok(AwaitOutcome::Received(payload)) => EventOutcome::Received(payload),
                    Ok(AwaitOutcome::Suspended) => return self.suspended().await,
                    Err(error) => return Err(self.write_error(error)),
                }
            }
        };
        self.save(&key, outcome.to_json()).await?;
        Ok(outcome)
    }

    /// Records the sleep's wake time (first time only) and suspends until it, unless passed.
    async fn sleep_marked(&self, key: &str, until: DateTime<Utc>) -> Result<(), Error> {
        let marked = self.has_checkpoint(key);
        if !marked {
            self.save(key, json!({ "until_ms": until.timestamp_millis() }))
                .await?;
        }
        let now = self.store.now().await.map_err(|e| self.write_error(e))?;
        if now >= until {
            return Ok(());
        }
        let sleep = SleepParams {
            run: self.claim.run_id,
            until: RunAt::At(until),
        };
        self.store
            .sleep_until(sleep)
            .await
            .map_err(|e| self.write_error(e))?;
        tracing::debug!(run = %self.claim.run_id, %until, "run suspended: sleeping");
        self.suspended().await
    }

    /// Marks the run suspended (the worker drops the handler) and never returns.
    async fn suspended<T>(&self) -> Result<T, Error> {
        self.run.interrupt(Interruption::Suspended);
        std::future::pending().await
    }

    /// The job's checkpoints, loaded at the first call of the run.
    async fn checkpoints(&self) -> Result<&Mutex<std::collections::HashMap<String, Value>>, Error> {
        self.run
            .checkpoints
            .get_or_try_init(|| async {
                let stored = self.store.get_checkpoints(self.claim.job_id).await?;
                Ok::<_, Error>(Mutex::new(
                    stored.into_iter().map(|c| (c.name, c.value)).collect(),
                ))
            })
            .await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Value>, Error> {
        if self.run.interruption().is_some() {
            return Err(Error::LeaseLost(self.claim.run_id));
        }
        Ok(self.checkpoints().await?.lock().get(name).cloned())
    }

    fn has_checkpoint(&self, name: &str) -> bool {
        self.run
            .checkpoints
            .get()
            .is_some_and(|map| map.lock().contains_key(name))
    }

    /// Stores a checkpoint, extending the lease; a stale run is interrupted.
    pub(crate) async fn save(&self, name: &str, value: Value) -> Result<(), Error> {
        let params = SetCheckpoint {
            run: self.claim.run_id,
            name: name.to_owned(),
            value: value.clone(),
            extend_lease: self.lease,
        };
        self.store
            .set_checkpoint(params)
            .await
            .map_err(|e| self.write_error(e))?;
        self.checkpoints()
            .await?
            .lock()
            .insert(name.to_owned(), value);
        Ok(())
    }

    /// Classifies a guarded write's error; a run that lost its job is interrupted.
    fn write_error(&self, error: tasque_durable::Error) -> Error {
        let error = match error {
            tasque_durable::Error::StaleRun(run) => Error::LeaseLost(run),
            tasque_durable::Error::RunCancelled(run) => Error::Cancelled(run),
            other => return Error::Store(other),
        };
        tracing::info!(run = %self.claim.run_id, %error, "workflow write rejected");
        self.run.interrupt(Interruption::Lost);
        error
    }
}

fn check_step_name(name: &str) -> Result<(), Error> {
    let reason = if name.starts_with(RESERVED_PREFIX) {
        "the prefix `tasque:` is reserved for sleeps and event waits"
    } else if name.is_empty() || name.len() > 255 {
        "must be 1 to 255 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidStep {
        name: name.chars().take(200).collect(),
        reason,
    })
}

/// The checkpoint name of a sleep or wait.
fn marker(kind: &str, name: &str) -> Result<String, Error> {
    let key = format!("{RESERVED_PREFIX}{kind}:{name}");
    let reason = if name.is_empty() || key.len() > 255 {
        "must be 1 to 240 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(key);
    };
    Err(Error::InvalidStep {
        name: name.chars().take(200).collect(),
        reason,
    })
}

fn decode_wake_time(key: &str, stored: &Value) -> Result<DateTime<Utc>, Error> {
    stored
        .get("until_ms")
        .and_then(Value::as_i64)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| Error::Decode {
            step: key.to_owned(),
            source: serde::de::Error::custom("not a sleep marker"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_outcomes_round_trip_through_their_markers() {
        for outcome in [
            EventOutcome::Received(json!({"a": 1})),
            EventOutcome::Received(Value::Null),
            EventOutcome::TimedOut,
        ] {
            assert_eq!(EventOutcome::from_json(&outcome.to_json()), Some(outcome));
        }
        assert_eq!(EventOutcome::from_json(&json!(3)), None);
    }

    #[test]
    fn step_names_are_checked_and_the_prefix_is_reserved() {
        assert!(check_step_name("charge-card").is_ok());
        assert!(check_step_name("").is_err());
        assert!(check_step_name("tasque:sleep:x").is_err());
        assert!(check_step_name("a\nb").is_err());
        assert!(check_step_name(&"x".repeat(256)).is_err());
        assert_eq!(marker("sleep", "nap").unwrap(), "tasque:sleep:nap");
        assert!(marker("event", &"x".repeat(250)).is_err());
    }
}
