//! Every durable run executes inside a `tasque.job` span carrying the job id, run id, queue,
//! kind and attempt, so a handler's own events carry them.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::PATIENCE;
use tasque::durable::Store;
use tasque::{Client, Handlers, Job, JobContext, Worker};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Job for Greet {
    const KIND: &'static str = "greet";
    type Output = ();
}

/// The fields of a span, as text.
#[derive(Default, Clone, Debug)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Records, for each event named `greeting`, the fields of its enclosing `tasque.job` span.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() == "tasque.job" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = Fields::default();
        event.record(&mut message);
        if message.0.get("message").map(String::as_str) != Some("greeting") {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(fields) = span.extensions().get::<Fields>() {
                self.0.lock().unwrap().push(fields.clone());
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_handlers_events_carry_the_job_span_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let store: Arc<dyn Store> = Arc::new(support::sqlite_memory().await);
    let client = Client::new(store.clone());
    let handlers = Handlers::new();
    handlers.register(|greet: Greet, _ctx: JobContext| async move {
        tracing::info!(name = %greet.name, "greeting");
        Ok::<_, String>(())
    });
    let worker = Worker::builder(store)
        .handlers(handlers)
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let job = client.enqueue(Greet { name: "ada".into() }).await.unwrap();
    client.wait(&job, PATIENCE).await.unwrap();
    worker.shutdown(Duration::from_secs(5)).await;
    let captured = capture.0.lock().unwrap().clone();
    assert_eq!(captured.len(), 1, "{captured:?}");
    let fields = &captured[0].0;
    assert_eq!(fields["job_id"], job.job_id.to_string());
    assert_eq!(fields["run_id"], job.run_id.to_string());
    assert_eq!(fields["queue"], "default");
    assert_eq!(fields["kind"], "greet");
    assert_eq!(fields["attempt"], "1");
}
