//! Query plans that must not depend on column statistics: the statements that write runs by
//! key look their rows up by primary key, even when the statistics were taken while no job
//! ran (then the planner estimates one running row, and a plan reading every entry of a
//! running-jobs index, dead ones included, looks free).

mod support;

use serde_json::json;
use sqlx::Row;
use tasque_durable::{Spawn, Store};

#[tokio::test]
async fn run_writes_look_runs_up_by_key_whatever_the_statistics() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("plan");
    let store = fresh.store("plans").await;
    let spawns = (0..5_000)
        .map(|n| Spawn::new("default", "noop", json!(n)))
        .collect();
    store.spawn_many(spawns).await.unwrap();
    let jobs = format!("\"{}\".jobs", store.schema());
    // Statistics taken while every job is pending, then 300 jobs start running.
    sqlx::query(&format!("ANALYZE {jobs}"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "UPDATE {jobs} SET state = 'running', lease_expires_at = now() + interval '1 minute' \
         WHERE id IN (SELECT id FROM {jobs} ORDER BY id LIMIT 300)"
    ))
    .execute(&pool)
    .await
    .unwrap();

    let mut connection = pool.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *connection)
        .await
        .unwrap();
    let statements = store.run_write_statements();
    assert!(statements.len() >= 7);
    for (n, (name, sql)) in statements.iter().enumerate() {
        let prepared = format!("plan_{n}");
        sqlx::raw_sql(&format!("PREPARE {prepared} AS {sql}"))
            .execute(&mut *connection)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let parameters: i64 = sqlx::query_scalar(
            "SELECT cardinality(parameter_types)::bigint FROM pg_prepared_statements \
             WHERE name = $1",
        )
        .bind(&prepared)
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        let nulls = vec!["NULL"; parameters as usize].join(", ");
        let plan: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN EXECUTE {prepared}({nulls})"))
            .fetch_all(&mut *connection)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("jobs_pkey"),
            "{name} does not look its runs up by key:\n{plan}"
        );
        assert!(
            !plan.contains("jobs_lease") && !plan.contains("Seq Scan on jobs"),
            "{name} reads more than its runs:\n{plan}"
        );
    }
    drop(connection);
    store.close().await;
}
