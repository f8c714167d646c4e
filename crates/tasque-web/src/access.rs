//! Who may see and do what.
//!
//! # Contract
//!
//! - [`Access::open`] lets every request read and act: only for a loopback bind, which
//!   [`Access::check_bind`] enforces (a non-loopback address needs a token or read-only mode).
//! - With a token ([`Access::token`]), a request must carry it: `Authorization: Bearer T`,
//!   `X-Tasque-Token: T`, or the login cookie the `/login` page sets. Otherwise it gets 401.
//! - [`Access::read_only`] hides every action and refuses every POST with 403.
//! - A user nesting the router supplies a resolver ([`Access::resolver`]) that maps each request
//!   to [`AccessLevel::All`], [`AccessLevel::ReadOnly`] or [`AccessLevel::Forbidden`]; it runs
//!   after the token check, and read-only mode still caps it.
//! - Every POST is checked against cross-site use: a `Sec-Fetch-Site` other than
//!   `same-origin`/`none`, or an `Origin` whose host differs from `Host`, is refused; and a
//!   browser POST (one not authenticated by a header) must carry the session's CSRF token (a
//!   random value in the `tasque_csrf` cookie, echoed in the form's `csrf` field).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum_extra::extract::cookie::CookieJar;
use subtle::ConstantTimeEq;

use crate::error::WebError;

/// The name of the login cookie.
pub const TOKEN_COOKIE: &str = "tasque_token";
/// The name of the CSRF cookie (and `csrf` is the form field echoing it).
pub const CSRF_COOKIE: &str = "tasque_csrf";

/// What one request may do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Nothing: the request gets 403.
    Forbidden,
    /// See every page, act on nothing.
    ReadOnly,
    /// See and act.
    All,
}

/// A user's access check: maps a request (its method, URI, headers and extensions, e.g. the
/// user their own middleware put there) to a level.
pub type Resolver = Arc<dyn Fn(&Parts) -> AccessLevel + Send + Sync>;

/// The dashboard's access policy. See the module documentation.
#[derive(Clone)]
pub struct Access {
    token: Option<Arc<str>>,
    read_only: bool,
    resolver: Option<Resolver>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("read_only", &self.read_only)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

impl Access {
    /// Everyone may read and act (for a loopback bind, or behind the user's own auth).
    pub fn open() -> Self {
        Access {
            token: None,
            read_only: false,
            resolver: None,
        }
    }

    /// Requests must carry `token`. An empty token is refused.
    pub fn token(token: impl Into<String>) -> Result<Self, WebError> {
        let token = token.into();
        if token.is_empty() {
            return Err(WebError::EmptyToken);
        }
        Ok(Access {
            token: Some(token.into()),
            ..Access::open()
        })
    }

    /// Hides every action; POSTs are refused.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Decides each request's level with `resolver` (after the token check; read-only mode
    /// still caps it).
    pub fn resolver(
        mut self,
        resolver: impl Fn(&Parts) -> AccessLevel + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// True when a token is required.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Refuses to serve a non-loopback address without a token or read-only mode.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), WebError> {
        if addr.ip().is_loopback() || self.token.is_some() || self.read_only {
            Ok(())
        } else {
            Err(WebError::UnprotectedBind { addr })
        }
    }

    /// True when `candidate` is the token (compared in constant time).
    pub fn token_matches(&self, candidate: &str) -> bool {
        match &self.token {
            Some(token) => bool::from(token.as_bytes().ct_eq(candidate.as_bytes())),
            None => true,
        }
    }

    /// The level of one request, or why it is refused. Also says whether the request
    /// authenticated with a header (such requests cannot be forged by another site, so they
    /// need no CSRF token).
    pub(crate) fn level(&self, parts: &Parts) -> Result<(AccessLevel, bool), WebError> {
        let by_header = header_token(&parts.headers);
        if self.token.is_some() {
            let jar = CookieJar::from_headers(&parts.headers);
            let ok = match (&by_header, jar.get(TOKEN_COOKIE)) {
                (Some(t), _) => self.token_matches(t),
                (None, Some(cookie)) => self.token_matches(cookie.value()),
                (None, None) => false,
            };
            if !ok {
                return Err(WebError::Unauthorized);
            }
        }
        let mut level = match &self.resolver {
            Some(resolve) => resolve(parts),
            None => AccessLevel::All,
        };
        if self.read_only {
            level = level.min(AccessLevel::ReadOnly);
        }
        if level == AccessLevel::Forbidden {
            return Err(WebError::Forbidden(
                "access denied by the dashboard's resolver",
            ));
        }
        Ok((level, by_header.is_some() && self.token.is_some()))
    }
}

/// The token a request carries in a header.
fn header_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("x-tasque-token").and_then(|v| v.to_str().ok()) {
        return Some(value.to_string());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// Refuses a state-changing request that another site could have made: `Sec-Fetch-Site` says
/// cross-site, or `Origin` names another host than `Host`.
pub(crate) fn check_same_origin(method: &Method, headers: &HeaderMap) -> Result<(), WebError> {
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(WebError::CrossSite("Sec-Fetch-Site is not same-origin"));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(origin);
        if origin == "null" || Some(origin_host) != host {
            return Err(WebError::CrossSite("Origin does not match Host"));
        }
    }
    Ok(())
}

/// A fresh random CSRF token.
pub(crate) fn new_csrf_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_bind_needs_a_token_or_read_only() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(matches!(
            Access::open().check_bind(public),
            Err(WebError::UnprotectedBind { .. })
        ));
        assert!(Access::open().check_bind(local).is_ok());
        assert!(Access::token("t").unwrap().check_bind(public).is_ok());
        assert!(Access::open().read_only().check_bind(public).is_ok());
        assert!(matches!(Access::token(""), Err(WebError::EmptyToken)));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
        assert!(check_same_origin(&Method::GET, &headers).is_ok());
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_ok());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
    }
}
