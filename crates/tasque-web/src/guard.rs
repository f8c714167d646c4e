//! The middleware every dashboard request passes: the mount prefix, access, cross-site checks
//! and the CSRF cookie. See [`crate::access`] for the contract it enforces.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use crate::access::{check_same_origin, new_csrf_token, AccessLevel, CSRF_COOKIE};
use crate::error::WebError;
use crate::routes::App;
use crate::views::{self, Ctx};

/// The largest form body accepted (a bulk selection of many ids fits easily).
const MAX_FORM_BYTES: usize = 1 << 20;

/// The prefix the router is mounted under, from the original and the (stripped) request path.
fn base_of(original: &str, relative: &str) -> String {
    if let Some(base) = original.strip_suffix(relative) {
        return base.to_string();
    }
    if relative == "/" {
        return original.trim_end_matches('/').to_string();
    }
    String::new()
}

/// Runs `next` when the request may proceed; refuses it otherwise.
pub(crate) async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let relative = parts.uri.path().to_string();
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| o.0.path().to_string())
        .unwrap_or_else(|| relative.clone());
    let base = base_of(&original, &relative);
    let jar = CookieJar::from_headers(&parts.headers);
    let (csrf, fresh) = match jar.get(CSRF_COOKIE) {
        Some(cookie) => (cookie.value().to_string(), false),
        None => (new_csrf_token(), true),
    };
    let public = relative == "/login" || relative.starts_with("/assets/");
    let mut ctx = Ctx {
        base: base.clone(),
        csrf: csrf.clone(),
        can_act: false,
    };
    if let Err(error) = check_same_origin(&parts.method, &parts.headers) {
        return error.into_response();
    }
    let (level, header_auth) = if public {
        (AccessLevel::ReadOnly, false)
    } else {
        match app.access.level(&parts) {
            Ok(found) => found,
            Err(WebError::Unauthorized) => {
                let page = views::jobs::login(&ctx, false).into_string();
                return with_csrf(
                    (StatusCode::UNAUTHORIZED, Html(page)).into_response(),
                    fresh,
                    &csrf,
                    &base,
                );
            }
            Err(error) => return error.into_response(),
        }
    };
    let mut body = body;
    if parts.method == Method::POST && !public {
        if level < AccessLevel::All {
            return WebError::Forbidden("read-only access: actions are disabled").into_response();
        }
        if !header_auth {
            let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
                Ok(bytes) => bytes,
                Err(_) => return WebError::BadRequest("form too large".into()).into_response(),
            };
            if !csrf_ok(&jar, &parts.headers, &bytes) {
                return WebError::CrossSite("missing or wrong CSRF token; reload the page")
                    .into_response();
            }
            body = Body::from(bytes);
        }
    }
    ctx.can_act = level == AccessLevel::All;
    parts.extensions.insert(ctx);
    let response = next.run(Request::from_parts(parts, body)).await;
    with_csrf(response, fresh, &csrf, &base)
}

/// True when the form's `csrf` field (or the `X-CSRF-Token` header) matches the cookie.
fn csrf_ok(jar: &CookieJar, headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    let Some(cookie) = jar.get(CSRF_COOKIE) else {
        return false;
    };
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        });
    match given {
        Some(given) if !given.is_empty() => {
            bool::from(cookie.value().as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

/// Sets the CSRF cookie on the response when the request had none.
fn with_csrf(mut response: Response, fresh: bool, token: &str, base: &str) -> Response {
    if fresh {
        let path = if base.is_empty() {
            "/".to_string()
        } else {
            base.to_string()
        };
        let cookie = Cookie::build((CSRF_COOKIE, token.to_string()))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Strict)
            .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::base_of;

    #[test]
    fn the_mount_prefix_is_what_nesting_stripped() {
        assert_eq!(base_of("/jobs/3", "/jobs/3"), "");
        assert_eq!(base_of("/admin/tasque/jobs/3", "/jobs/3"), "/admin/tasque");
        assert_eq!(base_of("/admin/tasque", "/"), "/admin/tasque");
        assert_eq!(base_of("/admin/tasque/", "/"), "/admin/tasque");
    }
}
