//! Access: loopback by default, tokens, read-only mode, cross-site POSTs, the user's resolver,
//! and nesting under a prefix.

mod support;

use std::net::SocketAddr;

use axum::http::StatusCode;
use support::http::Client;
use tasque_durable::JobState;
use tasque_web::{Access, AccessLevel, Server, WebError};

#[tokio::test]
async fn a_non_loopback_bind_without_token_or_read_only_is_refused() {
    let public: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let refused = Server::bind(public, &Access::open()).await;
    assert!(
        matches!(refused, Err(WebError::UnprotectedBind { .. })),
        "{refused:?}"
    );
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(loopback, &Access::open())
        .await
        .expect("loopback is fine");
    assert!(server.local_addr().unwrap().ip().is_loopback());
}

#[tokio::test]
async fn requests_without_the_token_get_401_and_the_token_opens_every_route() {
    let engine = support::sqlite().await.unwrap();
    let router = tasque_web::router(engine.store.clone(), Access::token("s3cret").unwrap());
    let mut anonymous = Client::new(router.clone(), "");
    for path in ["/", "/queues", "/jobs", "/api/overview", "/metrics"] {
        assert_eq!(
            anonymous.get(path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let wrong = Client::new(router.clone(), "")
        .with_header("authorization", "Bearer nope")
        .get("/")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.get("/assets/app.js").await.status,
        StatusCode::OK,
        "assets are public"
    );

    let mut api = Client::new(router.clone(), "").with_header("authorization", "Bearer s3cret");
    assert_eq!(api.get("/api/overview").await.status, StatusCode::OK);
    // A header-authenticated client cannot be forged by another site: no CSRF token needed.
    let paused = api.post_raw("/queues/mail/pause", "", &[]).await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER, "{}", paused.body);

    // A browser signs in once; the cookie carries the token afterwards.
    let mut browser = Client::new(router, "");
    let bad = browser.post_raw("/login", "token=nope", &[]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let login = browser.post_raw("/login", "token=s3cret", &[]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/jobs").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cross_site_post_is_rejected_and_changes_nothing() {
    let engine = support::sqlite().await.unwrap();
    let store = engine.store.clone();
    let mut web = Client::new(tasque_web::router(store.clone(), Access::open()), "");
    web.get("/queues").await;
    let csrf = web.csrf();
    assert!(
        !csrf.is_empty(),
        "the first page sets the session's CSRF cookie"
    );
    let form = format!("csrf={csrf}");
    let other_origin = web
        .post_raw(
            "/queues/mail/pause",
            &form,
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(other_origin.status, StatusCode::FORBIDDEN);
    let cross_site = web
        .post_raw(
            "/queues/mail/pause",
            &form,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let no_token = web
        .post_raw(
            "/queues/mail/pause",
            "",
            &[("origin", "http://127.0.0.1:8080")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong_token = web.post_raw("/queues/mail/pause", "csrf=forged", &[]).await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    assert!(
        store.list_queues().await.unwrap().iter().all(|q| !q.paused),
        "nothing paused"
    );
    let same_site = web.post_form("/queues/mail/pause", &[]).await;
    assert_eq!(same_site.status, StatusCode::SEE_OTHER);
    assert!(store
        .list_queues()
        .await
        .unwrap()
        .iter()
        .any(|q| q.name == "mail" && q.paused));
}

#[tokio::test]
async fn read_only_mode_shows_no_action_and_refuses_posts() {
    let engine = support::sqlite().await.unwrap();
    let fx = support::fixture::build(&*engine.store).await;
    let mut web = Client::new(
        tasque_web::router(engine.store.clone(), Access::open().read_only()),
        "",
    );
    let failed = web.get(&format!("/jobs/{}", fx.failed)).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert!(failed.body.contains("read-only"));
    for page in [
        failed.body,
        web.get("/queues").await.body,
        web.get("/jobs").await.body,
    ] {
        assert!(
            !page.contains("method=\"post\""),
            "no action form in read-only mode: {page}"
        );
    }
    let refused = web
        .post_form(&format!("/jobs/{}/retry", fx.failed), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        engine.store.get_job(fx.failed).await.unwrap().state,
        JobState::Failed
    );
}

#[tokio::test]
async fn a_nested_router_uses_its_prefix_and_the_users_resolver() {
    let engine = support::sqlite().await.unwrap();
    let access =
        Access::open().resolver(
            |parts| match parts.headers.get("x-role").map(|v| v.as_bytes()) {
                Some(b"admin") => AccessLevel::All,
                Some(_) => AccessLevel::ReadOnly,
                None => AccessLevel::Forbidden,
            },
        );
    let app = axum::Router::new().nest(
        "/admin/tasque",
        tasque_web::router(engine.store.clone(), access),
    );
    let mut nobody = Client::new(app.clone(), "/admin/tasque");
    assert_eq!(nobody.get("").await.status, StatusCode::FORBIDDEN);
    let mut viewer = Client::new(app.clone(), "/admin/tasque").with_header("x-role", "viewer");
    let page = viewer.get("/queues").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("href=\"/admin/tasque/jobs\""),
        "links carry the prefix"
    );
    assert!(
        page.body.contains("href=\"/admin/tasque\""),
        "the overview is the prefix"
    );
    assert_eq!(viewer.get("").await.status, StatusCode::OK);
    assert_eq!(
        viewer.post_form("/queues/mail/pause", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let mut admin = Client::new(app, "/admin/tasque").with_header("x-role", "admin");
    let done = admin.post_form("/queues/mail/pause", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        done.location().starts_with("/admin/tasque/queues"),
        "{}",
        done.location()
    );
}
