//! Prometheus metrics: what this process did (counters and histograms, fed by
//! [`MeteredStore`](crate::MeteredStore)) and what the queues hold (gauges, read from the
//! database through the cached snapshot).
//!
//! # Contract
//!
//! - Counters and histograms count what went through this process's store: jobs enqueued;
//!   jobs finished by outcome (`completed`, `retried`, `failed`, `cancelled`, `snoozed`,
//!   `lost` when a lease was lost, and `rescued` by the rescuer, which knows no queue or
//!   kind); queue wait (ready to claimed), run time (claimed to finished) and end-to-end
//!   (created to finished), with buckets from 5 ms to 1 h.
//! - Gauges describe every worker's queues, from the database: depth by state, the age of the
//!   oldest ready job, jobs running; refreshed at most every few seconds (the snapshot's time to
//!   live). Worker capacity is what [`Metrics::set_capacity`] was told.
//! - Labels are queue, kind (task name), outcome and state only: low cardinality.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tasque_durable::JobState;

use crate::cache::Snapshot;
use crate::error::WebError;

/// Histogram buckets in seconds: 5 ms to 1 h.
pub const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The Prometheus registry of one process and its metric families. Cheap to clone (shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub(crate) enqueued: IntCounterVec,
    pub(crate) finished: IntCounterVec,
    pub(crate) queue_wait: HistogramVec,
    pub(crate) run_time: HistogramVec,
    pub(crate) end_to_end: HistogramVec,
    depth: IntGaugeVec,
    oldest_ready: GaugeVec,
    running: IntGaugeVec,
    capacity: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
}

fn counter(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

impl Metrics {
    /// A new registry with every Tasque metric family.
    pub fn new() -> Result<Self, WebError> {
        let metrics = Metrics {
            registry: Registry::new(),
            enqueued: counter(
                "tasque_jobs_enqueued_total",
                "Jobs enqueued through this process.",
                &["queue", "kind"],
            )?,
            finished: counter(
                "tasque_jobs_finished_total",
                "Runs ended through this process, by outcome.",
                &["queue", "kind", "outcome"],
            )?,
            queue_wait: histogram(
                "tasque_job_queue_wait_seconds",
                "Time from a job being ready to its claim.",
                &["queue", "kind"],
            )?,
            run_time: histogram(
                "tasque_job_run_seconds",
                "Time from claim to the run's end, by outcome.",
                &["queue", "kind", "outcome"],
            )?,
            end_to_end: histogram(
                "tasque_job_end_to_end_seconds",
                "Time from a job's creation to its completion or final failure.",
                &["queue", "kind"],
            )?,
            depth: gauge(
                "tasque_queue_depth",
                "Jobs per queue and state (database, cached).",
                &["queue", "state"],
            )?,
            oldest_ready: GaugeVec::new(
                Opts::new(
                    "tasque_queue_oldest_ready_age_seconds",
                    "Age of the oldest ready job per queue (database, cached).",
                ),
                &["queue"],
            )?,
            running: gauge(
                "tasque_jobs_running",
                "Jobs running per queue (database, cached).",
                &["queue"],
            )?,
            capacity: gauge(
                "tasque_worker_capacity",
                "Slots of this process's worker per queue.",
                &["queue"],
            )?,
        };
        for family in [
            Box::new(metrics.enqueued.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.finished.clone()),
            Box::new(metrics.queue_wait.clone()),
            Box::new(metrics.run_time.clone()),
            Box::new(metrics.end_to_end.clone()),
            Box::new(metrics.depth.clone()),
            Box::new(metrics.oldest_ready.clone()),
            Box::new(metrics.running.clone()),
            Box::new(metrics.capacity.clone()),
        ] {
            metrics.registry.register(family)?;
        }
        Ok(metrics)
    }

    /// The registry, to add the user's own metrics or to gather from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records a worker's slots for `queue`.
    pub fn set_capacity(&self, queue: &str, slots: usize) {
        self.capacity
            .with_label_values(&[queue])
            .set(i64::try_from(slots).unwrap_or(i64::MAX));
    }

    /// Sets the gauges from a snapshot of the database.
    pub fn observe_snapshot(&self, snapshot: &Snapshot) {
        self.depth.reset();
        self.oldest_ready.reset();
        self.running.reset();
        for queue in &snapshot.queues {
            for state in JobState::ALL {
                let n = i64::try_from(queue.counts.get(state)).unwrap_or(i64::MAX);
                self.depth
                    .with_label_values(&[queue.name.as_str(), state.as_str()])
                    .set(n);
            }
            self.running
                .with_label_values(&[queue.name.as_str()])
                .set(i64::try_from(queue.counts.running).unwrap_or(i64::MAX));
            let age = snapshot
                .oldest_ready_ms
                .get(&queue.name)
                .copied()
                .unwrap_or(0);
            self.oldest_ready
                .with_label_values(&[queue.name.as_str()])
                .set(age as f64 / 1000.0);
        }
    }

    /// Every family in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_registered_and_renders() {
        let metrics = Metrics::new().unwrap();
        metrics.enqueued.with_label_values(&["q", "k"]).inc();
        metrics.set_capacity("q", 4);
        let text = metrics.render();
        assert!(text.contains("tasque_jobs_enqueued_total{kind=\"k\",queue=\"q\"} 1"));
        assert!(text.contains("tasque_worker_capacity{queue=\"q\"} 4"));
    }
}
