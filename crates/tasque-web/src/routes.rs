//! The routes: pages, their JSON twins under `/api`, actions, login, assets and `/metrics`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tasque_durable::JobId;

use crate::cache::Cache;
use crate::detail;
use crate::error::WebError;
use crate::jobs::{self, BulkAction, JobsQuery};
use crate::metrics::Metrics;
use crate::stats;
use crate::views::{self, Ctx};
use crate::workers;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub cache: Cache,
    pub access: crate::Access,
    pub metrics: Option<Metrics>,
}

type Shared = State<Arc<App>>;
type Page = Result<Response, WebError>;

/// Every route, relative to where the router is mounted.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(overview))
        .route("/api/overview", get(overview_json))
        .route("/queues", get(queues))
        .route("/api/queues", get(queues_json))
        .route("/queues/{name}/pause", post(pause))
        .route("/queues/{name}/resume", post(resume))
        .route("/queues/{name}/limit", post(limit))
        .route("/jobs", get(job_list))
        .route("/api/jobs", get(job_list_json))
        .route("/jobs/bulk", get(bulk_confirm).post(bulk))
        .route("/api/jobs/bulk/count", get(bulk_count_json))
        .route("/jobs/{id}", get(job_page))
        .route("/api/jobs/{id}", get(job_json))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/delete", post(delete))
        .route("/workers", get(workers_page))
        .route("/api/workers", get(workers_json))
        .route("/metrics", get(metrics))
}

/// Only `/metrics`.
pub(crate) fn metrics_only() -> Router<Arc<App>> {
    Router::new().route("/metrics", get(metrics))
}

/// Routes served without a token: the login page and the static assets.
pub(crate) fn public_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Notice {
    notice: Option<String>,
}

fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

async fn overview(State(app): Shared, Extension(ctx): Extension<Ctx>) -> Page {
    let snapshot = app.cache.get().await?;
    Ok(html(views::pages::overview(
        &ctx,
        &stats::overview(&snapshot),
    )))
}

async fn overview_json(State(app): Shared) -> Page {
    let snapshot = app.cache.get().await?;
    Ok(Json(stats::overview(&snapshot)).into_response())
}

async fn queues(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Query(n): Query<Notice>,
) -> Page {
    let snapshot = app.cache.get().await?;
    let rows = stats::queue_rows(&snapshot);
    Ok(html(views::pages::queues(&ctx, &rows, n.notice.as_deref())))
}

async fn queues_json(State(app): Shared) -> Page {
    let snapshot = app.cache.get().await?;
    Ok(Json(stats::queue_rows(&snapshot)).into_response())
}

async fn queue_done(app: &App, ctx: &Ctx, text: String) -> Page {
    app.cache.refresh().await?;
    Ok(see_other(
        &ctx.url(&format!("/queues?{}", notice_qs(&text))),
    ))
}

async fn pause(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
) -> Page {
    app.cache.store().pause_queue(&name).await?;
    queue_done(&app, &ctx, format!("Queue {name} paused.")).await
}

async fn resume(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
) -> Page {
    app.cache.store().resume_queue(&name).await?;
    queue_done(&app, &ctx, format!("Queue {name} resumed.")).await
}

#[derive(Deserialize)]
struct LimitForm {
    #[serde(default)]
    limit: String,
}

async fn limit(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<LimitForm>,
) -> Page {
    let limit = match form.limit.trim() {
        "" => None,
        text => Some(text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            WebError::BadRequest(format!(
                "limit must be a whole number of at least 1, not {text:?}"
            ))
        })?),
    };
    app.cache.store().set_queue_limit(&name, limit).await?;
    let text = match limit {
        Some(n) => format!("Queue {name}: limit set to {n}."),
        None => format!("Queue {name}: limit removed."),
    };
    queue_done(&app, &ctx, text).await
}

async fn queue_names(app: &App) -> Result<Vec<String>, WebError> {
    let snapshot = app.cache.get().await?;
    Ok(snapshot.queues.iter().map(|q| q.name.clone()).collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListParams {
    #[serde(flatten)]
    query: JobsQuery,
    notice: Option<String>,
}

async fn job_list(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<ListParams>,
) -> Page {
    let page = jobs::list(&**app.cache.store(), &p.query).await?;
    let queues = queue_names(&app).await?;
    Ok(html(views::jobs::list(
        &ctx,
        &p.query,
        &queues,
        &page,
        p.notice.as_deref(),
    )))
}

async fn job_list_json(State(app): Shared, Query(query): Query<JobsQuery>) -> Page {
    Ok(Json(jobs::list(&**app.cache.store(), &query).await?).into_response())
}

async fn job_page(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Query(n): Query<Notice>,
) -> Page {
    let snapshot = app.cache.get().await?;
    let job = detail::load(&**app.cache.store(), &snapshot, JobId(id)).await?;
    Ok(html(views::job::page(&ctx, &job, n.notice.as_deref())))
}

async fn workers_page(State(app): Shared, Extension(ctx): Extension<Ctx>) -> Page {
    let rows = workers::load(&**app.cache.store()).await?;
    Ok(html(views::pages::workers(&ctx, rows.as_deref())))
}

async fn workers_json(State(app): Shared) -> Page {
    let rows = workers::load(&**app.cache.store()).await?;
    Ok(Json(serde_json::json!({ "workers": rows })).into_response())
}

async fn job_json(State(app): Shared, Path(id): Path<i64>) -> Page {
    let snapshot = app.cache.get().await?;
    Ok(Json(detail::load(&**app.cache.store(), &snapshot, JobId(id)).await?).into_response())
}

async fn job_action(app: &App, ctx: &Ctx, id: i64, action: BulkAction) -> Page {
    let changed = action.apply(&**app.cache.store(), JobId(id)).await?;
    app.cache.refresh().await?;
    let text = if changed {
        format!("Job {id}: {} done.", action.verb())
    } else {
        format!(
            "Job {id}: {} does not apply to it now; nothing changed.",
            action.verb()
        )
    };
    let target = match action {
        BulkAction::Delete if changed => format!("/jobs?{}", notice_qs(&text)),
        _ => format!("/jobs/{id}?{}", notice_qs(&text)),
    };
    Ok(see_other(&ctx.url(&target)))
}

async fn retry(State(app): Shared, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> Page {
    job_action(&app, &ctx, id, BulkAction::Retry).await
}

async fn cancel(State(app): Shared, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> Page {
    job_action(&app, &ctx, id, BulkAction::Cancel).await
}

async fn delete(State(app): Shared, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> Page {
    job_action(&app, &ctx, id, BulkAction::Delete).await
}

#[derive(Deserialize)]
struct BulkParams {
    action: BulkAction,
    #[serde(flatten)]
    query: JobsQuery,
}

async fn bulk_confirm(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<BulkParams>,
) -> Page {
    let count = jobs::count(&**app.cache.store(), &p.query).await?;
    Ok(html(views::jobs::confirm(&ctx, &p.query, p.action, count)))
}

async fn bulk_count_json(State(app): Shared, Query(query): Query<JobsQuery>) -> Page {
    let count = jobs::count(&**app.cache.store(), &query).await?;
    Ok(Json(serde_json::json!({ "count": count })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BulkForm {
    action: Option<BulkAction>,
    ids: Vec<i64>,
    all: Option<String>,
    state: String,
    queue: String,
    kind: String,
    q: String,
    return_state: String,
    return_queue: String,
    return_kind: String,
    return_q: String,
}

async fn bulk(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    axum_extra::extract::Form(form): axum_extra::extract::Form<BulkForm>,
) -> Page {
    let action = form
        .action
        .ok_or_else(|| WebError::BadRequest("choose an action: retry, cancel or delete".into()))?;
    let store = &**app.cache.store();
    let (report, back) = if form.all.is_some() {
        let query = JobsQuery {
            state: form.state,
            queue: form.queue,
            kind: form.kind,
            q: form.q,
            after: None,
        };
        query.filter()?;
        (jobs::apply_to_filter(store, &query, action).await?, query)
    } else {
        if form.ids.is_empty() {
            return Err(WebError::BadRequest("select at least one job".into()));
        }
        let ids: Vec<JobId> = form.ids.into_iter().map(JobId).collect();
        let back = JobsQuery {
            state: form.return_state,
            queue: form.return_queue,
            kind: form.return_kind,
            q: form.return_q,
            after: None,
        };
        (jobs::apply_to_ids(store, &ids, action).await?, back)
    };
    app.cache.refresh().await?;
    let text = format!(
        "{}: {} jobs done, {} skipped.",
        action.verb(),
        report.done,
        report.skipped
    );
    let sep = if back.to_query().is_empty() { "" } else { "&" };
    Ok(see_other(&ctx.url(&format!(
        "/jobs?{}{sep}{}",
        back.to_query(),
        notice_qs(&text)
    ))))
}

async fn metrics(State(app): Shared) -> Page {
    let Some(metrics) = &app.metrics else {
        return Ok((StatusCode::NOT_FOUND, "metrics are off").into_response());
    };
    let snapshot = app.cache.get().await?;
    metrics.observe_snapshot(&snapshot);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response())
}

async fn login_page(Extension(ctx): Extension<Ctx>) -> Response {
    html(views::jobs::login(&ctx, false))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(app): Shared,
    Extension(ctx): Extension<Ctx>,
    jar: CookieJar,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    if !app.access.has_token() || !app.access.token_matches(&form.token) {
        return (
            StatusCode::UNAUTHORIZED,
            html(views::jobs::login(&ctx, true)),
        )
            .into_response();
    }
    let path = if ctx.base.is_empty() {
        "/".to_string()
    } else {
        ctx.base.clone()
    };
    let cookie = Cookie::build((crate::access::TOKEN_COOKIE, form.token))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), see_other(&ctx.url("/"))).into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/app.js"),
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

fn notice_qs(text: &str) -> String {
    serde_urlencoded::to_string([("notice", text)]).unwrap_or_default()
}
