//! `tasque dashboard` (the web dashboard) and `tasque work --metrics-bind` (a `/metrics`
//! endpoint beside a worker). The work lives in `tasque-web`; this is only wiring.

use std::sync::Arc;

use tasque_durable::Store;
use tasque_web::{Access, Dashboard, MeteredStore, Metrics, Server, WebError};

use crate::args::{DashboardArgs, WorkArgs};
use crate::fail::CliError;
use crate::signal::Signals;

fn web_error(error: WebError) -> CliError {
    match error {
        WebError::Store(error) => CliError::from_store(error),
        WebError::UnprotectedBind { .. } | WebError::EmptyToken => {
            CliError::Usage(error.to_string())
        }
        other => CliError::Failed(other.to_string()),
    }
}

/// The access policy the flags ask for.
fn access(args: &DashboardArgs) -> Result<Access, CliError> {
    let access = match &args.token {
        Some(token) => Access::token(token.clone()).map_err(web_error)?,
        None => Access::open(),
    };
    Ok(if args.read_only {
        access.read_only()
    } else {
        access
    })
}

/// Runs `tasque dashboard` until Ctrl-C or SIGTERM.
pub async fn run(store: Arc<dyn Store>, args: DashboardArgs) -> Result<(), CliError> {
    let access = access(&args)?;
    let server = Server::bind(args.bind, &access).await.map_err(web_error)?;
    let addr = server.local_addr().map_err(web_error)?;
    let mut signals = Signals::install()
        .map_err(|error| CliError::Failed(format!("could not install signal handlers: {error}")))?;
    eprintln!(
        "dashboard on http://{addr}/{}; Ctrl-C to stop",
        if args.read_only { " (read-only)" } else { "" }
    );
    let router = Dashboard::new(store, access).router();
    let shutdown = async move {
        let why = signals.recv().await;
        eprintln!("{why}; stopping the dashboard");
    };
    server.serve(router, shutdown).await.map_err(web_error)
}

/// With `--metrics-bind`, wraps the worker's store so that it records metrics and serves
/// `/metrics` on that address (in the background, for as long as the process lives).
pub async fn metered_for_work(
    store: Arc<dyn Store>,
    args: &WorkArgs,
    queues: &[String],
) -> Result<Arc<dyn Store>, CliError> {
    let Some(bind) = args.metrics_bind else {
        return Ok(store);
    };
    let server = Server::bind(bind, &Access::open())
        .await
        .map_err(web_error)?;
    let metrics = Metrics::new().map_err(web_error)?;
    for queue in queues {
        metrics.set_capacity(queue, args.concurrency);
    }
    let metered: Arc<dyn Store> = Arc::new(MeteredStore::new(store, metrics.clone()));
    let router = tasque_web::metrics_router(metered.clone(), metrics);
    eprintln!(
        "metrics on http://{}/metrics",
        server.local_addr().map_err(web_error)?
    );
    tokio::spawn(async move {
        if let Err(error) = server.serve(router, std::future::pending()).await {
            tracing::warn!(%error, "metrics endpoint stopped");
        }
    });
    Ok(metered)
}
