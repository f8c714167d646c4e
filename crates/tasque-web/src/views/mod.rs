//! Server-rendered pages (maud): the layout every page shares and the pieces they reuse.
//!
//! Pages get a [`Ctx`]: the path prefix the router is mounted under (every link starts with
//! it), the session's CSRF token (every form carries it) and whether actions are allowed (in
//! read-only access no action form is rendered at all).

pub mod charts;
pub mod job;
pub mod jobs;
pub mod pages;

use maud::{html, Markup, DOCTYPE};
use tasque_durable::JobState;

/// What every page needs to know about the request.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The prefix the router is mounted under (`""` at the root, `"/admin/jobs"` when nested).
    pub base: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// False in read-only access: no action is rendered.
    pub can_act: bool,
}

impl Ctx {
    /// A link inside the dashboard (the overview of a nested router is the prefix itself,
    /// without a trailing slash, which is how axum matches a nested root).
    pub fn url(&self, path: &str) -> String {
        if path == "/" && !self.base.is_empty() {
            return self.base.clone();
        }
        format!("{}{}", self.base, path)
    }
}

/// The page frame: navigation, live-refresh switch, the content in `<main>`.
pub fn layout(ctx: &Ctx, title: &str, active: &str, content: Markup) -> Markup {
    let nav = [
        ("/", "Overview"),
        ("/queues", "Queues"),
        ("/jobs", "Jobs"),
        ("/workers", "Workers"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Tasque · " (title) }
                link rel="stylesheet" href=(ctx.url("/assets/app.css"));
                script src=(ctx.url("/assets/app.js")) defer {}
            }
            body {
                header {
                    a.brand href=(ctx.url("/")) { "Tasque" }
                    nav {
                        @for (path, label) in nav {
                            a class=(if label == active { "active" } else { "" }) href=(ctx.url(path)) { (label) }
                        }
                    }
                    span.spacer {}
                    @if !ctx.can_act { span.badge.readonly { "read-only" } }
                    label.live title="Refresh every 5 s while this tab is visible" {
                        input #live type="checkbox" checked;
                        " live"
                    }
                }
                main #main { (content) }
            }
        }
    }
}

/// A one-button form posting to `path` (with the CSRF token); nothing in read-only access.
pub fn action(ctx: &Ctx, path: &str, label: &str, class: &str) -> Markup {
    html! {
        @if ctx.can_act {
            form.inline method="post" action=(ctx.url(path)) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button class=(class) type="submit" { (label) }
            }
        }
    }
}

/// A state as a coloured pill.
pub fn state_pill(state: JobState) -> Markup {
    html! { span class={ "pill " (state.as_str()) } { (state.as_str()) } }
}

/// A notice line (after an action), when there is one.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text { p.notice role="status" { (text) } }
    }
}
