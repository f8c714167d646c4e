//! SPEC row 1.15: each task runs in a `tracing` span.
//!
//! Alone in its own test binary: `tracing` caches each callsite's interest for the whole
//! process, and tests running at once on other threads with no subscriber could make this
//! test's thread-local subscriber miss the span.

use std::sync::{Arc, Mutex};

use tasque_core::{Outcome, Queue};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct SpanNames(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanNames {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = String::new();
        struct Collect<'a>(&'a mut String);
        impl tracing::field::Visit for Collect<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={:?}", field.name(), value));
            }
        }
        attrs.record(&mut Collect(&mut fields));
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{}", attrs.metadata().name(), fields));
    }
}

#[test]
fn row_1_15_each_task_runs_in_a_tracing_span() {
    let names = SpanNames::default();
    let subscriber = tracing_subscriber::registry()
        .with(names.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let queue = Queue::builder("traced").build().unwrap();
            let handle = queue.enqueue(async { 1 }).unwrap();
            let id = handle.task_ref().id();
            assert_eq!(handle.await, Outcome::Ok(1));
            let spans = names.0.lock().unwrap().clone();
            let expected = format!("tasque.task queue=traced task.id={id}");
            assert!(spans.contains(&expected), "spans: {spans:?}");
        });
    });
}
