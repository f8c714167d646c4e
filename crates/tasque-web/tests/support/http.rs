//! Requests through the router as a browser or an API client would send them (no socket).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A response: status, headers and body text.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Where a redirect points.
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// A browser-like client: keeps the CSRF cookie and sends the token with its forms.
pub struct Client {
    pub router: Router,
    pub prefix: String,
    pub cookies: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Client {
    /// A client of `router` mounted at `prefix` (`""` for the root).
    pub fn new(router: Router, prefix: &str) -> Self {
        Client {
            router,
            prefix: prefix.to_string(),
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Sends every request with this header too.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The session's CSRF token (after a first GET).
    pub fn csrf(&self) -> String {
        self.cookies
            .iter()
            .find(|(k, _)| k == "tasque_csrf")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub async fn send(&mut self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(name, _)| name != k);
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.prefix, path))
            .header(header::HOST, "127.0.0.1:8080");
        if !self.cookies.is_empty() {
            builder = builder.header(header::COOKIE, self.cookie_header());
        }
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        builder
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    /// GETs `path` and expects 200 with JSON.
    pub async fn get_json(&mut self, path: &str) -> serde_json::Value {
        let reply = self.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
        reply.json()
    }

    /// POSTs a form as a same-origin page would (with the session's CSRF token).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        if self.csrf().is_empty() {
            self.get("/queues").await;
        }
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(
            path,
            &serde_urlencoded::to_string(&all).unwrap(),
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await
    }

    /// POSTs a body with extra headers, as given.
    pub async fn post_raw(&mut self, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        let mut builder = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Body::from(body.to_string())).unwrap();
        self.send(request).await
    }
}
