//! Checking a [`Schedule`] and computing its ticks: pure functions of a given instant.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde_json::json;

use super::spec::Schedule;
use crate::model::Spawn;
use crate::options::SpawnOptions;
use crate::validate;

/// Why a schedule (or a set of schedules) was refused. Nothing was written.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("schedule {id:?}: invalid cron expression {expression:?}: {reason}")]
    InvalidExpression {
        /// The schedule.
        id: String,
        /// The refused expression.
        expression: String,
        /// The parser's message.
        reason: String,
    },
    /// The time zone is not an IANA zone name.
    #[error("schedule {id:?}: unknown time zone {zone:?} (use an IANA name such as Europe/Paris)")]
    UnknownZone {
        /// The schedule.
        id: String,
        /// The refused zone.
        zone: String,
    },
    /// Two schedules share an id.
    #[error("duplicate schedule id {id:?}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// Another field is missing or out of range (the id, the cadence, the task, an option).
    #[error("schedule {id:?}: invalid `{field}`: {reason}")]
    Invalid {
        /// The schedule.
        id: String,
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl ScheduleError {
    fn invalid(id: &str, field: &'static str, reason: impl Into<String>) -> Self {
        ScheduleError::Invalid {
            id: id.to_owned(),
            field,
            reason: reason.into(),
        }
    }
}

/// How a compiled schedule ticks.
#[derive(Clone, Debug)]
enum Cadence {
    Every(i64),
    Cron(Box<Cron>),
}

/// A checked [`Schedule`], ready to compute ticks and build its jobs.
#[derive(Clone, Debug)]
pub struct CompiledSchedule {
    spec: Schedule,
    cadence: Cadence,
    zone: Tz,
}

/// Header naming the schedule a job was fired by.
pub const HEADER_ID: &str = "tasque.cron.id";
/// Header holding the tick (RFC 3339, UTC) a job was fired for.
pub const HEADER_TICK: &str = "tasque.cron.tick";

impl Schedule {
    /// Checks the schedule: a valid id, exactly one cadence, a cron expression that parses, an
    /// IANA zone, a task name, valid job options.
    pub fn compile(&self) -> Result<CompiledSchedule, ScheduleError> {
        let id = self.id.as_str();
        validate::validate_name("schedule", id)
            .map_err(|e| ScheduleError::invalid(id, "id", e.to_string()))?;
        let cadence = match (&self.cron, self.every_seconds) {
            (Some(_), Some(_)) => {
                return Err(ScheduleError::invalid(
                    id,
                    "cron",
                    "give either `cron` or `every_seconds`, not both",
                ))
            }
            (None, None) => {
                return Err(ScheduleError::invalid(
                    id,
                    "cron",
                    "give a cron expression or `every_seconds`",
                ))
            }
            (None, Some(secs)) => match i64::try_from(secs) {
                Ok(secs) if secs >= 1 => Cadence::Every(secs),
                _ => {
                    return Err(ScheduleError::invalid(
                        id,
                        "every_seconds",
                        "must be a whole number of seconds, at least 1",
                    ))
                }
            },
            (Some(expression), None) => {
                let cron: Cron = expression.parse().map_err(|e: croner::errors::CronError| {
                    ScheduleError::InvalidExpression {
                        id: id.to_owned(),
                        expression: expression.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Cadence::Cron(Box::new(cron))
            }
        };
        let zone: Tz = self.zone.parse().map_err(|_| ScheduleError::UnknownZone {
            id: id.to_owned(),
            zone: self.zone.clone(),
        })?;
        let compiled = CompiledSchedule {
            spec: self.clone(),
            cadence,
            zone,
        };
        if compiled.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::invalid(id, "cron", "never fires"));
        }
        compiled.check_job()?;
        Ok(compiled)
    }
}

/// Compiles every schedule and refuses duplicate ids; the first error wins.
pub fn compile_all(schedules: &[Schedule]) -> Result<Vec<CompiledSchedule>, ScheduleError> {
    let mut seen = HashSet::new();
    let mut compiled = Vec::with_capacity(schedules.len());
    for schedule in schedules {
        if !seen.insert(schedule.id.as_str()) {
            return Err(ScheduleError::DuplicateId {
                id: schedule.id.clone(),
            });
        }
        compiled.push(schedule.compile()?);
    }
    Ok(compiled)
}

/// The idempotency key of a schedule's tick: `cron:<id>:<tick, RFC 3339 UTC>`.
pub fn tick_key(id: &str, tick: DateTime<Utc>) -> String {
    format!("cron:{id}:{}", rfc3339(tick))
}

fn rfc3339(tick: DateTime<Utc>) -> String {
    tick.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl CompiledSchedule {
    /// The schedule as declared.
    pub fn spec(&self) -> &Schedule {
        &self.spec
    }

    /// The schedule's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// An instant as the wall-clock time of the schedule's zone (for display).
    pub fn in_zone(&self, at: DateTime<Utc>) -> DateTime<FixedOffset> {
        at.with_timezone(&self.zone).fixed_offset()
    }

    /// The first tick strictly after `after`, or `None` if there is none (a cron expression
    /// that matches no date left).
    ///
    /// Cron expressions are read in the schedule's zone. At daylight-saving changes (croner's
    /// rules, from the Open Cron Pattern Specification): a fixed time in a skipped hour
    /// (`30 2 * * *` on a spring-forward night) fires once, at the first valid instant after
    /// the gap; a fixed time in a repeated hour fires once, on its first pass. Interval
    /// patterns (`*/15 * * * *`) follow real time: none fire in the gap, and both passes of a
    /// repeated hour fire. `every` schedules ignore zones (fixed intervals of real time).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.cadence {
            Cadence::Every(secs) => {
                let millis = secs.checked_mul(1000)?;
                let t = after.timestamp_millis();
                let next = t.div_euclid(millis).checked_add(1)?.checked_mul(millis)?;
                Utc.timestamp_millis_opt(next).single()
            }
            Cadence::Cron(cron) => {
                let local = after.with_timezone(&self.zone);
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// The next `n` ticks strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::with_capacity(n);
        let mut at = after;
        while ticks.len() < n {
            match self.next_after(at) {
                Some(t) => {
                    ticks.push(t);
                    at = t;
                }
                None => break,
            }
        }
        ticks
    }

    /// The ticks in `(after, until]`, oldest first, keeping only the latest `keep` of them (so a
    /// long downtime never makes a long list). Cron schedules scan at most a week of
    /// per-second ticks.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        keep: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = std::collections::VecDeque::new();
        if let Cadence::Every(secs) = self.cadence {
            // Closed form: jump straight to the last `keep` ticks.
            let Some(last) = self.last_at_or_before(until) else {
                return Vec::new();
            };
            let step = chrono::Duration::seconds(secs);
            let mut t = last;
            while t > after && ticks.len() < keep {
                ticks.push_front(t);
                t -= step;
            }
            return ticks.into();
        }
        let mut at = after;
        let mut scanned = 0usize;
        while let Some(t) = self.next_after(at) {
            if t > until || scanned >= TICK_SCAN_LIMIT {
                break;
            }
            scanned += 1;
            ticks.push_back(t);
            if ticks.len() > keep {
                ticks.pop_front();
            }
            at = t;
        }
        ticks.into()
    }

    fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.cadence {
            Cadence::Every(secs) => {
                let millis = secs.checked_mul(1000)?;
                let t = at
                    .timestamp_millis()
                    .div_euclid(millis)
                    .checked_mul(millis)?;
                Utc.timestamp_millis_opt(t).single()
            }
            Cadence::Cron(_) => None,
        }
    }

    /// The job of a tick: the schedule's task, params, queue and options, the idempotency key
    /// [`tick_key`], and the headers [`HEADER_ID`] and [`HEADER_TICK`].
    pub fn spawn_for(&self, tick: DateTime<Utc>) -> Spawn {
        let s = &self.spec;
        let mut options = SpawnOptions::new()
            .with_idempotency_key(tick_key(&s.id, tick))
            .with_headers(json!({ HEADER_ID: s.id, HEADER_TICK: rfc3339(tick) }));
        options.max_attempts = s.max_attempts;
        options.priority = s.priority;
        options.timeout = s.timeout_seconds.map(Duration::from_secs);
        Spawn::new(s.queue.clone(), s.task.clone(), s.args.clone()).with_options(options)
    }

    fn check_job(&self) -> Result<(), ScheduleError> {
        let id = &self.spec.id;
        if self.spec.task.is_empty() {
            return Err(ScheduleError::invalid(id, "task", "name the task to spawn"));
        }
        if self.spec.timeout_seconds == Some(0) {
            return Err(ScheduleError::invalid(
                id,
                "timeout_seconds",
                "must be a whole number of seconds, at least 1",
            ));
        }
        validate::validate_spawn(&self.spawn_for(Utc::now()))
            .map_err(|e| ScheduleError::invalid(id, "task", e.to_string()))
    }
}

/// How many cron ticks one look-back scans at most (a week of per-second ticks).
const TICK_SCAN_LIMIT: usize = 7 * 24 * 3600;
