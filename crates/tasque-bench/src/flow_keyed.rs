//! The `flow` suite's keyed group: burn-down of jobs spread over ordering keys (K = 1) against
//! the same run's plain burn-down, on PostgreSQL.
//!
//! - `postgres_plain_burn_down_per_s`: one worker (50 slots) works N ready no-op jobs without
//!   keys; `postgres_keyed_burn_down_per_s`: the same with the jobs spread round-robin over
//!   1,000 ordering keys (100 per key: each key strictly serial); `keyed_vs_plain` is their
//!   ratio (goal: at least 0.5). N = 100,000 (`--quick`: 10,000 over 100 keys).

use anyhow::Result;
use serde_json::json;
use tasque_durable::{Spawn, SpawnOptions, Store};
use tasque_postgres::{PostgresConfig, PostgresStore};

use crate::burn::burn_down;
use crate::postgres_suite::url;
use crate::report::{figure, ratio};

/// Worker slots of both burn-downs.
const SLOTS: usize = 50;

/// Group `keyed_vs_plain` on PostgreSQL, in namespaces under `prefix`.
pub async fn postgres_keyed(prefix: &str, quick: bool) -> Result<()> {
    let (n, keys) = if quick {
        (10_000, 100)
    } else {
        (100_000, 1_000)
    };
    let plain = store(prefix, "plain").await?;
    spawn(&plain, n, None).await?;
    let plain_rate = burn_down(&plain, n, SLOTS).await?;
    figure("postgres_plain_burn_down_per_s", plain_rate, "jobs/s");
    let keyed = store(prefix, "keyed").await?;
    spawn(&keyed, n, Some(keys)).await?;
    let keyed_rate = burn_down(&keyed, n, SLOTS).await?;
    figure("postgres_keyed_burn_down_per_s", keyed_rate, "jobs/s");
    ratio("keyed_vs_plain", keyed_rate, plain_rate);
    Ok(())
}

async fn store(prefix: &str, namespace: &str) -> Result<PostgresStore> {
    let config = PostgresConfig::new(url())
        .with_schema_prefix(prefix)
        .with_namespace(namespace);
    let store = PostgresStore::connect(config).await?;
    store.migrate().await?;
    Ok(store)
}

/// Spawns `n` no-op jobs in batches of 5,000, round-robin over `keys` ordering keys if given.
async fn spawn(store: &dyn Store, n: usize, keys: Option<usize>) -> Result<()> {
    let mut i = 0;
    while i < n {
        let size = (n - i).min(5000);
        let spawns = (i..i + size)
            .map(|j| {
                let spawn = Spawn::new("default", "noop", json!(j));
                match keys {
                    Some(k) => spawn
                        .with_options(SpawnOptions::new().with_ordering_key(format!("k{}", j % k))),
                    None => spawn,
                }
            })
            .collect();
        store.spawn_many(spawns).await?;
        i += size;
    }
    Ok(())
}
