//! The overview, queues and workers pages.

use maud::{html, Markup};
use tasque_durable::JobState;

use super::{action, charts, layout, notice, Ctx};
use crate::stats::{Overview, QueueRow};
use crate::why::human_ms;
use crate::workers::WorkerRow;

/// The overview: totals, throughput, queues by state, wait and run percentiles.
pub fn overview(ctx: &Ctx, data: &Overview) -> Markup {
    let content = html! {
        h1 { "Overview" }
        section.totals {
            @for state in JobState::ALL {
                a.total href=(ctx.url(&format!("/jobs?state={}", state.as_str()))) {
                    span class={ "dot " (state.as_str()) } {}
                    span.label { (state.as_str()) }
                    span.count data-state=(state.as_str()) { (data.totals.get(state)) }
                }
            }
        }
        section {
            h2 { "Throughput and failures, last hour" }
            (charts::throughput(&data.minutes))
            p.hint { "From the " (data.sampled) " most recent finished jobs (at most 20,000). "
                span.legend.completed { "completed" } " " span.legend.failed { "failed or cancelled" } }
        }
        section {
            h2 { "Queues by state" }
            table.queues {
                thead { tr { th { "queue" } th { "jobs by state" }
                    @for state in JobState::ALL { th.num { (state.as_str()) } } } }
                tbody {
                    @for q in &data.queues {
                        tr {
                            td { a href=(ctx.url(&format!("/jobs?queue={}", q.name))) { (q.name) } }
                            td { (charts::state_bar(&q.counts)) }
                            @for state in JobState::ALL { td.num { (q.counts.get(state)) } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Queue wait and run time (p50 / p95), last hour" }
            @if data.timings.is_empty() {
                p.hint { "No job finished in the last hour." }
            } @else {
                (charts::timings(&data.timings))
                p.hint { span.legend.wait50 { "wait" } " " span.legend.run50 { "run" }
                    " — the darker bar is the median, the lighter one the 95th percentile." }
            }
        }
    };
    layout(ctx, "Overview", "Overview", content)
}

/// The queues page: depth by state, oldest ready age, settings and actions.
pub fn queues(ctx: &Ctx, rows: &[QueueRow], message: Option<&str>) -> Markup {
    let content = html! {
        h1 { "Queues" }
        (notice(message))
        table.queues {
            thead { tr {
                th { "queue" } th.num { "available" } th.num { "scheduled" } th.num { "running" }
                th.num { "suspended" } th.num { "failed" } th { "oldest ready" } th { "status" }
                th { "limit" } th { "mode" } @if ctx.can_act { th { "actions" } }
            } }
            tbody {
                @for q in rows {
                    tr data-queue=(q.name) {
                        td { a href=(ctx.url(&format!("/jobs?queue={}", q.name))) { (q.name) } }
                        td.num { (q.counts.available) }
                        td.num { (q.counts.scheduled) }
                        td.num { (q.counts.running) }
                        td.num { (q.counts.sleeping + q.counts.waiting) }
                        td.num { (q.counts.failed) }
                        td { @match q.oldest_ready_ms { Some(ms) => (human_ms(ms)), None => "—" } }
                        td.status { @if q.paused { span.pill.paused { "paused" } } @else { span.pill.active { "active" } } }
                        td { @match q.limit { Some(n) => (n), None => "none" } }
                        td {
                            @if q.blocking {
                                "blocking"
                                @if let Some(head) = q.blocked_by {
                                    " · held by " a href=(ctx.url(&format!("/jobs/{head}"))) { "#" (head) }
                                }
                            } @else { "parallel" }
                        }
                        @if ctx.can_act {
                            td.actions {
                                @if q.paused {
                                    (action(ctx, &format!("/queues/{}/resume", q.name), "Resume", "resume"))
                                } @else {
                                    (action(ctx, &format!("/queues/{}/pause", q.name), "Pause", "pause"))
                                }
                                form.inline method="post" action=(ctx.url(&format!("/queues/{}/limit", q.name))) {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    input.limit type="number" name="limit" min="1" placeholder="limit"
                                        value=[q.limit];
                                    button type="submit" { "Set limit" }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Counts are cached and refreshed in the background every few seconds. "
            "An empty limit removes it." }
    };
    layout(ctx, "Queues", "Queues", content)
}

/// The workers page: every worker process recorded in the namespace (`None`: the engine keeps
/// no registry).
pub fn workers(ctx: &Ctx, rows: Option<&[WorkerRow]>) -> Markup {
    let content = html! {
        h1 { "Workers" }
        @match rows {
            None => p.hint { "This engine keeps no worker registry." },
            Some([]) => p.empty { "No worker has recorded itself: start one with " code { "tasque work" } "." },
            Some(rows) => table.workers {
                thead { tr {
                    th { "worker" } th { "host" } th.num { "pid" } th { "queues" }
                    th { "started" } th { "last heartbeat" } th { "status" }
                } }
                tbody {
                    @for w in rows {
                        tr data-worker=(w.id) {
                            td { (w.id) }
                            td { (w.host) }
                            td.num { (w.pid) }
                            td {
                                @for (i, q) in w.queues.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    a href=(ctx.url(&format!("/jobs?queue={q}"))) { (q) }
                                }
                            }
                            td { (w.started_at) }
                            td { (human_ms(w.heartbeat_age_ms)) " ago" }
                            td.status {
                                @if w.alive { span.pill.active { "alive" } }
                                @else { span.pill.paused { "gone" } }
                            }
                        }
                    }
                }
            },
        }
        p.hint { "Each worker beats every third of its lease and counts as gone after three "
            "missed beats; the leader forgets workers gone for an hour." }
    };
    layout(ctx, "Workers", "Workers", content)
}
