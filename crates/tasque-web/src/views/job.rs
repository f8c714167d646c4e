//! The job page: record, why it is not running, actions, attempts, checkpoints, timeline.

use maud::{html, Markup};
use serde_json::Value;

use super::{action, layout, notice, state_pill, Ctx};
use crate::detail::JobDetail;

fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The job page.
pub fn page(ctx: &Ctx, job: &JobDetail, message: Option<&str>) -> Markup {
    let content = html! {
        h1 { "Job #" (job.id) " " (state_pill(job.state)) }
        (notice(message))
        dl.facts {
            dt { "queue" } dd { a href=(ctx.url(&format!("/jobs?queue={}", job.queue))) { (job.queue) } }
            dt { "kind" } dd { (job.kind) }
            dt { "attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "priority" } dd { (job.priority) }
            dt { "worker" } dd { @match &job.worker { Some(w) => (w), None => "—" } }
            @if job.dependents > 0 { dt { "dependents" } dd { (job.dependents) } }
        }
        section.why #why {
            h2 { @if job.state.is_finished() { "Status" } @else { "Why is this job not running?" } }
            ul { @for reason in &job.why { li data-reason=(serde_json::to_value(reason).ok().and_then(|v| v.get("reason").and_then(|r| r.as_str().map(str::to_string))).unwrap_or_default()) { (reason.sentence()) } } }
        }
        @if ctx.can_act {
            div.actions #job-actions {
                @if job.can_retry { (action(ctx, &format!("/jobs/{}/retry", job.id), "Retry", "retry")) }
                @if job.can_cancel { (action(ctx, &format!("/jobs/{}/cancel", job.id), "Cancel", "cancel")) }
                @if job.can_delete { (action(ctx, &format!("/jobs/{}/delete", job.id), "Delete", "danger")) }
            }
        }
        @if !job.parents.is_empty() {
            section #parents {
                h2 { "Parents" }
                table { tbody { @for p in &job.parents {
                    tr {
                        td { a href=(ctx.url(&format!("/jobs/{}", p.id))) { "#" (p.id) } }
                        td { @match p.state { Some(state) => (state_pill(state)), None => "deleted" } }
                        td { @if p.resolved { "resolved" } @else { "awaited" } }
                    }
                } } }
            }
        }
        section { h2 { "Args" } pre { (json(&job.args)) } }
        @if let Some(result) = &job.result { section { h2 { "Result" } pre { (json(result)) } } }
        @if let Some(failure) = &job.failure { section { h2 { "Error" } pre.error { (json(failure)) } } }
        @if !job.attempts.is_empty() {
            section {
                h2 { "Failed attempts" }
                table { thead { tr { th { "attempt" } th { "run" } th { "at" } th { "error" } } }
                    tbody { @for a in &job.attempts {
                        tr { td { (a.attempt) } td { (a.run) } td.time { (a.at) } td { code { (a.error.to_string()) } } }
                    } } }
            }
        }
        @if !job.checkpoints.is_empty() {
            section {
                h2 { "Checkpoints" }
                table { tbody { @for step in &job.checkpoints {
                    tr { td { (step.name) } td { code { (step.state.to_string()) } } }
                } } }
            }
        }
        section {
            h2 { "Timeline" }
            ol.timeline { @for m in &job.timeline { li { span.time { (m.at) } " " (m.what) } } }
        }
        @if job.headers != Value::Null { section { h2 { "Headers" } pre { (json(&job.headers)) } } }
    };
    layout(ctx, &format!("Job #{}", job.id), "Jobs", content)
}
