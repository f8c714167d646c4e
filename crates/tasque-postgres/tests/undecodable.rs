//! A worker meets undecodable rows on PostgreSQL (a fresh prefix per case): the shared cases of
//! `tasque-worker/tests/support/undecodable_cases.rs`.

mod support;

#[macro_use]
#[path = "../../tasque-worker/tests/support/undecodable_cases.rs"]
mod undecodable_cases;

/// A fresh backend, or `None` when the server is unreachable outside CI.
async fn fresh() -> Option<support::Fresh> {
    support::server().await?;
    Some(support::Fresh::new("u"))
}

undecodable_cases!(fresh());
