//! `/metrics`: parsed with a Prometheus text-format parser and checked against jobs a worker
//! really ran through a `MeteredStore`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::http::Client;
use tasque_durable::{Spawn, SpawnOptions, Store};
use tasque_web::{MeteredStore, Metrics};
use tasque_worker::{Handlers, JobContext, Worker};

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let wanted = s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        if !wanted {
            return None;
        }
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map(|b| b.count),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_jobs_a_worker_really_ran() {
    let engine = support::sqlite().await.unwrap();
    let metrics = Metrics::new().unwrap();
    let store: Arc<dyn Store> = Arc::new(MeteredStore::new(engine.store.clone(), metrics.clone()));
    metrics.set_capacity("m", 4);

    let mut spawns: Vec<Spawn> = (0..5)
        .map(|i| Spawn::new("m", "ok", json!({ "i": i })))
        .collect();
    spawns.extend((0..2).map(|i| {
        Spawn::new("m", "bad", json!({ "i": i }))
            .with_options(SpawnOptions::new().with_max_attempts(1))
    }));
    store.spawn_many(spawns).await.unwrap();

    let handlers = Handlers::new();
    handlers.learn("ok", |_ctx: JobContext, v: Value| async move {
        Ok::<_, String>(v)
    });
    handlers.learn("bad", |_ctx: JobContext, _: Value| async move {
        Err::<Value, _>("no".to_string())
    });
    let worker = Worker::builder(store.clone())
        .handlers(handlers)
        .queues(["m"])
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap();
    assert!(
        worker
            .wait_until_empty(false, Duration::from_secs(60))
            .await,
        "the worker ran every job"
    );
    worker.shutdown(Duration::from_secs(10)).await;

    let router = tasque_web::metrics_router(store.clone(), metrics);
    let reply = Client::new(router, "").get("/metrics").await;
    assert_eq!(reply.status, axum::http::StatusCode::OK);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let lines = reply.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");

    let finished = |kind, outcome| {
        value(
            &scrape,
            "tasque_jobs_finished_total",
            &[("queue", "m"), ("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(
        value(
            &scrape,
            "tasque_jobs_enqueued_total",
            &[("queue", "m"), ("kind", "ok")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tasque_jobs_enqueued_total",
            &[("queue", "m"), ("kind", "bad")]
        ),
        Some(2.0)
    );
    assert_eq!(finished("ok", "completed"), Some(5.0));
    assert_eq!(finished("bad", "failed"), Some(2.0));
    assert_eq!(
        value(
            &scrape,
            "tasque_job_run_seconds",
            &[("queue", "m"), ("kind", "ok"), ("outcome", "completed")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tasque_job_queue_wait_seconds",
            &[("queue", "m"), ("kind", "ok")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tasque_job_end_to_end_seconds",
            &[("queue", "m"), ("kind", "bad")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tasque_queue_depth",
            &[("queue", "m"), ("state", "completed")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tasque_queue_depth",
            &[("queue", "m"), ("state", "failed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&scrape, "tasque_jobs_running", &[("queue", "m")]),
        Some(0.0)
    );
    assert_eq!(
        value(&scrape, "tasque_worker_capacity", &[("queue", "m")]),
        Some(4.0)
    );
    // Buckets run from 5 ms to 1 h.
    let bounds: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "tasque_job_run_seconds")
        .filter_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => {
                Some(b.iter().map(|b| b.less_than).collect::<Vec<_>>())
            }
            _ => None,
        })
        .next()
        .unwrap();
    assert_eq!(bounds.first(), Some(&0.005));
    assert!(bounds.contains(&3600.0), "{bounds:?}");
    let labels: HashMap<&str, usize> = scrape
        .samples
        .iter()
        .flat_map(|s| s.labels.keys().map(|k| k.as_str()))
        .fold(HashMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    assert!(
        labels
            .keys()
            .all(|k| ["queue", "kind", "outcome", "state"].contains(k)),
        "low-cardinality labels only: {labels:?}"
    );
}
