//! The dashboard's one error type and how each variant becomes an HTTP response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything the dashboard can refuse or fail with, each variant one a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A non-loopback bind without a token or read-only mode was asked for.
    #[error(
        "refusing to bind {addr}: a non-loopback address needs a token (--token) or --read-only"
    )]
    UnprotectedBind {
        /// The refused address.
        addr: std::net::SocketAddr,
    },
    /// An empty access token was given.
    #[error("the access token must not be empty")]
    EmptyToken,
    /// The request carried no valid token.
    #[error("a valid token is required")]
    Unauthorized,
    /// The access resolver forbids this request, or read-only access met an action.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A POST came from another site (Origin / Sec-Fetch-Site) or without the session's CSRF token.
    #[error("cross-site request refused: {0}")]
    CrossSite(&'static str),
    /// The request's input is invalid (an unknown state, a limit of 0...). Nothing changed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] tasque_durable::Error),
    /// A metric could not be defined or registered (e.g. a name clash in a shared registry).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Serving failed (the listener could not be bound, the connection broke).
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

impl WebError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use tasque_durable::Error as E;
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) | WebError::CrossSite(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) | WebError::EmptyToken | WebError::UnprotectedBind { .. } => {
                StatusCode::BAD_REQUEST
            }
            WebError::Store(E::NotFound(_)) => StatusCode::NOT_FOUND,
            WebError::Store(E::InvalidState { .. }) => StatusCode::CONFLICT,
            WebError::Store(e) if e.is_validation() => StatusCode::BAD_REQUEST,
            WebError::Store(_) | WebError::Io(_) | WebError::Metrics(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "dashboard request failed");
        }
        (status, self.to_string()).into_response()
    }
}
