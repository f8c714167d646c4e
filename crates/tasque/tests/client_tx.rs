//! `Client::enqueue_in_tx` on every engine: the job exists if and only if the caller's own
//! transaction commits, and a committed job runs.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::PATIENCE;
use tasque::durable::{JobFilter, Store};
use tasque::{Client, Handlers, Job, JobContext, Worker};

#[derive(Serialize, Deserialize)]
struct Confirm {
    order: i64,
}

impl Job for Confirm {
    const KIND: &'static str = "confirm";
    type Output = String;
}

/// Checks the committed job exists (and only it) and that a worker runs it.
async fn check<S: Store>(
    client: &Client<S>,
    committed: tasque::Enqueued<Confirm>,
    jobs_before: u64,
) {
    let store: Arc<dyn Store> = client.clone().into_dyn().store().clone();
    assert_eq!(
        store.count(JobFilter::all()).await.unwrap(),
        jobs_before + 1
    );
    let handlers = Handlers::new();
    handlers.register(|c: Confirm, _ctx: JobContext| async move {
        Ok::<_, String>(format!("order {} confirmed", c.order))
    });
    let worker = Worker::builder(store)
        .handlers(handlers)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let output = client.wait(&committed, PATIENCE).await.unwrap();
    assert_eq!(output, "order 1 confirmed");
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_jobs_exist_iff_the_transaction_commits() {
    let store = support::sqlite_memory().await;
    let pool = store.pool().clone();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let client = Client::from_store(store);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (2)")
        .execute(&mut *tx)
        .await
        .unwrap();
    client
        .enqueue_in_tx(&mut tx, Confirm { order: 2 })
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let before = client.store().count(JobFilter::all()).await.unwrap();
    assert_eq!(before, 0, "a rolled-back job does not exist");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = client
        .enqueue_in_tx(&mut tx, Confirm { order: 1 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    check(&client, job, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_jobs_exist_iff_the_callers_own_transaction_commits() {
    let (store, dir) = support::sqlite_file().await;
    // The caller's own pool on the same file.
    let url = format!("sqlite://{}", dir.path().join("client.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let client = Client::from_store(store);
    let mut tx = pool.begin().await.unwrap();
    client
        .enqueue_many_in_tx(&mut tx, [Confirm { order: 2 }, Confirm { order: 3 }])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let before = client.store().count(JobFilter::all()).await.unwrap();
    assert_eq!(before, 0, "rolled-back jobs do not exist");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = client
        .enqueue_in_tx(&mut tx, Confirm { order: 1 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    check(&client, job, before).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_jobs_exist_iff_the_transaction_commits() {
    let Some(store) = support::postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&support::postgres_url())
        .await
        .unwrap();
    let orders = format!("\"{}\".orders", store.schema());
    sqlx::query(&format!("CREATE TABLE {orders} (id BIGINT PRIMARY KEY)"))
        .execute(&pool)
        .await
        .unwrap();
    let client = Client::from_store(store.clone());
    let mut tx = pool.begin().await.unwrap();
    client
        .enqueue_in_tx(&mut tx, Confirm { order: 2 })
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let before = client.store().count(JobFilter::all()).await.unwrap();
    assert_eq!(before, 0, "a rolled-back job does not exist");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {orders} (id) VALUES (1)"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = client
        .enqueue_in_tx(&mut tx, Confirm { order: 1 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    check(&client, job, before).await;
    pool.close().await;
    support::drop_postgres(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_jobs_exist_iff_the_transaction_commits() {
    let Some(store) = support::mysql().await else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&support::mysql_url())
        .await
        .unwrap();
    let orders = format!("{}_orders", store.table_stem());
    sqlx::query(&format!(
        "CREATE TABLE {orders} (id BIGINT PRIMARY KEY) ENGINE=InnoDB"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let client = Client::from_store(store.clone());
    let mut tx = pool.begin().await.unwrap();
    client
        .enqueue_in_tx(&mut tx, Confirm { order: 2 })
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let before = client.store().count(JobFilter::all()).await.unwrap();
    assert_eq!(before, 0, "a rolled-back job does not exist");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {orders} (id) VALUES (1)"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = client
        .enqueue_in_tx(&mut tx, Confirm { order: 1 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    check(&client, job, before).await;
    sqlx::query(&format!("DROP TABLE {orders}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    support::drop_mysql(&store).await;
}
