//! Feature `otel`: enqueueing stores the current span's W3C `traceparent` in the job's
//! headers, and the run's `tasque.job` span is linked to it.
//! Run with `cargo test -p tasque --features otel --test client_otel`.

#![cfg(feature = "otel")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use support::PATIENCE;
use tasque::durable::Store;
use tasque::{Client, Handlers, Job, JobContext, Worker};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Serialize, Deserialize)]
struct Traced;

impl Job for Traced {
    const KIND: &'static str = "traced";
    type Output = String;
}

#[tokio::test(flavor = "current_thread")]
async fn the_run_span_links_to_the_enqueuing_span_through_traceparent() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("client-otel")));
    let _default = tracing::subscriber::set_default(subscriber);

    let store: Arc<dyn Store> = Arc::new(support::sqlite_memory().await);
    let client = Client::new(store.clone());
    let job = client
        .enqueue(Traced)
        .instrument(tracing::info_span!("checkout"))
        .await
        .unwrap();
    let headers = client.get(job.job_id).await.unwrap().info.headers;
    let traceparent = headers["traceparent"]
        .as_str()
        .expect("a traceparent header");
    assert!(traceparent.starts_with("00-"), "{traceparent}");

    let handlers = Handlers::new();
    handlers.register(|_: Traced, ctx: JobContext| async move {
        Ok::<_, String>(
            ctx.headers()["traceparent"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    });
    let worker = Worker::builder(store)
        .handlers(handlers)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(client.wait(&job, PATIENCE).await.unwrap(), traceparent);
    worker.shutdown(Duration::from_secs(5)).await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let checkout = spans
        .iter()
        .find(|s| s.name == "checkout")
        .expect("checkout span");
    let run = spans
        .iter()
        .find(|s| s.name == "tasque.job")
        .expect("tasque.job span");
    let linked: Vec<_> = run.links.iter().map(|l| l.span_context.clone()).collect();
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0].trace_id(), checkout.span_context.trace_id());
    assert_eq!(linked[0].span_id(), checkout.span_context.span_id());
}
