//! The `flow` suite: flow control, one function per group (see each group's module).
//!
//! - keyed order (`flow_keyed`): `keyed_vs_plain` on PostgreSQL.
//!
//! The PostgreSQL server is `TASQUE_TEST_POSTGRES_URL`; its namespaces live in schemas with a
//! random prefix, dropped at the end.

use anyhow::{Context, Result};
use sqlx::PgPool;

use crate::postgres_suite::{drop_schemas, url};

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let prefix = format!("tqbflowk{:08x}_", rand::random::<u32>());
        let admin = PgPool::connect(&url())
            .await
            .with_context(|| format!("PostgreSQL at {} (set TASQUE_TEST_POSTGRES_URL)", url()))?;
        let outcome = crate::flow_keyed::postgres_keyed(&prefix, quick).await;
        drop_schemas(&admin, &prefix).await?;
        outcome
    })
}
