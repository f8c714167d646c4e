//! Upgrading a database made by the current release (0.1.0, schema version 3):
//! `tests/fixtures/release-0.1.0.sql` is the `mysqldump` of the tables of namespace `fxrelease`
//! that release's `tasque` CLI migrated and enqueued four jobs into (see
//! `tasque_testkit::upgrade`); the stored routines (for producers in other languages) are not in
//! the file. Loaded under a fresh table prefix, this build's migrations take it to this build's
//! version and lose nothing.

mod support;

use sqlx::Connection;
use tasque_mysql::SCHEMA_VERSION;

const RELEASE_0_1_0: &str = include_str!("fixtures/release-0.1.0.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_0_1_0_database_upgrades_without_losing_a_job() {
    if support::server().await.is_none() {
        return;
    }
    let fresh = support::Fresh::new("up");
    let stem = format!("{}main", fresh.prefix);
    // Its own connection: the dump changes session settings.
    let mut conn = sqlx::MySqlConnection::connect(&support::url())
        .await
        .unwrap();
    sqlx::raw_sql(&RELEASE_0_1_0.replace("tasque_fxrelease", &stem))
        .execute(&mut conn)
        .await
        .expect("load the release's database");
    conn.close().await.unwrap();
    let store = fresh.unmigrated("main").await;
    tasque_testkit::upgrade::release_0_1_0_jobs_survive_the_upgrade(&store, 3, SCHEMA_VERSION)
        .await;
}
