//! The job list (filters, search, cursor pages, selection) and the bulk confirmation page.

use maud::{html, Markup};
use tasque_durable::JobState;

use super::{layout, notice, state_pill, Ctx};
use crate::jobs::{BulkAction, JobList, JobsQuery};

/// The job list.
pub fn list(
    ctx: &Ctx,
    query: &JobsQuery,
    queues: &[String],
    page: &JobList,
    message: Option<&str>,
) -> Markup {
    let filter_qs = query.to_query();
    let content = html! {
        h1 { "Jobs" }
        (notice(message))
        form.filters #filters method="get" action=(ctx.url("/jobs")) {
            select name="state" {
                option value="" { "any state" }
                @for state in JobState::ALL {
                    option value=(state.as_str()) selected[query.state == state.as_str()] { (state.as_str()) }
                }
            }
            select name="queue" {
                option value="" { "any queue" }
                @for q in queues { option value=(q) selected[&query.queue == q] { (q) } }
            }
            input type="text" name="kind" placeholder="kind (task name)" value=(query.kind);
            input type="search" name="q" placeholder="search in args" value=(query.q);
            button type="submit" { "Filter" }
        }
        @if ctx.can_act {
            p.bulk-filter {
                "Everything matching this filter: "
                @for action in [BulkAction::Retry, BulkAction::Cancel, BulkAction::Delete] {
                    a.button href=(ctx.url(&format!("/jobs/bulk?action={}&{}", action.verb(), filter_qs))) {
                        (action.verb()) " all…"
                    }
                    " "
                }
            }
        }
        @if ctx.can_act {
        form #selection method="post" action=(ctx.url("/jobs/bulk")) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                @for (name, value) in [("state", &query.state), ("queue", &query.queue), ("kind", &query.kind), ("q", &query.q)] {
                    input type="hidden" name=(format!("return_{name}")) value=(value);
                }
                @if ctx.can_act {
                    p.selection-actions {
                        span #selected-count { "0 selected" } " "
                        button type="submit" name="action" value="retry" { "Retry selected" }
                        button type="submit" name="action" value="cancel" { "Cancel selected" }
                        button type="submit" name="action" value="delete" { "Delete selected" }
                    }
                }
        (job_table(ctx, page))
            }
        } @else {
            (job_table(ctx, page))
        }
        nav.pager {
            @if query.after.is_some() { a href=(ctx.url(&format!("/jobs?{filter_qs}"))) { "« first page" } " " }
            @if let Some(next) = page.next {
                a #next-page href=(ctx.url(&format!("/jobs?{filter_qs}&after={next}"))) { "next page »" }
            }
        }
    };
    layout(ctx, "Jobs", "Jobs", content)
}

/// The table of one page of jobs (with selection boxes when actions are allowed).
fn job_table(ctx: &Ctx, page: &JobList) -> Markup {
    html! {
        table.jobs {
            thead { tr {
                @if ctx.can_act { th { input #select-all type="checkbox" title="select this page"; } }
                th { "id" } th { "state" } th { "queue" } th { "kind" } th { "attempt" }
                th { "created" } th { "args" }
            } }
            tbody {
                @for job in &page.jobs {
                    tr data-job=(job.id) {
                        @if ctx.can_act { td { input.select type="checkbox" name="ids" value=(job.id); } }
                        td { a href=(ctx.url(&format!("/jobs/{}", job.id))) { "#" (job.id) } }
                        td { (state_pill(job.state)) }
                        td { (job.queue) }
                        td { (job.kind) }
                        td { (job.attempt) "/" (job.max_attempts) }
                        td.time { (job.created_at) }
                        td { code { (job.args) } }
                    }
                }
                @if page.jobs.is_empty() { tr { td colspan="8" { "No job matches." } } }
            }
        }
    }
}

/// The confirmation of a bulk action over a filter, with the count of matching jobs.
pub fn confirm(ctx: &Ctx, query: &JobsQuery, action: BulkAction, count: u64) -> Markup {
    let content = html! {
        h1 { "Confirm: " (action.verb()) " " (count) " jobs" }
        p #bulk-count data-count=(count) {
            (count) " jobs match "
            code { @if query.to_query().is_empty() { "(every job)" } @else { (query.to_query()) } }
            ". Jobs that do not allow it (retrying a completed job, deleting a running one) are skipped."
        }
        @if ctx.can_act {
            form method="post" action=(ctx.url("/jobs/bulk")) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                input type="hidden" name="action" value=(action.verb());
                input type="hidden" name="all" value="1";
                input type="hidden" name="expected" value=(count);
                input type="hidden" name="state" value=(query.state);
                input type="hidden" name="queue" value=(query.queue);
                input type="hidden" name="kind" value=(query.kind);
                input type="hidden" name="q" value=(query.q);
                button #confirm type="submit" class="danger" { (action.verb()) " " (count) " jobs" }
                " "
                a href=(ctx.url(&format!("/jobs?{}", query.to_query()))) { "back" }
            }
        }
    };
    layout(ctx, "Confirm", "Jobs", content)
}

/// The login page (token access).
pub fn login(ctx: &Ctx, failed: bool) -> Markup {
    let content = html! {
        h1 { "Sign in" }
        @if failed { p.notice.error { "Wrong token." } }
        form method="post" action=(ctx.url("/login")) {
            input type="password" name="token" placeholder="access token" autofocus;
            button type="submit" { "Sign in" }
        }
    };
    layout(ctx, "Sign in", "", content)
}
