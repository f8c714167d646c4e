//! Migrations on servers are explicit (issue 18): on PostgreSQL and MySQL, read-only
//! commands never change the schema, and other commands on an unmigrated or older database
//! stop with a clear error naming `tasque migrate` (or `--auto-migrate`). The servers are
//! `TASQUE_TEST_POSTGRES_URL` / `TASQUE_TEST_MYSQL_URL`; under `CI=true` an unreachable one
//! fails the test, elsewhere it is skipped loudly. Each case uses its own namespace.

use std::process::{Command, Output, Stdio};

use sqlx::Connection;
use tasque_durable::Store;
use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_postgres::{PostgresConfig, PostgresStore};

fn postgres_url() -> String {
    std::env::var("TASQUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn mysql_url() -> String {
    std::env::var("TASQUE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

fn unreachable(what: &str, url: &str, error: impl std::fmt::Display) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what} at {url} is unreachable under CI: {error}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {what} at {url} is unreachable ({error}); run scripts/services !!!!!!!!\n");
    false
}

fn namespace(tag: &str) -> String {
    format!("tqcli{tag}{:08x}", rand::random::<u32>())
}

fn tasque(url: &str, namespace: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasque"))
        .args(["--database-url", url, "--namespace", namespace])
        .args(args)
        .env_remove("TASQUE_AUTO_MIGRATE")
        .stdin(Stdio::null())
        .output()
        .expect("run tasque")
}

fn refused(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("run `tasque migrate`"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

fn succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn postgres_schema_exists(url: &str, schema: &str) -> bool {
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(&mut connection)
    .await
    .unwrap();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commands_never_migrate_unless_asked() {
    let url = postgres_url();
    if let Err(error) = sqlx::PgConnection::connect(&url).await {
        unreachable("PostgreSQL", &url, error);
        return;
    }
    let ns = namespace("pg");
    let schema = format!("tasque_{ns}");
    for args in [
        vec!["stats"],
        vec!["jobs"],
        vec!["queues"],
        vec!["enqueue", "greet", "{}"],
        vec!["work", "--until-empty"],
        vec!["cancel", "1"],
        // Read-only commands ignore --auto-migrate: they never change the schema.
        vec!["--auto-migrate", "stats"],
        vec!["--auto-migrate", "jobs"],
    ] {
        let stderr = refused(&tasque(&url, &ns, &args));
        assert!(
            stderr.contains("has no Tasque schema yet"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !postgres_schema_exists(&url, &schema).await,
        "a command created the schema"
    );

    // A command that writes migrates when asked to.
    succeeded(&tasque(
        &url,
        &ns,
        &["--auto-migrate", "enqueue", "greet", "{}"],
    ));
    succeeded(&tasque(&url, &ns, &["stats"]));
    let store = PostgresStore::connect(PostgresConfig::new(&url).with_namespace(&ns))
        .await
        .unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        tasque_postgres::SCHEMA_VERSION
    );
    store.drop_schema().await.unwrap();

    // `tasque migrate` is the explicit way.
    let ns = namespace("pgm");
    succeeded(&tasque(&url, &ns, &["migrate"]));
    succeeded(&tasque(&url, &ns, &["enqueue", "greet", "{}"]));
    let store = PostgresStore::connect(PostgresConfig::new(&url).with_namespace(&ns))
        .await
        .unwrap();
    assert_eq!(store.count(Default::default()).await.unwrap(), 1);
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_older_schema_stops_writes_until_migrated() {
    let url = mysql_url();
    if let Err(error) = sqlx::MySqlConnection::connect(&url).await {
        unreachable("MySQL", &url, error);
        return;
    }
    let ns = namespace("my");
    // Unmigrated: refused, nothing created.
    refused(&tasque(&url, &ns, &["stats"]));
    refused(&tasque(&url, &ns, &["enqueue", "greet", "{}"]));
    let store = MySqlStore::connect(MySqlConfig::new(&url).with_namespace(&ns))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);

    // An older schema (version 1): writes and reads stop; migrate upgrades it.
    store.migrate_to(1).await.unwrap();
    for args in [vec!["enqueue", "greet", "{}"], vec!["jobs"]] {
        let stderr = refused(&tasque(&url, &ns, &args));
        assert!(stderr.contains("schema version 1, older"), "{stderr}");
    }
    assert_eq!(store.schema_version().await.unwrap(), 1);
    succeeded(&tasque(&url, &ns, &["migrate"]));
    assert_eq!(
        store.schema_version().await.unwrap(),
        tasque_mysql::SCHEMA_VERSION
    );
    succeeded(&tasque(&url, &ns, &["enqueue", "greet", "{}"]));
    assert_eq!(store.count(Default::default()).await.unwrap(), 1);
    store.drop_tables().await.unwrap();
}
