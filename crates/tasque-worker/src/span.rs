//! The `tasque.job` span every durable run executes in, so a handler's own logs carry the job.
//!
//! Fields: `job_id`, `run_id`, `queue`, `kind` (the task name) and `attempt`. With the `otel`
//! cargo feature, the span is also linked to the trace context its job was enqueued under
//! (the `traceparent` header, see `tasque_durable::trace`).

use tasque_durable::Claim;
use tracing::Span;

/// The span of one run.
pub(crate) fn job_span(claim: &Claim) -> Span {
    let span = tracing::info_span!(
        "tasque.job",
        job_id = claim.job_id.0,
        run_id = %claim.run_id,
        queue = %claim.queue,
        kind = %claim.task,
        attempt = claim.attempt,
    );
    #[cfg(feature = "otel")]
    otel::link(&span, &claim.headers);
    span
}

#[cfg(feature = "otel")]
mod otel {
    use std::collections::HashMap;

    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use serde_json::Value;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// Links `span` to the trace context stored in the job's headers, if any.
    pub(super) fn link(span: &Span, headers: &Value) {
        let Some(headers) = headers.as_object() else {
            return;
        };
        let carrier: HashMap<String, String> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let context = TraceContextPropagator::new().extract(&carrier);
        let remote = context.span().span_context().clone();
        if remote.is_valid() {
            span.add_link(remote);
        }
    }
}
