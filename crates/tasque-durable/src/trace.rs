//! Trace context carried from the enqueuing span to the job's runs.
//!
//! With the `otel` cargo feature, [`inject`] stores the W3C `traceparent` (and `tracestate`)
//! of the current `tracing` span's OpenTelemetry context in a job's headers when it is
//! enqueued through the [`Client`](crate::client::Client), and [`TRACEPARENT_HEADER`] names
//! the header a worker reads to link each run's span to it. Without the feature nothing is
//! added and nothing is paid.

use crate::options::SpawnOptions;

/// The header holding the enqueuing span's W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The options with the current span's trace context in their headers (feature `otel`; the
/// options unchanged otherwise, or when there is no valid context, or when the headers are
/// not a JSON object, or already carry a `traceparent`).
pub fn inject(options: SpawnOptions) -> SpawnOptions {
    #[cfg(feature = "otel")]
    {
        otel::inject(options)
    }
    #[cfg(not(feature = "otel"))]
    {
        options
    }
}

#[cfg(feature = "otel")]
mod otel {
    use std::collections::HashMap;

    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use serde_json::{Map, Value};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::options::SpawnOptions;

    pub(super) fn inject(mut options: SpawnOptions) -> SpawnOptions {
        let context = tracing::Span::current().context();
        if !context.span().span_context().is_valid() {
            return options;
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        let mut headers = match options.headers.take() {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                options.headers = Some(other);
                return options;
            }
        };
        for (key, value) in carrier {
            headers.entry(key).or_insert(Value::String(value));
        }
        options.headers = Some(Value::Object(headers));
        options
    }
}
