//! The Tasque dashboard and Prometheus metrics: an [`axum::Router`] to serve on its own
//! (`tasque dashboard`) or to nest into your own service under any path prefix.
//!
//! # Contract
//!
//! - **Works on any engine**: it reads and acts only through [`Store`] (and the engine's
//!   optional [`Insight`](tasque_durable::Insight) for ages, timings and suspensions).
//! - **Pages never scan the jobs table**: counts by state, oldest-ready ages and the sample of
//!   recently finished jobs come from a snapshot cached for a few seconds and refreshed in the
//!   background ([`cache`]); job lists are keyset pages ([`jobs`]).
//! - **Access** ([`Access`]): loopback-only unless a token or read-only mode is set; token by
//!   header or login cookie; every POST checked against cross-site use and a per-session CSRF
//!   token; a user nesting the router supplies their own resolver (all, read-only, forbidden).
//! - **Pages** (server-rendered, a little JavaScript of our own, SVG charts we draw):
//!   `/` overview, `/queues`, `/jobs` (filters, search in args, cursor pages, bulk actions),
//!   `/jobs/{id}` (detail and "why is this job not running?"); each has a JSON twin under
//!   `/api`. Actions: pause, resume and limit a queue; retry, cancel and delete a job, a
//!   selection, or everything matching a filter after a confirmation that shows the count.
//! - **Metrics**: `/metrics` in the Prometheus text format ([`Metrics`], [`MeteredStore`]).
//!
//! # Nesting
//!
//! ```no_run
//! use std::sync::Arc;
//! use tasque_durable::Store;
//! use tasque_web::{Access, AccessLevel};
//!
//! # async fn demo(store: Arc<dyn Store>) -> Result<(), Box<dyn std::error::Error>> {
//! // Your own auth decides; here, a header set by your proxy.
//! let access = Access::open().resolver(|parts| match parts.headers.get("x-role") {
//!     Some(role) if role == "admin" => AccessLevel::All,
//!     Some(_) => AccessLevel::ReadOnly,
//!     None => AccessLevel::Forbidden,
//! });
//! let app = axum::Router::new().nest("/admin/jobs", tasque_web::router(store, access));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod cache;
pub mod detail;
mod error;
mod guard;
pub mod jobs;
mod metered;
pub mod metrics;
mod routes;
pub mod stats;
pub mod views;
pub mod why;
pub mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tasque_durable::Store;

pub use access::{Access, AccessLevel};
pub use error::WebError;
pub use metered::MeteredStore;
pub use metrics::Metrics;

/// How long the cached snapshot is served before a background refresh (default).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The dashboard's configuration; [`router`] is the short form.
pub struct Dashboard {
    store: Arc<dyn Store>,
    access: Access,
    metrics: Option<Metrics>,
    ttl: Duration,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("namespace", &self.store.namespace())
            .field("access", &self.access)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Dashboard {
    /// A dashboard over `store` with `access`, a fresh [`Metrics`] registry for `/metrics`,
    /// and the default cache time to live.
    pub fn new(store: Arc<dyn Store>, access: Access) -> Self {
        let metrics = match Metrics::new() {
            Ok(metrics) => Some(metrics),
            Err(error) => {
                tracing::warn!(%error, "dashboard metrics disabled");
                None
            }
        };
        Dashboard {
            store,
            access,
            metrics,
            ttl: DEFAULT_CACHE_TTL,
        }
    }

    /// Serves these metrics on `/metrics` (e.g. the registry a [`MeteredStore`] records into).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves the cached snapshot for `ttl` before refreshing it in the background.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The router, to serve or to nest under any prefix.
    pub fn router(self) -> axum::Router {
        let app = Arc::new(routes::App {
            cache: cache::Cache::new(self.store, self.ttl),
            access: self.access,
            metrics: self.metrics,
        });
        routes::routes()
            .merge(routes::public_routes())
            .layer(axum::middleware::from_fn_with_state(
                app.clone(),
                guard::guard,
            ))
            .with_state(app)
    }
}

/// The dashboard over `store` with `access`: every page, action and `/metrics`.
pub fn router(store: Arc<dyn Store>, access: Access) -> axum::Router {
    Dashboard::new(store, access).router()
}

/// Only `/metrics` (counters and histograms from `metrics`, gauges from `store`'s snapshot),
/// for a worker process: `tasque work --metrics-bind`.
pub fn metrics_router(store: Arc<dyn Store>, metrics: Metrics) -> axum::Router {
    let app = Arc::new(routes::App {
        cache: cache::Cache::new(store, DEFAULT_CACHE_TTL),
        access: Access::open(),
        metrics: Some(metrics),
    });
    routes::metrics_only().with_state(app)
}

/// A listener bound for the dashboard, after the access policy allowed the address.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Binds `addr`, refusing a non-loopback address without a token or read-only mode
    /// ([`WebError::UnprotectedBind`]).
    pub async fn bind(addr: SocketAddr, access: &Access) -> Result<Server, WebError> {
        access.check_bind(addr)?;
        Ok(Server {
            listener: tokio::net::TcpListener::bind(addr).await?,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, WebError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves `router` until `shutdown` completes.
    pub async fn serve(
        self,
        router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
