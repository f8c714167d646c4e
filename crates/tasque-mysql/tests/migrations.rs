//! Versioned migrations (SPEC Part 2, storage): a new namespace created in its final shape at
//! once has exactly the tables of one migrated version by version; an upgrade keeps the jobs;
//! a schema newer than this build is refused.

mod support;

use serde_json::json;
use sqlx::{MySqlPool, Row};
use tasque_durable::{Error, JobState, Store};
use tasque_mysql::{MySqlStore, SCHEMA_VERSION};

/// `SHOW CREATE TABLE` of each table of a store, with its stem made generic.
async fn shapes(admin: &MySqlPool, store: &MySqlStore) -> Vec<String> {
    let stem = store.table_stem();
    let mut out = Vec::new();
    for table in ["queues", "jobs", "checkpoints", "events", "migrations"] {
        let row: (String, String) = sqlx::query_as(&format!("SHOW CREATE TABLE `{stem}_{table}`"))
            .fetch_one(admin)
            .await
            .unwrap();
        let generic = row.1.replace(stem, "STEM");
        // The next id depends on what was inserted, not on the shape.
        let shape: String = generic
            .split(' ')
            .filter(|word| !word.starts_with("AUTO_INCREMENT="))
            .collect::<Vec<_>>()
            .join(" ");
        out.push(shape);
    }
    for routine in ["spawn", "spawn_check", "retry_check"] {
        let row = sqlx::query(&format!("SHOW CREATE PROCEDURE `{stem}_{routine}`"))
            .fetch_one(admin)
            .await
            .unwrap();
        let text: String = row.try_get::<String, _>(2).unwrap_or_default();
        assert!(!text.is_empty(), "procedure {routine} has no text");
        out.push(text.replace(stem, "STEM"));
    }
    out
}

#[tokio::test]
async fn fresh_namespace_has_exactly_the_tables_of_one_migrated_step_by_step() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("m");
    let at_once = fresh.store("at_once").await;
    let stepwise = fresh.unmigrated("stepwise").await;
    let report = stepwise.migrate_to(1).await.unwrap();
    assert_eq!((report.from, report.to), (0, 1));
    // A job written at version 1 by raw SQL (this build's insert names later columns).
    let inserted = sqlx::query(&format!(
        "INSERT INTO `{}_jobs` (queue, task, params, state, max_attempts, retry, run_at, \
         created_at, errors) VALUES ('default', 'work', '{{\"kept\": true}}', 'pending', 20, \
         '{{\"kind\": \"none\"}}', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), '[]')",
        stepwise.table_stem()
    ))
    .execute(&admin)
    .await
    .unwrap();
    let job = tasque_durable::JobId(i64::try_from(inserted.last_insert_id()).unwrap());
    let report = stepwise.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (1, SCHEMA_VERSION));
    assert_eq!(
        shapes(&admin, &at_once).await,
        shapes(&admin, &stepwise).await
    );
    let kept = stepwise.get_job(job).await.unwrap();
    assert_eq!(kept.state, JobState::Available);
    assert_eq!(kept.params, json!({"kept": true}));
    let again = stepwise.migrate().await.unwrap();
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
}

#[tokio::test]
async fn schema_newer_than_this_build_is_refused() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("m");
    let store = fresh.store("main").await;
    sqlx::query(&format!(
        "INSERT INTO `{}_migrations` (version, name, applied_at) VALUES (?, 'future', NOW(6))",
        store.table_stem()
    ))
    .bind(SCHEMA_VERSION + 1)
    .execute(&admin)
    .await
    .unwrap();
    let err = MySqlStore::connect(fresh.config("main")).await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err:?}");
    // Leave the namespace droppable by the clean-up.
    sqlx::query(&format!(
        "DELETE FROM `{}_migrations` WHERE version > ?",
        store.table_stem()
    ))
    .bind(SCHEMA_VERSION)
    .execute(&admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_once() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("m");
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(fresh.unmigrated("main").await);
    }
    let (a, b, c, d) = tokio::join!(
        stores[0].migrate(),
        stores[1].migrate(),
        stores[2].migrate(),
        stores[3].migrate()
    );
    for result in [a, b, c, d] {
        let report = result.unwrap();
        assert_eq!(report.to, SCHEMA_VERSION);
    }
    let versions: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM `{}_migrations`",
        stores[0].table_stem()
    ))
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(versions, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_version_interrupted_half_way_is_completed_by_the_next_run() {
    let Some(admin) = support::server().await else {
        return;
    };
    let fresh = support::Fresh::new("m");
    let at_once = fresh.store("at_once").await;
    let halfway = fresh.unmigrated("halfway").await;
    halfway.migrate_to(1).await.unwrap();
    // A migrator that died inside v2.sql after its first statement (DDL commits at once, so
    // that statement stays applied while version 2 is not recorded).
    sqlx::query(&format!(
        "ALTER TABLE `{}_queues` ADD COLUMN on_exhausted VARCHAR(16) NOT NULL DEFAULT 'continue'",
        halfway.table_stem()
    ))
    .execute(&admin)
    .await
    .unwrap();
    let report = halfway.migrate().await.unwrap();
    assert_eq!((report.from, report.to), (1, SCHEMA_VERSION));
    assert_eq!(
        shapes(&admin, &at_once).await,
        shapes(&admin, &halfway).await
    );
}
