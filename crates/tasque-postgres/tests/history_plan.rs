//! The claim's plan beside a large history: with a million finished jobs kept in the table,
//! the claim of a queue without keyed jobs walks the claim index in order and stops at its
//! limit, for limits up to a twentieth of the ready jobs (10,000 here). It never collects
//! every ready job of the queue to sort them (a bitmap scan and a sort, about 10 ms for 10,000
//! ready jobs, where the walk to 500 takes under 1 ms). Closer to the whole queue (a tenth and
//! more) the planner may sort instead, which then costs about what the walk does.

mod support;

use sqlx::Row;

#[tokio::test]
async fn unkeyed_claims_walk_the_claim_index_beside_a_large_history() {
    let Some(pool) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("hist");
    let store = fresh.store("history").await;
    let jobs = format!("\"{}\".jobs", store.schema());
    let retry = r#"{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}"#;
    let columns = "queue, task, params, state, priority, max_attempts, retry, run_at, created_at";
    sqlx::query(&format!(
        "INSERT INTO {jobs} ({columns}, first_started_at, attempted_at, finished_at, result, \
           worker_id) \
         SELECT 'default', 'noop', to_jsonb(g), 'completed', 0, 20, $1::jsonb, \
           now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', \
           now() - interval '1 hour', now() - interval '1 hour', 'null'::jsonb, 'filler' \
         FROM generate_series(1, 1000000) AS g"
    ))
    .bind(retry)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {jobs} ({columns}) \
         SELECT 'default', 'noop', to_jsonb(g), 'pending', 0, 20, $1::jsonb, now(), now() \
         FROM generate_series(1, 10000) AS g"
    ))
    .bind(retry)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(&format!("VACUUM ANALYZE {jobs}"))
        .execute(&pool)
        .await
        .unwrap();

    let mut connection = pool.acquire().await.unwrap();
    for (name, sql) in store.unkeyed_claim_statements() {
        let queues = if name.contains("many") {
            "ARRAY['default', 'other']::text[]"
        } else {
            "'default'"
        };
        let index = if name.ends_with("by_age") {
            "Index Scan using jobs_claim_age on jobs"
        } else {
            "Index Scan using jobs_claim on jobs"
        };
        for limit in [1, 10, 100, 500] {
            let sql = sql
                .replace("$1", queues)
                .replace("$2", &limit.to_string())
                .replace("$3", "'plan-test'")
                .replace("$4", "60000");
            // EXPLAIN ANALYZE runs the claim: roll it back.
            sqlx::raw_sql("BEGIN")
                .execute(&mut *connection)
                .await
                .unwrap();
            let plan: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN ANALYZE {sql}"))
                .fetch_all(&mut *connection)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(|row| row.get::<String, _>(0))
                .collect();
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut *connection)
                .await
                .unwrap();
            let plan = plan.join("\n");
            let claimed = "Update on jobs j  ";
            assert!(
                plan.lines()
                    .any(|l| l.contains(claimed) && l.contains(&format!("rows={limit} "))),
                "{name} (limit {limit}) claims {limit} jobs:\n{plan}"
            );
            assert!(
                plan.contains(index) && !plan.contains("Bitmap Heap Scan"),
                "{name} (limit {limit}) does not walk the claim index:\n{plan}"
            );
        }
    }
    drop(connection);
    store.close().await;
}
